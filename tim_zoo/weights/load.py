"""Load weights of any supported format into a model, checking that they fit."""
import pickle
from pathlib import Path
from typing import Dict, List, Optional, Sequence, Tuple

import torch

from .._utils import warn_caller
from ..exceptions import (
    CheckpointMismatchError, ConfigurationError, UnsafeFileError, WeightFileError, WeightsNotFoundError,
)
from ..version import MODEL_DEFAULTS
from .checkpoint import read_checkpoint
from .fresh_head import mark_fresh_head, mark_from_record, mark_labels_left_out, remember_fresh_head
from .label_rows import NONE, PARTLY, REORDERED, SAME, LabelRowsWarning, rows_for_labels
from .legacy import legacy_model_args

_HEAD_KEYS = ('head.fc.weight', 'head.fc.bias')
KERAS_SUFFIXES = ('.hdf5', '.h5')
TORCH_SUFFIXES = ('.pt', '.pth', '.bin', '.ckpt')
#: every suffix `read_weight_file` reads (`EmotionRecognizer.from_pretrained` takes a missing path ending otherwise
#: for a model name or tag)
WEIGHT_SUFFIXES = ('.safetensors', *KERAS_SUFFIXES, *TORCH_SUFFIXES)


def _listing(keys, limit: int = 8) -> str:
    keys = list(keys)
    shown = ', '.join(keys[:limit])
    return shown + (f', ... ({len(keys) - limit} more)' if len(keys) > limit else '')


def apply_state_dict(model, state_dict: Dict[str, torch.Tensor], source: str, allow_head_reset: bool = True) -> bool:
    """Copy `state_dict` into `model` after checking every key and shape; True when the classifier was not loaded.

    If only the classifier (`head.fc`) differs (another class count, or another input length for a head that
    flattens time), the body is loaded and the model keeps its freshly initialised classifier, with a warning
    (none when the model has no classifier, `num_classes=0`); likewise when only the head differs (another kind
    of head, e.g. `head="gmm"`). Any other difference raises `CheckpointMismatchError` naming the mismatched keys.
    """
    own = model.state_dict()
    missing = [k for k in own if k not in state_dict and not k.endswith('num_batches_tracked')]
    unexpected = [k for k in state_dict if k not in own]
    reshaped = [k for k in own if k in state_dict and own[k].shape != state_dict[k].shape]
    differing = set(missing) | set(unexpected) | set(reshaped)
    if differing and allow_head_reset and not differing <= set(_HEAD_KEYS) and all(k.startswith('head.') for k in differing):
        # another kind of head (e.g. head="gmm" on a model saved with its default head): the body loads
        warn_caller(f'{source}: its head differs from the model\'s ({_listing(sorted(differing), 4)}); loaded the body '
                    f'and kept the model\'s freshly initialised head (fine-tune it)')
        state_dict = {k: v for k, v in state_dict.items() if not k.startswith('head.')}
        model.label_names = None
    elif differing and allow_head_reset and differing <= set(_HEAD_KEYS):
        file_fc = tuple(state_dict['head.fc.weight'].shape) if 'head.fc.weight' in state_dict else (0,)
        model_fc = tuple(own['head.fc.weight'].shape) if 'head.fc.weight' in own else (0,)
        classes = getattr(model, 'num_classes', model_fc[0])        # a model of blocks: its classifier's outputs
        if classes and file_fc[0] != classes:
            length = (f', and {file_fc[1]} inputs per class, the model {model_fc[1]} (another input length, seq_len, '
                      f'for a head that flattens time: no row could be kept)'
                      if len(file_fc) == len(model_fc) == 2 and file_fc[1] != model_fc[1] else '')
            warn_caller(f'{source}: its classifier has {file_fc[0]} classes, the model {classes}{length}; loaded the '
                        f'body and kept a freshly initialised classifier (fine-tune it)')
        elif classes:
            warn_caller(f'{source}: its classifier has the shape {file_fc}, the model\'s {model_fc} (another input '
                        f'length, seq_len, for a head that flattens time?); loaded the body and kept a freshly '
                        f'initialised classifier (fine-tune it)')
        state_dict = {k: v for k, v in state_dict.items() if k not in _HEAD_KEYS}
        model.label_names = None
    elif differing:
        parts = []
        if missing:
            parts.append(f'missing in the file: {_listing(missing)}')
        if unexpected:
            parts.append(f'not in the model: {_listing(unexpected)}')
        if reshaped:
            parts.append('shape mismatches: ' + _listing(
                f'{k} file {tuple(state_dict[k].shape)} vs model {tuple(own[k].shape)}' for k in reshaped))
        raise CheckpointMismatchError(
            f'{source} does not fit {getattr(model, "model_name", type(model).__name__)} '
            f'(another architecture or other arguments): ' + '; '.join(parts))
    model.load_state_dict(state_dict, strict=False)
    if differing:                                   # the head as loaded, with its fresh classifier
        remember_fresh_head(model, source)
    return bool(differing)


