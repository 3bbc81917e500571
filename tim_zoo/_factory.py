"""`create_model` and `list_models` over timm's registry, limited to tim_zoo's models."""
import difflib
import json
import sys
import warnings
from pathlib import Path
from typing import List, Optional, Union

import timm
from timm.models import get_pretrained_cfg, model_entrypoint, split_model_name_tag
from torch import nn

from . import models as _models  # noqa: F401  (registers the models)
from ._utils import chosen_for_the_caller
from .models._build import feature_net, given_label_names, refuse_label_names_for_features
from .models._zoo import tag_accuracy
from .models.timnet import TIMNet, read_keras_timnet
from .models.timnet_releases import TIMNET_RELEASES, find_release, published_release, release_metadata
from .exceptions import ConfigurationError, UnknownModelError, UnsafeFileError, WeightFileError, WeightsNotFoundError
from .weights import (
    apply_metadata, apply_state_dict, find_weight_file, read_weight_file, save_checkpoint, weights_dir,
)
from .weights.label_rows import labels_asked_for
from .weights.load import KERAS_SUFFIXES, load_read_weights
from .weights.checkpoint import import_builder


def _is_ours(name: str) -> bool:
    arch, _ = split_model_name_tag(name)
    try:
        return model_entrypoint(arch).__module__.startswith('tim_zoo.')
    except RuntimeError:
        return False


def list_models(filter: Union[str, List[str]] = '', pretrained: bool = False) -> List[str]:  # noqa: A002 (timm's name)
    """Names of tim_zoo's registered models, sorted; `filter` is a wildcard pattern (or a list of them).

    With `pretrained=True`, the `arch.tag` names of published weights.
    """
    return [n for n in timm.list_models(filter, pretrained=pretrained) if _is_ours(n)]


def is_model(name: str) -> bool:
    """Whether `name` (optionally `arch.tag`) is a tim_zoo model."""
    arch, _ = split_model_name_tag(name)
    return timm.is_model(arch) and _is_ours(arch)


def check_model_name(model_name: str) -> None:
    """Raise `UnknownModelError`, listing close names, unless `model_name` is registered."""
    if not is_model(model_name) and timm.is_model(split_model_name_tag(model_name)[0]):
        raise UnknownModelError(f'{model_name!r} is registered with timm but is not a tim_zoo model: '
                                f'tim_zoo.create_model builds its own models only (build that one with '
                                f'timm.create_model({model_name!r}); tim_zoo.train trains it by that name, or by its '
                                f'builder function). Available models: {", ".join(list_models())}')
    if not is_model(model_name):
        names = list_models()
        close = difflib.get_close_matches(split_model_name_tag(model_name)[0].lower(), names, n=5, cutoff=0.5)
        hint = f'; did you mean {", ".join(close)}?' if close else '.'
        raise UnknownModelError(f'unknown model {model_name!r}{hint} Available models: {", ".join(names)}')
    arch, tag = split_model_name_tag(model_name)
    published = timm.list_pretrained(f'{arch}.*') if tag else []
    if tag and model_name not in published:
        tags = [n.split('.', 1)[1] for n in published]
        close = difflib.get_close_matches(tag.lower(), tags, n=3, cutoff=0.5)
        hint = f'; did you mean {", ".join(f"{arch}.{t}" for t in close)}?' if close else '.'
        elsewhere = sorted(n.split('.', 1)[0] for n in timm.list_pretrained(f'*.{tag}') if is_model(n))
        hint += f' {tag!r} is a tag of {", ".join(elsewhere)}.' if elsewhere else ''
        raise UnknownModelError(f'{arch} has no pretrained tag {tag!r}{hint} Its tags: {", ".join(tags)} '
                                f'(tim-zoo weights "{arch}.*" lists them with their files)')


