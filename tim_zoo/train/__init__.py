"""Training and evaluation engine: recipes, protocols, fine-tuning, resumable runs.

`tim-zoo train --help` (or `python -m tim_zoo.train`) for the command line.
"""
from .config import TrainConfig
from .engine import StopTraining, predict, train_split
from .init_hooks import init_gmm_heads
from .optim import build_optimizer, build_scheduler, freeze, freeze_batch_norm, param_groups
from .protocols import Split, make_splits
from .recipes import RECIPES, get_recipe
from .report import repeats_summary, save_plots, split_summary
from .run import create_training_model, run_training
from .scoring import evaluate_model

__all__ = [
    'RECIPES', 'Split', 'StopTraining', 'TrainConfig', 'build_optimizer', 'build_scheduler', 'create_training_model',
    'evaluate_model', 'freeze', 'freeze_batch_norm', 'get_recipe', 'init_gmm_heads', 'make_splits', 'param_groups', 'predict', 'repeats_summary', 'run_training', 'save_plots',
    'split_summary', 'train_split',
]
