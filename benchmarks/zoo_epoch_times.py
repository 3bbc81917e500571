"""How long the zoo's splits took an epoch where they trained, from their logs:

    python benchmarks/zoo_epoch_times.py [--machine H200] [--json benchmarks/results/NAME.json]

reads every split's `train.log` under `runs/zoo/` (the epochs' time stamps; a split's `machine.txt` names where it
trained, its last line the machine of its last start) and prints, per run and machine, the splits, the median over
the splits of their median epoch (the time between consecutive epochs' lines, evaluation excluded: the table's
splits evaluate nothing between epochs) and the median time from a split's first epoch to its last. A resumed
split's gap across the restart is left out by the median. `--machine` keeps the splits whose machine contains it;
`--json` also writes the rows. The logs are not tracked (run folders are not kept): this is how the figures of
docs/speed.md's "training the zoo" were taken, and the JSON keeps them.
"""
import argparse
import datetime
import json
import statistics
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
RUNS = ROOT / 'runs' / 'zoo'


def epoch_stamps(log: Path) -> list:
    """The time stamps of a split log's epoch lines (`... foldN epoch K: ...`)."""
    return [datetime.datetime.strptime(line[:23], '%Y-%m-%d %H:%M:%S,%f') for line in log.read_text().splitlines()
            if ' epoch ' in line and line[:4].isdigit()]


def rows(machine: str = '') -> list:
    groups = {}
    for log in sorted(RUNS.glob('*/*/train.log')):
        where = log.parent / 'machine.txt'
        last = where.read_text().strip().splitlines()[-1] if where.is_file() else 'not recorded'
        stamps = epoch_stamps(log)
        if machine not in last or len(stamps) < 3:
            continue
        gaps = [(b - a).total_seconds() for a, b in zip(stamps, stamps[1:])]
        groups.setdefault((log.parent.parent.name, last), []).append(
            (statistics.median(gaps), (stamps[-1] - stamps[0]).total_seconds(), len(stamps)))
    return [dict(run=run, machine=last, splits=len(splits), epochs=max(s[2] for s in splits),
                 epoch_s=round(statistics.median(s[0] for s in splits), 3),
                 split_s=round(statistics.median(s[1] for s in splits), 1))
            for (run, last), splits in sorted(groups.items())]


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument('--machine', default='', help='only splits whose machine contains this (e.g. H200, EPYC)')
    p.add_argument('--json', type=Path, help='also write the rows to this file')
    args = p.parse_args(argv)
    found = rows(args.machine)
    if not found:
        print(f'no split logs under {RUNS}' + (f' of a machine with {args.machine!r}' if args.machine else ''))
        return 1
    print('| run | machine | splits | median s / epoch | median first to last epoch, s |')
    print('|---|---|---|---|---|')
    for r in found:
        print(f'| `{r["run"]}` | {r["machine"]} | {r["splits"]} | {r["epoch_s"]:.2f} | {r["split_s"]:.0f} |')
    if args.json:
        args.json.write_text(json.dumps(dict(command=' '.join(['python benchmarks/zoo_epoch_times.py']
                                                              + (argv if argv is not None else sys.argv[1:])),
                                             rows=found), indent=1) + '\n')
    return 0


if __name__ == '__main__':
    sys.exit(main())
