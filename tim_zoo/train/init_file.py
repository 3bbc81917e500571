"""The file of a run's initial weights (`TrainConfig.init`, `--init`) and the model it records."""
from pathlib import Path
from typing import Optional, Tuple

from .._factory import create_model, list_models, list_pretrained_weights
from ..exceptions import ConfigurationError
from ..models._base import DEFAULT_TAGS
from ..models.timnet import read_keras_timnet
from ..models.timnet_releases import TIMNET_RELEASES, file_sha256, find_release, published_release
from ..weights import read_checkpoint
from ..weights.load import KERAS_SUFFIXES


def init_weight_file(init: str) -> Path:
    """The weight file of initial weights `init` (`TrainConfig.init`, `--init`): a path, or a pretrained tag
    (`tim-zoo weights` lists them; a model name alone is its default tag, as `create_model(name,
    pretrained=True)` takes it) whose file is where it belongs."""
    path = Path(init)
    if path.is_file():
        return path
    tag = f'{init}.{DEFAULT_TAGS[init]}' if init in DEFAULT_TAGS else init
    if tag not in list_models(pretrained=True):
        raise ConfigurationError(f'no weight file at {init} (--init), nor a pretrained tag of that name (tim-zoo '
                                 f'weights lists them)')
    row = next(r for r in list_pretrained_weights(tag) if r['name'] == tag)
    if row['found'] is None or row['problem']:
        create_model(tag, pretrained=True)                # says why and what to do, as for any load of the tag
        raise ConfigurationError(f'--init {init}: {row["problem"] or "no weight file for " + tag}')
    return Path(row['found'])


def recorded_model(path: Path) -> Tuple[Optional[str], dict]:
    """`(architecture, constructor arguments)` that weight file `path` records (a Keras release: `timnet`'s), or
    `(None, {})` where it records none (a bare state dict, a builder function's checkpoint)."""
    if path.suffix.lower() in KERAS_SUFFIXES:
        return 'timnet', read_keras_timnet(path).model_args
    if path.suffix.lower() != '.safetensors':
        return None, {}
    meta = read_checkpoint(path, verify=False)[1] or {}
    args = meta.get('model_args') or {}
    return (meta['architecture'], args) if meta.get('architecture') and args.get('num_classes') else (None, {})


def init_architecture(init: str) -> Optional[str]:
    """The tim_zoo model that initial weights `init` were saved from, where their file says (`recorded_model`)."""
    path = init_weight_file(init)
    return 'timnet' if path.suffix.lower() in KERAS_SUFFIXES else recorded_model(path)[0]


def recorded_feature_settings(init: str) -> dict:
    """The feature settings initial weights `init` record (a tim_zoo checkpoint's or tag's `feature_settings`; a Keras
    release file in its release folder: the authors' features), or {} where they record none."""
    path = init_weight_file(init)
    if path.suffix.lower() in KERAS_SUFFIXES:         # as EmotionRecognizer.from_keras knows its release
        release = find_release(path) or published_release(file_sha256(path))[0]
        return dict(mean_signal_length=TIMNET_RELEASES[release]['mean_signal_length'], level='none',
                    order=1) if release else {}
    if path.suffix.lower() != '.safetensors':
        return {}
    settings = dict((read_checkpoint(path, verify=False)[1] or {}).get('feature_settings') or {})
    if settings:                                      # written before levels were recorded: as read (from_settings)
        settings.setdefault('level', 'none')
    return settings
