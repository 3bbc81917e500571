"""TIM-Net (Ye et al., ICASSP 2023) and the seed's TIM baseline."""
from timm.models import generate_default_cfgs, register_model

from ..layers import PoolHead, TIMEncoder
from ..weights.releases import TIMNET_RELEASES, release_metadata, release_tag
from ._base import SERModel, audio_cfg, build_model, create_head


class TIMNet(SERModel):
    """Temporal-aware bi-directional multi-scale network.

    `[B, C, T]` -> bidirectional TAB encoder (merge add) -> WeightLayer over the levels -> `[B, F, T]`
    (`forward_features`) -> global average pool -> `[B, F]` (pre-logits) -> Linear.

    TIM-Net applies the weight layer to the per-level time averages; the weight layer and the average
    commute, so applying it to the full sequences gives the same logits and keeps frame features for
    `head="gmm"`.

    Args:
        num_classes: classes (default 7, EMODB).
        in_chans: input channels `C` (39 MFCC).
        filters: TAB width `F`.
        depth: TAB levels `n` (8; 10 for IEMOCAP-length input).
        kernel_size: causal kernel size.
        drop_rate: SpatialDropout1d probability in the TABs.
        residual: TAB residual, `"mul"` or `"add"`.
        conv_style: `"standard"` or `"bottleneck"` TABs.
        act_layer: TAB activation name.
        norm_layer: `"batchnorm_keras"` (eps 1e-3, momentum 0.01, as the Keras release), `"batchnorm"`,
            `"layernorm"`.
        share_weights: one stem and stack for both directions (seed TIM) instead of one per direction.
        stem_norm: BatchNorm + ReLU after the 1x1 stem.
        weighted: fuse the levels with the WeightLayer; False uses the last level `fwd_n + bwd_n`.
        head: `"default"` (pool + Linear) or `"gmm"`.
        gmm_components: components of the GMM head.
        check_finite: refuse NaN/Inf input.
    """

    def __init__(
            self,
            num_classes: int = 7,
            in_chans: int = 39,
            filters: int = 39,
            depth: int = 8,
            kernel_size: int = 2,
            drop_rate: float = 0.1,
            residual: str = 'mul',
            conv_style: str = 'standard',
            act_layer: str = 'relu',
            norm_layer: str = 'batchnorm_keras',
            share_weights: bool = False,
            stem_norm: bool = False,
            weighted: bool = True,
            head: str = 'default',
            gmm_components: int = 8,
            check_finite: bool = False,
    ):
        super().__init__(num_classes, in_chans, check_finite)
        self.depth = depth
        self.num_features = filters
        self.tim = TIMEncoder(
            in_chans, filters, depth, bidirectional=True, share_weights=share_weights, merge='add',
            stem_norm=stem_norm, aggregation='all', fusion='weight' if weighted else 'last',
            act_layer=act_layer, norm_layer=norm_layer, kernel_size=kernel_size, dropout=drop_rate,
            residual=residual, conv_style=conv_style)
        self.head = create_head(head, filters, num_classes, gmm_components, lambda: PoolHead(filters, num_classes))

    def forward_features(self, x):
        """`[B, C, T] -> [B, F, T]`."""
        self._check_input(x)
        return self.tim(x)


_PAPER = dict(
    paper_name='Temporal Modeling Matters: A Novel Temporal Emotional Modeling Approach for Speech Emotion Recognition',
    paper_ids='arXiv:2211.08233', origin_url='https://github.com/Jiaxin-Ye/TIM-Net_SER')

#: per pretrained tag of timnet: the constructor arguments and the feature settings of the release
TIMNET_RELEASE_INFO = {
    release_tag(name): dict(model_args=dict(depth=info['depth'], num_classes=len(info['labels'])),
                            metadata=release_metadata(name))
    for name, info in TIMNET_RELEASES.items()
}

default_cfgs = generate_default_cfgs({
    'timnet': audio_cfg(**_PAPER, license='mit'),
    **{
        f'timnet.{release_tag(name)}': audio_cfg(
            **_PAPER, license='mit', num_classes=len(info['labels']), label_names=tuple(info['labels']),
            description=f'TIM-Net authors\' Keras release {name} ({info["corpus"]}, 10 fold models '
                        f'10-fold_weights_best_{{1..10}}.hdf5, KFold seed {info["kfold_seed"]}); give one file with '
                        f'pretrained_cfg_overlay=dict(file=PATH)')
        for name, info in TIMNET_RELEASES.items()
    },
    'tim': audio_cfg(),
})


@register_model
def timnet(pretrained: bool = False, **kwargs) -> TIMNet:
    """Official TIM-Net: separate weights per direction, Keras BatchNorm settings, residual mul."""
    return build_model(TIMNet, 'timnet', pretrained, release_info=TIMNET_RELEASE_INFO, **kwargs)


@register_model
def tim(pretrained: bool = False, **kwargs) -> TIMNet:
    """Seed TIM baseline: shared-weight bidirectional encoder, PyTorch BatchNorm."""
    kwargs.setdefault('share_weights', True)
    kwargs.setdefault('norm_layer', 'batchnorm')
    return build_model(TIMNet, 'tim', pretrained, **kwargs)
