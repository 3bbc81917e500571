"""Resolve norm and activation layers given by name or by class.

Models take names (`"batchnorm"`, `"relu"`) so that their constructor arguments stay plain data
that a checkpoint can record; blocks also accept any callable `f(num_channels) -> nn.Module`.

Norm layers take `groups` and `share_groups` like `GroupConv1d`: the channels
of `[B, C, T]` form `groups` independent sequences (e.g. two directions), each normalised on its
own, with one set of parameters for all groups when `share_groups` is set.
"""
from typing import Callable, Optional, Type, Union

import torch
import torch.nn.functional as F
from torch import nn

from .._validation import check_choice, traced_check
from ..exceptions import ConfigurationError, InputShapeError


def _stored_channels(num_channels: int, groups: int, share_groups: bool) -> int:
    if groups < 1 or num_channels % groups:
        raise ConfigurationError(f'num_channels ({num_channels}) must be divisible by groups ({groups})')
    return num_channels // groups if share_groups else num_channels


def group_batch_norm(x: torch.Tensor, running_mean: Optional[torch.Tensor], running_var: Optional[torch.Tensor],
                     weight: Optional[torch.Tensor], bias: Optional[torch.Tensor],
                     num_batches_tracked: Optional[torch.Tensor], training: bool, momentum: Optional[float], eps: float,
                     groups: int = 1) -> torch.Tensor:
    """`GroupBatchNorm1d`'s computation: `groups=1` is `nn.BatchNorm1d`'s; with `groups > 1` the groups of
    `[B, groups*C, T]` are normalised with one set of parameters and statistics (`[C]`), updated in place in training
    as if the groups had passed one after another. A leaf of `torch.fx` traces, so a traced model reads and updates
    the module's statistics (not constants of the trace)."""
    if groups == 1:
        factor = 0.0
        if training and num_batches_tracked is not None:
            num_batches_tracked.add_(1)
            if momentum is None:                       # the cumulative average
                factor = 1.0 / float(num_batches_tracked.item())
            else:
                factor = momentum
        return F.batch_norm(x, running_mean, running_var, weight, bias, training or running_mean is None, factor, eps)
    g = groups
    if weight is not None:
        weight = weight.repeat(g)
    if bias is not None:
        bias = bias.repeat(g)
    if running_mean is None or running_var is None:    # track_running_stats=False: batch statistics only
        return F.batch_norm(x, None, None, weight, bias, True, 0.0, eps)
    if not training:
        return F.batch_norm(x, running_mean.repeat(g), running_var.repeat(g), weight, bias, False, 0.0, eps)
    assert momentum is not None and num_batches_tracked is not None   # GroupBatchNorm1d refuses momentum=None
    # F.batch_norm updates one copy of the running statistics per group: r_g = (1-m) r + m stat_g.
    # Applying the groups' updates one after another instead gives
    # r' = (1-m)^G r + sum_g (1-m)^(G-1-g) m stat_g = (1-m)^G r + sum_g (1-m)^(G-1-g) (r_g - (1-m) r).
    mean, var = running_mean.repeat(g), running_var.repeat(g)
    out = F.batch_norm(x, mean, var, weight, bias, True, momentum, eps)
    keep = 1.0 - momentum
    with torch.no_grad():
        for buf, updated in ((running_mean, mean), (running_var, var)):
            per_group = updated.view(g, -1)
            new = buf * keep ** g
            for i in range(g):
                new += keep ** (g - 1 - i) * (per_group[i] - keep * buf)
            buf.copy_(new)
        num_batches_tracked.add_(g)
    return out


torch.fx.wrap('group_batch_norm')


@traced_check
def _check_batchnorm_input(x: torch.Tensor) -> None:
    if x.dim() not in (2, 3):
        raise InputShapeError(f'BatchNorm1d expects a 2-D [B, C] or 3-D [B, C, T] input, got shape {tuple(x.shape)}')


class GroupBatchNorm1d(nn.BatchNorm1d):
    """`BatchNorm1d` over `[B, num_channels, T]` whose channel groups may share one set of parameters.

    Without `share_groups` it is exactly `nn.BatchNorm1d(num_channels)` (statistics are per channel,
    hence per group). With it, parameters and running statistics have `num_channels / groups` entries,
    each group is normalised with its own batch statistics in training, and the running statistics are
    updated as if the groups had passed through one after another (`groups` momentum updates).
    """

    def __init__(self, num_channels: int, eps: float = 1e-5, momentum: float = 0.1, groups: int = 1,
                 share_groups: bool = False):
        super().__init__(_stored_channels(num_channels, groups, share_groups), eps=eps, momentum=momentum)
        self.groups = groups
        self.share_groups = share_groups and groups > 1
        if self.share_groups and momentum is None:
            raise ConfigurationError('share_groups needs a momentum (the cumulative average, momentum=None, is not supported)')

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not torch.jit.is_scripting():
            _check_batchnorm_input(x)                          # a call in torch.fx graphs, not a branch on a Proxy
        return group_batch_norm(x, self.running_mean, self.running_var, self.weight, self.bias,
                                self.num_batches_tracked, self.training, self.momentum, self.eps,
                                self.groups if self.share_groups else 1)

    def group_parameters(self, group: int):
        """`(running_mean, running_var, weight, bias)` used by one group."""
        tensors = (self.running_mean, self.running_var, self.weight, self.bias)
        if self.share_groups:
            return tensors
        n = self.num_features // self.groups
        return tuple(None if t is None else t[group * n:(group + 1) * n] for t in tensors)


