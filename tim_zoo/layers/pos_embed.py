"""Positional encodings added to `[B, T, dim]`: the standard sinusoidal one, and the research code's."""
import math

import torch
from torch import nn

from .._utils import renamed_arguments
from .._validation import check_choice, traced_check
from ..exceptions import InputShapeError

#: `"sincos"`: the standard sinusoidal encoding; `"research"`: the table the research group's `PositionEncoding` adds
POS_ENCODINGS = ('sincos', 'research')


@traced_check
def _check_positions(x: torch.Tensor, max_len: int) -> None:
    if x.shape[1] > max_len:
        raise InputShapeError(f'SinusoidalPositionalEncoding holds {max_len} positions, got a sequence of {x.shape[1]}')


def _sincos_table(max_len: int, dim: int) -> torch.Tensor:
    position = torch.arange(max_len, dtype=torch.float32)[:, None]
    div = torch.exp(torch.arange(0, dim, 2, dtype=torch.float32) * (-math.log(10000.0) / dim))
    table = torch.zeros(max_len, dim)
    table[:, 0::2] = torch.sin(position * div)
    table[:, 1::2] = torch.cos(position * div[: dim // 2])
    return table


def _research_table(max_len: int, dim: int) -> torch.Tensor:
    # The research code builds angle[p, i] = p / 10000**(2i/d) for every dimension i (not per pair), then, for
    # frames p >= 1, replaces the even dimensions by their sine and those again by the cosine of that; the odd
    # dimensions keep the raw angle (up to 174 at frame 187 for d=256) and frame 0 stays all zeros. Computed in
    # float64 and rounded once to float32, as there.
    angle = torch.arange(max_len, dtype=torch.float64)[:, None] / 10000.0 ** (
        2.0 * torch.arange(dim, dtype=torch.float64) / dim)
    angle[1:, ::2] = torch.cos(torch.sin(angle[1:, ::2]))
    return angle.float()


class SinusoidalPositionalEncoding(nn.Module):
    """Add a positional encoding to `[B, T, dim]`, then dropout (`drop_rate`). The table is a non-persistent
    buffer: it is not part of the state dict.

    `style="sincos"` (default) is the standard sinusoidal encoding: sin on even, cos on odd dimensions, frequency
    `1 / 10000**(2k/dim)` for pair `k`. `style="research"` is the table the research group's `PositionEncoding`
    adds (their `SET` and `CNN_ML_Transformer`), a defect kept for fidelity: the angle
    `p / 10000**(2i/dim)` for every dimension `i`; for frames `p >= 1` the even dimensions hold
    `cos(sin(angle))` and the odd ones the raw angle, which grows with `p` (174 at frame 187 for dim 256); frame 0
    is all zeros. It carries little order information and shifts the odd dimensions by large constants.
    """

    @renamed_arguments(dropout='drop_rate')
    def __init__(self, dim: int, max_len: int = 10000, drop_rate: float = 0.0, style: str = 'sincos'):
        super().__init__()
        check_choice('style', style, POS_ENCODINGS)
        self.dim = dim
        self.max_len = max_len
        self.style = style
        table = _sincos_table(max_len, dim) if style == 'sincos' else _research_table(max_len, dim)
        self.register_buffer('table', table, persistent=False)
        self.drop = nn.Dropout(drop_rate)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not torch.jit.is_scripting():
            _check_positions(x, self.max_len)
        return self.drop(x + torch.narrow(self.table, 0, 0, x.shape[1]).to(x.dtype))

    def extra_repr(self) -> str:
        return f'{self.dim}, max_len={self.max_len}, style={self.style!r}'
