"""`python -m tim_zoo.benchmark`: per model parameters, MACs, inference and training-step latency, peak memory."""
import argparse
import json
import sys
from dataclasses import asdict
from typing import List, Optional

import torch

from .._utils import format_table
from .harness import BenchmarkRow, measure, rows_to_json, run_benchmark, select_models, tune_malloc


def _ms(v: Optional[float]) -> str:
    return '-' if v is None else f'{v:,.1f}'


def _ratio(ref: Optional[float], ours: Optional[float]) -> str:
    return '-' if ref is None or not ours else f'{ref / ours:.2f}x'


def format_rows(rows: List[BenchmarkRow]) -> str:
    header = ('model', 'device' if not any(r.compiled for r in rows) else 'device (compiled)', 'batch', 'frames', 'params', 'MACs/sample', 'infer ms', 'train ms', 'peak MB',
              'ref infer', 'ref train', 'speed-up', 'max |diff|')
    body = [(r.model, r.device + (f' ({r.compiled})' if r.compiled else ''), str(r.batch), str(r.frames), f'{r.params:,}', f'{r.macs / 1e6:,.1f} M',
             _ms(r.infer_ms), _ms(r.train_step_ms), f'{r.peak_mem_mb:,.0f}', _ms(r.ref_infer_ms),
             _ms(r.ref_train_step_ms),
             '-' if r.ref_infer_ms is None else f'{_ratio(r.ref_infer_ms, r.infer_ms)} / '
                                                f'{_ratio(r.ref_train_step_ms, r.train_step_ms)}',
             '-' if r.ref_max_abs_diff is None else f'{r.ref_max_abs_diff:.1e}') for r in rows]
    return format_table(header, body, ('<', '<') + ('>',) * 11)


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog='python -m tim_zoo.benchmark',
        description='Time every model (median of many runs after warm-up): inference in eval mode under '
                    'torch.no_grad, and a training step (forward, cross-entropy, backward, AdamW step). '
                    'Models with a bidirectional TAB encoder are also timed with the straightforward two-pass '
                    'encoder (tim_zoo.benchmark.reference), outputs checked equal.')
    p.add_argument('--models', nargs='*', default=[], metavar='PATTERN', help='shell patterns, e.g. "tim*" (default: all)')
    p.add_argument('--batch', type=int, default=64)
    p.add_argument('--frames', type=int, nargs='+', default=[188])
    p.add_argument('--device', nargs='+', choices=('cpu', 'cuda'), default=None,
                   help='default: cpu, and cuda when available')
    p.add_argument('--threads', type=int, default=None, help='torch CPU threads (default: torch\'s own choice)')
    p.add_argument('--repeats', type=int, default=20)
    p.add_argument('--warmup', type=int, default=5)
    p.add_argument('--no-train', action='store_true', help='skip the training-step timing')
    p.add_argument('--no-reference', action='store_true', help='skip the straightforward encoder')
    p.add_argument('--no-isolate', action='store_true', help='measure every row in this process (faster; '
                                                              'CPU peak memory is then a process-wide figure)')
    p.add_argument('--system-malloc', action='store_true',
                   help='leave glibc\'s allocator as it is (default: raise its trim/mmap thresholds, see tune_malloc)')
    p.add_argument('--compile', nargs='?', const='default', metavar='MODE',
                   help='time torch.compile(model, mode=MODE) instead of eager mode (MODE: default, '
                        'reduce-overhead, max-autotune); no reference then')
    p.add_argument('--tf32', action='store_true', help='allow TF32 convolutions and matrix products on CUDA')
    p.add_argument('--json', metavar='OUT', help='write the rows as JSON')
    p.add_argument('--worker', help=argparse.SUPPRESS)
    return p


def main(argv: Optional[List[str]] = None) -> int:
    args = build_parser().parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    if args.worker:
        if not args.system_malloc:
            tune_malloc()
        print(json.dumps(asdict(measure(**json.loads(args.worker)))))
        return 0
    devices = args.device or (['cpu', 'cuda'] if torch.cuda.is_available() else ['cpu'])
    if 'cuda' in devices and not torch.cuda.is_available():
        print('CUDA is not available here', file=sys.stderr)
        return 2
    try:
        models = select_models(args.models)
    except ValueError as e:
        print(e, file=sys.stderr)
        return 2
    print(f'torch {torch.__version__}, {torch.get_num_threads()} CPU threads, batch {args.batch}, '
          f'{len(models)} models x {len(args.frames)} lengths x {len(devices)} devices', file=sys.stderr)
    def progress(r: BenchmarkRow):
        print(f'  {r.model} {r.device} {r.frames} frames: {r.infer_ms:.1f} ms', file=sys.stderr)

    rows = run_benchmark(
        models, batch=args.batch, frames=args.frames, devices=devices, repeats=args.repeats, warmup=args.warmup,
        train=not args.no_train, reference=not args.no_reference, isolate=not args.no_isolate,
        threads=args.threads, system_malloc=args.system_malloc, tf32=args.tf32, compile_mode=args.compile,
        progress=progress)
    print(format_rows(rows))
    if args.json:
        with open(args.json, 'w') as f:
            f.write(rows_to_json(rows))
    return 0


if __name__ == '__main__':
    sys.exit(main())
