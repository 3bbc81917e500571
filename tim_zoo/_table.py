"""Plain-text tables for the command line."""
from typing import Sequence


def format_table(header: Sequence[str], body: Sequence[Sequence[str]], aligns: Sequence[str]) -> str:
    """Columns padded to their widest cell; `aligns` holds `"<"` or `">"` per column."""
    widths = [max([len(h)] + [len(row[i]) for row in body]) for i, h in enumerate(header)]
    line = '  '.join(f'{{:{a}{w}}}' for a, w in zip(aligns, widths))
    return '\n'.join([line.format(*header), '  '.join('-' * w for w in widths)] + [line.format(*row) for row in body])
