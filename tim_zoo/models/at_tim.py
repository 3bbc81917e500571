"""Attention-fused TIM models: AT_TIM, AT_DeltaTIM, AT_DeltaTIM_v2 and MultiTIM."""
from typing import List, Optional, Tuple

import torch
from torch import nn
from timm.models import register_model

from .._validation import check_choice
from ..exceptions import ConfigurationError
from ..layers import (
    AFTLocalFusion, AttentionFusion, DeltaAggregation, FrameMask, FrameScoreHead, TemporalStack, TIMEncoder,
    TimeProjectionHead,
)
from ..layers.temporal import stem
from ._base import GMM_COMPONENTS, SEED_TAB_DEFAULTS, SERModel, create_head
from ._build import build_model
from ._zoo import zoo_default_cfgs


def _make_fusion(fusion, filters, num_levels, seq_len, d_qkv, d_ff, ffn, drop_rate, aft_window, fusion_style):
    if fusion == 'attention':
        return AttentionFusion(filters, num_levels, d_qkv, d_ff, ffn, attn_drop=drop_rate, proj_drop=drop_rate,
                               style=fusion_style)
    return AFTLocalFusion(filters, num_levels, max_len=seq_len, d_qkv=d_qkv, window=aft_window)


def unused_fusion_args(fusion: str, ffn: bool) -> List[Tuple[Tuple[str, ...], str]]:
    """The `ATTIM`/`MultiTIM` arguments that `fusion` (and `ffn`) leave without effect, each group with why."""
    if fusion == 'aft_local':
        return [(('fusion_style', 'd_ff', 'ffn', 'attn_drop_rate'),
                 'fusion="aft_local" has no multi-head attention and no feed-forward block: these set '
                 'fusion="attention" only')]
    unused = [(('aft_window',), 'only fusion="aft_local" has a window: pass fusion="aft_local" too')]
    if not ffn:
        unused.append((('d_ff',), 'ffn=False: the attention fusion has no feed-forward block'))
    return unused


def _check_fusion_args(model: SERModel, fusion: str, ffn: bool) -> None:
    """Refuse an unknown `fusion`, then the caller's arguments that it (and `ffn`) leave without effect."""
    check_choice('fusion', fusion, ('attention', 'aft_local'))
    for names, reason in unused_fusion_args(fusion, ffn):
        model._refuse_unused(names, reason)


