"""Collect the per-split ``result.json`` files of ``tim-zoo train`` runs into ``docs/results/NAME.json``.

A run may have been split over several output folders (one process per split, ``--fold i``); give
them all. A run with ``--repeats N`` (folders ``repeat<r>/<split>/``) is collected per repeat, with the
mean and std over repeats (``repeat_summary``). Their configurations must agree apart from the chosen splits. The training histories are
kept out (they live in the run folders); ``benchmarks/make_tables.py`` renders the file into the
``<!-- results:NAME -->`` block of docs/training.md.

    python benchmarks/collect_run.py NAME RUN_DIR [RUN_DIR ...] --device "one NVIDIA H100, ..."
"""
import argparse
import dataclasses
import json
import sys
from pathlib import Path

from tim_zoo.data import natural_key
from tim_zoo.train import TrainConfig, repeats_summary, split_summary

ROOT = Path(__file__).resolve().parents[1]
TRAINING_RESULTS = ROOT / 'docs' / 'results'
DEFAULTS = {**{k: v for k, v in dataclasses.asdict(TrainConfig()).items() if k in ('repeats', 'normalize', 'precision')},
            'batch_folds': 'off', 'compile': 'off', 'model_defaults': 1}   # what runs from before these settings did
# where and how a run ran, not what it computed
IGNORED = {'only_folds', 'only_repeats', 'device', 'batch_folds', 'compile', 'compile_mode'}


def collect(run_dirs, device: str, torch_version: str) -> dict:
    """``{config, device, torch, folds}`` from the run folders (each with ``config.json``); for repeated runs also
    ``repeats`` (each repeat's splits) and ``repeat_summary``, and ``folds`` holds repeat 1's splits."""
    config, by_repeat = None, {}
    for run_dir in map(Path, run_dirs):
        cfg = {**DEFAULTS, **json.loads((run_dir / 'config.json').read_text())}   # older runs lack newer keys
        if config is None:
            config = cfg
        else:
            differ = sorted(k for k in set(cfg) | set(config) if k not in IGNORED and cfg.get(k) != config.get(k))
            if differ:
                raise SystemExit(f'{run_dir}: configuration differs from {run_dirs[0]} in {", ".join(differ)}')
        repeated = cfg.get('repeats', 1) > 1
        for result_file in sorted(run_dir.glob('repeat*/*/result.json' if repeated else '*/result.json')):
            result = json.loads(result_file.read_text())
            if 'war' not in result:
                continue
            folds = by_repeat.setdefault(int(result_file.parent.parent.name[6:]) if repeated else 1, {})
            if result['split'] in folds:
                raise SystemExit(f'split {result["split"]} appears twice ({result_file})')
            folds[result['split']] = {k: v for k, v in result.items() if k not in ('history', 'test')}
    if not by_repeat:
        raise SystemExit('no tested splits found (no */result.json with test metrics)')
    config = {k: v for k, v in config.items() if k not in ('only_folds', 'only_repeats')}
    ordered = {r: [folds[k] for k in sorted(folds, key=natural_key)] for r, folds in sorted(by_repeat.items())}
    run = dict(config=config, device=device, torch=torch_version, folds=ordered[min(ordered)])
    if config.get('repeats', 1) > 1:
        splits = {r: [f['split'] for f in folds] for r, folds in ordered.items()}
        if len({tuple(v) for v in splits.values()}) > 1:
            raise SystemExit(f'the repeats tested different splits: {splits}')
        missing = sorted(set(range(1, config['repeats'] + 1)) - set(ordered))
        if missing:
            raise SystemExit(f'the run has {config["repeats"]} repeats but no tested splits of repeat '
                             f'{", ".join(map(str, missing))} in these folders: give every part of the run')
        runs = [dict(split_summary(folds), repeat=r, seed=config['seed'] + r - 1) for r, folds in ordered.items()]
        summary = repeats_summary(runs)
        run['repeats'] = [dict(repeat=r['repeat'], seed=r['seed'], folds=r['folds']) for r in runs]
        run['repeat_summary'] = {k: summary[k] for k in ('num_repeats', 'war_mean', 'war_std', 'uar_mean', 'uar_std',
                                                          'fold_war_std')}
    return run


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
