"""The TIM body: stem, temporal stacks, level aggregation and fusion, as one block."""
from typing import List

import torch
from torch import nn

from .._utils import renamed_arguments
from .._validation import check_block_input, check_choice
from ..exceptions import ConfigurationError
from .aggregation import DeltaAggregation, WeightLayer
from .tab import check_tab_kwargs
from .temporal import BiTemporalEncoder, TemporalStack, stem


class TIMEncoder(nn.Module):
    """Stem + TAB stack(s) + level aggregation + fusion: `[B, in_chans, T]` -> frame features.

    Args:
        in_chans: input channels `C`.
        filters: width `F` of stem and TABs.
        depth: TAB levels `n`.
        bidirectional: run a `BiTemporalEncoder` (else a stem and one `TemporalStack`).
        share_weights, merge, align_backward: of the bidirectional encoder (refused unless left at their defaults
            when `bidirectional=False`).
        stem_norm: the TABs' norm + act after the 1x1 stem.
        aggregation: `DeltaAggregation` mode: `"all"`, `"delta"` or `"delta+all"`.
        fusion: `"weight"` (`WeightLayer` over the levels, `[B, F, T]`), `"last"` (the last
            level only, `[B, F, T]`) or `"none"` (the stacked levels, `[B, F, T, m]`). The weighted
            sum is computed from the levels with `DeltaAggregation.level_weights`, without
            building the `[B, F, T, m]` stack (same result, less memory).
        **tab_kwargs: `TAB_ARGS` of the TABs (`kernel_size`, `drop_rate`, `residual`, `conv_style`,
            `bottleneck_chans`, `act_layer`, `norm_layer`).
    """

    @renamed_arguments(in_channels='in_chans', channels='filters', dropout='drop_rate',
                       bottleneck_channels='bottleneck_chans')
    def __init__(
            self,
            in_chans: int,
            filters: int = 39,
            depth: int = 8,
            bidirectional: bool = True,
            share_weights: bool = True,
            merge: str = 'add',
            align_backward: bool = False,
            stem_norm: bool = False,
            aggregation: str = 'all',
            fusion: str = 'weight',
            **tab_kwargs,
    ):
        super().__init__()
        check_choice('fusion', fusion, ('weight', 'last', 'none'))
        check_tab_kwargs('TIMEncoder', tab_kwargs, ('in_chans', 'filters', 'depth', 'bidirectional', 'share_weights',
                                                    'merge', 'align_backward', 'stem_norm', 'aggregation', 'fusion'))
        check_choice('merge', merge, ('add', 'fuse'))
        if not bidirectional:
            moot = [f'{k}={v!r}' for k, v, default in (('share_weights', share_weights, True), ('merge', merge, 'add'),
                                                       ('align_backward', align_backward, False)) if v != default]
            if moot:
                raise ConfigurationError(f'TIMEncoder(bidirectional=False) has one direction: {", ".join(moot)} '
                                         f'would set the bidirectional encoder; drop it or pass bidirectional=True')
        self.fusion = fusion
        self.in_chans = in_chans
        self.filters = filters
        self.depth = depth
        if bidirectional:
            self.stem = None
            self.encoder = BiTemporalEncoder(
                in_chans, filters, depth, share_weights=share_weights, merge=merge, align_backward=align_backward,
                stem_norm=stem_norm, **tab_kwargs)
        else:
            self.stem = stem(in_chans, filters, stem_norm, tab_kwargs)
            self.encoder = TemporalStack(filters, depth, **tab_kwargs)
        self.aggregate = DeltaAggregation(aggregation)
        self.num_levels = self.aggregate.num_outputs(depth)
        self.weight_layer = WeightLayer(self.num_levels) if fusion == 'weight' else None

    def level_info(self, prefix: str, reduction: int = 1) -> List[dict]:
        """timm `feature_info` of the levels when this encoder is the module `prefix` of a model: `num_chs`,
        `reduction`, `module` (whose output is the level `[B, F, T]`: the TAB, or the bidirectional encoder's
        `outputs.j` after the directions merge) and `modules` (every module with parameters of the level)."""
        bidirectional = self.stem is None
        blocks = f'{prefix}.encoder.stack.blocks' if bidirectional else f'{prefix}.encoder.blocks'
        fuse = getattr(self.encoder, 'fuse', None)
        return [dict(num_chs=self.filters, reduction=reduction,
                     module=f'{prefix}.encoder.outputs.{j}' if bidirectional else f'{blocks}.{j}',
                     modules=(f'{blocks}.{j}',) + ((f'{prefix}.encoder.fuse.{j}',) if fuse is not None else ()))
                for j in range(self.depth)]

    def stem_modules(self, prefix: str) -> tuple:
        """The modules that run before the first level, named inside the model whose module `prefix` this is."""
        return (f'{prefix}.encoder.stem',) if self.stem is None else (f'{prefix}.stem',)

    def truncate(self, num_levels: int) -> None:
        """Keep the stem and the first `num_levels` levels; the aggregation and fusion, made for all levels, can no
        longer run (`forward_levels` still can)."""
        self.encoder.truncate(num_levels)
        self.depth = num_levels
        self.weight_layer = None

    def forward_levels(self, x: torch.Tensor) -> List[torch.Tensor]:
        """`[B, in_chans, T]` -> the `depth` TAB levels (merged over directions), each `[B, F, T]`."""
        if self.stem is not None:
            if not torch.jit.is_scripting():
                check_block_input(x, 'TIMEncoder', 'B C T', C=self.in_chans)
            x = self.stem(x)
        return self.encoder(x)

    def fuse(self, levels: List[torch.Tensor]) -> torch.Tensor:
        """The levels of `forward_levels` -> frame features, by `fusion`."""
        if self.fusion == 'last':
            return levels[-1]
        if self.weight_layer is None:
            return self.aggregate(levels)
        weights = self.aggregate.level_weights(self.weight_layer.weight)
        out = levels[0] * weights[0]
        for j in range(1, len(levels)):
            out = torch.addcmul(out, levels[j], weights[j])
        return out

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fuse(self.forward_levels(x))
