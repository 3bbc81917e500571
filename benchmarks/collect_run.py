"""Collect the per-split ``result.json`` files of ``tim-zoo train`` runs into ``docs/results/NAME.json``.

A run may have been split over several output folders (one process per split, ``--fold i``); give
them all. Their configurations must agree apart from the chosen splits. The training histories are
kept out (they live in the run folders); ``benchmarks/make_tables.py`` renders the file into the
``<!-- results:NAME -->`` block of docs/training.md.

    python benchmarks/collect_run.py NAME RUN_DIR [RUN_DIR ...] --device "one NVIDIA H100, ..."
"""
import argparse
import json
import sys
from pathlib import Path

from tim_zoo.data import natural_key

ROOT = Path(__file__).resolve().parents[1]
TRAINING_RESULTS = ROOT / 'docs' / 'results'
IGNORED = {'only_folds', 'device'}


def collect(run_dirs, device: str, torch_version: str) -> dict:
    """``{config, device, torch, folds}`` from the run folders (each with ``config.json``)."""
    config, folds = None, {}
    for run_dir in map(Path, run_dirs):
        cfg = json.loads((run_dir / 'config.json').read_text())
        if config is None:
            config = cfg
        else:
            differ = sorted(k for k in set(cfg) | set(config) if k not in IGNORED and cfg.get(k) != config.get(k))
            if differ:
                raise SystemExit(f'{run_dir}: configuration differs from {run_dirs[0]} in {", ".join(differ)}')
        for result_file in sorted(run_dir.glob('*/result.json')):
            result = json.loads(result_file.read_text())
            if 'war' not in result:
                continue
            if result['split'] in folds:
                raise SystemExit(f'split {result["split"]} appears twice ({result_file})')
            folds[result['split']] = {k: v for k, v in result.items() if k != 'history'}
    if not folds:
        raise SystemExit('no tested splits found (no */result.json with test metrics)')
    config = {k: v for k, v in config.items() if k != 'only_folds'}
    return dict(config=config, device=device, torch=torch_version,
                folds=[folds[k] for k in sorted(folds, key=natural_key)])


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument('name', help='docs/results/NAME.json')
    p.add_argument('run_dirs', nargs='+', help='output folders of the run')
    p.add_argument('--device', required=True, help='where it ran, in words')
    p.add_argument('--torch', default=None, help='torch version it ran with (default: this one)')
    p.add_argument('--out-dir', default=str(TRAINING_RESULTS))
    args = p.parse_args(argv)
    if args.torch is None:
        import torch
        args.torch = torch.__version__
    run = collect(args.run_dirs, args.device, args.torch)
    out = Path(args.out_dir) / f'{args.name}.json'
    out.write_text(json.dumps(run, indent=1) + '\n')
    print(f'{out}: {len(run["folds"])} splits')
    return 0


if __name__ == '__main__':
    sys.exit(main())