def weights_trained_on(meta: dict) -> Optional[dict]:
    """What weight metadata records of the utterances the weights trained on (`trained_on`: corpus, protocol,
    split, ...; see `tim_zoo.train.protocols.seen_utterances`), or None. A tim_zoo checkpoint from before the record
    was kept, trained on all of a corpus (`--protocol all`), says so by its training configuration."""
    extra = meta.get('extra') or {}
    record = meta.get('trained_on') or extra.get('trained_on')
    if record:
        return dict(record)
    corpus, config = (meta.get('feature_settings') or {}).get('corpus'), extra.get('train_config') or {}
    if config.get('protocol') == 'all' and corpus:
        return dict(corpus=corpus, protocol='all', split='all', recipe=config.get('recipe'))
    return None


def training_records(record: Optional[dict]) -> List[dict]:
    """A record and the records of the weights it started from (`earlier`), each without its `earlier`."""
    if not record or not isinstance(record, dict):
        return []
    own = {k: v for k, v in record.items() if k != 'earlier'}
    return [own] + [r for earlier in record.get('earlier') or [] for r in training_records(earlier)]


def apply_metadata(model, meta: dict, head_loaded: bool = True) -> None:
    """Set label names, feature settings and the record of the training utterances (`weights_trained_on`) kept with
    the weights: the one place where they are set, however the weights arrive. Label names only when the classifier
    came from the weights (`head_loaded`); a release's label list inside the feature settings is dropped with them.
    The record is kept whether the head loaded or not: the body learned from those utterances either way."""
    labels = meta.get('label_names')
    if head_loaded and labels and len(labels) == getattr(model, 'num_classes', len(labels)):
        model.label_names = list(labels)
    settings = meta.get('feature_settings')
    if settings and getattr(model, 'pretrained_cfg', None) is None:
        model.pretrained_cfg = {}                         # a model composed of blocks: where its settings are kept
    if settings and isinstance(getattr(model, 'pretrained_cfg', None), dict):
        named = settings.get('label_names') or []
        if named and (not head_loaded or len(named) != getattr(model, 'num_classes', len(named))):
            settings = {k: v for k, v in settings.items() if k != 'label_names'}
        model.pretrained_cfg['feature_settings'] = settings
    if head_loaded:                                     # a head saved untrained is untrained again, a cut one cut
        mark_from_record(model, _saved(meta, 'fresh_head'))
        record = _saved_left_out(meta)
        if record:
            mark_labels_left_out(model, record['source'], record['trained'], record['left_out'])
    record = weights_trained_on(meta)
    if isinstance(getattr(model, 'pretrained_cfg', None), dict):
        model.pretrained_cfg.pop('trained_on', None)      # weights loaded over others: theirs only
        if record:
            model.pretrained_cfg['trained_on'] = record
    if hasattr(model, 'refresh_pretrained_cfg'):           # a tim_zoo model: input_size, input_features, ... follow
        model.refresh_pretrained_cfg()


