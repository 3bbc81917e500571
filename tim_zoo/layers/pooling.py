"""Pooling over time of variable-length sequences: masked mean / statistics, attentive statistics."""
from typing import Optional

import torch
import torch.nn.functional as F
from torch import nn

from .._validation import check_block_input, check_choice
from ..exceptions import InputShapeError

#: the smallest variance kept before the square root (a constant frame has std sqrt(eps), not a NaN gradient)
STD_EPS = 1e-5


def lengths_to_mask(lengths: torch.Tensor, max_len: int) -> torch.Tensor:
    """`[B]` valid frame counts -> `[B, max_len]` mask, True on the first `lengths[b]` frames."""
    return torch.arange(max_len, device=lengths.device)[None, :] < lengths[:, None]


def check_frame_mask(mask, batch: int, frames: int, block: str) -> torch.Tensor:
    """`mask` as a bool tensor `[batch, frames]` with a valid frame in every row, else `InputShapeError`."""
    mask = torch.as_tensor(mask)
    if mask.dtype != torch.bool:
        raise InputShapeError(f'{block}: mask must be bool (True = valid frame), got {mask.dtype}')
    if tuple(mask.shape) != (batch, frames):
        raise InputShapeError(f'{block}: mask must be [B, T] = {[batch, frames]}, got {list(mask.shape)}')
    if not bool(mask.any(dim=1).all()):
        raise InputShapeError(f'{block}: every sequence needs a valid frame; mask rows '
                              f'{torch.nonzero(~mask.any(dim=1)).flatten().tolist()} have none')
    return mask


def _frame_weights(x: torch.Tensor, lengths: Optional[torch.Tensor], mask: Optional[torch.Tensor],
                   block: str) -> Optional[torch.Tensor]:
    """`[B, 1, T]` float mask of the valid frames (None: all valid), from `lengths` `[B]` or `mask` `[B, T]`."""
    if lengths is not None and mask is not None:
        raise InputShapeError(f'{block}: give lengths or mask, not both')
    if lengths is not None:
        lengths = torch.as_tensor(lengths, device=x.device)
        if not torch.compiler.is_compiling() and (lengths.shape != (x.shape[0],) or bool((lengths < 1).any())
                                                  or bool((lengths > x.shape[-1]).any())):
            raise InputShapeError(f'{block}: lengths must be [B={x.shape[0]}] valid frame counts in 1..{x.shape[-1]}, '
                                  f'got {lengths.tolist()}')
        mask = lengths_to_mask(lengths, x.shape[-1])
    elif mask is not None and not torch.compiler.is_compiling():
        mask = check_frame_mask(mask, x.shape[0], x.shape[-1], block).to(x.device)
    return None if mask is None else mask[:, None, :].to(x.dtype)


def _mean_std(x: torch.Tensor, w: torch.Tensor) -> tuple:
    """Weighted mean and std over time of `[B, C, T]` with weights `w` `[B, 1 or C, T]` summing to 1 over T."""
    mean = (x * w).sum(-1)
    var = ((x - mean[..., None]).square() * w).sum(-1)     # two passes: E[x^2] - mean^2 cancels for large means
    return mean, var.clamp_min(STD_EPS).sqrt()


class MaskedStatsPool(nn.Module):
    """Mean (and standard deviation) over the valid frames: `[B, C, T]` -> `[B, C]` (`"mean"`) or `[B, 2C]`
    (`"mean_std"`: means then stds, as x-vector statistics pooling).

    `forward(x, lengths=None, mask=None)`: `lengths` `[B]` counts the valid (leading) frames of each sequence,
    `mask` `[B, T]` marks them (True = valid); without either every frame counts. Padding never changes the result.
    """

    def __init__(self, mode: str = 'mean'):
        super().__init__()
        check_choice('mode', mode, ('mean', 'mean_std'))
        self.mode = mode

    def forward(self, x: torch.Tensor, lengths: Optional[torch.Tensor] = None,
                mask: Optional[torch.Tensor] = None) -> torch.Tensor:
        if not torch.jit.is_scripting():
            check_block_input(x, 'MaskedStatsPool', 'B C T')
        valid = _frame_weights(x, lengths, mask, 'MaskedStatsPool')
        if valid is not None:                                # padding of any value (NaN too) never counts
            x = torch.where(valid > 0, x, torch.zeros_like(x))
        if valid is None:
            w = torch.full_like(x[:, :1], 1.0 / x.shape[-1])
        else:
            w = valid / valid.sum(-1, keepdim=True)
        if self.mode == 'mean':
            return (x * w).sum(-1)
        return torch.cat(_mean_std(x, w), dim=1)

    def extra_repr(self) -> str:
        return f'mode={self.mode!r}'


class AttentiveStatsPool(nn.Module):
    """Attentive statistics pooling (Okabe et al., 2018): frame scores from a small network, softmax over the valid
    frames, then the weighted mean and standard deviation: `[B, C, T]` -> `[B, 2C]`.

    The scores are `Conv1d(C, hidden, 1) -> tanh -> Conv1d(hidden, 1 or C, 1)`; `per_channel=True` gives every
    channel its own weights over time (as ECAPA-TDNN), False one weight per frame (the paper).
    `forward(x, lengths=None, mask=None)` as `MaskedStatsPool`: padded frames get no weight.
    """

    def __init__(self, in_chans: int, hidden: int = 128, per_channel: bool = False):
        super().__init__()
        self.in_chans = in_chans
        self.score = nn.Sequential(nn.Conv1d(in_chans, hidden, 1), nn.Tanh(),
                                   nn.Conv1d(hidden, in_chans if per_channel else 1, 1))

    def forward(self, x: torch.Tensor, lengths: Optional[torch.Tensor] = None,
                mask: Optional[torch.Tensor] = None) -> torch.Tensor:
        if not torch.jit.is_scripting():
            check_block_input(x, 'AttentiveStatsPool', 'B C T', C=self.in_chans)
        valid = _frame_weights(x, lengths, mask, 'AttentiveStatsPool')
        if valid is not None:                                # padding of any value (NaN too) never counts
            x = torch.where(valid > 0, x, torch.zeros_like(x))
        scores = self.score(x)                                               # [B, 1 or C, T]
        if valid is not None:
            scores = scores.masked_fill(valid == 0, float('-inf'))
        w = F.softmax(scores, dim=-1)
        return torch.cat(_mean_std(x, w), dim=1)
