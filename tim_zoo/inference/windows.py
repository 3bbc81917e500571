"""The window arithmetic of a recording longer than a model's input: where its windows lie, cutting them from a
stream of blocks, and the level of the speech inside one."""
import math
from typing import Iterable, Iterator, List, Optional, Sequence, Tuple

import numpy as np


def window_bounds(n: int, window: Optional[int], hop: int) -> List[Tuple[int, int]]:
    """`(start, end)` sample bounds of the windows over a recording of `n` samples: every `hop` samples, the last
    ending at the end; no two start less than a quarter window apart: a last window that close replaces the
    regular one before it where the windows still cover everything, and a recording less than a quarter window
    longer than the input is one centred window (as training crops), which the recognizer's notes report.
    `window` None (a model of any length), or a recording no longer than it: one window, the whole of it."""
    w = window
    if w is None or n <= w:
        return [(0, n)]
    if n - w < w / 4:
        return [((n - w) // 2, (n - w) // 2 + w)]
    starts = list(range(0, n - w + 1, hop))
    if starts[-1] != n - w:
        if n - w - starts[-1] < w / 4 and len(starts) > 1 and starts[-2] + 2 * w >= n:
            starts[-1] = n - w
        else:
            starts.append(n - w)
    return [(s, s + w) for s in starts]


def cut_blocks(blocks: Iterator[np.ndarray], bounds: Sequence[Tuple[int, int]]) -> Iterator[np.ndarray]:
    """The samples `[start, end)` of each of `bounds` (in order) from consecutive `blocks` of a signal, holding at
    most a window and a block; `blocks` is closed after the last window (nothing after it is read)."""
    held, offset = np.zeros(0, dtype=np.float32), 0  # held[i] is sample offset + i
    try:
        for start, end in bounds:
            while True:
                drop = min(max(0, start - offset), len(held))   # nothing before the window is kept
                held, offset = held[drop:], offset + drop
                block = next(blocks, None) if offset + len(held) < end else None
                if block is None:
                    break
                held = np.concatenate([held, block])
            yield held[start - offset:end - offset].copy()
    finally:
        close = getattr(blocks, 'close', None)
        if close is not None:
            close()


def speech_peak(part: np.ndarray, regions: Iterable[Tuple[float, float]], start: int, end: int, rate: int) -> float:
    """The largest absolute sample of a window's speech `regions` (seconds; `part`: the samples `[start, end)` at
    `rate`): a click in a pause does not set the level."""
    peak = 0.0
    for a, b in regions:
        a, b = max(start, int(a * rate)), min(end, int(math.ceil(b * rate)))
        if b > a:
            peak = max(peak, float(np.max(np.abs(part[a - start:b - start]))))
    return peak
