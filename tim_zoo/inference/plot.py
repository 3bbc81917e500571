"""The emotion probabilities of a recording over time, as a picture."""
from pathlib import Path
from typing import List, Sequence

from .._utils import require
from ..exceptions import ConfigurationError
from .results import Prediction, format_clock


def probability_series(prediction: Prediction):
    """`(times [s], {class: probabilities})` of a prediction's judged windows at their centres, with a NaN
    between runs of judged windows, so that a line drawn through them breaks where there was no speech."""
    times, rows = [], []
    for s in prediction.segments:
        if s.probabilities:
            times.append((s.start + s.end) / 2)
            rows.append(s.probabilities)
        elif rows and rows[-1] is not None:
            times.append(float('nan'))
            rows.append(None)
    labels = list(next((r for r in rows if r), None) or [])
    return times, {k: [r[k] if r else float('nan') for r in rows] for k in labels}


def plot_prediction(prediction: Prediction, path) -> Path:
    """Draw each class's probability per window against time (window centres, mm:ss as the tables; the lines
    break at windows without enough speech to judge, drawn as grey bands) and write `path` (`.png`, `.svg`, `.pdf`; no suffix: `.png`); returns the
    path written. Needs matplotlib."""

    if not isinstance(prediction, Prediction) or prediction.error:
        raise ConfigurationError('plot_prediction draws one Prediction that was analysed; got '
                                 + (f'a failed one ({prediction.error})' if isinstance(prediction, Prediction)
                                    else type(prediction).__name__))
    matplotlib = require('matplotlib', 'plotting predictions')
    matplotlib.use('Agg')
    import matplotlib.pyplot as plt
    import matplotlib.ticker

    path = Path(path)
    if not path.suffix:
        path = path.with_suffix('.png')
    segments = prediction.segments
    labels = list(next((s.probabilities for s in segments if s.probabilities), None) or [])
    fig, ax = plt.subplots(figsize=(max(6.0, min(16.0, 2.0 + prediction.duration / 4)), 3.6))
    judged = [s for s in segments if s.probabilities]
    centres, series = probability_series(prediction)
    for label in labels:
        ax.plot(centres, series[label], marker='o', markersize=3, label=label)
    for s in segments:
        if not s.probabilities:
            ax.axvspan(s.start, s.end, color='0.85', zorder=0, lw=0)
    answer = prediction.prediction or 'no prediction'
    title = f'{Path(prediction.file).name if prediction.file else "waveform"}: {answer}'
    if prediction.score is not None:
        title += f' ({prediction.score:.2f})'
    ax.set(xlim=(0, max(prediction.duration, 1e-3)), ylim=(0, 1), xlabel='time (mm:ss)', ylabel='probability',
           title=title)
    ax.xaxis.set_major_formatter(matplotlib.ticker.FuncFormatter(lambda x, _: format_clock(x)))   # as the tables
    if labels:
        ax.legend(loc='upper left', bbox_to_anchor=(1.01, 1.0), fontsize='small')
    if len(judged) < len(segments):
        ax.text(1.01, 0.02, 'grey: no speech', transform=ax.transAxes, fontsize='small', color='0.4')
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return path


#: picture formats the plots are written in
PLOT_SUFFIXES = ('.png', '.svg', '.pdf')


def check_plot_path(path) -> Path:
    """`path` for `plot_predictions`, checked before any work: a picture suffix (none: `.png`), an existing folder,
    and matplotlib installed."""
    path = Path(path)
    if path.suffix and path.suffix.lower() not in PLOT_SUFFIXES:
        raise ConfigurationError(f'cannot draw plots to {path}: expected a {", ".join(PLOT_SUFFIXES)} file name')
    if not path.parent.is_dir():
        raise ConfigurationError(f'cannot write {path}: the folder {path.parent} does not exist')
    require('matplotlib', 'plotting predictions (--plot)')
    return path


def plot_predictions(predictions: Sequence[Prediction], path) -> List[Path]:
    """`plot_prediction` for each analysed prediction (failed ones are skipped: they have nothing to draw).
    One prediction: `path`; several: `path` with each recording's name inserted (`t.png` -> `t-a.png`,
    a repeated name also gets its position). Returns the paths written."""
    base, seen, written = Path(path), set(), []
    for i, p in enumerate(predictions):
        stem = Path(p.file).stem if p.file else f'input{i}'
        name = stem if stem not in seen else f'{stem}-{i}'
        seen.add(name)
        target = base if len(predictions) == 1 else base.with_name(f'{base.stem}-{name}{base.suffix}')
        if not p.error and p.kind == 'recording':        # note rows (a folder left out) have nothing to draw
            written.append(plot_prediction(p, target))
    return written
