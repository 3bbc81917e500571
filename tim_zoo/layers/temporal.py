"""Stacks of temporal-aware blocks: one direction, and both directions."""
from typing import List, Optional

import torch
from torch import nn

from ._checkpoint import checkpoint

from .._utils import filters_alias, renamed_arguments
from .._validation import check_block_input, check_choice
from ..exceptions import ConfigurationError
from .conv import ConvNormAct1d
from .tab import TAB_DEFAULTS, TemporalAwareBlock, check_tab_kwargs


class TemporalStack(nn.Module):
    """`depth` TABs in sequence with dilations 1, 2, 4, ..., 2**(depth-1): `[B, in_chans, T]` -> `depth` levels
    `[B, filters, T]`.

    `[B, in_chans, T]` (`in_chans` defaults to `filters`; another width goes through the first TAB's 1x1
    shortcut) -> list of every level's output `h_1 .. h_depth`, each `[B, filters, T]`.
    Extra keyword arguments go to every `TemporalAwareBlock` (`TAB_ARGS`, and `groups`/`share_groups`).
    `grad_checkpointing = True` recomputes each block's activations in the backward pass instead of keeping them
    (less memory in training, same gradients).
    """

    @renamed_arguments(channels='filters', dropout='drop_rate', bottleneck_channels='bottleneck_chans')
    def __init__(self, filters: int, depth: int = 8, in_chans: Optional[int] = None, **tab_kwargs):
        super().__init__()
        if depth < 1:
            raise ConfigurationError(f'depth must be >= 1, got {depth}')
        check_tab_kwargs('TemporalStack', tab_kwargs, ('filters', 'depth', 'in_chans'), extra=('groups', 'share_groups'))
        self.depth = depth
        self.in_chans = filters if in_chans is None else in_chans
        self.blocks = nn.ModuleList(
            [TemporalAwareBlock(self.in_chans if j == 0 else filters, filters, dilation=2 ** j, **tab_kwargs)
             for j in range(depth)])
        for block in self.blocks:             # the stack checks its input once (forward), not every block again
            block.check_input = False
        self.grad_checkpointing = False

    def truncate(self, num_levels: int) -> None:
        """Keep the first `num_levels` TABs (0: none; the stack then returns no levels), dropping the rest."""
        self.blocks = self.blocks[:num_levels]
        self.depth = num_levels

    def forward(self, x: torch.Tensor) -> List[torch.Tensor]:
        if not torch.jit.is_scripting():
            check_block_input(x, 'TemporalStack', 'B C T', fix='for {got} input channels build it with in_chans={got}',
                              C=self.in_chans)
        levels = []
        for block in self.blocks:
            if not torch.jit.is_scripting() and self.grad_checkpointing and torch.is_grad_enabled():
                x = checkpoint(block, x)
            else:
                x = block(x)
            levels.append(x)
        return levels


def stem(in_chans: int, filters: int, stem_norm: bool, tab_kwargs: dict, groups: int = 1,
         share_groups: bool = False) -> ConvNormAct1d:
    """The 1x1 stem of a TIM encoder; with `stem_norm` followed by the TABs' norm and activation."""
    def tab_arg(name):
        return tab_kwargs.get(name, TAB_DEFAULTS[name]) if stem_norm else None
    return ConvNormAct1d(in_chans, filters, 1, norm_layer=tab_arg('norm_layer'), act_layer=tab_arg('act_layer'),
                         groups=groups, share_groups=share_groups)


