"""Published and native weights: the TIM-Net Keras releases, tim_zoo checkpoints, checked loading."""
from .checkpoint import load_checkpoint, read_checkpoint, save_checkpoint, tensor_hash
from .keras import KerasTIMNet, read_keras_timnet
from .load import apply_state_dict, load_weights, model_args_from_weights
from .releases import TIMNET_RELEASES, release_metadata

__all__ = [
    'KerasTIMNet', 'TIMNET_RELEASES', 'apply_state_dict', 'load_checkpoint', 'load_weights',
    'model_args_from_weights', 'read_checkpoint', 'read_keras_timnet', 'release_metadata', 'save_checkpoint',
    'tensor_hash',
]
