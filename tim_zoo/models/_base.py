"""What every tim_zoo model shares: timm's classifier interface, input checks, head choice."""
import functools
import inspect
import warnings
from typing import Any, Callable, Dict, Optional

import torch
from timm.models import build_model_with_cfg, resolve_pretrained_cfg
from torch import nn

from .._validation import check_choice, check_sequence_input
from ..exceptions import ConfigurationError
from ..layers import ClassifierHead, GMMClusteringHead


class SERModel(nn.Module):
    """Base class of the speech emotion recognition models.

    Input `[B, in_chans, T]`, output logits `[B, num_classes]`. `forward_features` returns
    frame features (`[B, num_features, T']` for every model but `set_official`) and
    `forward_head(x, pre_logits=False)` maps them to logits, or to the classifier's input
    (width `head_hidden_size`) with `pre_logits=True`.

    Attributes:
        fixed_len: the exact frame count the model needs (heads that flatten time), else None.
        min_len, max_len: the range of frame counts the model accepts.
        check_finite: refuse NaN/Inf input with `NonFiniteInputError`.
    """

    head: ClassifierHead

    def __init_subclass__(cls, **kwargs):
        """Record the full constructor arguments (defaults included) of every model as `init_args`,
        so a checkpoint can rebuild the model from its metadata alone."""
        super().__init_subclass__(**kwargs)
        init = cls.__dict__.get('__init__')
        if init is None:
            return
        signature = inspect.signature(init)

        @functools.wraps(init)
        def recording_init(self, *args, **kw):
            if not hasattr(self, '_recording_args'):
                bound = signature.bind(self, *args, **kw)
                bound.apply_defaults()
                object.__setattr__(self, '_recording_args', {k: v for k, v in bound.arguments.items() if k != 'self'})
            init(self, *args, **kw)

        cls.__init__ = recording_init

    @property
    def init_args(self) -> Dict[str, Any]:
        """Constructor arguments that rebuild this architecture (`num_classes` as it is now)."""
        return dict(self._recording_args, num_classes=self.num_classes)

    def __init__(self, num_classes: int, in_chans: int, check_finite: bool = False):
        super().__init__()
        self.num_classes = num_classes
        self.in_chans = in_chans
        self.check_finite = check_finite
        self.fixed_len: Optional[int] = None
        self.min_len = 1
        self.max_len: Optional[int] = None
        self.model_name = type(self).__name__
        self.label_names: Optional[list] = None

    @property
    def head_hidden_size(self) -> int:
        """Width of the pre-logits features."""
        return self.head.pre_logits_dim

    def _check_input(self, x: torch.Tensor) -> None:
        if torch.jit.is_scripting():
            return
        check_sequence_input(
            x, in_chans=self.in_chans, seq_len=self.fixed_len, min_len=self.min_len, max_len=self.max_len,
            check_finite=self.check_finite, model_name=self.model_name, dtype=next(self.parameters()).dtype)

    def get_classifier(self) -> nn.Module:
        return self.head.fc

    def reset_classifier(self, num_classes: int) -> None:
        """Replace the final classifier by a new one with `num_classes` outputs (0: identity)."""
        self.head.reset(num_classes)
        self.num_classes = num_classes
        if self.label_names is not None and len(self.label_names) != num_classes:
            self.label_names = None

    def load_pretrained(self, path) -> None:
        """timm's custom-load hook: load a weight file (Keras `.hdf5`, `.safetensors`, `.pt`) with checks."""
        from ..weights import load_weights
        load_weights(self, path)

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError

    def forward_head(self, x: torch.Tensor, pre_logits: bool = False) -> torch.Tensor:
        return self.head(x, pre_logits=pre_logits)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.forward_head(self.forward_features(x))


def create_head(
        head: str,
        in_features: int,
        num_classes: int,
        gmm_components: int,
        default: Callable[[], ClassifierHead],
) -> ClassifierHead:
    """`head="default"`: the model's own head; `head="gmm"`: a GMMClusteringHead on the frame features."""
    check_choice('head', head, ('default', 'gmm'))
    if head == 'gmm':
        return GMMClusteringHead(in_features, num_classes, num_components=gmm_components)
    return default()


