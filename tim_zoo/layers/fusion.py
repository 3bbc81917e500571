"""Fusion of the TAB levels by attention: each level is one head.

Both blocks take the aggregated levels `S` `[B, F, T, n]` and return `[B, T, n*F]`
(level-major: the features of level 1, then of level 2, ...).
"""
import math
from typing import Optional

import torch
import torch.nn.functional as F
from torch import nn

from .._utils import filters_alias, renamed_arguments
from .._validation import check_block_input, check_choice, traced_check
from ..exceptions import InputShapeError
from .pooling import check_frame_mask

#: `AttentionFusion` styles: `"standard"` (level-major throughout) or `"research"` (the research code's computation)
ATTENTION_STYLES = ('standard', 'research')


def _levels_first(s: torch.Tensor) -> torch.Tensor:
    """`[B, F, T, n] -> [B, n, T, F]` (a view)."""
    return s.permute(0, 3, 2, 1)


def _flatten_levels(s_lvl: torch.Tensor) -> torch.Tensor:
    """`[B, n, T, F] -> [B, T, n*F]`."""
    b, n, t, c = s_lvl.shape
    return s_lvl.transpose(1, 2).reshape(b, t, n * c)


def _clamp_tiny(x: torch.Tensor) -> torch.Tensor:
    """`x` raised to at least its dtype's smallest normal number (no division by zero). A leaf of torch.fx traces
    (the dtype is known when the traced module runs); float32's under TorchScript, which has no `finfo`."""
    if torch.jit.is_scripting():
        tiny = 1.1754943508222875e-38
    else:
        tiny = torch.finfo(x.dtype).tiny
    return x.clamp_min(tiny)


torch.fx.wrap('_clamp_tiny')


def _square(table: torch.Tensor, t: int) -> torch.Tensor:
    """`table[:t, :t]`, also when `t` is symbolic (a torch.fx trace)."""
    return torch.narrow(torch.narrow(table, 0, 0, t), 1, 0, t)


@traced_check
def _check_frames(s: torch.Tensor, max_len: int) -> None:
    if s.shape[2] > max_len:
        raise InputShapeError(f'AFTLocalFusion was built for at most max_len={max_len} frames, got {s.shape[2]}')


@filters_alias
class AttentionFusion(nn.Module):
    """Multi-head self-attention over time in which each TAB level is one head: `[B, F, T, n] -> [B, T, n*F]`
    (`style="research"` computes the research code's `TIM_Attention`, defects included).

    `[B, F, T, n] -> [B, T, n*F]`, `style="standard"`:

        q, k, v = 1x1 projections F -> d_qkv of every level        # [B, n, T, d_qkv]
        ctx = dropout(softmax(q k^T / sqrt(d_qkv)) over T) v
        ctx = Conv 1x1 d_qkv -> F (dropout before it)                # [B, n, T, F]
        z = LayerNorm(ctx + S)                                       # over n*F, level-major
        out = LayerNorm2(FFN(z) + z), FFN = Linear(nF, d_ff) ReLU Linear(d_ff, nF) ReLU   (ffn=True)

    `style="research"` computes what the research group's `TIM_Attention` computes, defects included: scores are
    scaled by `1 / sqrt(n * d_qkv)`; the context is flattened filter-major (feature `f * n + j` of a frame is filter
    `f` of level `j`) but added to the levels flattened level-major (`j * F + f`), so each context feature is added
    to another level's feature; and one LayerNorm serves both normalisations (no `norm2`). The output is in the
    research order (position `p` of the `n*F` features is whatever the research model has there).

    The three 1x1 projections are one `Linear(F -> 3*d_qkv)` (same arithmetic as three 1x1 Conv2d).

    Args:
        filters: `F`, features per level.
        num_levels: `n`, the number of levels (heads).
        d_qkv: per-head width of queries, keys and values.
        d_ff: hidden width of the feed-forward block.
        ffn: add the feed-forward block.
        attn_drop: dropout on the attention weights.
        proj_drop: dropout before the output projection.
        style: `"standard"` or `"research"` (above).
    """

    @renamed_arguments(channels='filters')
    def __init__(
            self,
            filters: int,
            num_levels: int,
            d_qkv: int = 64,
            d_ff: int = 1024,
            ffn: bool = True,
            attn_drop: float = 0.1,
            proj_drop: float = 0.1,
            style: str = 'standard',
    ):
        super().__init__()
        check_choice('style', style, ATTENTION_STYLES)
        self.filters = filters
        self.num_levels = num_levels
        self.d_qkv = d_qkv
        self.attn_drop = attn_drop
        self.style = style
        self.scale = 1.0 / math.sqrt(d_qkv * (num_levels if style == 'research' else 1))
        width = filters * num_levels
        self.qkv = nn.Linear(filters, 3 * d_qkv)
        self.proj_drop = nn.Dropout(proj_drop)
        self.proj = nn.Linear(d_qkv, filters)
        self.norm1 = nn.LayerNorm(width)
        self.ffn = nn.Sequential(nn.Linear(width, d_ff), nn.ReLU(), nn.Linear(d_ff, width), nn.ReLU()) if ffn else None
        self.norm2 = nn.LayerNorm(width) if ffn and style == 'standard' else None

    def forward(self, s: torch.Tensor, mask: Optional[torch.Tensor] = None) -> torch.Tensor:
        """`s` `[B, F, T, n]`; `mask` `[B, T]`, True on valid frames: padded frames are not attended to."""
        if not torch.jit.is_scripting():
            check_block_input(s, 'AttentionFusion', 'B F T n', F=self.filters, n=self.num_levels)
            if mask is not None and not torch.compiler.is_compiling():
                mask = check_frame_mask(mask, s.shape[0], s.shape[2], 'AttentionFusion').to(s.device)
        s_lvl = _levels_first(s)
        q, k, v = self.qkv(s_lvl).chunk(3, dim=-1)
        attn_mask = None if mask is None else mask[:, None, None, :].to(torch.bool)
        ctx = F.scaled_dot_product_attention(
            q, k, v, attn_mask=attn_mask, dropout_p=self.attn_drop if self.training else 0.0, scale=self.scale)
        ctx = self.proj(self.proj_drop(ctx))                               # [B, n, T, F]
        if self.style == 'research':
            b, n, t, c = ctx.shape
            z = self.norm1(ctx.permute(0, 2, 3, 1).reshape(b, t, c * n) + _flatten_levels(s_lvl))
        else:
            z = self.norm1(_flatten_levels(ctx + s_lvl))
        if self.ffn is not None:
            if self.norm2 is None:
                z = self.norm1(self.ffn(z) + z)
            else:
                z = self.norm2(self.ffn(z) + z)
        return z

    def extra_repr(self) -> str:
        return f'filters={self.filters}, num_levels={self.num_levels}, d_qkv={self.d_qkv}, style={self.style!r}'


