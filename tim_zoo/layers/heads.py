"""Classifier heads over frame features `[B, D, T]`.

Every head has the same interface: `forward(x, pre_logits=False)`, the final `Linear` as
`fc` (`nn.Identity` when `num_classes=0`), its input width as `pre_logits_dim` and
`reset(num_classes)`, which models use for timm's `reset_classifier`.
"""
from typing import Optional

import torch
from torch import nn

from .._utils import renamed_arguments
from .._validation import check_block_input
from ..exceptions import ConfigurationError


class ClassifierHead(nn.Module):
    """Base of the heads (`[B, ...] -> [B, classes]`): owns the last layer `fc`, `reset(num_classes)` and
    `forward(x, pre_logits=True)` for the features before `fc`."""

    def __init__(self, pre_logits_dim: int, num_classes: int):
        super().__init__()
        self.pre_logits_dim = pre_logits_dim
        self.num_classes = num_classes
        self.fc = nn.Linear(pre_logits_dim, num_classes) if num_classes > 0 else nn.Identity()

    def reset(self, num_classes: int) -> None:
        """Replace `fc` by a freshly initialised one with `num_classes` outputs (0: identity)."""
        old = next(self.fc.parameters(), None)
        self.num_classes = num_classes
        if num_classes > 0:
            fc = nn.Linear(self.pre_logits_dim, num_classes)
            self.fc = fc if old is None else fc.to(device=old.device, dtype=old.dtype)
        else:
            self.fc = nn.Identity()

    def _logits(self, x: torch.Tensor, pre_logits: bool) -> torch.Tensor:
        return x if pre_logits else self.fc(x)


#: the pooling over time `PoolHead` offers, as timm's `global_pool`: mean, max, their mean, or none
POOL_TYPES = ('avg', 'max', 'avgmax', '')


class PoolHead(ClassifierHead):
    """Global pooling over time, dropout, Linear: `[B, D, T] -> [B, classes]`.

    `pool_type` (timm's `global_pool`): `"avg"` (the default), `"max"`, `"avgmax"` (the mean of the two) or `""`:
    no pooling, the Linear applied to every frame, `[B, D, T] -> [B, classes, T]` (`[B, D, T]` with
    `num_classes=0` or `pre_logits`).
    """

    def __init__(self, in_features: int, num_classes: int, drop_rate: float = 0.0, pool_type: str = 'avg'):
        super().__init__(in_features, num_classes)
        self.drop = nn.Dropout(drop_rate)
        self.set_pool(pool_type)

    def set_pool(self, pool_type: str) -> None:
        """Pool with `pool_type` from now on (the Linear is kept: it reads the same `D` features)."""
        if pool_type not in POOL_TYPES:
            raise ConfigurationError(f'global_pool must be one of {", ".join(repr(p) for p in POOL_TYPES)}, got '
                                     f'{pool_type!r}')
        self.pool_type = pool_type

    def forward(self, x: torch.Tensor, pre_logits: bool = False) -> torch.Tensor:
        if not torch.jit.is_scripting():
            check_block_input(x, 'PoolHead', 'B D T', D=self.pre_logits_dim)
        if self.pool_type == '':
            return self._logits(self.drop(x.transpose(1, 2)), pre_logits).transpose(1, 2)
        if self.pool_type == 'avg':
            pooled = x.mean(dim=-1)
        elif self.pool_type == 'max':
            pooled = x.amax(dim=-1)
        else:
            pooled = 0.5 * (x.mean(dim=-1) + x.amax(dim=-1))
        return self._logits(self.drop(pooled), pre_logits)


class FlattenHead(ClassifierHead):
    """Flatten time into features: `[B, D, T]` -> [1x1 conv + BN] -> flatten -> Linear(hidden) ->
    Dropout -> Linear(classes). Needs the frame count `seq_len` at construction.

    As in the seed, there is no activation between the two linear layers.
    """

    def __init__(
            self,
            in_features: int,
            seq_len: int,
            num_classes: int,
            hidden_dim: int = 100,
            drop_rate: float = 0.2,
            conv_channels: Optional[int] = None,
    ):
        super().__init__(hidden_dim, num_classes)
        self.in_features, self.seq_len = in_features, seq_len
        if conv_channels:
            self.conv = nn.Sequential(nn.Conv1d(in_features, conv_channels, 1), nn.BatchNorm1d(conv_channels))
            in_features = conv_channels
        else:
            self.conv = nn.Identity()
        self.hidden = nn.Linear(in_features * seq_len, hidden_dim)
        self.drop = nn.Dropout(drop_rate)

    def forward(self, x: torch.Tensor, pre_logits: bool = False) -> torch.Tensor:
        if not torch.jit.is_scripting():
            check_block_input(x, 'FlattenHead', 'B D T', fix='for {got} frames build it with seq_len={got}',
                              D=self.in_features, T=self.seq_len)
        x = self.drop(self.hidden(self.conv(x).flatten(1)))
        return self._logits(x, pre_logits)


class FrameScoreHead(ClassifierHead):
    """Score each frame, then classify the score sequence (the AT-TIM head): `[B, D, T=seq_len] -> [B, classes]`.

    `[B, D, T]` -> Linear(D -> 1) per frame -> `[B, T]` -> Dropout -> Linear(T -> classes).
    Needs `seq_len`.
    """

    def __init__(self, in_features: int, seq_len: int, num_classes: int, drop_rate: float = 0.1):
        super().__init__(seq_len, num_classes)
        self.in_features = in_features
        self.score = nn.Linear(in_features, 1)
        self.drop = nn.Dropout(drop_rate)

    def forward(self, x: torch.Tensor, pre_logits: bool = False) -> torch.Tensor:
        if not torch.jit.is_scripting():
            check_block_input(x, 'FrameScoreHead', 'B D T', fix='for {got} frames build it with seq_len={got}',
                              D=self.in_features, T=self.pre_logits_dim)
        x = self.drop(self.score(x.transpose(1, 2)).squeeze(-1))
        return self._logits(x, pre_logits)


