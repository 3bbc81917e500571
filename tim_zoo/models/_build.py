"""The one builder of every registered model (`build_model`): its pretrained config resolved once, its weight file
read once, the model built and loaded; timm's feature wrappers (`feature_net`) and audio configs (`audio_cfg`)."""
import dataclasses
import numbers
import logging
import warnings
from pathlib import Path
from typing import Optional

import timm
from timm.models import PretrainedCfg, build_model_with_cfg, get_pretrained_cfg, resolve_pretrained_cfg
from timm.models._builder import pretrained_cfg_for_features
from timm.models._features import FeatureGetterNet, FeatureHookNet
from timm.models._features_fx import FeatureGraphNet
from torch import nn

from .._utils import chosen_for_the_caller, warn_caller
from ..exceptions import CheckpointMismatchError, ConfigurationError, UnknownArgumentError, WeightsNotFoundError
from ..weights import apply_metadata, apply_state_dict, find_weight_file
from ..weights.fresh_head import mark_fresh_head
from ..weights.hub_folder import HUB_WEIGHTS
from ..weights.label_rows import labels_asked_for
from ..weights.load import load_read_weights, warn_other_arguments, weight_source, weights_trained_on
from ._base import DEFAULT_TAGS, TAG_TRAINING, SERModel

_logger = logging.getLogger(__name__)

#: image settings of timm's configs that have no meaning for frame sequences (a folder written by timm's
#: `save_for_hf` fills them in)
_IMAGE_CFG_KEYS = ('mean', 'std', 'interpolation', 'crop_pct', 'crop_mode', 'test_input_size', 'test_crop_pct',
                   'test_pool_size', 'min_input_size')


def _hub_cfg(given_cfg, pretrained: bool):
    """`(pretrained_cfg, feature_settings)` of a config timm read from a hub folder (`local-dir:` or `hf-hub:`, source
    set): the keys timm's `PretrainedCfg` takes, without image settings, the weight file found in the folder; other
    configs pass unchanged."""
    if not isinstance(given_cfg, dict) or given_cfg.get('source') not in ('local-dir', 'hf-hub'):
        return given_cfg, None
    fields = {f.name for f in dataclasses.fields(PretrainedCfg)} - set(_IMAGE_CFG_KEYS)
    cfg = {k: v for k, v in given_cfg.items() if k in fields}
    cfg.update(dict.fromkeys(_IMAGE_CFG_KEYS))          # None, not timm's image defaults
    filename = cfg.get('hf_hub_filename') or HUB_WEIGHTS
    if cfg['source'] == 'local-dir':
        folder = Path(cfg['file'])
        if not folder.is_dir():
            raise WeightsNotFoundError(f'local-dir:{folder}: no such folder')
        cfg['file'] = str(folder / filename)
        if pretrained and not (folder / filename).is_file():
            raise WeightsNotFoundError(f'local-dir:{folder} has no {filename}: a hub folder holds config.json, '
                                       f'{filename} and README.md as tim_zoo.save_for_hub writes them (or load the '
                                       f'architecture alone with pretrained=False)')
    else:
        cfg['hf_hub_filename'] = filename
    cfg.pop('source')
    return cfg, given_cfg.get('feature_settings')


def _resolve_cfg(name: str, pretrained_cfg, overlay):
    try:
        return resolve_pretrained_cfg(name, pretrained_cfg=pretrained_cfg, pretrained_cfg_overlay=overlay)
    except TypeError as e:                               # an unknown key of pretrained_cfg(_overlay)
        raise UnknownArgumentError(f'pretrained_cfg_overlay of {name}: {e} (keys: file, hf_hub_id, '
                                   f'hf_hub_filename, label_names, ...: timm\'s PretrainedCfg)') from e


def _check_tag_training(name: str, variant: str, path, meta: dict) -> None:
    """Refuse weights for the tag `name` that do not record the training its weights had (`TAG_TRAINING`)."""
    expected = TAG_TRAINING.get(name)
    if not expected:
        return
    record = weights_trained_on(meta) or {}                 # its own training, not that of its initial weights
    got = dict(corpus=record.get('corpus'), protocol=record.get('protocol'), recipe=record.get('recipe'))
    wrong = [f'{k} {got[k]!r} (the tag\'s: {v!r})' for k, v in expected.items() if got[k] != v]
    if wrong:
        raise ConfigurationError(
            f'{path} does not hold the weights of {name}: it records {", ".join(wrong)}; put the tag\'s own file '
            f'there, or load this one without the tag: create_model("{variant}", pretrained=True, '
            f'pretrained_cfg_overlay=dict(file=PATH))')


