"""Load the research group's PyTorch checkpoints (their repository `SER_depression`) into tim_zoo's models.

The research code saved state dicts and whole pickled models (`torch.save(model)`); its class names are the seed
models' names (`TIM`, `AT_DeltaTIM_v2`, ...). `load_research_checkpoint` converts either, by parameter names, into
the registered model, built with the research group's own settings (`Args`: `d_model`, `n_head`, ...) and with
whatever the tensors' shapes fix read from them. Nothing of the research code is imported or run: a pickled model is
read as data (`tim_zoo.weights.pickled`).
"""
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

from ._factory import create_model
from .exceptions import (
    CheckpointMismatchError, ConfigurationError, UnknownArgumentError, UnsafeFileError, WeightFileError,
)
from .weights.load import TORCH_SUFFIXES, load_torch_file
from .weights.pickled import (
    PickledObject, check_torch_archive, class_name, pickled_modules, pickled_state_dict, read_pickled_model,
)

#: research class name -> tim_zoo model name
RESEARCH_CLASSES = {
    'TIM': 'tim', 'Transformer': 'transformer', 'Transformer_TIM': 'transformer_tim',
    'Transformer_DeltaTIM': 'transformer_deltatim', 'MLTransformer_TIM': 'mltransformer_tim', 'AT_TIM': 'at_tim',
    'AT_DeltaTIM': 'at_deltatim', 'AT_DeltaTIM_v2': 'at_deltatim_v2', 'MultiTIM': 'multitim',
    'CNN_Transformer': 'cnn_transformer', 'CNN_ML_Transformer': 'cnn_ml_transformer', 'SET': 'set',
    'SET_official': 'set_official',
}
#: research attention class -> tim_zoo `fusion` of the at_* models and multitim
RESEARCH_ATTENTION = {'TIM_Attention': 'attention', 'AFTLocalAttention': 'aft_local'}

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


# --- parameter names ----------------------------------------------------------------------------------------

def _tab_stack(src: str, dst: str) -> List[Tuple[str, Optional[str]]]:
    """Rules for a list of research `Temporal_Aware_Block`s at `src` -> a tim_zoo `TemporalStack` at `dst`."""
    s = re.escape(src)
    return [(rf'^{s}\.(\d+)\.casual\.0\.', rf'{dst}.blocks.\1.convs.0.conv.'),
            (rf'^{s}\.(\d+)\.casual\.2\.', rf'{dst}.blocks.\1.convs.0.norm.'),
            (rf'^{s}\.(\d+)\.casual\.5\.', rf'{dst}.blocks.\1.convs.1.conv.'),
            (rf'^{s}\.(\d+)\.casual\.7\.', rf'{dst}.blocks.\1.convs.1.norm.'),
            (rf'^{s}\.(\d+)\.resample\.', None)]


def _renames(**prefixes: str) -> List[Tuple[str, Optional[str]]]:
    """Rules renaming module prefixes (`__` in a keyword stands for `.`)."""
    return [(rf'^{re.escape(src.replace("__", "."))}\.', f'{dst}.') for src, dst in prefixes.items()]


def _prep(style: str) -> List[Tuple[str, Optional[str]]]:
    if style == 'sequential':           # nn.Sequential(conv, bn, relu, conv, bn, relu, rearrange)
        return _renames(prepare__0='prep.0.conv', prepare__1='prep.0.norm', prepare__3='prep.1.conv',
                        prepare__4='prep.1.norm')
    return _renames(prepare__conv1='prep.0.conv', prepare__bn1='prep.0.norm', prepare__conv2='prep.1.conv',
                    prepare__bn2='prep.1.norm')


def _layers(src: str, dst: str = 'transformer.layers', shared: bool = False) -> List[Tuple[str, Optional[str]]]:
    s = re.escape(src)
    return [(rf'^{s}\.(\d+)\.', f'{dst}.0.' if shared else rf'{dst}.\1.')]


