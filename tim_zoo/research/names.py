"""The research group's parameter names, converted to tim_zoo's: one rule table per research class, and what the
converted tensors' shapes fix."""
import difflib
import re
from typing import Dict, List, Mapping, Optional, Tuple

import torch

from ..exceptions import CheckpointMismatchError, ConfigurationError

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


def _unknown_class_message(research_class: str) -> str:
    close = difflib.get_close_matches(research_class, list(RESEARCH_CLASSES) + list(RESEARCH_CLASSES.values()), n=3)
    return (f'{research_class!r} is no research model tim_zoo converts' + (f' (did you mean {", ".join(close)}?)' if close
            else '') + f'; known: {", ".join(RESEARCH_CLASSES)}')