def create_model(model_name: str, pretrained: bool = False, checkpoint_path=None, **kwargs) -> nn.Module:
    """Build a registered tim_zoo model by name, through timm's builder.

    Args:
        model_name: a name from `list_models`, optionally with a pretrained tag (`"timnet.emodb_46"`); or a hub
            folder written by `save_for_hub`: `"local-dir:PATH"`, or `"hf-hub:ORG/NAME"` (from the hub cache when it
            is there, else downloaded).
        pretrained: load the published weights of the tag (for the Keras releases give the file with
            `pretrained_cfg_overlay=dict(file=PATH)`; depth and classes are read from it).
        checkpoint_path: after building, load this weight file (`.safetensors`, `.hdf5`, `.pt`) into the
            model, checking every key. Without `num_classes`, the model takes the file's class count; a
            different `num_classes` keeps the body and re-initialises the head. With
            `pretrained_cfg_overlay=dict(label_names=[...])` the model is for those labels (their count is its
            `num_classes`) and the file's classifier rows are matched to them by name, as
            `load_weights(model, path, label_names=...)` does: a label the file knows keeps its trained row.
        **kwargs: constructor arguments of the model (`num_classes`, `in_chans`, `seq_len`, ...),
            and timm's `pretrained_cfg` / `pretrained_cfg_overlay`.

    Raises:
        UnknownModelError: no tim_zoo model has that name; the message lists close names.
    """
    if checkpoint_path is not None and kwargs.get('features_only'):
        # the checkpoint holds the whole model: load it, then take the features (the wrapper prunes what they skip)
        refuse_label_names_for_features(model_name, kwargs.get('pretrained_cfg_overlay'))
        feature_args = {k: kwargs.pop(k) for k in ('features_only', 'out_indices', 'feature_cls') if k in kwargs}
        model = create_model(model_name, pretrained, checkpoint_path=checkpoint_path, **kwargs)
        return feature_net(model, feature_args.get('feature_cls', 'getter'), feature_args.get('out_indices'))
    if checkpoint_path is None:
        return _create(model_name, pretrained, kwargs)
    return _create_from_checkpoint(model_name, pretrained, Path(checkpoint_path), kwargs)


def _create(model_name: str, pretrained: bool, kwargs: dict) -> nn.Module:
    """The model `model_name` names (a registered name or tag, or a hub folder), built through timm."""
    if is_hub_source(model_name):
        return _create_from_hub(model_name, pretrained, kwargs)
    check_model_name(model_name)
    model = timm.create_model(model_name, pretrained=pretrained, **kwargs)
    _check_no_dropped_none(model_name, model, kwargs)
    return model


def _create_from_checkpoint(model_name: str, pretrained: bool, path: Path, kwargs: dict) -> nn.Module:
    """`create_model(..., checkpoint_path=path)`: the model at the file's class count (unless `num_classes` or label
    names say another), the file read once. Overlay `label_names` that share a name with the file's choose its
    classifier rows by name (`load_weights(..., label_names=)`); the same count of names it does not know rename its
    outputs in order, as with `pretrained=True` (`renames_outputs`)."""
    overlay = dict(kwargs.pop('pretrained_cfg_overlay', None) or {})
    given_names = overlay.pop('label_names', None)
    if overlay:
        kwargs['pretrained_cfg_overlay'] = overlay
    model = _create(model_name, pretrained, kwargs)
    state_dict, meta = getattr(model, 'read_weights', read_weight_file)(path)
    names, by_name = labels_asked_for(given_names, meta.get('label_names'), state_dict)
    rename = names is not None and not by_name
    weight = state_dict.get('head.fc.weight')
    classes = kwargs.get('num_classes', len(names) if by_name else int(weight.shape[0]) if weight is not None else None)
    if classes is not None and classes != getattr(model, 'num_classes', classes):
        model = _create(model_name, pretrained, dict(kwargs, num_classes=classes))
    head_loaded = load_read_weights(model, state_dict, meta, path, label_names=None if rename else names)
    if rename:
        given_label_names(model, names, meta.get('label_names') if head_loaded else None)
    return model


#: timm's model sources: a hub folder on disk, a Hugging Face hub repository (its cache first)
HUB_SOURCES = ('local-dir', 'hf-hub')


def is_hub_source(name) -> bool:
    """Whether `name` names a hub folder: `"local-dir:PATH"` or `"hf-hub:ORG/NAME"`."""
    source, _, location = str(name).partition(':')
    return bool(location) and source in HUB_SOURCES


