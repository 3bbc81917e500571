"""The model of a training run: built for the data's classes, channels and frames, from initial weights where the
run names them (`--init`), with its frozen parts; and the check, before any data, that those weights fit it."""
import warnings
from dataclasses import replace

import torch

from .._factory import create_model_for_frames
from .._utils import chosen_for_the_caller
from ..exceptions import ConfigurationError, TimZooError
from ..weights.legacy import legacy_model_args
from .builders import builder_args, model_builder
from .config import TrainConfig
from .init_file import init_weight_file, recorded_model
from .initial_weights import load_initial_weights
from .optim import freeze

#: the model arguments the data sets (a run refuses them as model arguments)
FROM_DATA = ('num_classes', 'in_chans', 'seq_len')
#: the input length of the stand-in model `check_init_fits` builds for weights whose model takes any length
_ANY_LENGTH = 188


def create_training_model(cfg: TrainConfig, num_classes: int, in_chans: int, frames: int, label_names=None):
    """The model of `cfg` for this data: classes, channels and (fixed-length heads) frames; initial
    weights from `cfg.init` (its classifier rows matched to `label_names` by name); `cfg.freeze` applied."""
    builder = model_builder(cfg.model)
    try:
        if builder is not None:
            with chosen_for_the_caller(dict(seq_len=frames)):        # the engine's, for any function with seq_len
                model = builder[1](**training_builder_args(cfg, num_classes, in_chans, frames))
        else:
            model = create_model_for_frames(cfg.model, frames, num_classes=num_classes, in_chans=in_chans,
                                            **_registered_model_args(cfg, num_classes, in_chans, frames))
    except TypeError as e:                              # a value of the wrong type (e.g. --model-arg depth=abc)
        if isinstance(e, TimZooError) or not cfg.model_args:
            raise                                       # no argument of the user's: a bug, shown as one
        raise ConfigurationError(f'{cfg.model} cannot be built with model arguments {cfg.model_args}: {e}') from e
    if not isinstance(model, torch.nn.Module):
        raise ConfigurationError(f'{cfg.model} returned a {type(model).__name__}, not a torch.nn.Module')
    if cfg.init:
        load_initial_weights(model, cfg, label_names)
    if label_names is not None:
        model.label_names = list(label_names)
    freeze(model, cfg.freeze)
    return model


def _registered_model_args(cfg: TrainConfig, num_classes: int, in_chans: int, frames: int) -> dict:
    from_data = sorted(set(FROM_DATA) & set(cfg.model_args))
    if from_data:
        raise ConfigurationError(f'model argument {", ".join(from_data)}: set from the data ({num_classes} classes, '
                                 f'{in_chans} channels, {frames} frames); drop it')
    kwargs = dict(cfg.model_args)
    if cfg.dropout is not None:
        kwargs.setdefault('drop_rate', cfg.dropout)
    return legacy_model_args(cfg.model, kwargs, cfg.model_defaults)    # after drop_rate, which older ones follow


def training_builder_args(cfg: TrainConfig, num_classes: int, in_chans: int, frames: int) -> dict:
    """The arguments `cfg.model`'s builder function builds the run's model with (`builders.builder_args`)."""
    return builder_args(model_builder(cfg.model)[1], cfg.model_args, num_classes, in_chans, frames, cfg.dropout)


def checkpoint_builder(cfg: TrainConfig, num_classes: int, in_chans: int, frames: int) -> dict:
    """`builder` and `builder_args` for the run's checkpoints of a model built by a function (empty for a tim_zoo
    model, whose checkpoints name its architecture)."""
    builder = model_builder(cfg.model)
    if builder is None:
        return {}
    return dict(builder=builder[0], builder_args=training_builder_args(cfg, num_classes, in_chans, frames))


def check_init_fits(cfg: TrainConfig) -> None:
    """Refuse, before any data is read, initial weights (`cfg.init`) whose body the run's model cannot take: saved
    from another architecture (`--init at_tim` with `--model timnet`, a Keras release for another model) or with other arguments; the error names the flags that build theirs. The run's model is built at the
    weights' own classes, channels and length, so that only what the data does not set is compared. Weights that
    record no architecture and channels (a bare state dict, a builder function's), a run of a builder function of
    one's own, and model arguments the data sets are left to the run, which loads the weights into its model."""
    path = init_weight_file(cfg.init)
    if not isinstance(cfg.model, str) or ':' in cfg.model or set(FROM_DATA) & set(cfg.model_args):
        return
    args = recorded_model(path)[1]
    if 'in_chans' not in args:
        return
    with warnings.catch_warnings():                    # a new classifier, another length: the run says so
        warnings.simplefilter('ignore')
        create_training_model(replace(cfg, freeze=[]), args['num_classes'], args['in_chans'],
                              args.get('seq_len') or _ANY_LENGTH)