class ATTIM(SERModel):
    """TIM whose levels are fused by attention (each level one head) instead of the weight layer.

    `[B, C, T]` -> [frame masking, training only] -> stem (1x1 conv, BN, ReLU) -> TAB stack(s) ->
    level aggregation `[B, F, T, n]` -> AttentionFusion (or AFT-local) -> frame features `[B, n*F, T]` ->
    Linear(n*F -> 1) per frame -> `[B, T]` -> Dropout -> Linear(T -> classes).

    Args:
        seq_len: the frame count the head is built for (also AFT's `max_len`).
        bidirectional: shared-weight bidirectional encoder, or one direction.
        merge: `"add"` or `"fuse"` (per-level Conv1d(2F -> F)) for the bidirectional encoder.
        aggregation: `"all"`, `"delta"` or `"delta+all"` over the levels.
        frame_mask: probability of zeroing each input frame in training.
        fusion: `"attention"` (multi-head, the default: the form MODELS.md specifies and the research notes' findings
            on `d_qkv` and the FFN are about) or `"aft_local"` (the research `Args` default `attention_type="AF"`).
        fusion_style: `"research"` (default: the research `TIM_Attention`'s computation, with its filter-major
            context added to level-major levels, scores scaled by `1/sqrt(n*d_qkv)`, one LayerNorm used twice) or
            `"standard"` (level-major throughout, `1/sqrt(d_qkv)`, two LayerNorms); see `AttentionFusion`.
            AFT-local has one form.
        d_qkv: the attention fusion's query/key/value width per level (per head).
        d_ff: the width of the attention fusion's feed-forward block.
        ffn: whether the attention fusion has its feed-forward block (the notes: it clearly helped).
        aft_window: AFT-local's window: frames farther apart than this do not attend to each other.
        attn_drop_rate: the multi-head attention's dropout (on the attention weights and before its output
            projection): 0.1, fixed in the research `TIM_Attention`; None follows `drop_rate`.
        head_drop_rate: dropout on the per-frame scores.
        head: `"default"` or `"gmm"` (any length unless AFT-local limits it).
        **tab_kwargs: the `TemporalAwareBlock` arguments, passed to every TAB unchanged. As the research code:
            `residual="add"`, `drop_mode="frame"`.

    Other arguments as `TIMNet`.
    """
    tab_defaults = dict(SEED_TAB_DEFAULTS)
    default_weight_init = 'research'

    def __init__(
            self,
            num_classes: int = 7,
            in_chans: int = 39,
            seq_len: int = 188,
            filters: int = 39,
            depth: int = 8,
            *,
            bidirectional: bool = True,
            merge: str = 'add',
            aggregation: str = 'all',
            frame_mask: float = 0.0,
            fusion: str = 'attention',
            fusion_style: str = 'research',
            d_qkv: int = 64,
            d_ff: int = 1024,
            ffn: bool = True,
            attn_drop_rate: Optional[float] = 0.1,
            aft_window: int = 128,
            head_drop_rate: float = 0.1,
            head: str = 'default',
            gmm_components: int = GMM_COMPONENTS,
            check_finite: bool = False,
            **tab_kwargs,
    ):
        super().__init__(num_classes, in_chans, check_finite)
        _check_fusion_args(self, fusion, ffn)
        check_choice('merge', merge, ('add', 'fuse'))
        if not bidirectional:
            self._refuse_unused(('merge',), 'bidirectional=False has no directions to merge: pass bidirectional=True '
                                            'too')
        self.seq_len = seq_len
        self.frame_mask = FrameMask(frame_mask)
        self.tim = TIMEncoder(
            in_chans, filters, depth, bidirectional=bidirectional, share_weights=True,
            merge=merge if bidirectional else 'add',            # one direction: the factory's merge is moot
            stem_norm=True, aggregation=aggregation, fusion='none', **tab_kwargs)
        num_levels = self.tim.num_levels
        attn_drop = tab_kwargs['drop_rate'] if attn_drop_rate is None else attn_drop_rate
        self._record_resolved('attn_drop_rate', attn_drop)
        self.fusion = _make_fusion(fusion, filters, num_levels, seq_len, d_qkv, d_ff, ffn, attn_drop, aft_window,
                                   fusion_style)
        self.num_features = num_levels * filters
        self.head = create_head(
            head, self.num_features, num_classes, gmm_components,
            lambda: FrameScoreHead(self.num_features, seq_len, num_classes, head_drop_rate))
        self._refuse_default_head_args(head, ('head_drop_rate',) if fusion == 'aft_local' else ('seq_len', 'head_drop_rate'))
        self.fixed_len = None if head == 'gmm' else seq_len
        self.max_len = seq_len if fusion == 'aft_local' else None
        self.feature_info = self.tim.level_info('tim')
        self._stem_modules = self.tim.stem_modules('tim')

    def _forward_levels(self, x):
        """`[B, C, T]` -> frame features `[B, n*F, T]` and the `depth` TAB levels `[B, F, T]`."""
        levels = self.tim.forward_levels(self.frame_mask(x))
        if self._pruned(levels):
            return levels[-1], levels
        return self.fusion(self.tim.fuse(levels)).transpose(1, 2), levels

    def _level_stages(self):
        return [(self.tim, self.tim.depth)]

    def _drop_fusion(self):
        self.fusion = nn.Identity()