def _create_from_hub(model_name: str, pretrained: bool, kwargs) -> nn.Module:
    """A model from a hub folder (`save_for_hub`) through timm, which reads its `config.json`; refused, before
    anything is built, when a folder on disk holds another library's model."""
    source, _, location = model_name.partition(':')
    if source == 'local-dir':
        config = Path(location).expanduser() / 'config.json'
        if not config.is_file():
            raise WeightsNotFoundError(f'{model_name}: no config.json in {config.parent} (a folder written by '
                                       f'tim_zoo.save_for_hub)')
        check_model_name(json.loads(config.read_text()).get('architecture') or '?')
    model = timm.create_model(model_name, pretrained=pretrained, **kwargs)
    arch = (getattr(model, 'pretrained_cfg', None) or {}).get('architecture', '')   # also a features_only wrapper's
    if not is_model(arch):
        raise UnknownModelError(f'{model_name} holds {type(model).__name__}, not a tim_zoo model: load it with '
                                f'timm.create_model({model_name!r})')
    return model


def _check_no_dropped_none(model_name: str, model: nn.Module, kwargs: dict) -> None:
    """timm's `create_model` drops keyword arguments that are None: refuse the model when one was dropped for a value
    that is not None (a default, a factory's: `head_conv_channels=None` for `transformer`, whose factory sets 64)."""
    built = getattr(model, 'init_args', None) or {}
    dropped = {k: built[k] for k, v in kwargs.items() if v is None and built.get(k) is not None}
    if dropped:
        raise ConfigurationError(
            f'{model_name}: timm\'s create_model drops arguments that are None, so ' + ', '.join(
                f'{k}=None would build {k}={v!r}' for k, v in dropped.items()) + '; pass a value, or build the class '
            f'itself ({type(model).__module__.rsplit(".", 1)[0]}.{type(model).__name__}) for None')


def create_model_for_frames(model_name: str, frames: int, **kwargs) -> nn.Module:
    """`create_model`, with `seq_len=frames` when the model's head fixes the input length."""
    model = create_model(model_name, **kwargs)
    if model.fixed_len is not None and model.fixed_len != frames:
        model = create_model(model_name, seq_len=frames, **kwargs)
    return model


def load_checkpoint(path, device=None, builder=None, trust_builder: bool = False) -> nn.Module:
    """Rebuild a model from a tim_zoo checkpoint alone (architecture and arguments from its metadata). A TIM-Net
    Keras `.hdf5` file is loaded as `timnet` (as `create_model("timnet", pretrained=True, ...)` would).

    A checkpoint of a model composed of blocks names the function that built it: pass that function
    (`builder=make_model`, or its import name `"my_models:make_model"`), or `trust_builder=True` to import and call
    the named one (only for files you trust: a file can name any importable function). The model comes in training
    mode, as torch modules and `create_model` give them (for fine-tuning): call `.eval()` before predicting."""
    if Path(path).suffix.lower() in KERAS_SUFFIXES:
        model = create_model('timnet', pretrained=True, pretrained_cfg_overlay=dict(file=str(path)))
        return model if device is None else model.to(device)
    state_dict, meta = read_weight_file(path)
    if not meta:
        raise WeightFileError(
            f'{path} has no tim_zoo metadata, so the architecture is unknown; build the model with '
            f'tim_zoo.create_model(name, checkpoint_path={str(path)!r}) instead')
    if meta.get('builder'):
        if builder is None and not trust_builder:
            raise UnsafeFileError(
                f'{path} was saved from a model built by {meta["builder"]}(**{meta["model_args"]}); pass that function '
                f'(load_checkpoint(path, builder=...)) or, for a file you trust, trust_builder=True to import it')
        if isinstance(builder, str):
            builder = import_builder(builder)
        if builder is not None and f'{getattr(builder, "__module__", "")}:{getattr(builder, "__qualname__", "")}' \
                != meta['builder']:
            warnings.warn(f'{path} was saved from {meta["builder"]}; building it with '
                          f'{getattr(builder, "__qualname__", builder)} instead', stacklevel=2)
        try:
            with chosen_for_the_caller(meta['model_args']):      # a record of what built it: not refused again
                model = (builder or import_builder(meta['builder']))(**meta['model_args'])
        except TypeError as e:
            raise WeightFileError(f'{path} records the model as {meta["builder"]}(**{meta["model_args"]}); the builder '
                                  f'given cannot build it with those arguments: {e}') from e
    else:
        with chosen_for_the_caller(meta['model_args']):
            model = create_model(meta['architecture'], **meta['model_args'])
    apply_state_dict(model, state_dict, source=str(path), allow_head_reset=False)
    apply_metadata(model, meta)
    return model if device is None else model.to(device)


