"""What training the zoo costs: each model's time per training step and per EMODB epoch, and a table's projection.

    python benchmarks/zoo_cost.py --threads 1 --frames 87 188 --precision fp32 bf16 --name cpu_zen4

One training step is what the engine does per batch: forward (under bfloat16 autocast with `bf16`), summed
cross-entropy with label smoothing, backward, AdamW step, on a batch of 64 random `39 x frames` inputs (the time
does not depend on the values). A step is timed `--repeats` times after `--warmup` steps, in a fresh process per
(model, frames, precision) so one model's caches and thread pools do not colour the next; the median is kept. An
epoch of the table's protocol (EMODB, 535 utterances, 10 folds, trained on all nine training folds: 481 or 482
utterances, no evaluation between epochs) is `ceil(482 / 64)` = 8 steps; a split adds one evaluation of its test
fold (54 utterances, measured too). The projection multiplies by `--epochs` and 10 folds, per model and for the
whole table. bf16 is measured only where the CPU computes it natively (`avx512_bf16` or `amx_bf16`); the CPU's
model name and flags go into the results file.
"""
import argparse
import json
import math
import platform
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import List, Optional

ROOT = Path(__file__).resolve().parents[1]
#: EMODB under the table's protocol: training utterances of a split (all nine training folds: 481 or 482), the
#: test fold's (evaluated once, at the end)
TRAIN_UTTERANCES, EVAL_UTTERANCES, FOLDS, BATCH = 482, 54, 10, 64
STEPS_PER_EPOCH = math.ceil(TRAIN_UTTERANCES / BATCH)
#: how the results file's epochs and runs are derived from its measured steps
PROTOCOL = (f'epoch_s = {STEPS_PER_EPOCH} x step_s ({TRAIN_UTTERANCES} training utterances, no '
            f'evaluation between epochs); run_h = {FOLDS} x (epochs x epoch_s + eval_s) / 3600, eval_s: the test fold '
            f'of {EVAL_UTTERANCES} once per split')


#: the cost the zoo driver projects from and the docs quote: one thread of an AMD EPYC Zen 4 (its `cpu` and flags)
COST_FILE = ROOT / 'benchmarks' / 'results' / 'zoo_cost_cpu2_zen4.json'
#: the input length of every zoo row and tag (MFCC order 1 at the shared EMODB copy's 2.0 s recordings)
ZOO_FRAMES = 87


#: CPU latency of every model at the zoo's input length (`python -m tim_zoo.benchmark --frames 87`), measured on the
#: 2-core Zen 4 that trained the zoo; docs/speed.md's 188-frame table where it is absent
ZOO_CPU_LATENCY = ROOT / 'benchmarks' / 'results' / f'cpu2_eager_{ZOO_FRAMES}_zen4.json'


def zoo_latency() -> tuple:
    """`({model: benchmark row}, frames, machine)`: the CPU latency (batch 64, 2 cores, eager) the zoo's tables show."""
    path, frames, machine = ((ZOO_CPU_LATENCY, ZOO_FRAMES, 'AMD EPYC Zen 4') if ZOO_CPU_LATENCY.is_file() else
                             (ROOT / 'benchmarks' / 'results' / 'cpu2_eager_188.json', 188, 'AMD EPYC Zen 5'))
    return {r['model']: r for r in json.loads(path.read_text())}, frames, machine


def zoo_size(model: str) -> tuple:
    """`(parameters, multiply-accumulates per sample)` of `model` as the zoo trains it (`ZOO_FRAMES` frames; a
    fixed-length model built for them, as its EMODB tag is)."""
    import tim_zoo
    built = tim_zoo.create_model_for_frames(model, ZOO_FRAMES)
    return tim_zoo.count_params(built), tim_zoo.count_macs(built, (1, 39, ZOO_FRAMES))


def step_seconds(model: str, precision: str, frames: int = ZOO_FRAMES,
                 rows: Optional[List[dict]] = None) -> Optional[float]:
    """Seconds of one training step (a batch of `BATCH`) of `model` in `precision` at `frames`, at the cost measured
    in `rows` (default: `COST_FILE`'s), scaled linearly from the nearest measured length; None where the model and
    precision were not measured."""
    if rows is None:
        if not COST_FILE.is_file():
            return None
        rows = json.loads(COST_FILE.read_text())['rows']
    if not rows:
        return None
    nearest = min({r['frames'] for r in rows}, key=lambda f: abs(f - frames))
    row = next((r for r in rows if r['model'] == model and r['frames'] == nearest and r['precision'] == precision),
               None)
    return None if row is None else row['step_s'] * frames / nearest


def training_hours(model: str, precision: str, epochs: int, utterances: int = TRAIN_UTTERANCES, splits: int = 1,
                   frames: int = ZOO_FRAMES, rows: Optional[List[dict]] = None) -> Optional[float]:
    """Single-thread hours of training `model` for `epochs` on `utterances` (batches of `BATCH`), `splits` times, at
    `step_seconds`; no evaluation counted. None where the cost was not measured."""
    step_s = step_seconds(model, precision, frames, rows)
    return None if step_s is None else step_s * math.ceil(utterances / BATCH) * epochs * splits / 3600


