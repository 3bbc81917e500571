"""Transformer front-ends with an optional TIM part (the seed's Transformer, Transformer_TIM family)."""
from typing import Optional

from timm.models import register_model
from torch import nn

from .._validation import check_choice
from ..layers import ConvNormAct1d, FlattenHead, TIMEncoder, TransformerEncoderStack
from ..layers.tab import TAB_ARGS
from ._base import GMM_COMPONENTS, SEED_TAB_DEFAULTS, SERModel, create_head, layer_info
from ._build import build_model
from ._zoo import zoo_default_cfgs


class TransformerTIM(SERModel):
    """Transformer encoder over 1x1-projected frames, optionally followed by a TIM encoder.

    `[B, C, T]` -> prep (Conv1d C->prep_channels, BN, ReLU, Conv1d ->d_model, BN, ReLU) -> [positional
    encoding] -> Transformer encoder (last layer, or all layers fused by Linear(num_layers -> 1)) ->
    with `tim_variant`: BN(d_model) + Conv1d(d_model -> C) and a TIM encoder ->
    frame features `[B, D, T]` -> flatten head (Linear(D*T -> head_hidden), Dropout, Linear).

    Args:
        tim_variant: `"none"` (plain Transformer, `D = d_model`), `"tim"` (shared-weight bidirectional
            TIM, weight layer) or `"deltatim"` (one-direction stack, delta aggregation, weight layer); `D = filters`.
        weighted: fuse the TIM levels with the weight layer; False takes the last level (`fwd_n + bwd_n`: the
            research CausalConv with `is_weight=False`).
        layer_fusion: `"last"` or `"linear"` (keep every encoder layer's output, fuse with Linear(num_layers -> 1)).
        share_layers: one encoder layer applied `num_layers` times (the research `MLTransformer_TIM` appends one
            layer object `n_layer` times); False builds independent layers.
        pos_embed: add a positional encoding before the encoder.
        pos_encoding: which: `"research"` (the research code's table, no dropout, as there) or `"sincos"`
            (standard, dropout `drop_rate`).
        seq_len: the frame count the flatten head is built for.
        d_model: width of the Transformer encoder (`nn.TransformerEncoderLayer`, post-norm).
        num_heads: its attention heads.
        num_layers: its layers.
        d_ff: its feed-forward width.
        transformer_act: its activation (`"relu"`, `"gelu"`).
        drop_rate: dropout of the Transformer layers (and of the `"sincos"` positional encoding and, with a TIM
            part, of its TABs' spatial dropout).
        prep_channels: width of the first 1x1 projection of the frames.
        filters: width `F` of the TIM part.
        depth: levels `n` of the TIM part.
        stem_norm: BatchNorm + ReLU after the TIM part's 1x1 stem.
        head_hidden: width of the flatten head's hidden layer.
        head_drop_rate: dropout after the flatten head's hidden layer.
        head_conv_channels: a Conv1d(D -> c, 1) + BN before flattening (the plain Transformer uses 64).
        head: `"default"` (flatten head, fixed length) or `"gmm"` (any length).
        **tab_kwargs: the `TemporalAwareBlock` arguments of the TIM part, passed to every TAB unchanged;
            `drop_rate` is also the Transformer's dropout. As the research code: `residual="add"`,
            `drop_mode="frame"`.
    """
    tab_defaults = dict(SEED_TAB_DEFAULTS)
    #: the arguments of the TIM part, which `tim_variant="none"` refuses unless left at their defaults
    tim_only_args = ('filters', 'depth', 'stem_norm', 'weighted') + tuple(a for a in TAB_ARGS if a != 'drop_rate')
    default_weight_init = 'research'

    def __init__(
            self,
            num_classes: int = 7,
            in_chans: int = 39,
            seq_len: int = 188,
            *,
            tim_variant: str = 'tim',
            weighted: bool = True,
            d_model: int = 256,
            num_heads: int = 8,
            num_layers: int = 3,
            d_ff: int = 1024,
            transformer_act: str = 'relu',
            layer_fusion: str = 'last',
            share_layers: bool = False,
            pos_embed: bool = False,
            pos_encoding: str = 'research',
            prep_channels: int = 128,
            filters: int = 39,
            depth: int = 8,
            stem_norm: bool = False,
            head_hidden: int = 100,
            head_drop_rate: float = 0.2,
            head_conv_channels: Optional[int] = None,
            head: str = 'default',
            gmm_components: int = GMM_COMPONENTS,
            check_finite: bool = False,
            **tab_kwargs,
    ):
        super().__init__(num_classes, in_chans, check_finite)
        drop_rate = tab_kwargs['drop_rate']
        check_choice('tim_variant', tim_variant, ('none', 'tim', 'deltatim'))
        check_choice('layer_fusion', layer_fusion, ('last', 'linear'))
        self.seq_len = seq_len
        self.prep = nn.Sequential(
            ConvNormAct1d(in_chans, prep_channels, 1, norm_layer='batchnorm', act_layer='relu'),
            ConvNormAct1d(prep_channels, d_model, 1, norm_layer='batchnorm', act_layer='relu'))
        self.pos_embed = self._positional_encoding(pos_embed, d_model, pos_encoding, drop_rate)
        self.transformer = TransformerEncoderStack(
            d_model, num_heads, d_ff, num_layers, drop_rate, transformer_act, keep_all=layer_fusion == 'linear',
            share_layers=share_layers)
        self.layer_fusion = nn.Linear(num_layers, 1) if layer_fusion == 'linear' else None
        if tim_variant == 'none':
            self._refuse_unused(self.tim_only_args, 'tim_variant="none" has no TIM part to pass them to')
            self.bridge = None
            self.tim = None
            self.num_features = d_model
        else:
            self.bridge = nn.Sequential(nn.BatchNorm1d(d_model), nn.Conv1d(d_model, in_chans, 1))
            self.tim = TIMEncoder(
                in_chans, filters, depth, bidirectional=tim_variant == 'tim', share_weights=True, merge='add',
                stem_norm=stem_norm, aggregation='all' if tim_variant == 'tim' else 'delta',
                fusion='weight' if weighted else 'last',
                **tab_kwargs)
            self.num_features = filters
        self.head = create_head(
            head, self.num_features, num_classes, gmm_components,
            lambda: FlattenHead(self.num_features, seq_len, num_classes, head_hidden, head_drop_rate, head_conv_channels))
        self._refuse_default_head_args(head, ('seq_len', 'head_hidden', 'head_drop_rate', 'head_conv_channels'))
        self.fixed_len = None if head == 'gmm' else seq_len
        self.feature_info = layer_info('transformer', num_layers, d_model, shared=share_layers)
        if self.tim is not None:
            tim_levels = self.tim.level_info('tim')
            before = ('layer_fusion', 'bridge') + self.tim.stem_modules('tim')
            tim_levels[0]['modules'] = tim_levels[0]['modules'] + before
            self.feature_info += tim_levels
        self._stem_modules = ('prep',)

    def _forward_levels(self, x):
        """`[B, C, T]` -> frame features `[B, D, T]`, the Transformer layers' outputs `[B, d_model, T]` and, with a
        TIM part, its levels `[B, F, T]`."""
        x = self.prep(x).transpose(1, 2)                     # [B, T, d_model]
        if self.pos_embed is not None:
            x = self.pos_embed(x)
        layers = self.transformer.forward_layers(x)
        outputs = [h.transpose(1, 2) for h in layers]
        if self._pruned(outputs):
            return outputs[-1], outputs
        x = self.transformer.stack(layers)
        if self.layer_fusion is not None:
            x = self.layer_fusion(x).squeeze(-1)             # [B, T, d_model, L] -> [B, T, d_model]
        x = x.transpose(1, 2)
        if self.tim is None:
            return x, outputs
        levels = outputs + self.tim.forward_levels(self.bridge(x))
        if self._pruned(levels):
            return levels[-1], levels
        return self.tim.fuse(levels[len(outputs):]), levels

    def _drop_fusion(self):
        if self.tim is not None and self.tim.depth > 0:
            self.tim.weight_layer = None                 # the Transformer part and its layer fusion feed the TIM part
        else:                                            # only Transformer levels kept
            self.layer_fusion = None
            self.tim = None
            self.bridge = None

    def _level_stages(self):
        stages = [(self.transformer, self.transformer.num_layers)]
        return stages + ([(self.tim, self.tim.depth)] if self.tim is not None else [])