@filters_alias
class AFTLocalFusion(nn.Module):
    """Attention-free transformer (AFT-local) fusion of the TAB levels: `[B, F, T, n] -> [B, T, n*F]`, `T <= max_len`.

    `[B, F, T, n] -> [B, T, n*F]`, for `T <= max_len`:

        q, k, v = 1x1 projections F -> d_qkv of every level, flattened to [B, T, n*d_qkv]
        w = learned position bias [max_len, max_len], kept where |t - t'| < window, 0 elsewhere
        Y_t = sigmoid(q_t) * sum_t' exp(w_tt') exp(k_t') v_t' / sum_t' exp(w_tt') exp(k_t')
        out = LayerNorm(Linear(n*d_qkv -> n*F)(Y) + S)

    The exponentials are taken after subtracting the row maxima of `w` and the maxima of `k` over
    time, which cancel in the ratio, so large inputs do not overflow.
    """

    @renamed_arguments(channels='filters')
    def __init__(self, filters: int, num_levels: int, max_len: int, d_qkv: int = 64, window: int = 128):
        super().__init__()
        self.filters = filters
        self.num_levels = num_levels
        self.max_len = max_len
        self.window = window
        self.qkv = nn.Linear(filters, 3 * d_qkv)
        self.pos_bias = nn.Parameter(torch.empty(max_len, max_len))
        nn.init.xavier_uniform_(self.pos_bias)
        idx = torch.arange(max_len)
        self.register_buffer('local_mask', (idx[:, None] - idx[None, :]).abs() < window, persistent=False)
        self.proj = nn.Linear(num_levels * d_qkv, num_levels * filters)
        self.norm = nn.LayerNorm(num_levels * filters)

    def forward(self, s: torch.Tensor) -> torch.Tensor:
        if not torch.jit.is_scripting():
            check_block_input(s, 'AFTLocalFusion', 'B F T n', F=self.filters, n=self.num_levels)
        _check_frames(s, self.max_len)
        t = s.shape[2]
        s_lvl = _levels_first(s)
        q, k, v = self.qkv(s_lvl).chunk(3, dim=-1)
        q, k, v = _flatten_levels(q), _flatten_levels(k), _flatten_levels(v)          # [B, T, n*d]
        w = torch.where(_square(self.local_mask, t), _square(self.pos_bias, t),
                        torch.zeros((), dtype=s.dtype, device=s.device))
        exp_w = torch.exp(w - w.amax(dim=1, keepdim=True))
        exp_k = torch.exp(k - k.amax(dim=1, keepdim=True))
        num = torch.matmul(exp_w, exp_k * v)
        den = _clamp_tiny(torch.matmul(exp_w, exp_k))
        y = torch.sigmoid(q) * num / den
        return self.norm(self.proj(y) + _flatten_levels(s_lvl))
