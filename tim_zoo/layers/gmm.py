"""Differentiable Gaussian-mixture pooling head (Fisher-vector style)."""
import math
from typing import Optional

import torch
import torch.nn.functional as F
from torch import nn

from .._validation import check_block_input, check_choice
from ..exceptions import InputShapeError
from .heads import ClassifierHead
from .pooling import check_frame_mask


class GMMClusteringHead(ClassifierHead):
    """Pool frame features `[B, D, T]` through a Gaussian mixture (Fisher vectors, optional `mask` of valid
    frames), then classify: `-> [B, classes]`; `init_from_data` sets the mixture from frames.

    `K` components with learnable means, diagonal log-variances and mixture logits.
    Responsibilities `gamma_tk = softmax_k(log pi_k + log N(x_t | mu_k, sigma_k))` are computed in
    log space. Per component, the first-order Fisher statistics over the valid frames:

        G_mu_k = sum_t gamma_tk (x_t - mu_k) / sigma_k / (T_valid * sqrt(pi_k))

    (and with `second_order=True` also
    `G_sigma_k = sum_t gamma_tk ((x_t - mu_k)^2 / sigma_k^2 - 1) / (T_valid * sqrt(2 pi_k))`)
    give `[B, K*D]` (`[B, 2*K*D]`), then signed square root (`power_norm`), L2 normalisation,
    dropout and `Linear -> classes`. The normalisation keeps the output finite and bounded for any
    finite input scale.

    `forward(x, pre_logits=False, mask=None)`: `mask` `[B, T]` is True on valid frames.
    Initialise from data with `init_from_data` (k-means, optionally refined by EM).

    Args:
        in_features: `D`, the frame feature width.
        num_classes: classes of the final Linear.
        num_components: `K`, the mixture's Gaussians (the notes: 8 better than 12).
        second_order: add the variance statistics `G_sigma` (doubles the pooled width).
        power_norm: signed square root before the L2 normalisation.
        drop_rate: dropout before the classifier.
        log_var_range: the log-variances are clamped to `[-log_var_range, log_var_range]`, so that no component
            collapses onto a frame (variance towards 0) or spreads over everything.
    """

    def __init__(
            self,
            in_features: int,
            num_classes: int,
            num_components: int = 8,
            second_order: bool = False,
            power_norm: bool = True,
            drop_rate: float = 0.0,
            log_var_range: float = 10.0,
    ):
        out_dim = num_components * in_features * (2 if second_order else 1)
        super().__init__(out_dim, num_classes)
        self.in_features = in_features
        self.num_components = num_components
        self.second_order = second_order
        self.power_norm = power_norm
        self.log_var_range = log_var_range
        self.means = nn.Parameter(torch.randn(num_components, in_features))
        self.log_vars = nn.Parameter(torch.zeros(num_components, in_features))
        self.mix_logits = nn.Parameter(torch.zeros(num_components))
        self.drop = nn.Dropout(drop_rate)

    def _log_vars(self) -> torch.Tensor:
        return self.log_vars.clamp(-self.log_var_range, self.log_var_range)

    def _log_resp(self, xt: torch.Tensor) -> torch.Tensor:
        """Log responsibilities `[B, T, K]` of frames `xt` `[B, T, D]`."""
        log_var = self._log_vars()
        prec = torch.exp(-log_var)                                   # [K, D]
        # sum_d (x - mu)^2 / var, expanded into matmuls so no [B, T, K, D] tensor is built
        quad = (xt * xt) @ prec.t() - 2 * xt @ (self.means * prec).t() + (self.means ** 2 * prec).sum(-1)
        log_norm = -0.5 * (quad.clamp_min(0) + log_var.sum(-1) + self.in_features * math.log(2 * math.pi))
        return torch.log_softmax(F.log_softmax(self.mix_logits, dim=0) + log_norm, dim=-1)

    def responsibilities(self, x: torch.Tensor) -> torch.Tensor:
        """Posterior of each component for each frame: `[B, D, T] -> [B, T, K]`, summing to one over K."""
        return self._log_resp(x.transpose(1, 2)).exp()

    def fisher_vector(self, x: torch.Tensor, mask: Optional[torch.Tensor] = None) -> torch.Tensor:
        """Unnormalised Fisher statistics `[B, D, T] -> [B, K*D]` (`[B, 2*K*D]` with second order)."""
        xt = x.transpose(1, 2)                                       # [B, T, D]
        gamma = self._log_resp(xt).exp()                             # [B, T, K]
        if mask is not None:
            gamma = gamma * mask[:, :, None].to(gamma.dtype)
            n_valid = mask.sum(dim=1).clamp_min(1).to(x.dtype)
        else:
            n_valid = torch.ones_like(x[:, 0, :]).sum(dim=1)     # T, kept in the graph: exports with any length
        pi = F.softmax(self.mix_logits, dim=0)                       # [K]
        inv_std = torch.exp(-0.5 * self._log_vars())                 # [K, D]
        occupancy = gamma.sum(dim=1)                                 # [B, K]
        first = gamma.transpose(1, 2) @ xt                           # [B, K, D] sum_t gamma x
        scale = 1.0 / (n_valid[:, None, None] * pi.sqrt()[None, :, None])
        g_mu = (first - occupancy[..., None] * self.means) * inv_std * scale
        stats = [g_mu]
        if self.second_order:
            second = gamma.transpose(1, 2) @ (xt * xt)               # [B, K, D] sum_t gamma x^2
            centred = second - 2 * self.means * first + occupancy[..., None] * self.means ** 2
            g_sigma = (centred * inv_std ** 2 - occupancy[..., None]) * scale / math.sqrt(2)
            stats.append(g_sigma)
        return torch.cat(stats, dim=-1).flatten(1) if self.second_order else g_mu.flatten(1)

    def forward(self, x: torch.Tensor, pre_logits: bool = False, mask: Optional[torch.Tensor] = None) -> torch.Tensor:
        if not torch.jit.is_scripting():
            check_block_input(x, 'GMMClusteringHead', 'B D T', D=self.in_features)
        if not torch.jit.is_scripting():
            if isinstance(pre_logits, torch.Tensor):
                raise InputShapeError('GMMClusteringHead: the mask is a keyword argument, head(x, mask=mask); the '
                                      'second positional argument is pre_logits')
            if mask is not None and not torch.compiler.is_compiling():
                mask = check_frame_mask(mask, x.shape[0], x.shape[2], 'GMMClusteringHead').to(x.device)
        fv = self.fisher_vector(x, mask)
        if self.power_norm:
            fv = torch.sign(fv) * torch.sqrt(fv.abs() + 1e-8)
        fv = self.drop(F.normalize(fv, p=2.0, dim=-1))
        return self._logits(fv, pre_logits)

    @torch.no_grad()
    def init_from_data(
            self,
            x: torch.Tensor,
            mask: Optional[torch.Tensor] = None,
            method: str = 'kmeans',
            num_iters: int = 20,
            seed: int = 0,
    ) -> 'GMMClusteringHead':
        """Set means, variances and weights from frames.

        Args:
            x: frames `[N, D]` or frame features `[B, D, T]`.
            mask: `[B, T]` valid frames, for `[B, D, T]` input.
            method: `"kmeans"` (k-means++ seeding, Lloyd iterations) or `"em"` (k-means, then EM
                iterations of the diagonal mixture).
            num_iters: iterations of each stage.
            seed: seed of the k-means++ draw.
        """
        check_choice('method', method, ('kmeans', 'em'))
        if not torch.jit.is_scripting():
            check_block_input(x, 'GMMClusteringHead.init_from_data', 'B D T' if x.ndim == 3 else 'N D', D=self.in_features)
        if mask is not None:
            if x.ndim != 3:
                raise InputShapeError('GMMClusteringHead.init_from_data: a mask goes with frame features [B, D, T]')
            mask = check_frame_mask(mask, x.shape[0], x.shape[2], 'GMMClusteringHead.init_from_data').to(x.device)
        if x.ndim == 3:
            frames = x.transpose(1, 2)
            frames = frames[mask] if mask is not None else frames.reshape(-1, x.shape[1])
        else:
            frames = x
        frames = frames.to(self.means.dtype)
        k = self.num_components
        if frames.shape[0] < k:
            raise InputShapeError(f'init_from_data needs at least num_components={k} frames, got {frames.shape[0]}')
        gen = torch.Generator(device='cpu').manual_seed(seed)
        centres = _kmeans_pp(frames, k, gen)
        for _ in range(num_iters):
            assign = torch.cdist(frames, centres).argmin(dim=1)
            for j in range(k):
                members = frames[assign == j]
                if len(members):
                    centres[j] = members.mean(dim=0)
        assign = torch.cdist(frames, centres).argmin(dim=1)
        resp = F.one_hot(assign, k).to(frames.dtype)
        self._m_step(frames, resp)
        if method == 'em':
            for _ in range(num_iters):
                resp = self._log_resp(frames[None]).exp()[0]
                self._m_step(frames, resp)
        return self

    def _m_step(self, frames: torch.Tensor, resp: torch.Tensor) -> None:
        counts = resp.sum(dim=0) + 1e-6                               # [K]
        means = resp.t() @ frames / counts[:, None]
        var = resp.t() @ (frames * frames) / counts[:, None] - means ** 2
        self.means.copy_(means)
        self.log_vars.copy_(var.clamp_min(1e-4).log().clamp(-self.log_var_range, self.log_var_range))
        self.mix_logits.copy_((counts / counts.sum()).log())


def _kmeans_pp(frames: torch.Tensor, k: int, gen: torch.Generator) -> torch.Tensor:
    """k-means++ seeding: each next centre drawn with probability proportional to squared distance."""
    n = frames.shape[0]
    first = int(torch.randint(n, (1,), generator=gen))
    centres = [frames[first]]
    dist = ((frames - centres[0]) ** 2).sum(dim=1)
    for _ in range(1, k):
        total = dist.sum()
        if total <= 0:
            idx = int(torch.randint(n, (1,), generator=gen))
        else:
            idx = int(torch.multinomial((dist / total).cpu(), 1, generator=gen))
        centres.append(frames[idx])
        dist = torch.minimum(dist, ((frames - frames[idx]) ** 2).sum(dim=1))
    return torch.stack(centres).clone()