@filters_alias
class BiTemporalEncoder(nn.Module):
    """Bidirectional temporal encoder: a stem and a TAB stack run on `x` and on `x` reversed, merged per level:
    `[B, in_chans, T]` -> `depth` levels `[B, filters, T]`.

    `[B, in_chans, T]` -> list of `depth` merged levels `s_j`, each `[B, filters, T]`.

    Both directions run at once: `x` and `x` reversed are stacked as two channel groups
    `[B, 2C, T]` and every convolution and norm is grouped (`GroupConv1d`), so
    each layer is one call for both directions. Group 0 is the forward direction, group 1 the
    backward one; with `share_weights` both groups use one set of parameters. The result equals two
    separate passes, in training (per-direction batch statistics) as in eval
    (`tim_zoo.benchmark.reference` holds the two-pass computation the tests compare against).

    Args:
        in_chans: input channels `C`.
        filters: `F`, the width of stem and TABs per direction.
        depth: number of TAB levels `n`.
        share_weights: one stem and stack for both directions (seed TIM) or one per direction (TIM-Net).
        merge: `"add"` (`s_j = fwd_j + bwd_j`) or `"fuse"` (`Conv1d(2F -> F, k=1)` of the concatenation,
            one per level).
        align_backward: flip each backward output back to forward time before merging; the default False
            matches TIM-Net, where the result is pooled over time anyway.
        stem_norm: add the TABs' `norm_layer + act_layer` after the 1x1 stem convolution.
        **tab_kwargs: `TAB_ARGS` of the TABs (`bottleneck_chans` per direction).
    """

    @renamed_arguments(in_channels='in_chans', channels='filters', dropout='drop_rate',
                       bottleneck_channels='bottleneck_chans')
    def __init__(
            self,
            in_chans: int,
            filters: int,
            depth: int = 8,
            share_weights: bool = False,
            merge: str = 'add',
            align_backward: bool = False,
            stem_norm: bool = False,
            **tab_kwargs,
    ):
        super().__init__()
        check_choice('merge', merge, ('add', 'fuse'))
        check_tab_kwargs('BiTemporalEncoder', tab_kwargs, ('in_chans', 'filters', 'depth', 'share_weights', 'merge',
                                                           'align_backward', 'stem_norm'))
        self.filters = filters
        self.in_chans = in_chans
        self.share_weights = share_weights
        self.merge = merge
        self.align_backward = align_backward
        grouping = dict(groups=2, share_groups=share_weights)
        # bottleneck_chans is per direction; the stack's TABs count channels over both groups
        tab_kwargs = dict(tab_kwargs, bottleneck_chans=2 * tab_kwargs.get('bottleneck_chans',
                                                                           TAB_DEFAULTS['bottleneck_chans']))
        self.stem = stem(2 * in_chans, 2 * filters, stem_norm, tab_kwargs, **grouping)
        self.stack = TemporalStack(2 * filters, depth, **grouping, **tab_kwargs)
        self.fuse = nn.ModuleList(
            [nn.Conv1d(2 * filters, filters, 1) for _ in range(depth)]) if merge == 'fuse' else None
        # one identity per level, whose output is the merged level: what forward hooks and fx feature extraction read
        self.outputs = nn.ModuleList([nn.Identity() for _ in range(depth)])

    def truncate(self, num_levels: int) -> None:
        """Keep the first `num_levels` levels (TABs, merges), dropping the rest."""
        self.stack.truncate(num_levels)
        if self.fuse is not None:
            self.fuse = self.fuse[:num_levels]
        self.outputs = self.outputs[:num_levels]

    def forward(self, x: torch.Tensor) -> List[torch.Tensor]:
        if not torch.jit.is_scripting():
            check_block_input(x, 'BiTemporalEncoder', 'B C T', C=self.in_chans)
        both = torch.cat([x, x.flip(-1)], dim=1)
        merged = []
        levels = self.stack(self.stem(both))
        if self.fuse is None:
            for h in levels:
                fwd, bwd = h[:, :self.filters], h[:, self.filters:]
                merged.append(fwd + (bwd.flip(-1) if self.align_backward else bwd))
        else:
            for j, fuse in enumerate(self.fuse):        # (TorchScript indexes module lists only in such loops)
                h = levels[j]
                if self.align_backward:
                    h = torch.cat([h[:, :self.filters], h[:, self.filters:].flip(-1)], dim=1)
                merged.append(fuse(h))
        outputs = []
        for j, output in enumerate(self.outputs):
            outputs.append(output(merged[j]))
        return outputs
