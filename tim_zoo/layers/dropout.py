"""Dropout variants for frame sequences `[B, C, T]`."""
import torch
from torch import nn

from ..exceptions import ConfigurationError


def _check_p(p: float) -> float:
    if not 0.0 <= p < 1.0:
        raise ConfigurationError(f'dropout probability must be in [0, 1), got {p}')
    return float(p)


class SpatialDropout1d(nn.Module):
    """Drop whole channels of `[B, C, T]`: one Bernoulli draw per (sample, channel), shared by all
    frames, survivors scaled by `1 / (1 - p)`. Identity in eval mode (Keras `SpatialDropout1D`,
    `nn.Dropout1d` semantics).
    """

    def __init__(self, p: float = 0.1):
        super().__init__()
        self.p = _check_p(p)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not self.training or self.p == 0.0:
            return x
        keep = torch.empty(x.shape[0], x.shape[1], 1, dtype=x.dtype, device=x.device).bernoulli_(1.0 - self.p)
        return x * keep.div_(1.0 - self.p)

    def extra_repr(self) -> str:
        return f'p={self.p}'


class FrameMask(nn.Module):
    """Input masking for training: zero each frame of `[B, C, T]` (all channels) with probability
    `p`. Survivors are not rescaled: this is masking, not dropout. Identity in eval mode.
    """

    def __init__(self, p: float = 0.2):
        super().__init__()
        self.p = _check_p(p)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not self.training or self.p == 0.0:
            return x
        keep = torch.empty(x.shape[0], 1, x.shape[2], dtype=x.dtype, device=x.device).bernoulli_(1.0 - self.p)
        return x * keep

    def extra_repr(self) -> str:
        return f'p={self.p}'