def measure_one(model_name: str, frames: int, precision: str, threads: int, warmup: int, repeats: int) -> dict:
    """Seconds of one training step and of evaluating `EVAL_UTTERANCES`, in this process."""
    import torch

    import tim_zoo
    torch.set_num_threads(threads)
    torch.manual_seed(0)
    model = tim_zoo.create_model_for_frames(model_name, frames, num_classes=7)
    optimizer = torch.optim.AdamW(model.parameters(), lr=4e-4, betas=(0.93, 0.98), weight_decay=0.2)
    criterion = torch.nn.CrossEntropyLoss(label_smoothing=0.1, reduction='sum')
    x, y = torch.randn(BATCH, 39, frames), torch.randint(0, 7, (BATCH,))
    bf16 = precision == 'bf16'

    def step():
        model.train()
        with torch.autocast('cpu', dtype=torch.bfloat16, enabled=bf16):
            logits = model(x)
        (criterion(logits.float(), y) / BATCH).backward()
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)

    def evaluate():
        model.eval()
        with torch.no_grad():
            for i in range(0, EVAL_UTTERANCES, BATCH):
                model(x[:min(BATCH, EVAL_UTTERANCES - i)])

    for _ in range(warmup):
        step()
    steps = []
    for _ in range(repeats):
        start = time.perf_counter()
        step()
        steps.append(time.perf_counter() - start)
    start = time.perf_counter()
    evaluate()
    return dict(step_s=statistics.median(steps), eval_s=time.perf_counter() - start)


def cpu_info() -> dict:
    from tim_zoo._utils import cpu_info as read_cpu
    name, flags = read_cpu()
    return dict(cpu=name or platform.processor(), avx512_bf16='avx512_bf16' in flags, amx_bf16='amx_bf16' in flags,
                avx512f='avx512f' in flags)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    parser.add_argument('--models', nargs='+', help='default: every registered model')
    parser.add_argument('--frames', nargs='+', type=int, default=[87, 188])
    parser.add_argument('--precision', nargs='+', default=['fp32', 'bf16'], choices=['fp32', 'bf16'])
    parser.add_argument('--threads', type=int, default=1)
    parser.add_argument('--warmup', type=int, default=2)
    parser.add_argument('--repeats', type=int, default=5)
    parser.add_argument('--epochs', type=int, default=100, help='epochs of a run, for the projection')
    parser.add_argument('--name', help='write benchmarks/results/zoo_cost_NAME.json')
    parser.add_argument('--one', nargs=3, metavar=('MODEL', 'FRAMES', 'PRECISION'), help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.one:
        print(json.dumps(measure_one(args.one[0], int(args.one[1]), args.one[2], args.threads, args.warmup,
                                     args.repeats)))
        return 0
    import tim_zoo
    info = cpu_info()
    native = info['avx512_bf16'] or info['amx_bf16']
    precisions = [p for p in args.precision if p == 'fp32' or native]
    if len(precisions) < len(args.precision):
        print(f'bf16 left out: {info["cpu"]} has no native bf16 (avx512_bf16 / amx_bf16)', file=sys.stderr)
    rows = []
    print(f'{info["cpu"]}, {args.threads} thread(s); {PROTOCOL}; projection: {args.epochs} epochs x {FOLDS} folds')
    print(f'{"model":22s} {"frames":>6s} {"prec":>5s} {"step s":>8s} {"epoch s":>8s} {"run h":>7s}')
    for model in args.models or tim_zoo.list_models():
        for frames in args.frames:
            for precision in precisions:
                out = subprocess.run(
                    [sys.executable, __file__, '--one', model, str(frames), precision, '--threads', str(args.threads),
                     '--warmup', str(args.warmup), '--repeats', str(args.repeats)],
                    capture_output=True, text=True, cwd=ROOT)
                if out.returncode:
                    print(f'{model} {frames} {precision}: failed\n{out.stderr[-2000:]}', file=sys.stderr)
                    continue
                m = json.loads(out.stdout.strip().splitlines()[-1])
                epoch = STEPS_PER_EPOCH * m['step_s']
                row = dict(model=model, frames=frames, precision=precision, **m, epoch_s=epoch,
                           run_h=FOLDS * (args.epochs * epoch + m['eval_s']) / 3600)
                rows.append(row)
                print(f'{model:22s} {frames:6d} {precision:>5s} {m["step_s"]:8.3f} {epoch:8.2f} {row["run_h"]:7.2f}',
                      flush=True)
    for frames in args.frames:
        for precision in precisions:
            total = sum(r['run_h'] for r in rows if r['frames'] == frames and r['precision'] == precision)
            print(f'table, {frames} frames, {precision}: {total:.1f} single-thread hours for one repeat of '
                  f'{sum(1 for r in rows if r["frames"] == frames and r["precision"] == precision)} models')
    if args.name:
        path = ROOT / 'benchmarks' / 'results' / f'zoo_cost_{args.name}.json'
        path.write_text(json.dumps(dict(info, threads=args.threads, epochs=args.epochs, folds=FOLDS, batch=BATCH,
                                        protocol=PROTOCOL,
                                        torch=__import__('torch').__version__, rows=rows), indent=1) + '\n')
        print(f'wrote {path.relative_to(ROOT)}')
    return 0


if __name__ == '__main__':
    sys.exit(main())
