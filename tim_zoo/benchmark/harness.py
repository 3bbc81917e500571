"""Latency, memory and size of every model, and our speed-up over the straightforward encoder.

Each (model, frames, device) row is measured in a fresh Python process by default, so that one
model's allocations, thread pools and caches do not colour the next one's figures.
"""
import contextlib
import ctypes
import ctypes.util
import fnmatch
import json
import os
import resource
import statistics
import subprocess
import sys
import time
from dataclasses import asdict, dataclass, field
from typing import Callable, Iterator, List, Optional, Sequence

import torch
from torch import nn

from .._factory import create_model_for_frames, list_models
from ..complexity import count_macs, count_params
from ..exceptions import TimZooError, UnknownModelError
from ..layers import BiTemporalEncoder
from .reference import ReferenceBiTemporalEncoder


@dataclass
class BenchmarkRow:
    """One measurement. `*_ms` are medians; `ref_*` time the same model with its bidirectional
    encoder(s) computed the straightforward way (None for models without one); `ref_max_abs_diff`
    compares the two eval outputs."""
    model: str
    batch: int
    frames: int
    device: str
    params: int
    macs: int
    infer_ms: float
    train_step_ms: Optional[float]
    peak_mem_mb: float
    threads: int
    tuned_malloc: bool = False
    tf32: bool = False
    compiled: Optional[str] = None
    ref_infer_ms: Optional[float] = None
    ref_train_step_ms: Optional[float] = None
    ref_max_abs_diff: Optional[float] = None
    torch_version: str = field(default_factory=lambda: torch.__version__)


def _sync(device: torch.device) -> None:
    if device.type == 'cuda':
        torch.cuda.synchronize(device)


def time_ms(fn: Callable[[], object], device: torch.device, repeats: int, warmup: int) -> float:
    """Median wall time of `fn` in milliseconds over `repeats` runs after `warmup` runs."""
    for _ in range(warmup):
        fn()
    _sync(device)
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        _sync(device)
        times.append((time.perf_counter() - start) * 1e3)
    return statistics.median(times)


@contextlib.contextmanager
def reference_encoders(model: nn.Module) -> Iterator[int]:
    """Swap every `BiTemporalEncoder` of `model` for the reference computation; yields how many."""
    swapped = []
    for name, module in list(model.named_modules()):
        if isinstance(module, BiTemporalEncoder):
            parent_name, _, attr = name.rpartition('.')
            parent = model.get_submodule(parent_name)
            setattr(parent, attr, ReferenceBiTemporalEncoder(module))
            swapped.append((parent, attr, module))
    try:
        yield len(swapped)
    finally:
        for parent, attr, module in swapped:
            setattr(parent, attr, module)


_malloc_tuned = False


def tune_malloc() -> bool:
    """Keep freed memory in glibc's heap instead of returning it to the system at once.

    glibc serves large blocks (a few MB, the size of these models' activations) with fresh `mmap`
    calls and trims its heap eagerly, so every forward pass page-faults its activations in again; on
    the 2-core machines that more than doubles the latency of the TIM models and makes it erratic.
    This raises the mmap and trim thresholds to 1 GiB (the `MALLOC_MMAP_THRESHOLD_` /
    `MALLOC_TRIM_THRESHOLD_` environment variables do the same for any program). Returns False
    where the C library is not glibc.
    """
    if not sys.platform.startswith('linux'):
        return False
    try:
        libc = ctypes.CDLL(ctypes.util.find_library('c') or 'libc.so.6')
        mallopt = libc.mallopt
    except (OSError, AttributeError):
        return False
    global _malloc_tuned
    m_trim_threshold, m_mmap_threshold = -1, -3
    _malloc_tuned = bool(mallopt(m_trim_threshold, 2 ** 30)) and bool(mallopt(m_mmap_threshold, 2 ** 30))
    return _malloc_tuned


def _rss_mb() -> float:
    with open('/proc/self/statm') as f:
        return int(f.read().split()[1]) * os.sysconf('SC_PAGE_SIZE') / 2 ** 20


def _max_rss_mb() -> float:
    scale = 1 if sys.platform == 'darwin' else 1024           # bytes on macOS, KiB on Linux
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * scale / 2 ** 20


