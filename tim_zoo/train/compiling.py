"""Whether and how a training step is compiled with `torch.compile`, what a compiler failure looks like, and the
way back to eager when one happens."""
import logging
from typing import Callable, Optional, Tuple, TypeVar

import torch

from ..exceptions import ConfigurationError
from .config import TrainConfig

log = logging.getLogger('tim_zoo.train')
T = TypeVar('T')


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


class CompiledForward:
    """`forward` compiled with torch.compile (`compile_on`; `compile_options(mode, device)`) or eager, with a way
    back. Until `proven` (set by the caller once a whole epoch ran compiled: every batch shape), each step keeps
    what it may change and a compiler failure undoes the step and runs it again eagerly, as every later step; any
    other error is raised. fallback_random draws dropout as the eager modules do, so a compiled run is the eager run
    up to rounding."""

    def __init__(self, forward: Callable, compile_on: bool, mode: str = 'default',
                 device: torch.device = torch.device('cpu')):
        self.eager = forward
        self.compiled = torch.compile(forward, options=compile_options(mode, device)) if compile_on else None
        self.proven = False

    @property
    def is_compiled(self) -> bool:
        """Whether steps run compiled (False from a compiler failure on)."""
        return self.compiled is not None

    def prove(self) -> None:
        """A whole epoch ran compiled (or eagerly): steps stop keeping their state for a way back."""
        self.proven = self.is_compiled

    def run(self, step: Callable[[Callable], T], keep: Callable[[], Callable[[], None]], what: str,
            refuse: str = '') -> T:
        """`step(forward)` with the compiled forward (the eager one when not compiled). Before a step not yet proven,
        `keep()` saves what the step may change and returns the function that restores it; on a compiler failure
        (`compiler_failure`) that function runs, the warning names `what`, and the step runs again eagerly.
        `refuse` makes a compiler failure a `ConfigurationError` with that message instead (e.g. under several
        processes, where the others would wait for the failed one)."""
        if self.compiled is None or self.proven:
            return step(self.eager if self.compiled is None else self.compiled)
        restore = keep()
        try:
            return step(self.compiled)
        except Exception as e:  # noqa: BLE001 -- only compiler errors, the rest is raised again
            reason = compiler_failure(e)
            if reason is None:
                raise
            if refuse:
                raise ConfigurationError(f'{refuse} ({reason}); train with --compile off') from e
            log.warning('%s: torch.compile failed (or the model failed while being compiled), training eagerly: %s',
                        what, reason)
            self.compiled = None
            restore()
            return step(self.eager)
