"""TIM-Net (Ye et al., ICASSP 2023) and the seed's TIM baseline, and the authors' Keras weights."""
import re
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Dict, Optional

import numpy as np
import torch
from timm.models import generate_default_cfgs, register_model

from ..exceptions import ConfigurationError, WeightFileError
from ..layers import PoolHead, TIMEncoder
from ..weights import KerasWeights, read_keras_weights
from ..weights.load import KERAS_SUFFIXES
from .timnet_releases import (
    BUNDLED_CHECKPOINT, TIMNET_RELEASES, file_sha256, find_release, published_fold, published_release, release_file,
    release_metadata, release_published, release_tag,
)
from ._base import DESIGN_FEATURES, GMM_COMPONENTS, SEED_TAB_DEFAULTS, SERModel, create_head
from ._build import audio_cfg, build_model
from ._zoo import PACKAGED_NOTE, ZOO_TAG, held_out_words, load_zoo_tag_by_default, zoo_default_cfgs

_BN_KEYS = {'gamma': 'weight', 'beta': 'bias', 'moving_mean': 'running_mean', 'moving_variance': 'running_var'}


@dataclass
class KerasTIMNet:
    """A Keras TIM-Net file converted to `timnet`'s state dict, with the shape it fixes."""
    state_dict: Dict[str, torch.Tensor]
    depth: int
    num_classes: int
    in_chans: int
    filters: int
    keras_version: str
    sha256: str

    @property
    def model_args(self) -> dict:
        return dict(depth=self.depth, num_classes=self.num_classes, in_chans=self.in_chans, filters=self.filters)


def read_keras_timnet(path) -> KerasTIMNet:
    """Read a TIM-Net authors' Keras weight file (`10-fold_weights_best_i.hdf5`) into `timnet`'s layout.

    Layout (MODELS.md): layer counters differ between files, so layers are matched by kind and position in
    `layer_names`, never by number: `conv1d*`: forward stem, backward stem, then per level forward conv1,
    backward conv1, forward conv2, backward conv2; `batch_normalization*`: per level forward bn1, backward bn1,
    forward bn2, backward bn2; `weight_layer` kernel `[n, 1]`; `dense` kernel `[F, classes]` and bias.

    Raises:
        WeightFileError: the file is missing, unreadable (truncated, not HDF5), or not a TIM-Net release.
    """
    keras = read_keras_weights(path)
    return _timnet_from_keras(keras)


def _timnet_from_keras(keras: KerasWeights) -> KerasTIMNet:
    path = keras.path
    convs = keras.layers(r'conv1d(_\d+)?')
    bns = keras.layers(r'batch_normalization(_\d+)?')
    wls = keras.layers(r'weight_layer(_\d+)?')
    denses = keras.layers(r'dense(_\d+)?')
    depth = len(bns) // 4
    problems = []
    if depth < 1 or len(bns) != 4 * depth:
        problems.append(f'{len(bns)} batch_normalization layers (expected 4 per level)')
    if len(convs) != 2 + 4 * depth:
        problems.append(f'{len(convs)} conv1d layers (expected 2 stems + 4 per level = {2 + 4 * depth})')
    if len(wls) != 1:
        problems.append(f'{len(wls)} weight_layer layers (expected 1)')
    if len(denses) != 1:
        problems.append(f'{len(denses)} dense layers (expected 1)')
    if problems:
        raise WeightFileError(f'{path} is not a TIM-Net Keras release: it has ' + '; '.join(problems))
    try:
        return _convert(keras, convs, bns, wls[0], denses[0], depth)
    except KeyError as e:
        raise WeightFileError(f'{path} is not a readable TIM-Net Keras release (a layer lacks {e})') from e