def _keep_record_of_rows(model, meta: dict, source: str, label_names: Sequence[str], fresh: List[str]) -> None:
    """A file saved with an untrained head (`extra["fresh_head"]`) whose rows were matched to other labels: the rows
    it kept are as untrained as they were; the mark follows them (with the rows started fresh now)."""
    record = _saved(meta, 'fresh_head')
    if not record or not record.get('why'):
        return
    if record.get('labels') is None:                     # the file's whole classifier was untrained: still is
        mark_from_record(model, record)
        return
    untrained = [n for n in label_names if n in set(record['labels']) | set(fresh)]
    if untrained:
        _mark_untrained_rows(model, source, untrained)


def _keep_labels_left_out(model, meta: dict, source: str, label_names: Sequence[str]) -> None:
    """Rows matched to `label_names` that leave out labels the weights trained on (those of the file, or of the
    weights it was cut from): the classifier is marked as cut (`fresh_head.mark_labels_left_out`)."""
    earlier = _saved_left_out(meta)
    trained = earlier['trained'] if earlier else meta.get('label_names') or []
    left_out = [n for n in trained if n not in label_names]
    if left_out:
        mark_labels_left_out(model, earlier['source'] if earlier else source, trained, left_out)


def _mark_untrained_rows(model, source: str, labels: List[str]) -> None:
    """Mark the classifier rows of `labels` untrained beside trained ones (`fresh_head.untrained_rows`)."""
    mark_fresh_head(model, f'loading {source} gave the classifier untrained rows for {", ".join(labels)}', source,
                    labels)


def _saved_left_out(meta: dict) -> Optional[dict]:
    """The `labels_left_out` record a checkpoint was saved with, where it holds its lists (else None)."""
    record = _saved(meta, 'labels_left_out')
    if not record or not all(isinstance(record.get(k), list) for k in ('trained', 'left_out')):
        return None
    return dict(record, source=str(record.get('source') or ''))


def _saved(meta: dict, key: str) -> Optional[dict]:
    """A record a checkpoint was saved with in its `extra` (`fresh_head`, `labels_left_out`: `tim_zoo.weights.
    fresh_head`), or None."""
    return meta.get(key) or (meta.get('extra') or {}).get(key) or None


def load_torch_file(path) -> Dict[str, torch.Tensor]:
    """A state dict from a `.pt`/`.pth` file, with `torch.load(weights_only=True)` only."""
    try:
        obj = torch.load(path, map_location='cpu', weights_only=True)
    except pickle.UnpicklingError as e:
        raise UnsafeFileError(
            f'refused to load {path}: it needs arbitrary code execution (a pickled object beyond tensors), '
            f'and tim_zoo only loads .pt/.pth files with torch.load(weights_only=True). Re-save it as a state '
            f'dict, or convert it to safetensors') from e
    except (RuntimeError, EOFError, OSError) as e:
        raise WeightFileError(f'cannot read {path} as a PyTorch file (truncated or corrupted?): {e}') from e
    if isinstance(obj, dict):
        for key in ('state_dict', 'model', 'model_state_dict'):
            if isinstance(obj.get(key), dict):
                obj = obj[key]
                break
    if not isinstance(obj, dict) or not all(isinstance(v, torch.Tensor) for v in obj.values()):
        raise WeightFileError(f'{path} holds no state dict of tensors')
    return obj


def weight_source(path: Path, meta: dict, model) -> str:
    """How error messages name the file. A Keras release is refused unless the model reads such releases
    (`model.reads_keras_release`: `timnet`, not the shared-weight `tim`)."""
    arch = meta.get('architecture')
    name = getattr(model, 'model_name', type(model).__name__)
    if Path(path).suffix.lower() in KERAS_SUFFIXES and not getattr(model, 'reads_keras_release', False):
        raise CheckpointMismatchError(f'{path} is a Keras {arch or "TIM-Net"} release; it loads only into '
                                      f'{arch or "timnet"}, not {name}')
    if not arch or arch == name:
        return str(path)
    return f'{path} (saved from {arch})'


#: constructor arguments that do not change what a model computes from its weights in eval mode (the dropouts and
#: the frame masking act only in training)
_NOT_COMPUTING = ('num_classes', 'weight_init', 'check_finite', 'drop_rate', 'attn_drop_rate', 'head_drop_rate',
                  'drop_mode', 'frame_mask')