class KerasBatchNorm1d(GroupBatchNorm1d):
    """BatchNorm with Keras `BatchNormalization` defaults (epsilon 1e-3, momentum 0.99) in PyTorch terms:
    `[B, C, T] -> same`."""

    def __init__(self, num_channels: int, groups: int = 1, share_groups: bool = False):
        super().__init__(num_channels, eps=1e-3, momentum=0.01, groups=groups, share_groups=share_groups)


class ChannelLayerNorm1d(nn.Module):
    """LayerNorm over the channels of `[B, C, T]` (each frame on its own), per channel group."""

    def __init__(self, num_channels: int, eps: float = 1e-5, groups: int = 1, share_groups: bool = False):
        super().__init__()
        stored = _stored_channels(num_channels, groups, share_groups)
        self.num_channels = num_channels
        self.groups = groups
        self.share_groups = share_groups and groups > 1
        self.eps = eps
        self.weight = nn.Parameter(torch.ones(stored))
        self.bias = nn.Parameter(torch.zeros(stored))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, c, t = x.shape
        g = self.groups
        cg = c // g
        frames = x.view(b, g, cg, t).transpose(2, 3)                # [B, G, T, C/G]
        y = F.layer_norm(frames, (cg,), eps=self.eps)
        if self.share_groups:                                        # [C/G] broadcast over every group
            y = y * self.weight + self.bias
        else:
            y = y * self.weight.view(g, 1, cg) + self.bias.view(g, 1, cg)
        return y.transpose(2, 3).reshape(b, c, t)

    def extra_repr(self) -> str:
        s = f'{self.num_channels}, eps={self.eps}'
        return s + (f', groups={self.groups}' if self.groups != 1 else '')


class PerGroupNorm(nn.Module):
    """Apply a norm built by any `f(num_channels)` to each channel group of `[B, C, T]` separately: `-> same`."""

    def __init__(self, factory: Callable[[int], nn.Module], num_channels: int, groups: int, share_groups: bool):
        super().__init__()
        _stored_channels(num_channels, groups, False)
        self.groups = groups
        n_modules = 1 if share_groups else groups
        self.norms = nn.ModuleList([factory(num_channels // groups) for _ in range(n_modules)])

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        chunks = x.chunk(self.groups, dim=1)
        return torch.cat([self.norms[i % len(self.norms)](c) for i, c in enumerate(chunks)], dim=1)


_NORM_LAYERS = {
    'batchnorm': GroupBatchNorm1d,
    'batchnorm_keras': KerasBatchNorm1d,
    'layernorm': ChannelLayerNorm1d,
}

_ACT_LAYERS = {
    'relu': nn.ReLU,
    'gelu': nn.GELU,
    'silu': nn.SiLU,
    'elu': nn.ELU,
    'tanh': nn.Tanh,
}

NormLayer = Union[str, Callable[[int], nn.Module]]
ActLayer = Union[str, Type[nn.Module], Callable[[], nn.Module]]


def get_norm_layer(norm_layer: NormLayer) -> Callable[..., nn.Module]:
    """Return a callable `f(num_channels, groups=1, share_groups=False)` building a norm layer for `[B, C, T]`.

    Names: `"batchnorm"` (PyTorch defaults), `"batchnorm_keras"` (eps 1e-3, momentum 0.01, as
    Keras), `"layernorm"` (LayerNorm over channels). A callable `f(num_channels)` of your own is
    applied per channel group when `groups > 1`.
    """
    if isinstance(norm_layer, str):
        check_choice('norm_layer', norm_layer, _NORM_LAYERS)
        return _NORM_LAYERS[norm_layer]

    def build(num_channels: int, groups: int = 1, share_groups: bool = False) -> nn.Module:
        if groups == 1:
            return norm_layer(num_channels)
        return PerGroupNorm(norm_layer, num_channels, groups, share_groups)

    return build


def get_act_layer(act_layer: ActLayer) -> Callable[[], nn.Module]:
    """Return a callable building an activation module; names: relu, gelu, silu, elu, tanh."""
    if isinstance(act_layer, str):
        check_choice('act_layer', act_layer, _ACT_LAYERS)
        return _ACT_LAYERS[act_layer]
    return act_layer
