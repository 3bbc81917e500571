"""Write the measured tables of docs/speed.md from the JSON rows in benchmarks/results/.

Each ``<!-- table:NAME -->`` ... ``<!-- /table -->`` block of the page is replaced by the table of
``benchmarks/results/NAME.json`` (rows written by ``python -m tim_zoo.benchmark --json``), so the
page never holds a hand-typed figure. ``--check`` exits 1 when the page is out of date.

    python benchmarks/make_tables.py [--check]
"""
import argparse
import json
import re
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / 'benchmarks' / 'results'
PAGE = ROOT / 'docs' / 'speed.md'
BLOCK = re.compile(r'(<!-- table:([\w.-]+) -->\n)(.*?)(<!-- /table -->)', re.S)


def _ms(v):
    return '-' if v is None else f'{v:,.1f}'


def render(rows) -> str:
    with_ref = any(r.get('ref_infer_ms') is not None for r in rows)
    header = ['model', 'frames', 'params', 'MACs/sample', 'infer ms', 'train step ms', 'peak MB']
    if with_ref:
        header += ['two-pass infer ms', 'two-pass train ms', 'speed-up infer / train', 'max abs diff']
    lines = ['| ' + ' | '.join(header) + ' |', '|' + '---|' * len(header)]
    for r in rows:
        cells = [f"`{r['model']}`", str(r['frames']), f"{r['params']:,}", f"{r['macs'] / 1e6:,.1f} M",
                 _ms(r['infer_ms']), _ms(r['train_step_ms']), f"{r['peak_mem_mb']:,.0f}"]
        if with_ref:
            if r.get('ref_infer_ms') is None:
                cells += ['-'] * 4
            else:
                train = (f"{r['ref_train_step_ms'] / r['train_step_ms']:.2f}x"
                         if r.get('ref_train_step_ms') and r.get('train_step_ms') else '-')
                cells += [_ms(r['ref_infer_ms']), _ms(r['ref_train_step_ms']),
                          f"{r['ref_infer_ms'] / r['infer_ms']:.2f}x / {train}", f"{r['ref_max_abs_diff']:.1e}"]
        lines.append('| ' + ' | '.join(cells) + ' |')
    first = rows[0]
    lines.append('')
    lines.append(f"batch {first['batch']}, device {first['device']}, {first['threads']} threads, torch "
                 f"{first['torch_version']}" + (', glibc allocator tuned' if first.get('tuned_malloc') else '')
                 + (f", torch.compile mode {first['compiled']}" if first.get('compiled') else ''))
    return '\n'.join(lines) + '\n'


def update(text: str) -> str:
    def table(m):
        rows = json.loads((RESULTS / f'{m.group(2)}.json').read_text())
        return m.group(1) + render(rows) + m.group(4)
    return BLOCK.sub(table, text)


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument('--check', action='store_true', help='exit 1 if docs/speed.md is out of date')
    args = p.parse_args(argv)
    text = PAGE.read_text()
    new = update(text)
    if args.check:
        if new != text:
            print(f'{PAGE} is out of date: run python benchmarks/make_tables.py', file=sys.stderr)
            return 1
        return 0
    PAGE.write_text(new)
    return 0


if __name__ == '__main__':
    sys.exit(main())
