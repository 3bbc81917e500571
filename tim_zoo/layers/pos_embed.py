"""Sinusoidal positional encoding."""
import math

import torch
from torch import nn

from .._utils import renamed_arguments
from ..exceptions import InputShapeError


class SinusoidalPositionalEncoding(nn.Module):
    """Add the standard sinusoidal encoding (sin on even, cos on odd dimensions) to `[B, T, dim]`,
    then dropout (`drop_rate`). The table is a non-persistent buffer: it is not part of the state dict.
    """

    @renamed_arguments(dropout='drop_rate')
    def __init__(self, dim: int, max_len: int = 10000, drop_rate: float = 0.0):
        super().__init__()
        self.dim = dim
        self.max_len = max_len
        position = torch.arange(max_len, dtype=torch.float32)[:, None]
        div = torch.exp(torch.arange(0, dim, 2, dtype=torch.float32) * (-math.log(10000.0) / dim))
        table = torch.zeros(max_len, dim)
        table[:, 0::2] = torch.sin(position * div)
        table[:, 1::2] = torch.cos(position * div[: dim // 2])
        self.register_buffer('table', table, persistent=False)
        self.drop = nn.Dropout(drop_rate)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        t = x.shape[1]
        if t > self.max_len:
            raise InputShapeError(f'SinusoidalPositionalEncoding holds {self.max_len} positions, got a sequence of {t}')
        return self.drop(x + self.table[:t].to(x.dtype))
