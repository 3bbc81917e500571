"""Input checks shared by every model: clear messages instead of errors deep inside torch."""
import functools
import numbers
from typing import Optional

import torch

from ._utils import cpu_info
from .exceptions import ConfigurationError, InputDtypeError, InputShapeError, NonFiniteInputError


def check_choice(name: str, value, choices) -> None:
    """Raise ConfigurationError if `value` is not one of `choices`."""
    if value not in choices:
        raise ConfigurationError(f"{name} must be one of {sorted(choices)}, got {value!r}")


def check_argument_types(owner: str, defaults: dict, arguments: dict, int_means_count: bool = True) -> None:
    """Raise ConfigurationError for an argument given as text, or as a number for a flag, where its default
    (`defaults`: name -> default) is a bool or a number: a command line or config file that gives `"True"` or
    `"0.1"` as a string would otherwise switch a flag on by its truthiness, or fail deep inside torch. A float
    where the default is an int is refused too: every int default of tim_zoo's models is a count (channels, depth,
    mixtures); with `int_means_count=False` (a function of the user's, whose int default may be a rate's 0) only
    a whole float (`8.0`, as JSON or a config file may write 8) is. None passes (an optional argument)."""
    for name, value in arguments.items():
        default = defaults.get(name)
        if value is None or default is None:
            continue
        if isinstance(default, bool) and not isinstance(value, bool):
            raise ConfigurationError(f'{owner}: {name} takes True or False (default {default}), got {value!r}')
        if isinstance(default, (int, float)) and not isinstance(default, bool) and (
                isinstance(value, (str, bytes, bool)) or not isinstance(value, numbers.Real)):
            raise ConfigurationError(f'{owner}: {name} takes a number (default {default!r}), got {value!r}')
        if isinstance(default, int) and not isinstance(default, bool) and isinstance(value, float) and (
                int_means_count or value.is_integer()):
            fix = f': pass {int(value)}' if value.is_integer() else ''
            raise ConfigurationError(f'{owner}: {name} takes a whole number (default {default}), got {value!r}{fix}')


def traced_check(check):
    """Make a check traceable by `torch.fx`: called on a `torch.fx.Proxy` (symbolic tracing, also timm's and
    torchvision's feature extractors) it is recorded as a call in the graph, so the traced module checks its real
    input as the eager one does (also a proxy inside a list argument); while compiling or exporting it is skipped (the
    shapes are symbolic there)."""
    @functools.wraps(check)
    def checked(*args, **kwargs):
        if torch.compiler.is_compiling():
            return None
        proxy = next((a for a in _flat((*args, *kwargs.values())) if isinstance(a, torch.fx.Proxy)), None)
        if proxy is not None:
            proxy.tracer.create_proxy('call_function', checked, args, kwargs)
            return None
        return check(*args, **kwargs)
    torch.fx.node.has_side_effect(checked)      # kept by dead-code elimination (the feature extractors run it)
    return checked


def _flat(values):
    """`values` with the items of lists and tuples among them (a list of levels)."""
    for value in values:
        if isinstance(value, (list, tuple)):
            yield from _flat(value)
        else:
            yield value


@traced_check
def check_sequence_input(
        x,
        *,
        in_chans: int,
        seq_len: Optional[int] = None,
        min_len: int = 1,
        max_len: Optional[int] = None,
        check_finite: bool = False,
        model_name: str = 'model',
        dtype: Optional[torch.dtype] = None,
) -> None:
    """Check that `x` is a float tensor `[B, in_chans, T]` a model can take.

    Args:
        x: the input.
        in_chans: expected number of feature channels `C`.
        seq_len: the exact frame count a fixed-length model was built for, or None.
        min_len: the fewest frames the model can process.
        max_len: the most frames the model can process, or None.
        check_finite: also refuse NaN and Inf values (one reduction over the input).
        model_name: used in messages.
        dtype: the model's parameter dtype: another floating dtype is refused (outside `torch.autocast`)
            rather than converted, so precision never changes behind the user's back.
    """
    expected = f'[B, C, T] = [batch, {in_chans} channels, frames]'
    if not isinstance(x, torch.Tensor):
        raise InputDtypeError(f'{model_name} expects a torch.Tensor of shape {expected}, got {type(x).__name__}')
    if not x.is_floating_point():
        raise InputDtypeError(
            f'{model_name} expects a floating-point tensor of shape {expected}, got dtype {x.dtype}; '
            f'convert with x.float()')
    if dtype is not None and x.dtype != dtype and not torch.is_autocast_enabled(x.device.type):
        raise InputDtypeError(
            f'{model_name} has {dtype} parameters but got a {x.dtype} input; convert the input with x.to({dtype}) '
            f'(or the model with model.to({x.dtype}), or run under torch.autocast)')
    shape = tuple(x.shape)
    if x.ndim != 3:
        hint = ''
        if x.ndim == 2 and shape[0] == in_chans:
            hint = '; for a single utterance add the batch dimension with x.unsqueeze(0)'
        raise InputShapeError(f'{model_name} expects input of shape {expected}, got a {x.ndim}-D tensor of shape {shape}{hint}')
    if shape[0] == 0:
        raise InputShapeError(f'{model_name} got an empty batch (shape {shape}); expected at least one sample')
    if shape[1] != in_chans:
        hint = ''
        if shape[2] == in_chans:
            hint = ('; this looks like the Keras layout [B, T, C]: transpose it with x.transpose(1, 2)')
        raise InputShapeError(
            f'{model_name} expects {in_chans} channels (input {expected}), got {shape[1]} channels in shape {shape}{hint}')
    frames = shape[2]
    if frames == 0:
        raise InputShapeError(f'{model_name} got no frames (shape {shape}): an empty recording, or features cut to '
                              f'nothing; it takes ' + (f'exactly {seq_len} frames' if seq_len is not None else
                                                         f'at least {_frames(max(min_len, 1))}'))
    if seq_len is not None and frames != seq_len:
        raise InputShapeError(
            f'{model_name} was built for seq_len={seq_len} frames (its head has a fixed size) but got {frames} frames '
            f'in shape {shape}; build the model with seq_len={frames}, or pad/crop the input to {seq_len} frames')
    if frames < min_len:
        raise InputShapeError(f'{model_name} needs at least {_frames(min_len)}, got {frames} frames in shape {shape}')
    if max_len is not None and frames > max_len:
        raise InputShapeError(f'{model_name} accepts at most {max_len} frames, got {frames} frames in shape {shape}')
    if check_finite and not bool(torch.isfinite(x).all()):
        n_nan = int(torch.isnan(x).sum())
        n_inf = int(torch.isinf(x).sum())
        raise NonFiniteInputError(
            f'{model_name} expects finite input but got {n_nan} NaN and {n_inf} Inf values in a tensor of shape {shape}')


