"""What `TrainConfig.model` names: a tim_zoo model, a model registered with timm, or a builder function.

A run's configuration is JSON, so a function is kept as its import name `"package.module:function"`; a function
that cannot be imported again from that name (a lambda, a local function, one defined in a script run as
`__main__`) is refused before anything trains, since neither a resumed run nor a saved checkpoint could rebuild it.
"""
import difflib
import inspect
from typing import Callable, Optional, Tuple

import timm
from timm.models import model_entrypoint, split_model_name_tag
from torch import nn

from .._factory import check_model_name, is_model
from .._validation import check_argument_types
from ..exceptions import ConfigurationError, UnknownModelError, WeightFileError
from ..weights.checkpoint import builder_name, import_builder

#: the constructor arguments a training run sets from its data
DATA_ARGS = ('num_classes', 'in_chans', 'seq_len')


def function_name(fn, what: str) -> str:
    """The import name `"module:qualname"` of the function `fn` (a function or the import name of one, which is
    imported and given in its own module's name), refused with the fix when it cannot be imported back."""
    if isinstance(fn, str):
        fn = import_function(fn, what)
    if isinstance(fn, nn.Module):
        raise ConfigurationError(f'{what}: got a built model ({type(fn).__name__}); give the function that builds it, '
                                 f'so that every split starts from a new model and checkpoints can rebuild it')
    if not getattr(fn, '__qualname__', None):
        raise ConfigurationError(f'{what}: a {type(fn).__name__} cannot be kept by its import name; define a function '
                                 f'in your module that calls it (e.g. def build(num_classes, in_chans): ...)')
    try:
        return builder_name(fn)
    except WeightFileError as e:
        raise ConfigurationError(f'{what}: {e}') from e


def canonical_model(model) -> str:
    """`TrainConfig.model` as the config keeps it: a tim_zoo name as given; a function, its import name, or a name
    registered with timm as the import name of its registered function (so that a resumed run or a checkpoint finds
    it without the module that registered it being imported first). Unknown names are kept, for the run's check
    to list close names."""
    if callable(model) or ':' in model:
        return function_name(model, 'model')
    if is_model(model):
        return model
    arch, tag = split_model_name_tag(model)
    if timm.is_model(arch):
        if tag:
            raise ConfigurationError(f'model {model!r}: a timm model trains from its architecture name ({arch!r}); '
                                     f'start from weights with init=')
        return function_name(model_entrypoint(arch), f'timm model {arch!r}')
    return model


def is_timm_entrypoint(fn) -> bool:
    """Whether `fn` is a function registered with timm (which takes timm's `drop_rate`)."""
    name = getattr(fn, '__name__', '')
    return timm.is_model(name) and model_entrypoint(name) is fn


def import_function(name: str, what: str) -> Callable:
    """The function `"package.module:function"` names; ConfigurationError when it cannot be imported."""
    if ':' not in name:
        raise ConfigurationError(f'{what} {name!r}: give a function or its import name "package.module:function"')
    try:
        return import_builder(name)
    except WeightFileError as e:
        raise ConfigurationError(f'{what}: {e}') from e


def model_builder(model: str) -> Optional[Tuple[str, Callable[..., nn.Module]]]:
    """None for a tim_zoo model; `(import name, function)` of the function that builds any other model `model`
    names: `"package.module:function"`, or a name registered with timm (its registered function).

    Raises:
        ConfigurationError: a builder that cannot be imported.
        UnknownModelError: a name neither registry knows (close tim_zoo names are listed).
    """
    if ':' in model:
        return model, import_function(model, 'model')
    if is_model(model):
        return None
    if timm.is_model(split_model_name_tag(model)[0]):
        name = canonical_model(model)
        return name, import_function(name, 'model')
    try:
        check_model_name(model)
    except UnknownModelError as e:
        raise UnknownModelError(f'{e}. Your own model: a builder function, as TrainConfig(model=make_model) or '
                                f'--model package.module:make_model (also for a name your module registers with '
                                f'timm: the command line imports no module of yours)') from None
    return None


def builder_args(fn: Callable, model_args: dict, num_classes: int, in_chans: int, frames: int,
                 drop_rate: Optional[float]) -> dict:
    """The keyword arguments `fn` builds the run's model with: `model_args`, and of `num_classes`, `in_chans`,
    `seq_len` (frames) and `drop_rate` (the recipe's dropout, unless `model_args` sets it) those `fn` takes (a
    `**kwargs` function takes `num_classes` and `in_chans`; `drop_rate` too when it is registered with timm, whose
    models take it)."""
    params = inspect.signature(fn).parameters
    takes_any = any(p.kind is inspect.Parameter.VAR_KEYWORD for p in params.values())
    given = sorted(set(DATA_ARGS) & set(model_args))
    if given:
        raise ConfigurationError(f'model argument {", ".join(given)}: set from the data ({num_classes} classes, '
                                 f'{in_chans} channels, {frames} frames); drop it')
    kwargs = dict(model_args)
    for key, value in dict(num_classes=num_classes, in_chans=in_chans, seq_len=frames).items():
        if key in params or (takes_any and key != 'seq_len'):
            kwargs[key] = value
    if drop_rate is not None and ('drop_rate' in params or (takes_any and is_timm_entrypoint(fn))):
        kwargs.setdefault('drop_rate', drop_rate)
    unknown = [k for k in kwargs if k not in params] if not takes_any else []
    if unknown:
        close = {k: difflib.get_close_matches(k, list(params), n=1) for k in unknown}
        raise ConfigurationError(f'{getattr(fn, "__qualname__", fn)} takes no argument ' + ', '.join(
            f'{k} (did you mean {c[0]}?)' if c else k for k, c in close.items())
            + f' (it takes {", ".join(params) or "none"})')
    defaults = {k: p.default for k, p in params.items() if p.default is not inspect.Parameter.empty}
    check_argument_types(getattr(fn, '__qualname__', str(fn)), defaults, model_args, int_means_count=False)
    return kwargs


def dropout_note(fn: Optional[Callable], model_args: dict, drop_rate: Optional[float]) -> str:
    """Why the run's dropout does not reach the model `fn` builds (None: a registered model, which takes it), or ''
    when it does or there is none to pass."""
    if drop_rate is None:
        return ''
    if 'drop_rate' in model_args:
        if model_args['drop_rate'] == drop_rate:
            return ''
        return (f'dropout {drop_rate} (of the recipe) is not applied: the model argument drop_rate='
                f'{model_args["drop_rate"]!r} sets the model\'s dropout')
    if fn is None:
        return ''
    params = inspect.signature(fn).parameters
    takes_any = any(p.kind is inspect.Parameter.VAR_KEYWORD for p in params.values())
    if 'drop_rate' in params or (takes_any and is_timm_entrypoint(fn)):
        return ''
    return (f'dropout {drop_rate} is not applied: {getattr(fn, "__qualname__", fn)} takes no drop_rate argument '
            f'(give the model its own dropout, or add drop_rate to its arguments)')
