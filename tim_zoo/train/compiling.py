"""Whether and how a training step is compiled with `torch.compile`, and what a compiler failure looks like."""
from typing import Optional, Tuple

import torch

from .config import TrainConfig


def compile_decision(cfg: TrainConfig, world_size: int = 1) -> Tuple[bool, str]:
    """Whether the training step is compiled (`cfg.compile`, `"auto"` resolved for `cfg.device`) and why."""
    if cfg.compile != 'auto':
        return cfg.compile == 'on', f'compile={cfg.compile}'
    device = torch.device(cfg.device).type
    if device == 'cuda' and world_size == 1:
        return True, 'compile=auto on CUDA'
    if device == 'cuda':
        return False, 'compile=auto trains eagerly under several processes (--compile on compiles each process\'s step)'
    return False, (f'compile=auto trains eagerly on {device} (--compile on compiles the step: about a minute of '
                   f'compiling, seconds once inductor\'s cache holds it, then about 0.75x the time per step on a CPU)')


def compile_mode_note(cfg: TrainConfig, world_size: int = 1) -> str:
    """What to say when `cfg.compile_mode` was set but `compile="auto"` decides at run time to compile nothing (CUDA
    under several processes; the static cases are refused by `TrainConfig.unused_settings`), else ''."""
    on, why = compile_decision(cfg, world_size)
    if on or cfg.compile_mode == 'default':
        return ''
    return f'compile_mode={cfg.compile_mode!r} is not used: {why}'


def compile_options(mode: str, device: torch.device) -> dict:
    """torch.compile options of `mode` (torch.compile takes a mode or options, not both) with fallback_random, which
    draws dropout as the eager modules do; CUDA graphs only on CUDA."""
    import torch._inductor
    options = {} if mode == 'default' else dict(torch._inductor.list_mode_options(mode))
    if device.type != 'cuda':
        options.pop('triton.cudagraphs', None)
    return dict(options, fallback_random=True)


def compiler_failure(error: BaseException) -> Optional[str]:
    """`"Type: first line"` of the cause when `error` comes from torch.compile (dynamo, inductor), else None."""
    if not type(error).__module__.startswith(('torch._dynamo', 'torch._inductor')):
        return None
    cause = getattr(error, 'inner_exception', None) or error.__cause__ or error
    return f'{type(cause).__name__}: {(str(cause).strip().splitlines() or [""])[0]}'