def audio_cfg(**kwargs) -> dict:
    """A timm pretrained config for an audio model.

    Image-only defaults of timm's `PretrainedCfg` (input_size 3x224x224, ImageNet mean/std, crop) are set
    to None so they are dropped from `model.pretrained_cfg`; num_classes stays None unless weights fix it.
    `custom_load` sends a weight file through `SERModel.load_pretrained` (and its checks) when timm's own
    `load_pretrained` is called on a model; `create_model(..., pretrained=True)` finds and reads the file itself.
    """
    cfg = dict(
        input_size=None, mean=None, std=None, interpolation=None, crop_pct=None, crop_mode=None,
        num_classes=None, classifier='head.fc', license='apache-2.0', custom_load=True,
    )
    cfg.update(kwargs)
    return cfg


#: timm's feature classes a tim_zoo model offers: each returns the levels `forward_intermediates` returns
FEATURE_CLASSES = ('getter', 'hook', 'fx')


def feature_net(model: 'SERModel', feature_cls, out_indices) -> nn.Module:
    """timm's feature wrapper of `model` (`features_only=True`): `"getter"` calls `forward_intermediates`, `"hook"`
    reads the outputs of `feature_info`'s modules with forward hooks, `"fx"` traces the model with torch.fx and
    returns those modules' outputs; all three give the same list of `[B, C, T]` levels."""
    classes = dict(getter=FeatureGetterNet, hook=FeatureHookNet, fx=FeatureGraphNet)
    name = next((k for k, v in classes.items() if feature_cls in (k, v)), None)
    if name is None:
        raise ConfigurationError(f'feature_cls={feature_cls!r}: tim_zoo models offer {", ".join(map(repr, FEATURE_CLASSES))} '
                                 f'(forward_intermediates, forward hooks, torch.fx)')
    levels = len(model.feature_info)
    indices = levels if out_indices is None else out_indices
    if isinstance(indices, numbers.Integral):            # timm's meaning: the last n levels
        if not 0 < indices <= levels:
            raise ConfigurationError(f'out_indices={indices} (the last n levels): {model.model_name} has {levels} '
                                     f'levels, so n is 1 to {levels}')
        indices = tuple(range(levels))[-int(indices):]
    wrong = [i for i in indices
             if isinstance(i, bool) or not isinstance(i, numbers.Integral) or not -levels <= i < levels]
    if wrong:
        raise ConfigurationError(f'out_indices {wrong}: {model.model_name} has {levels} levels, indices 0 to '
                                 f'{levels - 1} (or -{levels} to -1 from the last)')
    indices = tuple(sorted(int(i) % levels for i in indices))   # forward order, as fx returns them
    pretrained_cfg = model.pretrained_cfg
    if name == 'getter':
        net = FeatureGetterNet(model, out_indices=indices, output_fmt='NCL')
    elif name == 'hook':
        net = FeatureHookNet(model, out_indices=indices, no_rewrite=True)
    else:
        with warnings.catch_warnings():                  # eval mode folds BatchNorm into the convolutions: other nodes
            warnings.filterwarnings('ignore', message='The nodes obtained by tracing the model in train mode')
            net = FeatureGraphNet(model, out_indices=indices, output_fmt='NCL')
    net.pretrained_cfg = net.default_cfg = pretrained_cfg_for_features(pretrained_cfg)
    return net


def given_label_names(model, given: list, trained: Optional[list]) -> None:
    """`pretrained_cfg_overlay=dict(label_names=...)` that share no name with the labels the loaded classifier was
    trained on (`trained`; None where it names none or none loaded), at its class count: the names of its outputs, in
    order, with a warning that says what became what. (Names it shares choose its rows by name:
    `label_rows.renames_outputs`.)"""
    if len(given) != model.num_classes:
        raise ConfigurationError(f'pretrained_cfg_overlay label_names: {len(given)} names for a model of '
                                 f'{model.num_classes} classes')
    if trained and list(trained) != given:
        renamed = ', '.join(f'{a} -> {b}' for a, b in zip(trained, given) if a != b)
        warn_caller(f'pretrained_cfg_overlay label_names share no name with the labels the classifier was trained on '
                    f'({trained}), so they rename its outputs in order: {renamed}; names it knows would choose its '
                    f'rows by name')
    model.label_names = given