class MultiTIM(SERModel):
    """A "general" TAB stack and a "special" stack on its last output, fused by attention.

    `[B, C, T]` -> stem (1x1 conv, BN, ReLU) -> general stack (`general_depth` levels, all kept) ->
    special stack on the general stack's last level (`special_depth` levels, delta aggregation) ->
    the `n1 + n2` levels -> AttentionFusion -> `[B, (n1+n2)*F, T]` -> AdaptiveAvgPool over time to
    `head_pool` -> Linear(head_pool -> 1) -> Dropout -> Linear((n1+n2)*F -> classes). Any length with
    `fusion="attention"`; `fusion="aft_local"` (the research `attention_type="AF"`) needs `seq_len`, its longest input.

    Args:
        general_depth: levels `n1` of the general stack, on the stem's output.
        special_depth: levels `n2` of the special stack, on the general stack's last level (delta-aggregated).
        seq_len: with `fusion="aft_local"`, the longest input (the size of AFT's position bias); refused with
            attention fusion, which takes any length.
        head_pool: frames the head pools time to before its projection over time.
        head_drop_rate: dropout before the classifier.
        **tab_kwargs: the `TemporalAwareBlock` arguments, passed to every TAB (and the stem's norm and activation).

    Other arguments as `ATTIM` (`fusion`, `fusion_style`, `d_qkv`, `d_ff`, `ffn`, `attn_drop_rate`, `aft_window`;
    `residual="add"`, `drop_mode="frame"` as the research code).
    """
    tab_defaults = dict(SEED_TAB_DEFAULTS)
    default_weight_init = 'research'

    def __init__(
            self,
            num_classes: int = 7,
            in_chans: int = 39,
            filters: int = 39,
            general_depth: int = 4,
            special_depth: int = 4,
            *,
            fusion: str = 'attention',
            fusion_style: str = 'research',
            seq_len: Optional[int] = None,
            d_qkv: int = 64,
            d_ff: int = 1024,
            ffn: bool = True,
            attn_drop_rate: Optional[float] = 0.1,
            aft_window: int = 128,
            head_pool: int = 256,
            head_drop_rate: float = 0.3,
            head: str = 'default',
            gmm_components: int = GMM_COMPONENTS,
            check_finite: bool = False,
            **tab_kwargs,
    ):
        super().__init__(num_classes, in_chans, check_finite)
        _check_fusion_args(self, fusion, ffn)
        if fusion == 'attention':
            self._refuse_unused(('seq_len',), 'multitim with fusion="attention" takes any length (seq_len sizes '
                                              'only AFT-local\'s position bias): drop it, or pass fusion="aft_local"')
        drop_rate = tab_kwargs['drop_rate'] if attn_drop_rate is None else attn_drop_rate
        self._record_resolved('attn_drop_rate', drop_rate)
        self.stem = stem(in_chans, filters, True, tab_kwargs)
        self.general = TemporalStack(filters, general_depth, **tab_kwargs)
        self.special = TemporalStack(filters, special_depth, **tab_kwargs)
        self.delta = DeltaAggregation('delta')
        num_levels = general_depth + special_depth
        if fusion == 'aft_local' and seq_len is None:
            raise ConfigurationError('multitim with fusion="aft_local" needs seq_len, the longest input it takes (the '
                                     'size of the AFT position bias)')
        self.seq_len = seq_len
        self.fusion = _make_fusion(fusion, filters, num_levels, seq_len, d_qkv, d_ff, ffn, drop_rate, aft_window,
                                   fusion_style)
        self.max_len = seq_len if fusion == 'aft_local' else None
        self.num_features = num_levels * filters
        self.head = create_head(
            head, self.num_features, num_classes, gmm_components,
            lambda: TimeProjectionHead(self.num_features, head_pool, num_classes, head_drop_rate, pool_to=head_pool))
        self._refuse_default_head_args(head, ('head_pool', 'head_drop_rate'))
        self.feature_info = [dict(num_chs=filters, reduction=1, module=f'{stack}.blocks.{j}')
                             for stack, depth in (('general', general_depth), ('special', special_depth))
                             for j in range(depth)]
        self._stem_modules = ('stem',)

    def _forward_levels(self, x):
        """`[B, C, T]` -> frame features `[B, (n1+n2)*F, T]` and the `n1 + n2` TAB levels `[B, F, T]`."""
        general = self.general(self.stem(x))
        if self._pruned(general):
            return general[-1], general
        special_levels = self.special(general[-1])
        if self._pruned(general + special_levels):
            return special_levels[-1], general + special_levels
        levels = torch.cat([torch.stack(general, dim=-1), self.delta(special_levels)], dim=-1)
        return self.fusion(levels).transpose(1, 2), general + special_levels

    def _level_stages(self):
        return [(self.general, self.general.depth), (self.special, self.special.depth)]

    def _drop_fusion(self):
        self.fusion = nn.Identity()


default_cfgs = zoo_default_cfgs('at_tim', 'at_deltatim', 'at_deltatim_v2', 'multitim')


@register_model
def at_tim(pretrained: bool = False, **kwargs) -> ATTIM:
    """Shared bidirectional TIM (merge add, all levels) fused by attention."""
    args = dict(bidirectional=True, merge='add', aggregation='all', head_drop_rate=0.1)
    return build_model(ATTIM, 'at_tim', pretrained, defaults=args, **kwargs)


@register_model
def at_deltatim(pretrained: bool = False, **kwargs) -> ATTIM:
    """One-direction TIM with delta aggregation, fused by attention."""
    args = dict(bidirectional=False, aggregation='delta', head_drop_rate=0.1)
    return build_model(ATTIM, 'at_deltatim', pretrained, defaults=args, **kwargs)


@register_model
def at_deltatim_v2(pretrained: bool = False, **kwargs) -> ATTIM:
    """Frame masking 0.2, shared bidirectional TIM with fused directions, delta aggregation, attention."""
    args = dict(bidirectional=True, merge='fuse', aggregation='delta', frame_mask=0.2, head_drop_rate=0.3)
    return build_model(ATTIM, 'at_deltatim_v2', pretrained, defaults=args, **kwargs)


@register_model
def multitim(pretrained: bool = False, **kwargs) -> MultiTIM:
    """General (4 levels) + special (4 levels, delta) stacks fused by attention; any length."""
    return build_model(MultiTIM, 'multitim', pretrained, **kwargs)