_BI_TIM = 'tim.encoder.stack'
_ONE_TIM = 'tim.encoder'
_ATTENTION = [(r'^attn\.', 'fusion.')]

#: per research class: rules `(regex, replacement or None to drop)` from research names to tim_zoo names; the first
#: matching rule applies. Weight layers `[n, 1]` become `[n]`, the attention's three Conv2d become one Linear.
_RULES: Dict[str, List[Tuple[str, Optional[str]]]] = {
    'TIM': _renames(extractor__conv='tim.encoder.stem.conv', classifier__2='head.fc')
    + _tab_stack('extractor.dilation_layer', _BI_TIM) + [(r'^extractor\.weight\.param$', 'tim.weight_layer.weight')],
    'Transformer': _prep('sequential') + _layers('generalFeatureExtractor.layers')
    + _renames(Classifier__1='head.conv.0', Classifier__2='head.conv.1', Classifier__4='head.hidden',
               Classifier__6='head.fc'),
    'Transformer_TIM': _prep('sequential') + _layers('generalFeatureExtractor.layers')
    + _renames(middle__1='bridge.0', middle__2='bridge.1', specialFeatureExtractor__conv='tim.encoder.stem.conv',
               Classifier__1='head.hidden', Classifier__3='head.fc')
    + _tab_stack('specialFeatureExtractor.dilation_layer', _BI_TIM)
    + [(r'^specialFeatureExtractor\.weight\.param$', 'tim.weight_layer.weight')],
    'Transformer_DeltaTIM': _prep('named') + _layers('generalFeatureExtractor.layers')
    + _renames(middle__bn='bridge.0', middle__conv='bridge.1', conv='tim.stem.conv', Classifier__1='head.hidden',
               Classifier__3='head.fc')
    + _tab_stack('dilation_layer', _ONE_TIM) + [(r'^weight\.param$', 'tim.weight_layer.weight')],
    'MLTransformer_TIM': _prep('sequential') + _layers('generalFeatureExtractor', shared=True)
    + _renames(middle__0='layer_fusion', middle__2='bridge.0', middle__3='bridge.1',
               specialFeatureExtractor__conv='tim.encoder.stem.conv', Classifier__1='head.hidden',
               Classifier__3='head.fc')
    + _tab_stack('specialFeatureExtractor.dilation_layer', _BI_TIM)
    + [(r'^specialFeatureExtractor\.weight\.param$', 'tim.weight_layer.weight')],
    'AT_TIM': _renames(conv__0='tim.encoder.stem.conv', conv__1='tim.encoder.stem.norm', classifier__0='head.score',
                       classifier__3='head.fc') + _tab_stack('dilation_layer', _BI_TIM) + _ATTENTION,
    'AT_DeltaTIM': _renames(conv__0='tim.stem.conv', conv__1='tim.stem.norm', classifier__0='head.score',
                            classifier__3='head.fc') + _tab_stack('dilation_layer', _ONE_TIM) + _ATTENTION,
    'AT_DeltaTIM_v2': _renames(conv__0='tim.encoder.stem.conv', conv__1='tim.encoder.stem.norm',
                               classifier__0='head.score', classifier__3='head.fc')
    + [(r'^fusion\.(\d+)\.', r'tim.encoder.fuse.\1.')] + _tab_stack('dilation_layer', _BI_TIM) + _ATTENTION,
    'MultiTIM': _renames(prepare__0='stem.conv', prepare__1='stem.norm', classifier__2='head.time_proj',
                         classifier__5='head.fc')
    + _tab_stack('generalExtractor.net', 'general') + _tab_stack('specialExtractor.net', 'special') + _ATTENTION,
    'CNN_Transformer': _renames(generalFeatureExtractor__conv='tim.encoder.stem.conv', middle__1='proj',
                                Classifier__1='head.time_proj', Classifier__3='head.fc')
    + _tab_stack('generalFeatureExtractor.dilation_layer', _BI_TIM) + _layers('specificFeatureExtractor.layers')
    + [(r'^generalFeatureExtractor\.weight\.param$', 'tim.weight_layer.weight')],
    'CNN_ML_Transformer': _renames(generalFeatureExtractor__conv='tim.encoder.stem.conv', middle__1='proj',
                                   Classifier__1='head.time_proj', Classifier__3='head.fc')
    + _tab_stack('generalFeatureExtractor.dilation_layer', _BI_TIM) + _layers('specificFeatureExtractor')
    + [(r'^generalFeatureExtractor\.weight\.param$', 'tim.weight_layer.weight'),
       (r'^weight\.param$', 'layer_weight.weight')],
    'SET': _renames(scale_depth='proj.conv', bn='proj.norm', classifier__3='head.fc') + _layers('encoder')
    + [(r'^weight\.param$', 'layer_weight.weight')],
    'SET_official': _renames(scale_depth='proj.conv', bn='proj.norm', bn2='head.convs.0', classifier__1='head.hidden',
                             classifier__3='head.fc') + _layers('encoder')
    + [(rf'^conv\.{k}\.block\.{i}\.', f'head.convs.{1 + 3 * k + i}.') for k in range(4) for i in (0, 1)],
}

