"""tim_zoo's native checkpoint: one safetensors file whose header carries the JSON metadata that
rebuilds the model (architecture, constructor arguments, label names, feature settings, version,
a SHA-256 of the tensors)."""
import hashlib
import importlib
import json
from pathlib import Path
from typing import Dict, Optional, Tuple

import torch
from timm.models import model_entrypoint, split_model_name_tag

from .._utils import atomic_write, chosen_for_the_caller, require
from ..exceptions import WeightFileError, WeightsNotFoundError
from ..version import MODEL_DEFAULTS, __version__
from .fresh_head import fresh_head_record, labels_left_out

FORMAT = 'tim_zoo.checkpoint/1'
_META_KEY = 'tim_zoo'


def _safetensors():
    require('safetensors.torch', 'native checkpoints')
    import safetensors.torch
    return safetensors


def is_tim_zoo_model(name) -> bool:
    """Whether `name` is registered (with timm's registry) by tim_zoo, so that `create_model` rebuilds it."""
    try:
        return bool(name) and model_entrypoint(split_model_name_tag(name)[0]).__module__.startswith('tim_zoo.')
    except (RuntimeError, KeyError):                  # not registered (timm's versions differ in the error)
        return False


def tensor_hash(state_dict: Dict[str, torch.Tensor]) -> str:
    """SHA-256 over names, dtypes, shapes and bytes of the tensors, in sorted name order."""
    h = hashlib.sha256()
    for name in sorted(state_dict):
        t = state_dict[name].detach().cpu().contiguous()
        h.update(f'{name}|{t.dtype}|{tuple(t.shape)}|'.encode())
        h.update(t.reshape(-1).view(torch.uint8).numpy().tobytes())
    return h.hexdigest()


def save_checkpoint(
        model: torch.nn.Module,
        path,
        label_names=None,
        feature_settings: Optional[dict] = None,
        extra: Optional[dict] = None,
        builder=None,
        builder_args: Optional[dict] = None,
) -> Path:
    """Write `model` to `path` (`.safetensors`) with the metadata `load_checkpoint` rebuilds it from.

    Args:
        model: a model built by `tim_zoo.create_model`, or any module `builder` builds.
        label_names: class names in output order (default: `model.label_names`).
        feature_settings: how inputs were computed (default: the release settings in `model.pretrained_cfg`).
        extra: any further JSON-serialisable information. The record of the utterances the model's weights trained
            on (`model.pretrained_cfg["trained_on"]`, kept from the weights it was loaded from) is added as
            `trained_on` unless `extra` has one: weights re-saved, converted or fine-tuned have still heard them.
        builder: for a model composed of blocks: the importable function that builds it (the function, or
            `"package.module:function"`). Only its name and `builder_args` (JSON) are stored, never code;
            `load_checkpoint` calls `builder(**builder_args)` and loads the weights into the result.
        builder_args: the keyword arguments that build `model` with `builder`.
    """
    safetensors = _safetensors()
    path = Path(path)
    arch = getattr(model, 'model_name', None)
    tensors = {k: v.detach().cpu().contiguous() for k, v in model.state_dict().items()}
    if builder is not None:
        arch, model_args = None, dict(builder_args or {})
        name = builder_name(builder)
        check_builder(import_builder(name), model_args, tensors, name)
    elif getattr(model, 'levels_pruned', False):
        raise WeightFileError(
            f'{arch} was pruned to its feature levels (prune_intermediate_layers): its arguments no longer rebuild '
            f'it, so a checkpoint of it would not load; save the model before pruning, and prune after loading')
    elif not is_tim_zoo_model(arch):
        raise WeightFileError(
            f'save_checkpoint needs a model built by tim_zoo.create_model (got model_name={arch!r}), or, for a model '
            f'composed of blocks, the function that builds it: save_checkpoint(model, path, builder=make_model, '
            f'builder_args=dict(...)), so that load_checkpoint can rebuild it')
    else:
        name, model_args = None, model.init_args
    labels = list(label_names) if label_names is not None else getattr(model, 'label_names', None)
    num_classes = getattr(model, 'num_classes', None)
    if labels is not None and num_classes is not None and len(labels) != num_classes:
        raise WeightFileError(f'{len(labels)} label names for a model with {num_classes} classes')
    if feature_settings is None:
        feature_settings = (getattr(model, 'pretrained_cfg', None) or {}).get('feature_settings')
    heard = (getattr(model, 'pretrained_cfg', None) or {}).get('trained_on')
    if heard and 'trained_on' not in (extra or {}):
        extra = dict(extra or {}, trained_on=heard)
    for key, record in (('fresh_head', fresh_head_record(model)), ('labels_left_out', labels_left_out(model))):
        if record and key not in (extra or {}):         # loaded again, the classifier is still what it was: said so
            extra = dict(extra or {}, **{key: record})
    meta = dict(
        format=FORMAT, architecture=arch, builder=name, model_args=model_args, model_defaults=MODEL_DEFAULTS,
        label_names=labels,
        feature_settings=feature_settings, tim_zoo_version=__version__, tensor_sha256=tensor_hash(tensors),
        extra=extra)
    try:
        header = json.dumps(meta)
    except TypeError as e:
        raise WeightFileError(f'checkpoint metadata must be JSON-serialisable: {e}') from e
    atomic_write(path, lambda tmp: safetensors.torch.save_file(tensors, str(tmp), metadata={_META_KEY: header}))
    return path


