"""Dropout variants for frame sequences `[B, C, T]`."""
import torch
from torch import nn

from .._validation import check_block_input, check_choice
from ..exceptions import ConfigurationError

#: what `SpatialDropout1d` drops: whole channels (Keras, TIM-Net) or whole frames (the research code)
DROP_MODES = ('channel', 'frame')


def _check_p(p: float) -> float:
    if not 0.0 <= p < 1.0:
        raise ConfigurationError(f'dropout probability must be in [0, 1), got {p}')
    return float(p)


class SpatialDropout1d(nn.Module):
    """Spatial dropout on `[B, C, T]`, survivors scaled by `1 / (1 - p)`; identity in eval mode.

    `mode="channel"` drops whole channels: one Bernoulli draw per (sample, channel), shared by all frames (Keras
    `SpatialDropout1D`, `nn.Dropout1d` semantics; TIM-Net). `mode="frame"` drops whole frames: one draw per
    (sample, frame), shared by all channels, as the research group's `SpatialDropout` does with its default noise
    shape `[B, 1, T]`. With `groups > 1` the channels form independent sequences side by side (the two directions
    of a bidirectional encoder): in frame mode each group draws its own frame mask, as separate passes would.
    """

    def __init__(self, p: float = 0.1, mode: str = 'channel', groups: int = 1):
        super().__init__()
        check_choice('mode', mode, DROP_MODES)
        self.p = _check_p(p)
        self.mode = mode
        self.groups = groups

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not self.training or self.p == 0.0:
            return x
        b, c, t = x.shape
        if self.mode == 'channel':
            keep = x.new_empty((b, c, 1)).bernoulli_(1.0 - self.p)
            return x * keep.div_(1.0 - self.p)
        g = self.groups
        keep = x.new_empty((b, g, 1, t)).bernoulli_(1.0 - self.p).div_(1.0 - self.p)
        return (x.view(b, g, c // g, t) * keep).view(b, c, t)

    def extra_repr(self) -> str:
        s = f'p={self.p}, mode={self.mode!r}'
        return s + (f', groups={self.groups}' if self.groups != 1 else '')


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
        keep = x.new_empty((x.shape[0], 1, x.shape[2])).bernoulli_(1.0 - self.p)
        return x * keep

    def extra_repr(self) -> str:
        return f'p={self.p}'


class FrequencyMask(nn.Module):
    """SpecAugment's frequency masking for training: `num_masks` bands of up to `max_width` adjacent channels of
    `[B, C, T]` set to zero, drawn per sample (width uniform in 0..max_width, start uniform). Identity in eval mode.

    On MFCCs the channels are cepstral coefficients, not frequencies: a band then removes a range of spectral
    detail rather than a frequency range (mask the mel spectrum before the DCT for the original augmentation).
    """

    def __init__(self, max_width: int = 8, num_masks: int = 1):
        super().__init__()
        if max_width < 0 or num_masks < 0:
            raise ConfigurationError(f'max_width and num_masks must be >= 0, got {max_width} and {num_masks}')
        self.max_width, self.num_masks = max_width, num_masks

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not torch.jit.is_scripting():
            check_block_input(x, 'FrequencyMask', 'B C T')
        if not self.training or self.max_width == 0 or self.num_masks == 0:
            return x
        b, c = x.shape[0], x.shape[1]
        channel = torch.arange(c, device=x.device)
        keep = torch.ones(b, c, dtype=torch.bool, device=x.device)
        for _ in range(self.num_masks):
            width = torch.randint(0, min(self.max_width, c) + 1, (b, 1), device=x.device)
            start = (torch.rand(b, 1, device=x.device) * (c - width + 1)).long()
            keep &= ~((channel >= start) & (channel < start + width))
        return x * keep[:, :, None].to(x.dtype)

    def extra_repr(self) -> str:
        return f'max_width={self.max_width}, num_masks={self.num_masks}'
