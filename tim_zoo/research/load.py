"""`load_research_checkpoint`: a research checkpoint (state dict, module or pickled whole model) into the registered
model, built with the research `Args` and what the tensors fix."""
import difflib
import inspect
import re
import typing
import warnings
import zipfile
from pathlib import Path
from typing import Dict, List, Mapping, Optional, Tuple, Union

import torch
from timm.models import model_entrypoint
from torch import nn

from .._factory import create_model
from ..models.at_tim import unused_fusion_args
from ..exceptions import (
    CheckpointMismatchError, ConfigurationError, UnknownArgumentError, UnsafeFileError, WeightFileError,
)
from ..weights.load import TORCH_SUFFIXES, apply_state_dict, load_torch_file
from ..weights.pickled import (
    PickledObject, check_torch_archive, class_name, pickled_modules, pickled_state_dict, read_pickled_model,
)
from .names import (
    DROPPED, RESEARCH_ATTENTION, RESEARCH_CLASSES, _unknown_class_message, convert_research_state_dict, shape_args,
)

#: research `Args` field -> tim_zoo constructor argument (fields that only set training are in TRAINING_ARGS)
RESEARCH_ARGS = {
    'd_model': 'd_model', 'n_head': 'num_heads', 'n_layer': 'num_layers', 'dim_feed_forward': 'd_ff', 'd_ff': 'd_ff',
    'd_qkv': 'd_qkv', 'seq_len': 'seq_len', 'num_class': 'num_classes', 'dilation': 'depth', 'filters': 'filters',
    'feature_dim': 'in_chans', 'kernel_size': 'kernel_size', 'drop_rate': 'drop_rate',
    'attention_type': 'fusion', 'is_weight': 'weighted',
}
#: `Args` fields that set training or data, not the network: accepted and not used
TRAINING_ARGS = {
    'epochs', 'lr', 'batch_size', 'spilt_rate', 'weight_decay', 'patience', 'multi_type', 'pretrain_model_path',
    'mode', 'smooth',
    'optimizer_type', 'beta1', 'beta2', 'random_seed', 'model_type', 'data_type', 'dataset_name', 'save', 'augment',
    'scheduler_type', 'gamma', 'step_size', 'warmup', 'initial_lr', 'version', 'is_cluster', 'is_mask',
    'load_weight', 'model_name',
}


def _read_research_args(args) -> dict:
    """Research `Args` as a dict: a mapping, an object with attributes (their `Args`), or a `config/*.yml` path."""
    if args is None:
        return {}
    if isinstance(args, (str, Path)):
        path = Path(args)
        if not path.is_file():
            raise ConfigurationError(f'no research configuration file at {path}')
        try:
            import yaml
        except ImportError as e:
            raise ConfigurationError('reading a research config/*.yml file needs PyYAML: pip install pyyaml') from e
        loaded = yaml.safe_load(path.read_text(encoding='utf-8'))
        if not isinstance(loaded, dict):
            raise ConfigurationError(f'{path} holds no mapping of research Args fields')
        return loaded
    if isinstance(args, Mapping):
        return dict(args)
    return {k: v for k, v in vars(args).items() if not k.startswith('_')}


#: research classes built on the research `CausalConv`, whose level fusion `is_weight` chooses
CAUSAL_CONV_CLASSES = ('TIM', 'Transformer_TIM', 'MLTransformer_TIM', 'CNN_Transformer', 'CNN_ML_Transformer')


def _translate(research: dict, model_params: set, research_class: str, from_file: set = frozenset()
               ) -> Tuple[dict, List[str]]:
    """Research `Args` fields -> tim_zoo arguments the model takes; tim_zoo names pass through. Returns the
    arguments and notes on fields that set nothing here. Unknown names are an error when given as keywords, a note
    when they come from an `Args` object or file (`from_file`: the research code wrote fields of its own over time)."""
    research = dict(research)
    out, notes = {}, []
    order = research.pop('order', None)
    if order is not None:
        out['in_chans'] = out['filters'] = 13 * int(order)        # as the research Args: filters follow order
    if 'd_ff' in research and 'dim_feed_forward' in research and research['d_ff'] != research['dim_feed_forward']:
        notes.append(f'dim_feed_forward={research["dim_feed_forward"]} ignored: d_ff={research["d_ff"]} is the '
                     f'field the research Args uses')
        research.pop('dim_feed_forward')
    unknown = []
    for key, value in research.items():
        if key in TRAINING_ARGS:
            continue
        if key in RESEARCH_ARGS:
            target = RESEARCH_ARGS[key]
            if key == 'is_weight' and research_class not in CAUSAL_CONV_CLASSES:
                continue                                  # the research class has no CausalConv to read it
            if key == 'attention_type':
                if value not in ('MH', 'AF'):
                    raise ConfigurationError(f'attention_type must be "MH" or "AF" (research Args), got {value!r}')
                value = 'attention' if value == 'MH' else 'aft_local'
            if target in model_params:
                out[target] = value
        elif key in model_params:
            out[key] = value
        elif key in from_file:
            notes.append(f'{key}={value!r} of the research Args is not known here and was not used')
        else:
            unknown.append(key)
    if unknown:
        names = sorted(set(RESEARCH_ARGS) | TRAINING_ARGS | model_params | {'order'})
        hints = [f'{u} (did you mean {", ".join(c)}?)' if (c := difflib.get_close_matches(u, names, n=2)) else u
                 for u in unknown]
        raise UnknownArgumentError(f'unknown research or model arguments: {"; ".join(hints)}')
    return out, notes