def warn_other_arguments(model, meta: dict, source: str, head_reset: bool = False) -> None:
    """Warn when the file's tensors fit but were saved from the same architecture built with other arguments (e.g.
    a checkpoint of the older definitions, `residual='mul'`, loaded into a model built now): the same tensors then
    compute another function, which `load_checkpoint` would rebuild as saved."""
    saved, own = meta.get('model_args'), getattr(model, 'init_args', None)
    if not saved or not own or meta.get('architecture') != getattr(model, 'model_name', None):
        return
    differ = sorted(k for k in saved if k in own and k not in _NOT_COMPUTING and saved[k] != own[k]
                    and not (head_reset and k.startswith(('head', 'gmm_'))))    # a new head was asked for
    if differ:
        settings = meta.get('feature_settings') or {}
        length = settings.get('mean_signal_length') if 'seq_len' in differ else None
        rate = f' at {settings["sample_rate"]} Hz' if settings.get('sample_rate') else ''
        length_hint = (f' (seq_len={saved["seq_len"]}: inputs of {length} samples{rate}, as its features were; '
                       f'--mean-signal-length {length} on the command line)' if length else '')
        if head_reset and differ == ['seq_len']:         # the input length sizes only the classifier, left untrained
            warn_caller(f'{source} was trained at seq_len={saved["seq_len"]}, this model takes {own["seq_len"]} '
                        f'frames: its body loaded and its classifier stays untrained; fine-tune it at this length, '
                        f'or, to use the trained classifier, build the model with seq_len={saved["seq_len"]} '
                        f'(tim_zoo.load_checkpoint(path) rebuilds it as saved){length_hint}')
            return
        warn_caller(f'{source} was saved from {meta["architecture"]} built with '
                    f'{", ".join(f"{k}={saved[k]!r}" for k in differ)}; this model has '
                    f'{", ".join(f"{k}={own[k]!r}" for k in differ)}, so the same weights compute another function: '
                    f'rebuild it as saved with tim_zoo.load_checkpoint(path), or build it with those arguments'
                    f'{length_hint}')


def with_legacy_defaults(meta: dict) -> dict:
    """Checkpoint metadata with the constructor arguments of its time: a tim_zoo checkpoint written before models
    took `weight_init` was initialised by PyTorch's defaults (an argument that only sets the start, recorded so); one
    written with older model definitions (`model_defaults` absent or below `MODEL_DEFAULTS`) gets the arguments those
    definitions had (`tim_zoo.weights.legacy`)."""
    if meta.get('model_args') is None or not meta.get('architecture'):
        return meta
    args = meta['model_args']
    if 'weight_init' not in args:
        args = dict(args, weight_init='torch')
    args = legacy_model_args(meta['architecture'], args, meta.get('model_defaults', 1))
    return dict(meta, model_args=args, model_defaults=MODEL_DEFAULTS)


def read_weight_file(path) -> Tuple[Dict[str, torch.Tensor], dict]:
    """`(state_dict, metadata)` of a tim_zoo `.safetensors` checkpoint or a `.pt`/`.pth` state dict, read once.

    The metadata of a checkpoint holds `architecture`, `model_args`, `label_names` and `feature_settings`;
    a `.pt` file has none (`{}`). Keras files are read by the model family that knows their layout
    (`timnet`), through its `read_weights`.
    """
    path = Path(path)
    suffix = path.suffix.lower()
    if suffix == '.safetensors':
        state_dict, meta = read_checkpoint(path)
        return state_dict, with_legacy_defaults(meta or {})
    if suffix in TORCH_SUFFIXES:
        if not path.is_file():
            raise WeightsNotFoundError(f'no weight file at {path}')
        return load_torch_file(path), {}
    if suffix in KERAS_SUFFIXES:
        raise CheckpointMismatchError(
            f'{path} is a Keras weight file; it loads only into a model family that reads Keras releases (timnet)')
    raise WeightFileError(
        f'unknown weight format {suffix!r} of {path}; expected .hdf5/.h5 (Keras TIM-Net), .safetensors '
        f'(tim_zoo) or .pt/.pth (state dict)')


