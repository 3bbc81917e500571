"""Load the research group's PyTorch checkpoints (their repository `SER_depression`) into tim_zoo's models.

The research code saved state dicts and whole pickled models (`torch.save(model)`); its class names are the seed
models' names (`TIM`, `AT_DeltaTIM_v2`, ...). `load_research_checkpoint` converts either, by parameter names, into
the registered model, built with the research group's own settings (`Args`: `d_model`, `n_head`, ...) and with
whatever the tensors' shapes fix read from them. Nothing of the research code is imported or run: a pickled model is
read as data (`tim_zoo.weights.pickled`). `names.py` holds the name rules, `load.py` the loader.
"""
from .load import CAUSAL_CONV_CLASSES, RESEARCH_ARGS, TRAINING_ARGS, load_research_checkpoint
from .names import DROPPED, RESEARCH_ATTENTION, RESEARCH_CLASSES, convert_research_state_dict, shape_args

__all__ = ['CAUSAL_CONV_CLASSES', 'DROPPED', 'RESEARCH_ARGS', 'RESEARCH_ATTENTION', 'RESEARCH_CLASSES', 'TRAINING_ARGS',
           'convert_research_state_dict', 'load_research_checkpoint', 'shape_args']