class AdaptiveAvgPoolTime(nn.Module):
    """`nn.AdaptiveAvgPool1d(size)` over the last axis of `[B, C, T] -> [B, C, size]` that exports with any `T`:
    when compiled or exported it averages with a `[T, size]` matrix built from the input's length (bin `j` holds
    frames `floor(j T / size)` to `ceil((j + 1) T / size)`, as PyTorch's adaptive pooling), where the exported
    pooling op would keep the export's length; eagerly it is PyTorch's op."""

    def __init__(self, size: int):
        super().__init__()
        self.size = size

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not torch.compiler.is_compiling():
            return nn.functional.adaptive_avg_pool1d(x, self.size)
        t = x.shape[-1]
        frames = torch.arange(t, device=x.device)[:, None]
        bins = torch.arange(self.size, device=x.device)[None, :]
        inside = (frames >= (bins * t) // self.size) & (frames < ((bins + 1) * t + self.size - 1) // self.size)
        weights = inside.to(x.dtype)
        return x @ (weights / weights.sum(dim=0, keepdim=True))

    def extra_repr(self) -> str:
        return f'size={self.size}'


class TimeProjectionHead(ClassifierHead):
    """Collapse time with a learned projection, then classify the features: `[B, D, T] -> [B, classes]`.

    `[B, D, T]` -> [AdaptiveAvgPool1d(pool_to)] -> Linear(T' -> 1) over time -> `[B, D]` ->
    Dropout -> Linear(D -> classes). With `pool_to` the head takes any length; without it
    it needs `time_len` frames.
    """

    def __init__(
            self,
            in_features: int,
            time_len: int,
            num_classes: int,
            drop_rate: float = 0.0,
            pool_to: Optional[int] = None,
    ):
        super().__init__(in_features, num_classes)
        self.pool = AdaptiveAvgPoolTime(pool_to) if pool_to else nn.Identity()
        self.time_len = None if pool_to else time_len
        self.time_proj = nn.Linear(pool_to or time_len, 1)
        self.drop = nn.Dropout(drop_rate)

    def forward(self, x: torch.Tensor, pre_logits: bool = False) -> torch.Tensor:
        if not torch.jit.is_scripting():
            check_block_input(x, 'TimeProjectionHead', 'B D T', fix='for {got} frames build it with time_len={got}',
                              D=self.pre_logits_dim, T=self.time_len)
        x = self.drop(self.time_proj(self.pool(x)).squeeze(-1))
        return self._logits(x, pre_logits)


class ConvMapHead(ClassifierHead):
    """Treat `[B, L, T, d]` (e.g. stacked encoder layers) as an L-channel image (SET-official head):
    `[B, L, T=seq_len, d=width] -> [B, classes]`, or, with `flat_input`, frame features `[B, L*d, T]` (the L maps'
    channels concatenated, map-major), as a model's `forward_features` gives them.

    BatchNorm2d(L), then blocks `Conv2d 3x3 same -> BatchNorm2d -> MaxPool2d(pool)` with
    `channels` and `pools`, flatten, Linear(hidden), Dropout, Linear(classes).
    Needs the map size `(seq_len, width)`.
    """

    @renamed_arguments(in_channels='in_chans')
    def __init__(
            self,
            in_chans: int,
            seq_len: int,
            width: int,
            num_classes: int,
            channels=(16, 32, 64, 128),
            pools=(2, 2, 3, 3),
            hidden_dim: int = 100,
            drop_rate: float = 0.3,
            flat_input: bool = False,
    ):
        h, w = seq_len, width
        for p in pools:
            h, w = h // p, w // p
        if h < 1 or w < 1:
            raise ConfigurationError(
                f'ConvMapHead needs a map of at least {_prod(pools)} x {_prod(pools)}, got {seq_len} x {width}')
        super().__init__(hidden_dim, num_classes)
        self.map_shape = dict(L=in_chans, T=seq_len, d=width)
        self.flat_input = flat_input
        layers = [nn.BatchNorm2d(in_chans)]
        c_in = in_chans
        for c, p in zip(channels, pools):
            layers += [nn.Conv2d(c_in, c, 3, padding=1), nn.BatchNorm2d(c), nn.MaxPool2d(p)]
            c_in = c
        self.convs = nn.Sequential(*layers)
        self.hidden = nn.Linear(c_in * h * w, hidden_dim)
        self.drop = nn.Dropout(drop_rate)

    def forward(self, x: torch.Tensor, pre_logits: bool = False) -> torch.Tensor:
        L, T, d = self.map_shape['L'], self.map_shape['T'], self.map_shape['d']
        if self.flat_input:
            if not torch.jit.is_scripting():
                check_block_input(x, 'ConvMapHead', 'B C T', C=L * d, T=T)
            x = x.unflatten(1, (L, d)).transpose(2, 3)                       # [B, L, T, d]
        else:
            if not torch.jit.is_scripting():
                check_block_input(x, 'ConvMapHead', 'B L T d', L=L, T=T, d=d)
        x = self.drop(self.hidden(self.convs(x).flatten(1)))
        return self._logits(x, pre_logits)


def _prod(values) -> int:
    out = 1
    for v in values:
        out *= v
    return out
