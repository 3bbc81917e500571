"""Reading and writing weight files, knowing no model family: tim_zoo checkpoints, PyTorch state dicts, Keras
layers, and where published weights are found (`find_weight_file`, `weights_dir`)."""
from .checkpoint import read_checkpoint, save_checkpoint, tensor_hash
from .hub import find_weight_file, home_dir, weights_dir
from .hub_folder import save_for_hub
from .keras import KerasWeights, read_keras_weights
from .load import apply_metadata, apply_state_dict, load_weights, read_weight_file

__all__ = [
    'KerasWeights', 'apply_metadata', 'apply_state_dict', 'find_weight_file', 'home_dir',
    'load_weights', 'read_checkpoint', 'read_keras_weights', 'read_weight_file',
    'save_checkpoint', 'save_for_hub', 'tensor_hash', 'weights_dir',
]
