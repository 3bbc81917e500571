"""Wall time of `timnet.paper` training on EMODB-shaped data: folds one by one (eager or compiled) and together.

    python benchmarks/train_speed.py --epochs 3 --threads 2            # CPU: a few epochs, scaled to 500
    python benchmarks/train_speed.py --epochs 500 --device cuda        # a full run (also compiled with CUDA graphs)

The data are 535 random utterances of 39 x 188 (EMODB's shape) in the 10 folds of KFold(seed 46); the time of a
step does not depend on the values. A full run's time is estimated per split from its epochs after the first (timed
between the ends of consecutive epochs) times 500, plus what its first epoch took beyond a later one (building the
model and, compiled, compiling it), summed over the folds when they train one by one (`--splits N`: the first N,
the rest estimated from splits 2..N). Writes
`benchmarks/results/train_speed_<name>.json` with `--name`.
"""
import argparse
import json
import platform
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

from tim_zoo._utils import cpu_info
from tim_zoo.data import FeatureSet
from tim_zoo.train import TrainConfig, run_training

ROOT = Path(__file__).resolve().parents[1]


WAYS = {'one-by-one': dict(batch_folds='off', compile='off'),
        'one-by-one compiled': dict(batch_folds='off', compile='on'),
        'one-by-one CUDA graphs': dict(batch_folds='off', compile='on', compile_mode='reduce-overhead'),
        'together': dict(batch_folds='on', compile='off'),
        'together compiled': dict(batch_folds='on', compile='on'),
        'together CUDA graphs': dict(batch_folds='on', compile='on', compile_mode='reduce-overhead')}
CUDA_ONLY = {'one-by-one CUDA graphs', 'together CUDA graphs'}


def measure(way: str, epochs: int, device: str, features: FeatureSet, splits: int = 10):
    """`(wall seconds, estimated seconds of a 500-epoch run, seconds of first-epoch overhead (build, compile),
    how many splits ended compiled)`. One by one, only the first `splits` splits train: the others are estimated as the mean of splits 2 and later
    (the first one compiles from scratch)."""
    only = list(range(1, splits + 1)) if splits < 10 and WAYS[way]['batch_folds'] == 'off' else None
    cfg = TrainConfig.from_recipe('timnet.paper', epochs=epochs, seed=46, device=device, only_folds=only, **WAYS[way])
    ends = []                                    # (epoch, time) of every split's epoch end, in call order

    def on_epoch_end(epoch, record):
        if device.startswith('cuda'):
            torch.cuda.synchronize()
        ends.append((epoch, time.perf_counter()))

    with tempfile.TemporaryDirectory() as out:
        start = time.perf_counter()
        summary = run_training(cfg, features, Path(out) / 'run', show_progress=False, on_epoch_end=on_epoch_end)
        wall = time.perf_counter() - start
    if cfg.batch_folds == 'on':                  # all splits end an epoch at once: the first of them times it
        compiled = sum(bool(t.get('compiled')) for t in summary['trained'])
        first = {}
        for epoch, t in ends:
            first.setdefault(epoch, t)
        steps = [first[e + 1] - first[e] for e in range(1, epochs)]
        epoch_s = sum(steps) / len(steps)
        overhead = first[1] - start - epoch_s
        return wall, 500 * epoch_s + overhead, overhead, compiled
    fulls, extras, previous_end = [], [], start
    for i in range(0, len(ends), epochs):
        split = ends[i:i + epochs]
        epoch_s = (split[-1][1] - split[0][1]) / (epochs - 1)
        extra = split[0][1] - previous_end - epoch_s
        fulls.append(500 * epoch_s + extra)
        extras.append(extra)
        previous_end = split[-1][1]
    compiled = sum(bool(t.get('compiled')) for t in summary['trained'])
    missing = 10 - len(fulls)                    # splits not trained: like the ones after the first
    return (wall, sum(fulls) + missing * float(np.mean(fulls[1:])),
            sum(extras) + missing * float(np.mean(extras[1:])), compiled)


def _cpu() -> str:
    return cpu_info()[0] or platform.processor() or 'unknown CPU'


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument('--epochs', type=int, default=500, help='epochs to run, at least 2 (the recipe has 500; fewer '
                                                           'are scaled)')
    p.add_argument('--device', default='cpu')
    p.add_argument('--threads', type=int, help='torch CPU threads')
    p.add_argument('--only', choices=tuple(WAYS), nargs='+', help='measure these ways only')
    p.add_argument('--splits', type=int, default=10,
                   help='one by one, train only the first N splits (at least 2) and estimate the others from '
                        'splits 2..N')
    p.add_argument('--name', help='write benchmarks/results/train_speed_NAME.json')
    args = p.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    rng = np.random.default_rng(0)
    labels = ['angry', 'boredom', 'disgust', 'fear', 'happy', 'neutral', 'sad']
    y = np.arange(535) % 7
    features = FeatureSet(rng.normal(size=(535, 39, 188)).astype(np.float32), y, labels,
                          [f'u{i}.wav' for i in range(535)], [''] * 535, dict(mean_signal_length=96000))
    if args.epochs < 2:
        p.error('--epochs must be at least 2 (epochs are timed between their ends)')
    if not 2 <= args.splits <= 10:
        p.error('--splits must be 2 to 10')
    rows = {}
    for way in WAYS:
        if (args.only and way not in args.only) or (way in CUDA_ONLY and not args.device.startswith('cuda')):
            continue
        trained = 10 if WAYS[way]['batch_folds'] == 'on' else args.splits
        wall, full, overhead, compiled = measure(way, args.epochs, args.device, features, args.splits)
        rows[way] = dict(measured_s=wall, epochs=args.epochs, splits_trained=trained, splits_compiled=compiled,
                         full_run_s=full, first_epoch_overhead_s=overhead)
        print(f'{way:>22}: {args.epochs} epochs x {trained} folds in {wall:.1f} s -> a 500-epoch 10-fold run '
              f'{full / 60:.1f} min (of which {overhead:.0f} s building and compiling)'
              + (f'; {compiled} of {trained} splits stayed compiled' if WAYS[way]['compile'] == 'on' else ''),
              flush=True)
    if 'one-by-one' in rows:
        for way in rows:
            if way != 'one-by-one':
                print(f'{way} takes {rows[way]["full_run_s"] / rows["one-by-one"]["full_run_s"]:.2f}x the time of '
                      f'one by one')
    device = torch.cuda.get_device_name(args.device) if args.device.startswith('cuda') else \
        f'{_cpu()}, {torch.get_num_threads()} threads'
    result = dict(device=device, torch=torch.__version__, rows=rows)
    print(json.dumps(result, indent=2))
    if args.name:
        out = ROOT / 'benchmarks' / 'results' / f'train_speed_{args.name}.json'
        out.write_text(json.dumps(result, indent=2) + '\n')
        print(f'wrote {out}', file=sys.stderr)
    return 0


if __name__ == '__main__':
    sys.exit(main())
