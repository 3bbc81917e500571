"""Constructor arguments of older model definitions, so that checkpoints and training runs made with them are
rebuilt as they were trained.

`MODEL_DEFAULTS` (`tim_zoo.version`) counts the definitions; a checkpoint or run records the one it was made with
(none recorded: 1). Version 2 made the seed models compute what the research group's code computes: TABs add their
residual and drop whole frames, the attention fusion is the research computation, the positional encoding is the
research table, `mltransformer_tim` shares its Transformer layer, weight layers start as the research code's
(`weight_init="research"`) and the attention's dropout is its fixed 0.1. Version 1 had these values instead:
"""
from typing import Dict

from ..layers.tab import TAB_DEFAULTS

_TAB = dict(residual='mul', drop_mode='channel', weight_init='torch')
_V1_TRANSFORMER = dict(pos_encoding='sincos', weight_init='torch')
_V1_ATTENTION = dict(fusion_style='standard')           # and the attention's dropout was drop_rate (see below)

#: per model, the arguments whose default changed after version 1, with their version-1 values
VERSION_1: Dict[str, dict] = {
    'timnet': dict(drop_mode='channel'),
    'tim': _TAB,
    'transformer': _V1_TRANSFORMER,
    'transformer_tim': {**_TAB, **_V1_TRANSFORMER},
    'transformer_deltatim': {**_TAB, **_V1_TRANSFORMER},
    'mltransformer_tim': {**_TAB, **_V1_TRANSFORMER, 'share_layers': False},
    'cnn_transformer': {**_TAB, **_V1_TRANSFORMER},
    'cnn_ml_transformer': {**_TAB, **_V1_TRANSFORMER},
    'set': _V1_TRANSFORMER,
    'set_official': _V1_TRANSFORMER,
    'at_tim': {**_TAB, **_V1_ATTENTION},
    'at_deltatim': {**_TAB, **_V1_ATTENTION},
    'at_deltatim_v2': {**_TAB, **_V1_ATTENTION},
    'multitim': {**_TAB, **_V1_ATTENTION},
}


def legacy_model_args(architecture: str, model_args: dict, version: int) -> dict:
    """`model_args` of a checkpoint or run made with model definitions `version`, completed so that the current
    code builds the model it was made with: every argument whose default has changed since takes its old value
    unless `model_args` sets it."""
    if version >= 2:
        return dict(model_args)
    old = dict(VERSION_1.get(architecture, {}))
    if model_args.get('pos_embed') is False:          # no positional encoding: which one is moot (and refused if set)
        old.pop('pos_encoding', None)
    if 'fusion_style' in old:
        if model_args.get('fusion') == 'aft_local':   # no multi-head attention: its style and dropout are moot
            old.pop('fusion_style')
        else:                                         # the value itself: create_model drops a None (timm's)
            old['attn_drop_rate'] = model_args.get('drop_rate', TAB_DEFAULTS['drop_rate'])
    return {**old, **model_args}