def convert_keras(path, output, release: Optional[str] = None) -> dict:
    """Write the TIM-Net Keras `.hdf5` file `path` as a tim_zoo `.safetensors` checkpoint `output`, with the label
    names and feature settings of the authors' release it belongs to: `release` (e.g. "EMODB_46"), else the release
    folder in its path, else the published file with its SHA-256 (renamed or moved; the releases whose hashes
    tim_zoo knows: `timnet_releases.releases_known_by_hash()`). Returns what was written:
    `path`, `release` ('' when none is known: the checkpoint then has no feature settings, nor label names unless
    the file gives them), `depth`, `num_classes` and `label_names`."""
    if release and release not in TIMNET_RELEASES:
        raise ConfigurationError(f'unknown release {release!r}; known: {", ".join(TIMNET_RELEASES)}')
    keras = read_keras_timnet(path)
    given, release = release, release or find_release(path) or published_release(keras.sha256)[0]
    if given:                                             # the release's file, as its tag would load it
        try:
            TIMNet.check_pretrained('timnet', release.lower(), TIMNet.tag_info(release.lower()), path,
                                    dict(model_args=keras.model_args, sha256=keras.sha256), set())
        except ConfigurationError as e:
            raise ConfigurationError(f'not converted as {release}\'s: {e}. Name the file\'s own release (release=, '
                                     f'--release), or none: its folder or hash then says, if either does') from None
    model = create_model('timnet', **keras.model_args)
    load_read_weights(model, keras.state_dict, TIMNet.keras_metadata(path, keras), path, allow_head_reset=False)
    labels, settings = model.label_names, None
    if release:
        settings = release_metadata(release)
        labels = settings['label_names'] if len(settings['label_names']) == keras.num_classes else None
    written = save_checkpoint(model, output, label_names=labels, feature_settings=settings,
                              extra=dict(converted_from=str(path), keras_version=keras.keras_version))
    return dict(path=written, release=release, depth=keras.depth, num_classes=keras.num_classes,
                label_names=list(labels) if labels else None)


def list_pretrained_weights(filter: Union[str, List[str]] = '') -> List[dict]:  # noqa: A002 (timm's name)
    """Every published weight file tim_zoo knows and where it is: one dict per `arch.tag` of
    `list_models(filter, pretrained=True)` with `name`, `file` (where it belongs: relative to `weights_dir()`, or
    absolute), `found` (the path it loads from, or None), `problem` (what is wrong with the file found, e.g. another
    release's file, as its family checks it; '' if nothing), `description`, `published` (where to get it) and
    `accuracy`: what the weights (for a zoo tag, their recipe) scored on EMODB utterances they never saw, measured in
    this repository (`war`, `war_std` in %, `what`, `results`: its results file), or None where nothing was."""
    rows = []
    for name in list_models(filter, pretrained=True):
        cfg = get_pretrained_cfg(name)
        try:
            found = find_weight_file(cfg.file, cfg.hf_hub_id, cfg.hf_hub_filename, name=name, download=False,
                                     relative_to_cwd=False)
        except WeightsNotFoundError:
            found = None
        arch, tag = split_model_name_tag(name)
        family = sys.modules[model_entrypoint(arch).__module__]      # the family checks its own files
        check = getattr(family, 'check_weight_file', None)
        problem = check(tag, found) if found is not None and check is not None else ''
        rows.append(dict(name=name, file=cfg.file, found=found, problem=problem, description=cfg.description or '',
                         published=' '.join(cfg.notes or ()), accuracy=tag_accuracy(name)))
    return rows


def unknown_weight_files() -> List[Path]:
    """Files in `weights_dir()` that belong to no pretrained tag (misplaced or misnamed)."""
    root = weights_dir()
    if not root.is_dir():
        return []
    known = {str(get_pretrained_cfg(n).file) for n in list_models(pretrained=True)}
    return sorted(p for p in root.rglob('*') if p.is_file() and str(p.relative_to(root)) not in known)
