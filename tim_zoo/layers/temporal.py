"""Stacks of temporal-aware blocks: one direction, and both directions."""
from typing import List, Optional

import torch
from torch import nn

from .._validation import check_choice
from .conv import ConvNormAct1d
from .create import ActLayer, NormLayer
from .tab import TemporalAwareBlock


class TemporalStack(nn.Module):
    """``depth`` TABs in sequence with dilations 1, 2, 4, ..., 2**(depth-1).

    ``[B, channels, T]`` -> list of every level's output ``h_1 .. h_depth``, each ``[B, channels, T]``.
    Extra keyword arguments go to every :class:`TemporalAwareBlock`.
    """

    def __init__(self, channels: int, depth: int = 8, **tab_kwargs):
        super().__init__()
        if depth < 1:
            raise ValueError(f'depth must be >= 1, got {depth}')
        self.depth = depth
        self.blocks = nn.ModuleList(
            [TemporalAwareBlock(channels, channels, dilation=2 ** j, **tab_kwargs) for j in range(depth)])

    def forward(self, x: torch.Tensor) -> List[torch.Tensor]:
        levels = []
        for block in self.blocks:
            x = block(x)
            levels.append(x)
        return levels


class BiTemporalEncoder(nn.Module):
    """Bidirectional temporal encoder: a stem and a TAB stack run on ``x`` and on ``x`` reversed.

    ``[B, in_channels, T]`` -> list of ``depth`` merged levels ``s_j``, each ``[B, channels, T]``.

    Args:
        in_channels: input channels ``C``.
        channels: ``F``, the width of stem and TABs.
        depth: number of TAB levels ``n``.
        share_weights: one stem and stack for both directions (seed TIM) or one per direction (TIM-Net).
        merge: ``"add"`` (``s_j = fwd_j + bwd_j``) or ``"fuse"`` (``Conv1d(2F -> F, k=1)`` of the concatenation,
            one per level).
        align_backward: flip each backward output back to forward time before merging; the default False
            matches TIM-Net, where the result is pooled over time anyway.
        stem_norm: add ``norm + act`` after the 1x1 stem convolution.
        **tab_kwargs: kernel_size, dropout, residual, conv_style, act_layer, norm_layer of the TABs.
    """

    def __init__(
            self,
            in_channels: int,
            channels: int,
            depth: int = 8,
            share_weights: bool = False,
            merge: str = 'add',
            align_backward: bool = False,
            stem_norm: bool = False,
            act_layer: ActLayer = 'relu',
            norm_layer: NormLayer = 'batchnorm',
            **tab_kwargs,
    ):
        super().__init__()
        check_choice('merge', merge, ('add', 'fuse'))
        self.share_weights = share_weights
        self.merge = merge
        self.align_backward = align_backward

        def stem():
            return ConvNormAct1d(
                in_channels, channels, 1,
                norm_layer=norm_layer if stem_norm else None,
                act_layer=act_layer if stem_norm else None)

        def stack():
            return TemporalStack(channels, depth, act_layer=act_layer, norm_layer=norm_layer, **tab_kwargs)

        self.stem_fwd = stem()
        self.stack_fwd = stack()
        self.stem_bwd: Optional[nn.Module] = None if share_weights else stem()
        self.stack_bwd: Optional[nn.Module] = None if share_weights else stack()
        self.fuse = nn.ModuleList(
            [nn.Conv1d(2 * channels, channels, 1) for _ in range(depth)]) if merge == 'fuse' else None

    def forward(self, x: torch.Tensor) -> List[torch.Tensor]:
        x_bwd = x.flip(-1)
        stem_bwd = self.stem_fwd if self.stem_bwd is None else self.stem_bwd
        stack_bwd = self.stack_fwd if self.stack_bwd is None else self.stack_bwd
        fwd = self.stack_fwd(self.stem_fwd(x))
        bwd = stack_bwd(stem_bwd(x_bwd))
        merged = []
        for j, (f, b) in enumerate(zip(fwd, bwd)):
            if self.align_backward:
                b = b.flip(-1)
            if self.fuse is None:
                merged.append(f + b)
            else:
                merged.append(self.fuse[j](torch.cat([f, b], dim=1)))
        return merged
