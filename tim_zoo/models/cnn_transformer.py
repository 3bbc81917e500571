"""TIM encoder followed by a Transformer (the seed's CNN_Transformer family)."""
from timm.models import register_model
from torch import nn

from ..exceptions import ConfigurationError
from ..layers import TIMEncoder, TimeProjectionHead, TransformerEncoderStack, WeightLayer
from ._base import GMM_COMPONENTS, SEED_TAB_DEFAULTS, SERModel, create_head, layer_info
from ._build import build_model
from ._zoo import zoo_default_cfgs


class CNNTransformer(SERModel):
    """TIM encoder, time pooling, Transformer, learned projection over time.

    `[B, C, T]` -> TIM encoder (plain stem, shared bidirectional, weight layer) `[B, F, T]` ->
    MaxPool1d(2) -> Conv1d(F -> d_model) -> [positional encoding] -> Transformer encoder (last layer, or
    with `multi_layer` every layer's output fused by a WeightLayer) -> frame features `[B, d_model, T//2]`
    -> Linear(T//2 -> 1) over time -> `[B, d_model]` -> Linear(d_model -> classes).

    Args:
        seq_len: the frame count the head is built for (`T`; the head sees `T // 2`).
        weighted: fuse the TIM levels with the weight layer; False takes the last level (`fwd_n + bwd_n`: the
            research CausalConv with `is_weight=False`).
        multi_layer: keep every encoder layer and fuse them with a WeightLayer.
        pos_embed: add a positional encoding before the encoder; `pos_encoding` says which (as `TransformerTIM`).
        **tab_kwargs: the `TemporalAwareBlock` arguments, passed to every TAB unchanged; `drop_rate` is also the
            Transformer's dropout. As the research code: `residual="add"`, `drop_mode="frame"`.

    Other arguments as `TIMNet`; the Transformer's as `TransformerTIM`.
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
            weighted: bool = True,
            stem_norm: bool = False,
            d_model: int = 256,
            num_heads: int = 8,
            num_layers: int = 3,
            d_ff: int = 1024,
            transformer_act: str = 'relu',
            multi_layer: bool = False,
            pos_embed: bool = False,
            pos_encoding: str = 'research',
            head: str = 'default',
            gmm_components: int = GMM_COMPONENTS,
            check_finite: bool = False,
            **tab_kwargs,
    ):
        super().__init__(num_classes, in_chans, check_finite)
        drop_rate = tab_kwargs['drop_rate']
        if seq_len < 2:
            raise ConfigurationError(f'seq_len must be at least 2 (MaxPool1d(2) halves it), got {seq_len}')
        self.seq_len = seq_len
        self.tim = TIMEncoder(
            in_chans, filters, depth, bidirectional=True, share_weights=True, merge='add', stem_norm=stem_norm,
            aggregation='all', fusion='weight' if weighted else 'last', **tab_kwargs)
        self.pool = nn.MaxPool1d(2)
        self.proj = nn.Conv1d(filters, d_model, 1)
        self.pos_embed = self._positional_encoding(pos_embed, d_model, pos_encoding, drop_rate)
        self.transformer = TransformerEncoderStack(
            d_model, num_heads, d_ff, num_layers, drop_rate, transformer_act, keep_all=multi_layer)
        self.layer_weight = WeightLayer(num_layers) if multi_layer else None
        self.num_features = d_model
        self.head = create_head(
            head, d_model, num_classes, gmm_components,
            lambda: TimeProjectionHead(d_model, seq_len // 2, num_classes))
        self._refuse_default_head_args(head, ('seq_len',))
        self.fixed_len = None if head == 'gmm' else seq_len
        self.min_len = 2
        self.feature_info = self.tim.level_info('tim') + layer_info('transformer', num_layers, d_model, 2, ('proj',))
        self._stem_modules = self.tim.stem_modules('tim')

    def _forward_levels(self, x):
        """`[B, C, T]` -> frame features `[B, d_model, T // 2]`, the `depth` TAB levels `[B, F, T]` and the
        Transformer layers' outputs `[B, d_model, T // 2]`."""
        levels = self.tim.forward_levels(x)
        if self._pruned(levels):
            return levels[-1], levels
        # contiguous: torch.compile (aot) fails on PyTorch's eval fast path of the encoder layer for a transposed input
        x = self.proj(self.pool(self.tim.fuse(levels))).transpose(1, 2).contiguous()   # [B, T//2, d_model]
        if self.pos_embed is not None:
            x = self.pos_embed(x)
        layers = self.transformer.forward_layers(x)
        levels = levels + [h.transpose(1, 2) for h in layers]
        if self._pruned(levels):
            return levels[-1], levels
        x = self.transformer.stack(layers)
        if self.layer_weight is not None:
            x = self.layer_weight(x)
        return x.transpose(1, 2), levels

    def _level_stages(self):
        return [(self.tim, self.tim.depth), (self.transformer, self.transformer.num_layers)]

    def _drop_fusion(self):
        self.layer_weight = None
        if self.transformer.num_layers == 0:             # only TIM levels kept: nothing after them runs
            self.tim.weight_layer = None
            self.proj = nn.Identity()


default_cfgs = zoo_default_cfgs('cnn_transformer', 'cnn_ml_transformer')


@register_model
def cnn_transformer(pretrained: bool = False, **kwargs) -> CNNTransformer:
    """TIM encoder -> MaxPool -> Transformer -> Linear over time -> Linear."""
    return build_model(CNNTransformer, 'cnn_transformer', pretrained, **kwargs)


@register_model
def cnn_ml_transformer(pretrained: bool = False, **kwargs) -> CNNTransformer:
    """As cnn_transformer, with positional encoding and every encoder layer fused by a WeightLayer."""
    args = dict(multi_layer=True, pos_embed=True)
    return build_model(CNNTransformer, 'cnn_ml_transformer', pretrained, defaults=args, **kwargs)