def audio_cfg(**kwargs) -> dict:
    """A timm pretrained config for an audio model.

    Image-only defaults of timm's `PretrainedCfg` (input_size 3x224x224, ImageNet mean/std, crop) are set
    to None so they are dropped from `model.pretrained_cfg`; num_classes stays None unless weights fix it.
    `custom_load` routes every weight file through `SERModel.load_pretrained` and its checks.
    """
    cfg = dict(
        input_size=None, mean=None, std=None, interpolation=None, crop_pct=None, crop_mode=None,
        num_classes=None, classifier='head.fc', license='apache-2.0', custom_load=True,
    )
    cfg.update(kwargs)
    return cfg


def _check_tag_fits_file(variant: str, tag: str, info: dict, file, from_file: dict, given: set) -> None:
    """A tag's weights must be the tag's: the release the file's folder names, and its depth and classes (unless the
    caller chose `num_classes` to fine-tune a new head)."""
    from ..weights.releases import find_release

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
                f'file; use the tag of its release' + (', or pass num_classes to fine-tune a new head'
                                                       if key == 'num_classes' else ''))


def build_model(model_cls, variant: str, pretrained: bool = False, release_info=None, **kwargs) -> SERModel:
    """Build a registered model with timm's builder.

    `release_info` maps pretrained tags to `dict(model_args=..., metadata=...)`: the constructor
    arguments the tag's weights need (e.g. depth) and what `model.pretrained_cfg` should also carry.
    With `pretrained=True` the weight file's own shape (depth, classes, widths) fills in the arguments
    the caller did not give; a model without weights is refused instead of silently left random.
    """
    if kwargs.get('pretrained_cfg_overlay'):
        # timm resets custom_load when an overlay names a file; every file goes through load_pretrained's checks
        kwargs['pretrained_cfg_overlay'] = dict(dict(custom_load=True), **kwargs['pretrained_cfg_overlay'])
    cfg = resolve_pretrained_cfg(
        variant, pretrained_cfg=kwargs.get('pretrained_cfg'), pretrained_cfg_overlay=kwargs.get('pretrained_cfg_overlay'))
    info = (release_info or {}).get(cfg.tag or '', {})
    given = set(kwargs)
    for key, value in info.get('model_args', {}).items():
        kwargs.setdefault(key, value)
    if pretrained:
        if not (cfg.has_weights or cfg.state_dict is not None):
            raise ConfigurationError(
                f'{variant}{"." + cfg.tag if cfg.tag else ""} has no weight file to load (pretrained=True); build it with '
                f'pretrained=False, or give the file: pretrained_cfg_overlay=dict(file=PATH)')
        if cfg.file:
            from ..weights import model_args_from_weights
            from_file = model_args_from_weights(cfg.file)
            _check_tag_fits_file(variant, cfg.tag, info, cfg.file, from_file, given)
            for key, value in from_file.items():
                kwargs.setdefault(key, value)
    model = build_model_with_cfg(model_cls, variant, pretrained, **kwargs)
    model.model_name = variant
    if info.get('metadata'):
        model.pretrained_cfg['feature_settings'] = dict(info['metadata'])
    if pretrained and model.label_names is None and cfg.label_names and len(cfg.label_names) == model.num_classes:
        model.label_names = list(cfg.label_names)
    from ..weights.load import KERAS_SUFFIXES
    if pretrained and cfg.file and str(cfg.file).lower().endswith(KERAS_SUFFIXES) \
            and not model.pretrained_cfg.get('feature_settings'):
        warnings.warn(
            f'{cfg.file} is not inside a release folder (such as EMODB_46/) and {variant} names no release, so its '
            f'label names and feature settings are unknown (labels are class_0..class_{model.num_classes - 1}); '
            f'name the release with its tag: create_model("{variant}.emodb_46", pretrained=True, ...)', stacklevel=3)
    return model