#: why research tensors without a tim_zoo counterpart are dropped
DROPPED = {
    'resample': 'the TAB\'s 1x1 `resample` conv runs only when input and output widths differ, never in these models',
    'local_mask': 'AFT-local\'s window mask, a constant tim_zoo derives from `aft_window` (checked against it)',
    'shared': 'a second name of the one Transformer layer MLTransformer_TIM applies n_layer times (the same tensor)',
    'unweighted': 'the weight layer the research CausalConv builds but does not use with is_weight=False',
}


def convert_research_state_dict(research_class: str, state_dict: Mapping[str, torch.Tensor]
                                ) -> Tuple[Dict[str, torch.Tensor], Dict[str, str], List[str]]:
    """Rename a research state dict to tim_zoo's names.

    Returns:
        `(converted, dropped, unknown)`: the converted tensors; research names without a tim_zoo counterpart with the
        reason (`DROPPED`); research names no rule knows.
    """
    if research_class not in _RULES:
        raise ConfigurationError(_unknown_class_message(research_class))
    rules = [(re.compile(pattern), repl) for pattern, repl in _RULES[research_class]]
    out, dropped, unknown, qkv = {}, {}, [], {}
    for name, tensor in state_dict.items():
        for regex, repl in rules:
            if regex.match(name):
                break
        else:
            unknown.append(name)
            continue
        if repl is None:
            dropped[name] = DROPPED['resample']
            continue
        new = regex.sub(repl, name, count=1)
        if new.endswith('weight_layer.weight') or new == 'layer_weight.weight':
            tensor = tensor.reshape(-1)
        m = re.match(r'^fusion\.W([qkv])\.0\.(weight|bias)$', new)
        if m:
            qkv[(m.group(2), m.group(1))] = tensor.reshape(tensor.shape[0], -1) if m.group(2) == 'weight' else tensor
            continue
        new = (new.replace('fusion.score_flatten.2.', 'fusion.proj.').replace('fusion.fc.', 'fusion.ffn.')
               .replace('fusion.output.', 'fusion.proj.').replace('fusion.w_bias', 'fusion.pos_bias'))
        if new == 'fusion.local_mask':
            dropped[name] = DROPPED['local_mask']
            out[new] = tensor                               # checked against the model, then removed
            continue
        if new.startswith('fusion.proj.weight') and tensor.dim() == 4:
            tensor = tensor.reshape(tensor.shape[0], -1)
        if new in out:
            if not torch.equal(out[new], tensor):
                raise CheckpointMismatchError(f'{name} and another tensor both map to {new} but differ: the layers '
                                              f'of this {research_class} are not shared as the research code shares them')
            dropped[name] = DROPPED['shared']
            continue
        out[new] = tensor
    if 'fusion.pos_bias' not in out:                   # the multi-head attention's one LayerNorm is norm1
        for part in ('weight', 'bias'):
            if f'fusion.norm.{part}' in out:
                out[f'fusion.norm1.{part}'] = out.pop(f'fusion.norm.{part}')
    for part in ('weight', 'bias'):
        found = [qkv.get((part, c)) for c in 'qkv']
        if any(t is not None for t in found):
            if any(t is None for t in found):
                missing = [f'attn.W{c}.0.{part}' for c, t in zip('qkv', found) if t is None]
                raise CheckpointMismatchError(f'the attention lacks {", ".join(missing)}')
            out[f'fusion.qkv.{part}'] = torch.cat(found, dim=0)
    return out, dropped, unknown


