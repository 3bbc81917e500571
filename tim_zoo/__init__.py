"""tim_zoo: a PyTorch model zoo of temporal speech emotion recognition models (TIM-Net family)."""
from . import layers, models, weights
from ._factory import (
    convert_keras, create_model, create_model_for_frames, is_model, list_models, list_pretrained_weights, load_checkpoint,
)
from .complexity import count_macs, count_params
from .exceptions import (
    AudioError, CheckpointMismatchError, ConfigurationError, DatasetError, InputDtypeError, InputShapeError,
    NonFiniteInputError, TimZooError, UnknownArgumentError, UnknownModelError, UnsafeFileError, WeightFileError, WeightsNotFoundError,
)
from .inference import EmotionRecognizer, Prediction, Segment
from .models import SERModel
from .research import load_research_checkpoint
from .version import __version__
from .weights import load_weights, save_checkpoint, save_for_hub, weights_dir

__all__ = [
    'AudioError', 'CheckpointMismatchError', 'ConfigurationError', 'DatasetError', 'EmotionRecognizer',
    'InputDtypeError', 'InputShapeError', 'NonFiniteInputError', 'Prediction', 'SERModel', 'Segment', 'TimZooError',
    'UnknownArgumentError', 'UnknownModelError', 'UnsafeFileError', 'WeightFileError', 'WeightsNotFoundError', '__version__', 'convert_keras',
    'count_macs', 'count_params', 'create_model', 'create_model_for_frames', 'is_model', 'layers', 'list_models', 'load_checkpoint', 'list_pretrained_weights',
    'load_research_checkpoint', 'load_weights', 'models', 'save_checkpoint', 'save_for_hub', 'weights_dir',
]
