"""Wall time of `timnet.paper` training on EMODB-shaped data: 10 folds trained together and one by one.

    python benchmarks/train_speed.py --epochs 3 --threads 2            # CPU: a few epochs, scaled to 500
    python benchmarks/train_speed.py --epochs 500 --device cuda        # a full run

The data are 535 random utterances of 39 x 188 (EMODB's shape) in the 10 folds of KFold(seed 46); the time of a
step does not depend on the values. A full run's time is estimated from the epochs after the first (timed between
the ends of consecutive epochs, so model builds, warm-up, the test and the plots are left out) times 500, summed
over the folds when they train one by one. Writes `benchmarks/results/train_speed_<name>.json` with `--name`.
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

from tim_zoo.data import FeatureSet
from tim_zoo.train import TrainConfig, run_training

ROOT = Path(__file__).resolve().parents[1]


def measure(together: bool, epochs: int, device: str, features: FeatureSet):
    """`(wall seconds, estimated seconds of a 500-epoch run)`."""
    cfg = TrainConfig.from_recipe('timnet.paper', epochs=epochs, seed=46, device=device, batch_folds=together)
    ends = []                                    # (epoch, time) of every split's epoch end, in call order

    def on_epoch_end(epoch, record):
        if device.startswith('cuda'):
            torch.cuda.synchronize()
        ends.append((epoch, time.perf_counter()))

    with tempfile.TemporaryDirectory() as out:
        start = time.perf_counter()
        run_training(cfg, features, Path(out) / 'run', show_progress=False, on_epoch_end=on_epoch_end)
        wall = time.perf_counter() - start
    if together:                                 # all splits end an epoch at once: the first of them times it
        first = {}
        for epoch, t in ends:
            first.setdefault(epoch, t)
        steps = [first[e + 1] - first[e] for e in range(1, epochs)]
        return wall, 500 * sum(steps) / len(steps)
    per_split = [ends[i:i + epochs] for i in range(0, len(ends), epochs)]
    return wall, sum(500 * (s[-1][1] - s[0][1]) / (epochs - 1) for s in per_split)


def _cpu() -> str:
    try:
        for line in Path('/proc/cpuinfo').read_text().splitlines():
            if line.startswith('model name'):
                return line.split(':', 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or 'unknown CPU'


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument('--epochs', type=int, default=500, help='epochs to run, at least 2 (the recipe has 500; fewer '
                                                           'are scaled)')
    p.add_argument('--device', default='cpu')
    p.add_argument('--threads', type=int, help='torch CPU threads')
    p.add_argument('--only', choices=('together', 'one-by-one'), help='measure one way only')
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
    rows = {}
    for way in ('together', 'one-by-one'):
        if args.only and args.only != way:
            continue
        wall, full = measure(way == 'together', args.epochs, args.device, features)
        rows[way] = dict(measured_s=wall, epochs=args.epochs, full_run_s=full)
        print(f'{way:>10}: {args.epochs} epochs x 10 folds in {wall:.1f} s -> a 500-epoch 10-fold run '
              f'{full / 60:.1f} min', flush=True)
    if len(rows) == 2:
        print(f'together takes {rows["together"]["full_run_s"] / rows["one-by-one"]["full_run_s"]:.2f}x the time of '
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