# --- model arguments ---------------------------------------------------------------------------------------

def _first(sd, *names):
    return next((sd[n] for n in names if n in sd), None)


def shape_args(research_class: str, sd: Mapping[str, torch.Tensor]) -> Tuple[dict, Dict[str, range]]:
    """What the converted tensors fix: `(arguments, ranges)`, where `ranges` holds frame counts the shapes allow only
    as a range (a pooled head: `set_official`, `cnn_*`), to be chosen by the caller's `seq_len`."""
    args, ranges = {}, {}
    if 'head.fc.weight' in sd:
        args['num_classes'] = int(sd['head.fc.weight'].shape[0])
    first = _first(sd, 'prep.0.conv.weight', 'proj.conv.weight', 'tim.encoder.stem.conv.weight', 'tim.stem.conv.weight',
                   'stem.conv.weight')
    if first is not None:
        args['in_chans'] = int(first.shape[1])
    stem = _first(sd, 'tim.encoder.stem.conv.weight', 'tim.stem.conv.weight', 'stem.conv.weight')
    if stem is not None:
        args['filters'] = int(stem.shape[0])
    for stack, key in (('tim.encoder', 'depth'), ('general', 'general_depth'), ('special', 'special_depth')):
        found = {int(m.group(1)) for k in sd for m in [re.match(rf'^{re.escape(stack)}\.(?:stack\.)?blocks\.(\d+)\.', k)] if m}
        if found:
            args[key] = max(found) + 1
    if 'prep.0.conv.weight' in sd:
        args['prep_channels'] = int(sd['prep.0.conv.weight'].shape[0])
    if 'transformer.layers.0.linear1.weight' in sd:
        args['d_ff'], args['d_model'] = (int(n) for n in sd['transformer.layers.0.linear1.weight'].shape)
        args['num_layers'] = len({k.split('.')[2] for k in sd if k.startswith('transformer.layers.')})
    for key, dim in (('layer_fusion.weight', 1), ('layer_weight.weight', 0)):
        if key in sd:
            args['num_layers'] = int(sd[key].shape[dim])
    if 'fusion.qkv.weight' in sd:
        args['d_qkv'] = int(sd['fusion.qkv.weight'].shape[0]) // 3
        args['fusion'] = 'aft_local' if 'fusion.pos_bias' in sd else 'attention'
        if 'fusion.ffn.0.weight' in sd:
            args['d_ff'] = int(sd['fusion.ffn.0.weight'].shape[0])
        elif args['fusion'] == 'attention':
            args['ffn'] = False
    if 'fusion.pos_bias' in sd:                                    # AFT-local: a [T, T] position bias
        args['seq_len'] = int(sd['fusion.pos_bias'].shape[0])
    if 'head.score.weight' in sd:                                  # at_*: Linear(T -> classes)
        args['seq_len'] = int(sd['head.fc.weight'].shape[1])
    if 'head.hidden.weight' in sd and research_class != 'SET_official':
        per_frame = _first(sd, 'head.conv.0.weight')
        per_frame = int(per_frame.shape[0]) if per_frame is not None else args.get('filters')
        args['seq_len'] = int(sd['head.hidden.weight'].shape[1]) // per_frame
        args['head_hidden'] = int(sd['head.hidden.weight'].shape[0])
    if research_class in ('CNN_Transformer', 'CNN_ML_Transformer') and 'head.time_proj.weight' in sd:
        half = int(sd['head.time_proj.weight'].shape[1])            # the head sees T // 2
        ranges['seq_len'] = range(2 * half, 2 * half + 2)
    if research_class == 'SET_official' and 'head.hidden.weight' in sd and 'd_model' in args:
        cells = int(sd['head.hidden.weight'].shape[1]) // (128 * (args['d_model'] // 36))
        ranges['seq_len'] = range(36 * cells, 36 * cells + 36)    # four pools 2, 2, 3, 3: T // 36 cells
        args['head_hidden'] = int(sd['head.hidden.weight'].shape[0])
    if research_class == 'MultiTIM' and 'head.time_proj.weight' in sd:
        args['head_pool'] = int(sd['head.time_proj.weight'].shape[1])
    return args, ranges


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


