"""`create_model` and `list_models` over timm's registry, limited to tim_zoo's models."""
import difflib
import fnmatch
from typing import List, Optional, Union

import timm
from timm.models import model_entrypoint, split_model_name_tag
from torch import nn

from . import models as _models  # noqa: F401  (registers the models)
from .exceptions import UnknownModelError


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
    if not is_model(model_name):
        names = list_models()
        close = difflib.get_close_matches(split_model_name_tag(model_name)[0].lower(), names, n=5, cutoff=0.5)
        hint = f'; did you mean {", ".join(close)}?' if close else '.'
        raise UnknownModelError(f'unknown model {model_name!r}{hint} Available models: {", ".join(names)}')


def create_model(model_name: str, pretrained: bool = False, checkpoint_path=None, **kwargs) -> nn.Module:
    """Build a registered tim_zoo model by name, through timm's builder.

    Args:
        model_name: a name from `list_models`, optionally with a pretrained tag (`"timnet.emodb_46"`).
        pretrained: load the published weights of the tag (for the Keras releases give the file with
            `pretrained_cfg_overlay=dict(file=PATH)`; depth and classes are read from it).
        checkpoint_path: after building, load this weight file (`.safetensors`, `.hdf5`, `.pt`) into the
            model, checking every key; a different `num_classes` keeps the body and re-initialises the head.
        **kwargs: constructor arguments of the model (`num_classes`, `in_chans`, `seq_len`, ...),
            and timm's `pretrained_cfg` / `pretrained_cfg_overlay`.

    Raises:
        UnknownModelError: no tim_zoo model has that name; the message lists close names.
    """
    check_model_name(model_name)
    model = timm.create_model(model_name, pretrained=pretrained, **kwargs)
    if checkpoint_path is not None:
        from .weights import load_weights
        load_weights(model, checkpoint_path)
    return model


def create_model_for_frames(model_name: str, frames: int, **kwargs) -> nn.Module:
    """`create_model`, with `seq_len=frames` when the model's head fixes the input length."""
    model = create_model(model_name, **kwargs)
    if model.fixed_len is not None and model.fixed_len != frames:
        model = create_model(model_name, seq_len=frames, **kwargs)
    return model