default_cfgs = zoo_default_cfgs('transformer', 'transformer_tim', 'transformer_deltatim', 'mltransformer_tim')


@register_model
def transformer(pretrained: bool = False, **kwargs) -> TransformerTIM:
    """Plain Transformer: prep, encoder, Conv1d(d_model -> 64) + BN, flatten -> 1000 -> Dropout 0.3."""
    args = dict(tim_variant='none', head_hidden=1000, head_drop_rate=0.3, head_conv_channels=64)
    return build_model(TransformerTIM, 'transformer', pretrained, defaults=args, **kwargs)


@register_model
def transformer_tim(pretrained: bool = False, **kwargs) -> TransformerTIM:
    """Transformer followed by a shared-weight bidirectional TIM; flatten -> 100 -> Dropout 0.2."""
    args = dict(tim_variant='tim', head_hidden=100, head_drop_rate=0.2)
    return build_model(TransformerTIM, 'transformer_tim', pretrained, defaults=args, **kwargs)


@register_model
def transformer_deltatim(pretrained: bool = False, **kwargs) -> TransformerTIM:
    """Transformer followed by a one-direction TIM with delta aggregation (converges fastest in the seed)."""
    args = dict(tim_variant='deltatim', head_hidden=100, head_drop_rate=0.2)
    return build_model(TransformerTIM, 'transformer_deltatim', pretrained, defaults=args, **kwargs)


@register_model
def mltransformer_tim(pretrained: bool = False, **kwargs) -> TransformerTIM:
    """Every encoder layer's output kept and fused by Linear(num_layers -> 1), then TIM; flatten -> 1000 -> Dropout 0.3.
    As the research code, the encoder is one layer applied `num_layers` times (`share_layers=False`: independent)."""
    args = dict(tim_variant='tim', layer_fusion='linear', share_layers=True, head_hidden=1000, head_drop_rate=0.3)
    return build_model(TransformerTIM, 'mltransformer_tim', pretrained, defaults=args, **kwargs)