def _model_params(model_name: str) -> set:
    cls = typing.get_type_hints(model_entrypoint(model_name))['return']
    return {p for p in inspect.signature(cls.__init__).parameters if p not in ('self',)}


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


def _unknown_class_message(research_class: str) -> str:
    close = difflib.get_close_matches(research_class, list(RESEARCH_CLASSES) + list(RESEARCH_CLASSES.values()), n=3)
    return (f'{research_class!r} is no research model tim_zoo converts' + (f' (did you mean {", ".join(close)}?)' if close
            else '') + f'; known: {", ".join(RESEARCH_CLASSES)}')


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
    params = _model_params(model_name)
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
    for note in notes:
        warnings.warn(f'load_research_checkpoint({research_class}): {note}', stacklevel=2)
    model = create_model(model_name, **kwargs)
    tim = getattr(model, 'tim', None)
    if tim is not None and tim.weight_layer is None and 'tim.weight_layer.weight' in converted:
        converted.pop('tim.weight_layer.weight')
        dropped[next(k for k in state_dict if re.match(r'^(extractor|\w+FeatureExtractor)\.weight\.param$', k))] = \
            DROPPED['unweighted']
    _load_exactly(model, converted, research_class)
    model.research_dropped = dict(dropped)
    return model


def _aft_window(mask: torch.Tensor) -> int:
    """The window `w` of a research AFT-local mask (`|t - t'| < w`), checked to be one."""
    mask = mask.to(torch.bool)
    w = int(mask[0].sum())
    idx = torch.arange(mask.shape[0])
    if not torch.equal(mask, (idx[:, None] - idx[None, :]).abs() < w):
        raise CheckpointMismatchError('the AFT-local mask of this checkpoint is not a local window |t - t\'| < w')
    return w if w < mask.shape[0] else max(w, 128)          # a window as long as the input: any w >= T is it


def _load_exactly(model: nn.Module, state_dict: Dict[str, torch.Tensor], research_class: str) -> None:
    own = model.state_dict()
    missing = sorted(k for k in own if k not in state_dict and not k.endswith('num_batches_tracked'))
    unexpected = sorted(k for k in state_dict if k not in own)
    wrong = sorted(f'{k} {tuple(state_dict[k].shape)} vs {tuple(own[k].shape)}' for k in state_dict
                   if k in own and state_dict[k].shape != own[k].shape)
    if missing or unexpected or wrong:
        parts = [f'{what}: {", ".join(keys[:10])}' + (' ...' if len(keys) > 10 else '')
                 for what, keys in (('missing', missing), ('unexpected', unexpected), ('shape (checkpoint vs model)', wrong))
                 if keys]
        raise CheckpointMismatchError(f'the {research_class} weights do not fit {model.model_name} built with '
                                      f'{model.init_args}: ' + '; '.join(parts))
    model.load_state_dict(state_dict, strict=False)