def _model_defaults(model_name: str) -> dict:
    """The constructor arguments of the class `model_name` builds, with their defaults."""
    cls = typing.get_type_hints(model_entrypoint(model_name))['return']
    return {k: p.default for k, p in inspect.signature(cls).parameters.items()}


def _pickled_args(root: PickledObject) -> dict:
    """Settings a pickled research model records beyond its tensors: the level fusion of `TIM`'s CausalConv
    (`is_weight`), the attention type, dropout rates."""
    out = {}
    for name, module in pickled_modules(root):
        cls = class_name(module)
        if cls == 'CausalConv' and 'is_weight' in module.state and class_name(root) in CAUSAL_CONV_CLASSES:
            out['weighted'] = bool(module.state['is_weight'])
        if cls in RESEARCH_ATTENTION:
            out['fusion'] = RESEARCH_ATTENTION[cls]
        if cls == 'SpatialDropout' and 'drop' in module.state:
            out['drop_rate'] = float(module.state['drop'])
    return out


def _research_class(name: Optional[str]) -> Optional[str]:
    if name is None:
        return None
    if name in RESEARCH_CLASSES:
        return name
    by_model = {v: k for k, v in RESEARCH_CLASSES.items()}
    if name in by_model:
        return by_model[name]
    raise ConfigurationError(_unknown_class_message(name))


def _read_source(source) -> Tuple[Dict[str, torch.Tensor], Optional[str], dict]:
    """`(state_dict, research class or None, settings)` of a state dict, a module, or a file."""
    if isinstance(source, nn.Module):
        return dict(source.state_dict()), type(source).__name__, {}
    if isinstance(source, Mapping):
        if not all(isinstance(v, torch.Tensor) for v in source.values()):
            raise WeightFileError('the state dict holds values that are not tensors')
        return dict(source), None, {}
    path = Path(source)
    if path.suffix.lower() not in TORCH_SUFFIXES:
        raise WeightFileError(f'{path}: a research checkpoint is a torch.save file ({", ".join(TORCH_SUFFIXES)})')
    if zipfile.is_zipfile(path):
        check_torch_archive(path)                          # a TorchScript archive is refused before torch sees it
    try:
        return load_torch_file(path), None, {}
    except UnsafeFileError:
        root = read_pickled_model(path)                      # a whole model: read as data, no code run
        return pickled_state_dict(root), class_name(root), _pickled_args(root)