def builder_name(builder) -> str:
    """`"module:qualname"` of a builder function (or the given name), checked to import back to it."""
    if isinstance(builder, str):
        name = builder
    else:
        name = f'{getattr(builder, "__module__", "")}:{getattr(builder, "__qualname__", "")}'
        if '<' in name or not name.split(':')[0] or name.split(':')[0] == '__main__':
            raise WeightFileError(f'builder {name} cannot be imported again (a lambda, a local function or a script\'s '
                                  f'__main__): define it at the top level of an importable module')
    if import_builder(name) is not builder and not isinstance(builder, str):
        raise WeightFileError(f'builder {name} does not import back to the function given')
    return name


def import_builder(name: str):
    """The function (or class) `"package.module:qualname"` names."""
    module, _, attr = name.partition(':')
    try:
        obj = importlib.import_module(module)
        for part in attr.split('.'):
            obj = getattr(obj, part)
    except (ImportError, AttributeError, ValueError) as e:
        missing = isinstance(e, ModuleNotFoundError) and e.name and module.startswith(e.name)
        raise WeightFileError(f'cannot import the builder {name!r} ({type(e).__name__}: {e})' + (
            f'; modules are imported from the current folder (the command line) and sys.path: run from the folder '
            f'that holds {module.split(".")[0]}.py (or its package), or add that folder to PYTHONPATH'
            if missing else '')) from e
    if not callable(obj):
        raise WeightFileError(f'the builder {name!r} is not a function')
    return obj


def check_builder(fn, kwargs: dict, tensors: dict, name: str) -> None:
    """The builder with these arguments must build a model whose state has the saved keys and shapes."""
    with chosen_for_the_caller(kwargs):                 # the arguments that built the model: not refused again
        built = fn(**kwargs).state_dict()
    wrong = sorted(set(built) ^ set(tensors)) + sorted(k for k in built if k in tensors and built[k].shape != tensors[k].shape)
    if wrong:
        raise WeightFileError(f'{name}(**{kwargs}) builds another model than the one saved: '
                              f'{", ".join(wrong[:6])}' + (' ...' if len(wrong) > 6 else ''))


def read_checkpoint(path, verify: bool = True) -> Tuple[Dict[str, torch.Tensor], Optional[dict]]:
    """Read a safetensors file: `(state_dict, metadata or None)`; with `verify` check the tensor hash.

    Raises:
        WeightFileError: unreadable (truncated, not safetensors) or the hash does not match (corrupted).
    """
    safetensors = _safetensors()
    path = Path(path)
    if not path.is_file():
        raise WeightsNotFoundError(f'no checkpoint at {path}')
    try:
        with safetensors.safe_open(str(path), framework='pt') as f:
            header = (f.metadata() or {}).get(_META_KEY)
            state_dict = {k: f.get_tensor(k) for k in f.keys()}
    except Exception as e:  # safetensors raises its own SafetensorError, OSError or ValueError
        raise WeightFileError(f'cannot read {path} as a safetensors file (truncated or corrupted?): {e}') from e
    meta = json.loads(header) if header else None
    if verify and meta is not None:
        actual = tensor_hash(state_dict)
        if actual != meta.get('tensor_sha256'):
            raise WeightFileError(
                f'{path} is corrupted: its tensors hash to {actual[:16]}..., the file records '
                f'{str(meta.get("tensor_sha256"))[:16]}...')
    return state_dict, meta