def refuse_label_names_for_features(name: str, overlay: Optional[dict]) -> None:
    """`features_only=True` has no classifier: overlay `label_names`, which name its outputs, are refused."""
    if (overlay or {}).get('label_names') is not None:
        raise ConfigurationError(f'{name}: label_names name a classifier\'s outputs; features_only=True has no '
                                 f'classifier (drop one of them)')


def _config_labels(name: str, given_cfg, overlay: Optional[dict]) -> Optional[list]:
    """The label names the pretrained config of `name` gives its weights, without the caller's overlay names."""
    own = {k: v for k, v in (overlay or {}).items() if k != 'label_names'}
    labels = _resolve_cfg(name, given_cfg, own).label_names
    return list(labels) if labels else None


def _load_as_built(model, state_dict: Optional[dict], meta: dict, path) -> bool:
    """Load a pretrained tag's weights (`state_dict`, None without `pretrained=True`) into `model` as it was built
    (another class count: a fresh classifier), and their metadata; True when a trained classifier loaded."""
    head_loaded = True                                   # False when the file's classifier did not fit
    if state_dict is not None:
        source = weight_source(path, meta, model)
        head_loaded = not apply_state_dict(model, state_dict, source)
        warn_other_arguments(model, meta, source, not head_loaded)    # the caller's arguments against the file's
    else:
        mark_fresh_head(model, 'the model was built without weights (no pretrained=True, checkpoint or training)')
    apply_metadata(model, meta, head_loaded=head_loaded)
    return head_loaded and state_dict is not None