def load_research_checkpoint(name: Optional[str], source: Union[str, Path, Mapping, nn.Module], args=None,
                             **research_args) -> nn.Module:
    """Build the tim_zoo model a research checkpoint holds and load its weights.

    Args:
        name: the research class (`"AT_DeltaTIM_v2"`) or tim_zoo name (`"at_deltatim_v2"`); None to take it from
            a pickled whole model, whose class names also give the attention type and `TIM`'s level fusion.
        source: a state dict, a `.pt`/`.pth` file holding a state dict or a whole pickled model
            (`torch.save(model)`, read without importing or running the research code), or the research module.
        args: the research `Args`: an object with its attributes, a mapping, or a path to a `config/*.yml` file.
        **research_args: research `Args` fields (`d_model`, `n_head`, `n_layer`, `dim_feed_forward` or `d_ff`,
            `d_qkv`, `seq_len`, `num_class`, `dilation` (TAB levels), `order`, `attention_type`, ...) or tim_zoo
            constructor arguments (`residual="mul"` for a checkpoint saved before the research TAB added its
            residual, in April 2023); they override `args`.

    Whatever the tensors' shapes fix (classes, levels, widths, frames, d_qkv, d_ff) is read from them; a given
    value that disagrees is replaced, with a warning. A plain state dict does not say its attention type: the
    shapes do (AFT-local has a position bias), other settings come from the arguments. Training-only fields
    (`lr`, `epochs`, ...) are accepted and not used.

    Raises:
        CheckpointMismatchError: tensors that are missing, unknown or of the wrong shape (all listed).
        UnsafeFileError: the pickle asks to run code.
    """
    state_dict, pickled_class, settings = _read_source(source)
    research_class = _research_class(name)
    if pickled_class in RESEARCH_CLASSES:
        if research_class is not None and research_class != pickled_class:
            raise CheckpointMismatchError(f'the checkpoint holds a {pickled_class} ({RESEARCH_CLASSES[pickled_class]}), '
                                          f'not a {research_class}')
        research_class = pickled_class
    if research_class is None:
        raise ConfigurationError(f'name the research model of this state dict (one of {", ".join(RESEARCH_CLASSES)}): '
                                 f'a state dict does not say which it is')
    model_name = RESEARCH_CLASSES[research_class]
    converted, dropped, unknown = convert_research_state_dict(research_class, state_dict)
    if unknown:
        raise CheckpointMismatchError(f'{len(unknown)} tensors of this checkpoint belong to no part of '
                                      f'{research_class}: {", ".join(unknown[:12])}' + (' ...' if len(unknown) > 12 else ''))
    params = set(_model_defaults(model_name))
    from_args = _read_research_args(args)
    given, notes = _translate({**from_args, **research_args}, params, research_class,
                              set(from_args) - set(research_args))
    fixed, ranges = shape_args(research_class, converted)
    kwargs = {**{k: v for k, v in settings.items() if k in params}, **given}
    for key, value in fixed.items():
        if key not in params:
            continue
        if key in kwargs and kwargs[key] != value:
            notes.append(f'{key}={kwargs[key]!r} given, but the weights have {key}={value!r}: using {value!r}')
        kwargs[key] = value
    for key, allowed in ranges.items():
        if key in kwargs and kwargs[key] not in allowed:
            raise CheckpointMismatchError(f'{key}={kwargs[key]} does not fit the weights ({allowed.start} to '
                                          f'{allowed.stop - 1})')
        if key not in kwargs:
            kwargs[key] = allowed.start
            notes.append(f'{key} {allowed.start} to {allowed.stop - 1} fit the weights; using {allowed.start} (pass '
                         f'{key}= for another)')
    mask = converted.pop('fusion.local_mask', None)
    if mask is not None:
        kwargs['aft_window'] = _aft_window(mask)
    if research_class == 'MultiTIM':
        kwargs.pop('depth', None)
    notes += _drop_unused_args(model_name, kwargs)
    for note in notes:
        warnings.warn(f'load_research_checkpoint({research_class}): {note}', stacklevel=2)
    model = create_model(model_name, **kwargs)
    tim = getattr(model, 'tim', None)
    if tim is not None and tim.weight_layer is None and 'tim.weight_layer.weight' in converted:
        converted.pop('tim.weight_layer.weight')
        dropped[next(k for k in state_dict if re.match(r'^(extractor|\w+FeatureExtractor)\.weight\.param$', k))] = \
            DROPPED['unweighted']
    apply_state_dict(model, converted, f'this {research_class} checkpoint (the model built with {model.init_args})',
                     allow_head_reset=False)
    model.research_dropped = dict(dropped)
    return model


def _drop_unused_args(model_name: str, kwargs: dict) -> List[str]:
    """Drop from `kwargs` the research `Args` fields the model does not use in its configuration (every `Args` carries
    `d_ff` and `seq_len`, whatever its `attention_type` or head), which the model would refuse; a note for each that
    was not the default."""
    unused = []
    if model_name in ('at_tim', 'at_deltatim', 'at_deltatim_v2', 'multitim'):
        fusion = kwargs.get('fusion', 'attention')
        unused += unused_fusion_args(fusion, kwargs.get('ffn', True))
        if model_name == 'multitim' and fusion == 'attention':
            unused.append((('seq_len',), 'multitim with attention fusion takes any length'))
    if model_name == 'set' and kwargs.get('layer_fusion', 'weight') == 'weight':
        unused.append((('seq_len',), 'set pools the layers of any length'))
    defaults = _model_defaults(model_name)
    notes = []
    for names, reason in unused:
        for name in names:
            if name in kwargs and kwargs.pop(name) != defaults.get(name):
                notes.append(f'{name} not used: {reason}')
    return notes


def _aft_window(mask: torch.Tensor) -> int:
    """The window `w` of a research AFT-local mask (`|t - t'| < w`), checked to be one."""
    mask = mask.to(torch.bool)
    w = int(mask[0].sum())
    idx = torch.arange(mask.shape[0])
    if not torch.equal(mask, (idx[:, None] - idx[None, :]).abs() < w):
        raise CheckpointMismatchError('the AFT-local mask of this checkpoint is not a local window |t - t\'| < w')
    return w if w < mask.shape[0] else max(w, 128)          # a window as long as the input: any w >= T is it