def _frames(n: int) -> str:
    return f'{n} frame' if n == 1 else f'{n} frames'


def resolve_device(device) -> torch.device:
    """`device` as a torch.device; a CUDA device on a machine without CUDA is refused with the fix."""
    try:
        device = torch.device(device or 'cpu')
    except RuntimeError as e:
        raise ConfigurationError(f'unknown device {device!r}: expected cpu, cuda, cuda:1, ... ({e})') from e
    if device.type == 'cuda' and not torch.cuda.is_available():
        raise ConfigurationError(f'device {str(device)!r} asked for, but CUDA is not available on this machine '
                                 f'(torch.cuda.is_available() is False); use device="cpu" (--device cpu)')
    available = any(getattr(getattr(module, device.type, None), 'is_available', lambda: False)()
                    for module in (torch.backends, torch))         # torch.backends.mps, torch.xpu, ...
    if device.type not in ('cpu', 'cuda') and not available:
        raise ConfigurationError(f'device {str(device)!r} asked for, but this torch build or machine has no '
                                 f'{device.type} backend; use device="cpu" (--device cpu)'
                                 + (' or "cuda"' if torch.cuda.is_available() else ''))
    return device


#: CPU flags (Linux /proc/cpuinfo) of native bfloat16 arithmetic: AVX-512 BF16 (Zen 4 and later, Cooper Lake) or AMX
NATIVE_BF16_FLAGS = ('avx512_bf16', 'amx_bf16')


def native_bf16(device: torch.device) -> bool:
    """Whether `device` computes bfloat16 natively: a CUDA device that supports it, or a CPU with `NATIVE_BF16_FLAGS`.
    Elsewhere bf16 is emulated, hundreds of times slower than float32 (measured 400x on an AVX2-only CPU)."""
    if device.type == 'cuda':
        return torch.cuda.is_bf16_supported()
    if device.type != 'cpu':
        return False
    return any(flag in cpu_info()[1] for flag in NATIVE_BF16_FLAGS)


@traced_check
def check_block_input(x: torch.Tensor, block: str, layout: str, fix: str = '', **sizes: int) -> None:
    """Check that a block's input has the rank of `layout` (e.g. `"B F T n"`) and the given sizes by axis name
    (`F=39, n=8`; None: any size), else raise `InputShapeError` naming the layout expected, the shape given and the
    fix: where it looks like time and features swapped (`[B, T, C]` for `[B, C, T]`), the transpose, else `fix` (which
    may name `{got}`, the size of the first axis that differs). Skipped while compiling or exporting (the shapes are
    symbolic there; the eager model has checked them)."""
    sizes = {axis: size for axis, size in sizes.items() if size is not None}      # None: any size
    axes = layout.split()
    if not isinstance(x, torch.Tensor):
        raise InputDtypeError(f'{block} expects a torch.Tensor [{", ".join(axes)}], got {type(x).__name__}')
    shape = tuple(x.shape)
    expected = '[' + ', '.join(f'{a}={sizes[a]}' if a in sizes else a for a in axes) + ']'
    if x.ndim != len(axes):
        raise InputShapeError(f'{block} expects a {len(axes)}-D input {expected}, got shape {shape}')
    wrong = [(a, shape[i]) for i, a in enumerate(axes) if a in sizes and shape[i] != sizes[a]]
    if wrong:
        if len(axes) == 3 and 'T' in axes and axes[1] in sizes and shape[2] == sizes[axes[1]]:
            fix = 'this looks like [B, T, C] (time before features): transpose it with x.transpose(1, 2)'
        got = ', '.join(f'{a}={n}' for a, n in wrong)
        raise InputShapeError(f'{block} expects {expected}, got shape {shape} ({got})'
                              + (f'; {fix.format(got=wrong[0][1])}' if fix else ''))