def load_weights(model, path, allow_head_reset: bool = True, label_names: Optional[Sequence[str]] = None) -> None:
    """Load a weight file into `model`: Keras TIM-Net `.hdf5`, tim_zoo `.safetensors` or `.pt`/`.pth`.

    The file is read by `model.read_weights` when the model has it (a tim_zoo model: its family knows its
    published formats), else by `read_weight_file`. Keras files load only into `timnet`; a release folder name
    in the path (`EMODB_46`) sets the label names and feature settings. A different `num_classes` keeps the
    body and re-initialises the classifier, with a warning (unless `allow_head_reset=False`).

    `label_names`, the labels the model is for (in the order of its outputs), matches the file's classifier rows
    to them by name where the file names its labels: a label the file knows keeps its trained row, in this order;
    one it lacks starts fresh; each change is warned of (`tim_zoo.weights.label_rows`). The model's `label_names`
    become these.
    """
    path = Path(path)
    state_dict, meta = getattr(model, 'read_weights', read_weight_file)(path)
    load_read_weights(model, state_dict, meta, path, allow_head_reset, label_names)


def load_read_weights(model, state_dict: Dict[str, torch.Tensor], meta: dict, path, allow_head_reset: bool = True,
                      label_names: Optional[Sequence[str]] = None) -> bool:
    """`load_weights` of weight file `path` already read (`model.read_weights(path)`: `state_dict`, whose classifier
    is `head.fc.weight` `[num_classes, D]` and `head.fc.bias` `[num_classes]`, and `meta`), for a caller that looked
    into it first; True when the classifier loaded (all its rows trained, reordered or not)."""
    path = Path(path)
    source = weight_source(path, meta, model)
    matched, said, fresh = SAME, '', []
    if label_names is not None:
        classes = getattr(model, 'num_classes', len(label_names))
        if len(label_names) != classes:
            raise ConfigurationError(f'{len(label_names)} label names for a model of {classes} classes')
        state_dict, matched, said, fresh = rows_for_labels(model, state_dict, meta.get('label_names'), label_names,
                                                           source)
        if matched in (PARTLY, NONE) and fresh and not allow_head_reset:
            raise CheckpointMismatchError(f'{said}; refused: rows would start fresh, and allow_head_reset=False '
                                          f'keeps the classifier whole')
    try:
        head_reset = apply_state_dict(model, state_dict, source, allow_head_reset)
    except CheckpointMismatchError as e:
        arch, name = meta.get('architecture'), getattr(model, 'model_name', type(model).__name__)
        if not arch or arch == name:
            raise
        article = 'an' if arch[0] in 'aeiou' else 'a'
        raise CheckpointMismatchError(
            f'{path} holds {article} {arch} model, not {name}: choose {arch} (create_model({arch!r}), --model {arch}), '
            f'or let tim_zoo.load_checkpoint(path) rebuild it as saved. {e}') from None
    if said and not head_reset:                     # else the whole head started fresh, as apply_state_dict said
        warn_caller(said, LabelRowsWarning)
    if matched == NONE and not head_reset:
        head_reset = True
        mark_fresh_head(model, f'loading {source} kept only its body (its classifier was trained on other labels)',
                        source)
    elif matched == PARTLY and fresh and not head_reset:
        _mark_untrained_rows(model, source, fresh)
    warn_other_arguments(model, meta, source, head_reset)   # the tensors fit: do the arguments?
    apply_metadata(model, meta, head_loaded=not head_reset and matched == SAME)
    if matched in (REORDERED, PARTLY) and not head_reset:
        _keep_record_of_rows(model, meta, source, label_names, fresh)
        _keep_labels_left_out(model, meta, source, label_names)
    if label_names is not None and len(label_names) == getattr(model, 'num_classes', len(label_names)):
        model.label_names = list(label_names)
    return not head_reset and matched in (SAME, REORDERED)