def build_model(model_cls, variant: str, pretrained: bool = False, defaults: Optional[dict] = None,
                **kwargs) -> SERModel:
    """Build a registered model: resolve its pretrained config once, read its weight file once, build, load.

    `defaults` are the factory's own arguments (what makes `at_deltatim` of `ATTIM`), `kwargs` the caller's; an
    argument the configuration does not use is refused only when the caller's value differs from what the factory, tag
    or weight file chose (`SERModel._refuse_unused`).

    `model_cls.tag_info(tag)` gives the constructor arguments a pretrained tag's weights need (e.g. depth) and its
    feature settings. With `pretrained=True` the weight file is found (`tim_zoo.weights.find_weight_file`: the
    config's file, the weights directory, the Hugging Face hub cache) and read by `model_cls.read_weights`; the
    file's own shape (depth, classes, widths) fills in the arguments the caller did not give. A model without
    weights is refused instead of silently left random. `features_only=True` returns timm's `FeatureGetterNet`
    over `forward_intermediates` (one feature map `[B, C, T]` per level, `out_indices` choosing the levels).
    """
    features_only = kwargs.pop('features_only', False)
    out_indices = kwargs.pop('out_indices', None)
    feature_cls = kwargs.pop('feature_cls', 'getter')
    if not features_only and (out_indices is not None or feature_cls != 'getter'):
        raise ConfigurationError(f'out_indices / feature_cls choose the features of features_only=True; '
                                 f'{variant} was asked for the whole model (add features_only=True)')
    cache_dir = kwargs.pop('cache_dir', None)
    given_cfg, overlay = kwargs.pop('pretrained_cfg', None), kwargs.pop('pretrained_cfg_overlay', None)
    where = [f'pretrained_cfg_overlay {k}' for k in ('file', 'hf_hub_id') if (overlay or {}).get(k)] + \
        (['cache_dir'] if cache_dir else [])
    if where and not pretrained:                      # timm would build fresh weights and drop them without a word
        raise ConfigurationError(f'{variant}: {" and ".join(where)} {"say" if len(where) > 1 else "says"} where '
                                 f'weights are, and pretrained=False builds the model with fresh weights: pass '
                                 f'pretrained=True to load them')
    from_hub_args = kwargs.pop('pretrained_model_args', None) or {}      # timm: a hub folder's model_args
    given_cfg, hub_settings = _hub_cfg(given_cfg, pretrained)
    cfg = _resolve_cfg(variant, given_cfg, overlay)
    if pretrained and not cfg.tag and not (cfg.file or cfg.hf_hub_id) and variant in DEFAULT_TAGS:
        cfg = _resolve_cfg(f'{variant}.{DEFAULT_TAGS[variant]}', given_cfg, overlay)
        _logger.info(f'{variant}: loading its default tag {variant}.{cfg.tag} (pretrained_cfg["tag"] tells it)')
    name = f'{variant}.{cfg.tag}' if cfg.tag else variant
    info = model_cls.tag_info(cfg.tag or '')
    given = {k for k in kwargs if k not in from_hub_args or kwargs[k] != from_hub_args[k]}
    chosen = {**(defaults or {}), **info.get('model_args', {})}      # the values not up to the caller
    for key, value in chosen.items():
        kwargs.setdefault(key, value)
    state_dict, meta, path = None, {}, None
    if pretrained:
        if not (cfg.file or cfg.hf_hub_id):
            tags = timm.list_pretrained(f'{variant}.*')
            hint = (f'; name one of its tags ({", ".join(tags[:4])}{", ..." if len(tags) > 4 else ""}: '
                    f'tim_zoo.list_models("{variant}.*", pretrained=True))' if tags else '')
            raise ConfigurationError(
                f'{name} has no published weights to load (pretrained=True){hint}; or give a file: '
                f'pretrained_cfg_overlay=dict(file=PATH)')
        registered = get_pretrained_cfg(name)
        path = find_weight_file(cfg.file, cfg.hf_hub_id, cfg.hf_hub_filename, cache_dir=cache_dir, name=name,
                                published=' '.join(cfg.notes or ()),
                                relative_to_cwd=registered is None or cfg.file != registered.file)
        state_dict, meta = model_cls.read_weights(path)
        if hub_settings and not meta.get('feature_settings'):
            meta = dict(meta, feature_settings=hub_settings)
        if meta.get('architecture') and meta['architecture'] != variant:
            raise CheckpointMismatchError(
                f'{path} was saved from {meta["architecture"]}, not {variant}; load it as what it is: '
                f'tim_zoo.load_checkpoint(PATH), or create_model("{meta["architecture"]}", pretrained=True, '
                f'pretrained_cfg_overlay=dict(file=PATH))')
        from_file = meta.get('model_args') or {}
        chosen.update(from_file)
        model_cls.check_pretrained(variant, cfg.tag or '', info, path, meta, given)
        if registered is not None and (cfg.file, cfg.hf_hub_id) == (registered.file, registered.hf_hub_id):
            _check_tag_training(name, variant, path, meta)      # the file found where the tag's own goes
        for key, value in from_file.items():             # the file's own arguments, unless the caller chose
            if key not in given:
                kwargs[key] = value
    file_labels = (meta.get('label_names') or _config_labels(name, given_cfg, overlay)) if pretrained else None
    names, by_name = labels_asked_for((overlay or {}).get('label_names'), file_labels, state_dict)
    if features_only:
        refuse_label_names_for_features(variant, overlay)
    if names is not None and (by_name or state_dict is None) and 'num_classes' not in given:  # the labels asked for
        kwargs['num_classes'] = len(names)
    global_pool = kwargs.pop('global_pool', None)       # timm's argument (or a checkpoint's): not a constructor's
    # timm's builder reads input_size as an image's (C, H, W); refresh_pretrained_cfg sets these from the model built
    cfg = dataclasses.replace(cfg, input_size=None, fixed_input_size=False, pool_size=None, first_conv=None)
    with chosen_for_the_caller(chosen):
        model = build_model_with_cfg(model_cls, variant, False, pretrained_cfg=cfg, **kwargs)
    model.model_name = variant
    if global_pool is not None:                          # the loaded classifier is kept
        model.set_global_pool(global_pool)
    meta = dict(meta, label_names=file_labels, feature_settings=meta.get('feature_settings') or info.get('metadata'))
    if by_name:
        load_read_weights(model, state_dict, meta, path, label_names=names)
    else:
        head_loaded = _load_as_built(model, state_dict, meta, path)
        if names is not None:
            given_label_names(model, names, file_labels if head_loaded else None)
    model.refresh_pretrained_cfg()
    if features_only:
        model = feature_net(model, feature_cls, out_indices)
    return model