def _convert(keras: KerasWeights, convs, bns, wl_layer, dense_layer, depth) -> KerasTIMNet:
    # tim_zoo runs both directions as two channel groups: every encoder tensor is the forward
    # direction's followed by the backward direction's (BiTemporalEncoder).
    w = keras.weights
    sd = {}
    prefix = 'tim.encoder.'

    def conv(fwd_layer, bwd_layer, key):
        fwd, bwd = w[fwd_layer], w[bwd_layer]
        kernel = np.concatenate([fwd['kernel'], bwd['kernel']], axis=2)          # [k, in, 2*out]
        sd[key + '.weight'] = torch.from_numpy(np.ascontiguousarray(kernel.transpose(2, 1, 0)))  # [2*out, in, k]
        sd[key + '.bias'] = torch.from_numpy(np.concatenate([fwd['bias'], bwd['bias']]))

    def bn(fwd_layer, bwd_layer, key):
        fwd, bwd = w[fwd_layer], w[bwd_layer]
        for k_name in fwd:
            sd[f'{key}.{_BN_KEYS[k_name]}'] = torch.from_numpy(np.concatenate([fwd[k_name], bwd[k_name]]))

    conv(convs[0], convs[1], prefix + 'stem.conv')
    for j in range(depth):
        c = convs[2 + 4 * j: 6 + 4 * j]
        b = bns[4 * j: 4 * j + 4]
        for unit in (0, 1):
            base = f'{prefix}stack.blocks.{j}.convs.{unit}'
            conv(c[2 * unit], c[2 * unit + 1], base + '.conv')
            bn(b[2 * unit], b[2 * unit + 1], base + '.norm')
    wl = w[wl_layer]['kernel']
    if wl.shape != (depth, 1):
        raise WeightFileError(f'{keras.path}: weight_layer kernel has shape {wl.shape}, expected ({depth}, 1)')
    sd['tim.weight_layer.weight'] = torch.from_numpy(wl[:, 0].copy())
    dense = w[dense_layer]
    sd['head.fc.weight'] = torch.from_numpy(np.ascontiguousarray(dense['kernel'].T))
    sd['head.fc.bias'] = torch.from_numpy(dense['bias'])
    stem = sd[prefix + 'stem.conv.weight']
    return KerasTIMNet(
        state_dict=sd, depth=depth, num_classes=int(dense['kernel'].shape[1]), in_chans=int(stem.shape[1]),
        filters=int(stem.shape[0]) // 2, keras_version=keras.keras_version, sha256=keras.sha256)


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
        share_weights: one stem and stack for both directions (seed TIM) instead of one per direction.
        stem_norm: BatchNorm + ReLU after the 1x1 stem.
        weighted: fuse the levels with the WeightLayer; False uses the last level `fwd_n + bwd_n`.
        head: `"default"` (pool + Linear) or `"gmm"`.
        gmm_components: mixture components of the GMM head (with `head="gmm"`; refused with the default head).
        check_finite: refuse NaN/Inf input.
        weight_init: `"keras"` (glorot_uniform kernels, zero biases, as the authors' Keras model: `timnet`'s),
            `"torch"` (PyTorch's defaults) or `"research"` (PyTorch's, with a standard normal weight layer, as the
            research code: the seed models'); every model takes it (`tim_zoo.layers.init_weights_`).
        **tab_kwargs: the `TemporalAwareBlock` arguments (`kernel_size`, `drop_rate`, `residual`, `conv_style`,
            `bottleneck_chans`, `act_layer`, `norm_layer`), passed to every TAB unchanged; `norm_layer` defaults to
            `"batchnorm_keras"` (eps 1e-3, momentum 0.01, as the Keras release).
    """

    __jit_unused_properties__ = SERModel.__jit_unused_properties__ + ['reads_keras_release']

    tab_defaults = dict(norm_layer='batchnorm_keras')
    default_weight_init = 'keras'

    def __init__(
            self,
            num_classes: int = 7,
            in_chans: int = 39,
            filters: int = 39,
            depth: int = 8,
            *,
            share_weights: bool = False,
            stem_norm: bool = False,
            weighted: bool = True,
            head: str = 'default',
            gmm_components: int = GMM_COMPONENTS,
            check_finite: bool = False,
            **tab_kwargs,
    ):
        super().__init__(num_classes, in_chans, check_finite)
        self.depth = depth
        self.num_features = filters
        self.tim = TIMEncoder(
            in_chans, filters, depth, bidirectional=True, share_weights=share_weights, merge='add',
            stem_norm=stem_norm, aggregation='all', fusion='weight' if weighted else 'last', **tab_kwargs)
        self.head = create_head(head, filters, num_classes, gmm_components, lambda: PoolHead(filters, num_classes))
        self.feature_info = self.tim.level_info('tim')
        self._stem_modules = self.tim.stem_modules('tim')

    def _forward_levels(self, x):
        """`[B, C, T]` -> frame features `[B, F, T]` and the `depth` levels `[B, F, T]`."""
        levels = self.tim.forward_levels(x)
        if self._pruned(levels):
            return levels[-1], levels
        return self.tim.fuse(levels), levels

    def _level_stages(self):
        return [(self.tim, self.tim.depth)]

    def _drop_fusion(self):
        self.tim.weight_layer = None

    @classmethod
    def read_weights(cls, path):
        """Also the authors' Keras `.hdf5` releases; a release folder in the path (`EMODB_46/`) gives their label
        names and feature settings."""
        if Path(path).suffix.lower() not in KERAS_SUFFIXES:
            return super().read_weights(path)
        keras = read_keras_timnet(path)
        return keras.state_dict, cls.keras_metadata(path, keras)

    @staticmethod
    def keras_metadata(path, keras) -> dict:
        """The metadata of Keras release file `path`, read as `keras` (`read_keras_timnet`): its arguments, and where
        its release is known (by folder or hash) label names, feature settings and the utterances it trained on."""
        meta = dict(architecture='timnet', model_args=keras.model_args, sha256=keras.sha256)
        release = find_release(path) or published_release(keras.sha256)[0]    # renamed or moved: known by its hash
        if release:
            settings = release_metadata(release)
            fold = published_fold(keras.sha256, release)
            meta.update(label_names=settings['label_names'], feature_settings=settings, published_fold=fold)
            if fold:                                       # the authors trained fold k's model on the other nine
                meta['trained_on'] = dict(corpus=settings['corpus'].lower(), protocol='kfold', split=f'fold{fold}',
                                          folds=10, split_seed=settings['kfold_seed'], val_fraction=0.0,
                                          whole_corpus=True)
        return meta

    @classmethod
    def tag_info(cls, tag: str) -> dict:
        return _RELEASE_INFO.get(_FOLD_SUFFIX.sub('', tag), {})

    @classmethod
    def check_pretrained(cls, variant, tag, info, path, meta, given) -> None:
        """A release tag's file must be that release's (folder, depth, classes); a Keras file outside a release
        folder and without a release tag loads with a warning that its labels and feature settings are unknown."""
        _check_tag_fits_file(variant, tag, info, path, meta.get('model_args') or {}, given)
        problem = check_weight_file(tag, path, meta.get('sha256'))
        if problem:
            raise ConfigurationError(f'{problem}. Put the right file there, or load this one without the tag: '
                                     f'create_model("{variant}", pretrained=True, pretrained_cfg_overlay=dict(file=PATH))')
        if not (info.get('metadata') or {}).get('release') and meta.get('published_fold', 0) is None:
            warnings.warn(f'{path} lies in a {find_release(path)} folder but is none of that release\'s published '
                          f'files (by its SHA-256): its label names and feature settings are taken from the folder '
                          f'name and may be wrong', stacklevel=5)
        if Path(path).suffix.lower() in KERAS_SUFFIXES and not meta.get('feature_settings') and not info.get('metadata'):
            classes = (meta.get('model_args') or {}).get('num_classes', 0)
            warnings.warn(
                f'{path} is not inside a release folder (such as EMODB_46/) and {variant} names no release, so its '
                f'label names and feature settings are unknown (labels are class_0..class_{classes - 1}); '
                f'name the release with its tag: create_model("{variant}.emodb_46", pretrained=True, ...)',
                stacklevel=5)

    @property
    def reads_keras_release(self) -> bool:
        """The authors' Keras files load into this model (separate weights per direction, as TIM-Net)."""
        return not self.tim.encoder.share_weights


_PAPER = dict(
    paper_name='Temporal Modeling Matters: A Novel Temporal Emotional Modeling Approach for Speech Emotion Recognition',
    paper_ids='arXiv:2211.08233', origin_url='https://github.com/Jiaxin-Ye/TIM-Net_SER')

def _check_tag_fits_file(variant: str, tag: str, info: dict, file, from_file: dict, given: set) -> None:
    """A tag's weights must be the tag's: the release the file's folder names, and its depth and classes (unless the
    caller chose `num_classes` to fine-tune a new head)."""
    if not tag or not info:
        return
    release = find_release(file)
    tagged = (info.get('metadata') or {}).get('release')
    if release and tagged and release != tagged:
        raise ConfigurationError(f'{file} is from the release {release}, but the tag {variant}.{tag} is {tagged}\'s: '
                                 f'use {variant}.{release.lower()}, or the {tagged} file')
    for key, value in info.get('model_args', {}).items():
        if key in from_file and from_file[key] != value and key not in given:
            raise ConfigurationError(
                f'{file} holds {key}={from_file[key]}, but {variant}.{tag} has {key}={value}: it is not that release\'s '
                f'file; use the tag of its release, or load it without a tag: create_model("{variant}", '
                f'pretrained=True, pretrained_cfg_overlay=dict(file=PATH))')


def check_weight_file(tag: str, path, sha256: Optional[str] = None) -> str:
    """What is wrong with `path` as the file of the release tag `tag` ('' when it is the published file, or when the
    release's files are not known by hash): another release's or fold's file of the same shape, or a modified one.
    `sha256`: the file's, when it was read already (else the file is hashed here)."""
    release = (_RELEASE_INFO.get(_FOLD_SUFFIX.sub('', tag), {}).get('metadata') or {}).get('release')
    if not release or Path(path).suffix.lower() not in KERAS_SUFFIXES:
        return ''
    fold = published_fold(sha256 or file_sha256(path), release)
    wanted = _FOLD_SUFFIX.search(tag)
    wanted = int(wanted.group(0)[5:]) if wanted else None
    if fold is None or (fold and wanted and fold != wanted):
        what = f'fold {wanted} file' if wanted else 'files'
        return (f'{path} is not the published {release} {what} (by its SHA-256): another release\'s or fold\'s file, '
                f'or a modified one')
    return ''


#: per release tag of timnet: the constructor arguments and the feature settings of the release
_RELEASE_INFO = {
    release_tag(name): dict(model_args=dict(depth=info['depth'], num_classes=len(info['labels'])),
                            metadata=release_metadata(name))
    for name, info in TIMNET_RELEASES.items()
}
_FOLD_SUFFIX = re.compile(r'_fold\d+$')

#: the pretrained tag of the model that ships inside tim_zoo (timnet's zoo tag)
BUNDLED_TAG = ZOO_TAG


def _release_cfg(name: str, info: dict, fold: int, alias: bool = False):
    what = (f'fold {fold} of the TIM-Net authors\' Keras release {name} ({info["corpus"]}); fold {fold}\'s test set '
            f'is fold {fold} of KFold(10, shuffle=True, random_state={info["kfold_seed"]})')
    return audio_cfg(
        **_PAPER, license='mit', file=release_file(name, fold), num_classes=len(info['labels']),
        label_names=tuple(info['labels']), notes=(release_published(name),),
        description=what + ('; the release tag loads fold 1 (another fold: its _fold<k> tag, or '
                            'pretrained_cfg_overlay=dict(file=PATH))' if alias else ''))


default_cfgs = generate_default_cfgs({
    'timnet': audio_cfg(**_PAPER, license='apache-2.0'),       # this implementation's, as every model's
    **{f'timnet.{release_tag(name)}': _release_cfg(name, info, 1, alias=True) for name, info in TIMNET_RELEASES.items()},
    **{f'timnet.{release_tag(name)}_fold{k}': _release_cfg(name, info, k)
       for name, info in TIMNET_RELEASES.items() for k in range(1, 11)},
    f'timnet.{BUNDLED_TAG}': audio_cfg(
        file=str(BUNDLED_CHECKPOINT), num_classes=7, label_names=TIMNET_RELEASES['EMODB_46']['labels'],
        license='apache-2.0', notes=(PACKAGED_NOTE,),
        description='timnet trained by tim_zoo on all 535 EMODB utterances (timnet.paper recipe, 188 frames), level '
                    '"peak"; the model tim-zoo predict uses by default; held-out accuracy of its recipe: '
                    + held_out_words(f'timnet.{BUNDLED_TAG}')),
})
default_cfgs.update(zoo_default_cfgs('tim'))
load_zoo_tag_by_default(default_cfgs, 'timnet')      # its zoo tag is the bundled model
DESIGN_FEATURES['timnet'] = {k: v for k, v in release_metadata('EMODB_46').items()
                             if k in ('sample_rate', 'n_mfcc', 'hop_length', 'mean_signal_length', 'frames', 'level')}
DESIGN_FEATURES['timnet']['order'] = 1


@register_model
def timnet(pretrained: bool = False, **kwargs) -> TIMNet:
    """Official TIM-Net: separate weights per direction, Keras BatchNorm settings, residual mul."""
    return build_model(TIMNet, 'timnet', pretrained, **kwargs)


@register_model
def tim(pretrained: bool = False, **kwargs) -> TIMNet:
    """Seed TIM baseline: shared-weight bidirectional encoder, PyTorch BatchNorm; as the research code, TABs with
    `residual="add"`, frame-wise spatial dropout (`drop_mode="frame"`) and its initialisation (`weight_init="research"`:
    PyTorch's, with a standard normal weight layer)."""
    args = dict(SEED_TAB_DEFAULTS, share_weights=True, norm_layer='batchnorm', weight_init='research')
    return build_model(TIMNet, 'tim', pretrained, defaults=args, **kwargs)
