"""Speech Emotion Transformer (SET), simplified and official-style."""
from typing import Optional

from timm.models import register_model

from .._validation import check_choice
from ..exceptions import ConfigurationError
from ..layers import ConvMapHead, ConvNormAct1d, PoolHead, TransformerEncoderStack, WeightLayer
from ._base import GMM_COMPONENTS, SERModel, create_head, layer_info
from ._build import build_model
from ._zoo import zoo_default_cfgs


class SpeechEmotionTransformer(SERModel):
    """Transformer over 1x1-projected frames, every encoder layer's output kept.

    `[B, C, T]` -> Conv1d(C -> d_model) + BN -> [positional encoding] -> `num_layers` encoder layers,
    outputs stacked, then per `layer_fusion`:

    - `"weight"` (`set`): WeightLayer over the layers -> frame features `[B, d_model, T]` -> GAP -> Linear.
    - `"conv2d"` (`set_official`): frame features `[B, num_layers*d_model, T]` (the layers' outputs concatenated,
      layer-major), which the head treats as a `num_layers`-channel image `[T, d_model]` -> BatchNorm2d, four
      Conv2d 3x3 -> BN2d -> MaxPool2d blocks (16, 32, 64, 128 channels, pools 2, 2, 3, 3), flatten ->
      Linear(head_hidden) -> Dropout -> Linear. Needs `seq_len` (at least 36 frames), unless `head="gmm"`
      (GMM clustering over the frame features, any length).

    `weight_init` defaults to `"research"` (the layer weights of `set` start standard normal, as the research
    code's).

    Args:
        seq_len: the frame count the `"conv2d"` head is built for (None: `"weight"`, any length).
        d_model: width of the Transformer encoder (`nn.TransformerEncoderLayer`, post-norm).
        num_heads: its attention heads.
        num_layers: its layers.
        d_ff: its feed-forward width.
        transformer_act: its activation (`"relu"`, `"gelu"`).
        drop_rate: dropout of the encoder layers (and of the `"sincos"` positional encoding).
        pos_embed: add a positional encoding before the encoder.
        pos_encoding: which: `"research"` (the research code's table, no dropout, as there) or `"sincos"`
            (standard, dropout `drop_rate`).
        layer_fusion: `"weight"` (a WeightLayer over the layers, GAP head) or `"conv2d"` (the layers as image
            channels, convolutional head).
        head_hidden: width of the convolutional head's hidden layer (`"conv2d"`).
        head_drop_rate: dropout before the convolutional head's classifier (`"conv2d"`; the `"weight"` head, GAP then
            Linear, has none).
    """
    default_weight_init = 'research'

    def __init__(
            self,
            num_classes: int = 7,
            in_chans: int = 39,
            seq_len: Optional[int] = None,
            *,
            d_model: int = 256,
            num_heads: int = 8,
            num_layers: int = 3,
            d_ff: int = 1024,
            drop_rate: float = 0.1,
            transformer_act: str = 'relu',
            pos_embed: bool = True,
            pos_encoding: str = 'research',
            layer_fusion: str = 'weight',
            head_hidden: int = 100,
            head_drop_rate: float = 0.3,
            head: str = 'default',
            gmm_components: int = GMM_COMPONENTS,
            check_finite: bool = False,
    ):
        super().__init__(num_classes, in_chans, check_finite)
        check_choice('layer_fusion', layer_fusion, ('weight', 'conv2d'))
        self.seq_len = seq_len
        self.proj = ConvNormAct1d(in_chans, d_model, 1, norm_layer='batchnorm')
        self.pos_embed = self._positional_encoding(pos_embed, d_model, pos_encoding, drop_rate)
        self.transformer = TransformerEncoderStack(
            d_model, num_heads, d_ff, num_layers, drop_rate, transformer_act, keep_all=True)
        if layer_fusion == 'weight':
            self.layer_weight = WeightLayer(num_layers)
            self.num_features = d_model
            self.head = create_head(head, d_model, num_classes, gmm_components, lambda: PoolHead(d_model, num_classes))
            self._refuse_unused(('head_hidden', 'head_drop_rate', 'seq_len'), 'layer_fusion="weight" pools the '
                                'layers, of any length, into a head without a hidden layer or dropout; they set the '
                                '"conv2d" head')
        else:
            self.layer_weight = None
            self.num_features = num_layers * d_model
            if head == 'default' and seq_len is None:
                raise ConfigurationError('layer_fusion="conv2d" needs seq_len, the frame count its head is built for')
            self.head = create_head(head, self.num_features, num_classes, gmm_components, lambda: ConvMapHead(
                num_layers, seq_len, d_model, num_classes, hidden_dim=head_hidden, drop_rate=head_drop_rate,
                flat_input=True))
            self._refuse_default_head_args(head, ('seq_len', 'head_hidden', 'head_drop_rate'))
            self.fixed_len = seq_len if head == 'default' else None
        self.feature_info = layer_info('transformer', num_layers, d_model)
        self._stem_modules = ('proj',)

    def _forward_levels(self, x):
        """`[B, C, T]` -> `[B, d_model, T]` (`"weight"`) or `[B, num_layers*d_model, T]` (`"conv2d"`), and the
        Transformer layers' outputs `[B, d_model, T]`."""
        x = self.proj(x).transpose(1, 2)                     # [B, T, d_model]
        if self.pos_embed is not None:
            x = self.pos_embed(x)
        layers = self.transformer.forward_layers(x)
        outputs = [h.transpose(1, 2) for h in layers]
        if self._pruned(outputs):
            return outputs[-1], outputs
        x = self.transformer.stack(layers)                   # [B, T, d_model, L]
        if self.layer_weight is not None:
            return self.layer_weight(x).transpose(1, 2), outputs
        return x.permute(0, 3, 2, 1).flatten(1, 2), outputs

    def _level_stages(self):
        return [(self.transformer, self.transformer.num_layers)]

    def _drop_fusion(self):
        self.layer_weight = None


default_cfgs = zoo_default_cfgs('set', 'set_official')


@register_model
def set(pretrained: bool = False, **kwargs) -> SpeechEmotionTransformer:  # noqa: A001 (registry name)
    """Simplified SET: positional encoding, layers fused by a WeightLayer, GAP, Linear; any length."""
    return build_model(SpeechEmotionTransformer, 'set', pretrained, **kwargs)


@register_model
def set_official(pretrained: bool = False, **kwargs) -> SpeechEmotionTransformer:
    """SET with the layer outputs as an image and a Conv2d head; no positional encoding (seed: 90% vs 86%)."""
    args = dict(layer_fusion='conv2d', pos_embed=False, seq_len=188)
    return build_model(SpeechEmotionTransformer, 'set_official', pretrained, defaults=args, **kwargs)