def measure(name: str, batch: int = 64, frames: int = 188, device: str = 'cpu', repeats: int = 20,
            warmup: int = 5, train: bool = True, reference: bool = True, in_chans: int = 39,
            tf32: bool = False, compile_mode: Optional[str] = None) -> BenchmarkRow:
    """Measure one model in this process (see `run_benchmark` for isolated runs).

    Eval-mode timings (ours, then the reference encoder's, outputs compared) come before the training
    steps, which change the weights. On CUDA, convolutions and matrix products run in true fp32
    unless `tf32` (cuDNN's default allows TF32 convolutions, which round to 10-bit mantissas).
    `compile_mode` times `torch.compile(model, mode=compile_mode)` (`"default"`,
    `"reduce-overhead"`, `"max-autotune"`) instead of eager mode, without the reference.
    """
    dev = torch.device(device)
    if dev.type == 'cuda':
        torch.backends.cudnn.allow_tf32 = tf32
        torch.backends.cuda.matmul.allow_tf32 = tf32
    torch.manual_seed(0)
    model = create_model_for_frames(name, frames, in_chans=in_chans)
    params, macs = count_params(model), count_macs(model, (1, in_chans, frames))
    model = model.to(dev)
    x = torch.randn(batch, in_chans, frames, device=dev)
    y = torch.randint(0, model.num_classes, (batch,), device=dev)
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-4)
    forward = model
    if compile_mode:
        forward = torch.compile(model, mode=None if compile_mode == 'default' else compile_mode)
        reference = False

    def infer():
        with torch.no_grad():
            return forward(x)

    def train_step():
        optimizer.zero_grad(set_to_none=True)
        nn.functional.cross_entropy(forward(x), y).backward()
        optimizer.step()

    if dev.type == 'cuda':
        torch.cuda.reset_peak_memory_stats(dev)
        base_mb = torch.cuda.memory_allocated(dev) / 2 ** 20
    else:
        base_mb = _rss_mb()
    train_repeats, train_warmup = max(3, repeats // 2), max(2, warmup // 2)
    model.eval()
    infer_ms = time_ms(infer, dev, repeats, warmup)
    ref_infer_ms = ref_diff = ref_train_ms = train_ms = None
    if reference:
        out = infer()
        with reference_encoders(model) as swapped:
            if swapped:
                ref_infer_ms = time_ms(infer, dev, repeats, warmup)
                ref_diff = (infer() - out).abs().max().item()
                if train:
                    model.train()
                    ref_train_ms = time_ms(train_step, dev, train_repeats, train_warmup)
    if train:
        model.train()
        train_ms = time_ms(train_step, dev, train_repeats, train_warmup)
    peak = (torch.cuda.max_memory_allocated(dev) / 2 ** 20 if dev.type == 'cuda' else _max_rss_mb()) - base_mb
    return BenchmarkRow(model=name, batch=batch, frames=frames, device=str(dev), params=params, macs=macs,
                        infer_ms=infer_ms, train_step_ms=train_ms, peak_mem_mb=max(peak, 0.0),
                        threads=torch.get_num_threads(), tuned_malloc=_malloc_tuned, tf32=tf32 and dev.type == 'cuda',
                        compiled=compile_mode, ref_infer_ms=ref_infer_ms, ref_train_step_ms=ref_train_ms,
                        ref_max_abs_diff=ref_diff)


def select_models(patterns: Sequence[str]) -> List[str]:
    """Registered models matching any of the shell patterns (all when none given)."""
    names = list_models()
    if not patterns:
        return names
    chosen = [n for n in names if any(fnmatch.fnmatch(n, p) for p in patterns)]
    if not chosen:
        raise UnknownModelError(f'no model matches {list(patterns)}; models: {", ".join(names)}')
    return chosen


def _measure_in_subprocess(kwargs: dict, threads: Optional[int], system_malloc: bool) -> BenchmarkRow:
    cmd = [sys.executable, '-m', 'tim_zoo.benchmark', '--worker', json.dumps(kwargs)]
    if threads:
        cmd += ['--threads', str(threads)]
    if system_malloc:
        cmd += ['--system-malloc']
    done = subprocess.run(cmd, capture_output=True, text=True)
    if done.returncode != 0:
        raise TimZooError(f'benchmark of {kwargs["name"]} failed:\n{done.stderr[-2000:]}')
    return BenchmarkRow(**json.loads(done.stdout.strip().splitlines()[-1]))


def run_benchmark(models: Sequence[str], batch: int = 64, frames: Sequence[int] = (188,),
                  devices: Sequence[str] = ('cpu',), repeats: int = 20, warmup: int = 5, train: bool = True,
                  reference: bool = True, isolate: bool = True, threads: Optional[int] = None,
                  system_malloc: bool = False, tf32: bool = False, compile_mode: Optional[str] = None,
                  progress: Optional[Callable[[BenchmarkRow], None]] = None) -> List[BenchmarkRow]:
    """Measure every (model, frames, device); each in its own process unless `isolate=False`.

    Unless `system_malloc`, glibc's allocator is tuned first (`tune_malloc`).
    """
    if not isolate and not system_malloc:
        tune_malloc()
    rows = []
    for device in devices:
        for f in frames:
            for name in models:
                kwargs = dict(name=name, batch=batch, frames=f, device=device, repeats=repeats, warmup=warmup,
                              train=train, reference=reference, tf32=tf32, compile_mode=compile_mode)
                if isolate:
                    row = _measure_in_subprocess(kwargs, threads, system_malloc)
                else:
                    if threads:
                        torch.set_num_threads(threads)
                    row = measure(**kwargs)
                rows.append(row)
                if progress is not None:
                    progress(row)
    return rows


def rows_to_json(rows: Sequence[BenchmarkRow]) -> str:
    return json.dumps([asdict(r) for r in rows], indent=2)
