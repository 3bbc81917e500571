"""What a prediction returns, and writing predictions as a table, CSV or JSON."""
import csv
import io
import json
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Dict, List, Optional, Sequence

from .._utils import atomic_write
from ..exceptions import ConfigurationError


#: `Prediction.status` values
STATUSES = ('ok', 'no_speech', 'non_speech', 'too_short', 'error')


@dataclass
class Segment:
    """One analysed window of a recording.

    Attributes:
        start, end: seconds from the start of the recording.
        prediction: the most probable class, or None when the window holds too little speech to judge.
        probabilities: `{class: probability}`, or None with `prediction`.
        voiced: seconds of voiced speech the detector found in the window.
    """
    start: float
    end: float
    prediction: Optional[str]
    probabilities: Optional[Dict[str, float]]
    voiced: float

    def to_dict(self) -> dict:
        return asdict(self)


@dataclass
class Prediction:
    """The answer for one recording.

    Attributes:
        file: the path, or None for a waveform.
        prediction: the most probable class over the recording's voiced windows; None when there is no
            speech to judge or the file could not be read (`notes` / `error` say why).
        probabilities: `{class: probability}` of the whole recording, or None with `prediction`.
        segments: the analysed windows (one for a recording no longer than the model's input).
        notes: what was done to the input beyond the documented feature extraction, and why an answer
            is missing or may be off.
        error: None, or why the input could not be analysed.
        duration: seconds of audio (None when it could not be read).
        voiced: seconds of voiced speech the detector found in the whole recording (None when not read).
        status: what happened, for programs (`STATUSES`): `"ok"` (a prediction), `"no_speech"` (too little voiced
            speech to judge), `"non_speech"` (the periodic sound is a tone: a beep, ringing, siren or music),
            `"too_short"` (shorter than the speech a judgement needs), `"error"` (not analysed:
            `error` says why); `""` on a row that only carries a note about its inputs (`kind == "note"`).
    """
    file: Optional[str]
    prediction: Optional[str] = None
    probabilities: Optional[Dict[str, float]] = None
    segments: List[Segment] = field(default_factory=list)
    notes: List[str] = field(default_factory=list)
    error: Optional[str] = None
    duration: Optional[float] = None
    voiced: Optional[float] = None
    status: str = ''

    def __post_init__(self):
        if self.error and not self.status:
            self.status = 'error'

    @property
    def kind(self) -> str:
        """`"recording"`, or `"note"` for a row that carries only a note about the inputs (a folder whose
        subfolders were not read)."""
        return 'note' if self.error is None and self.duration is None and self.notes and not self.segments \
            else 'recording'

    @property
    def label(self) -> Optional[str]:
        """Alias of `prediction`."""
        return self.prediction

    @property
    def score(self) -> Optional[float]:
        """The probability of `prediction` (None without a prediction)."""
        return None if self.prediction is None else self.probabilities[self.prediction]

    def to_dict(self) -> dict:
        """JSON-ready: `kind`, `file`, `status`, `prediction`, `probabilities`, `segments`, `notes`, `error`,
        `duration`, `voiced`."""
        return dict(kind=self.kind, file=self.file, status=self.status, prediction=self.prediction,
                    probabilities=self.probabilities, segments=[s.to_dict() for s in self.segments],
                    notes=list(self.notes), error=self.error, duration=self.duration, voiced=self.voiced)


def _labels(predictions: Sequence[Prediction], labels: Optional[Sequence[str]] = None) -> List[str]:
    if labels is not None:
        return list(labels)
    for p in predictions:
        for probs in [p.probabilities] + [s.probabilities for s in p.segments]:
            if probs:
                return list(probs)
    return []


def format_table(predictions: Sequence[Prediction], segments: bool = False,
                 labels: Optional[Sequence[str]] = None) -> str:
    """A text table: one row per recording (`-` where there is no prediction), its segments below it
    with `segments=True`, then the notes and errors by file. `labels`: the class columns (default: the
    classes of the first prediction that has probabilities)."""
    labels = _labels(predictions, labels)
    names = [p.file or f'<waveform {i}>' for i, p in enumerate(predictions)]
    name_w = max([len('file')] + [len(n) for n in names] + ([len('  00:00.0-00:00.0')] if segments else []))
    pred_w = max([len('prediction')] + [len(k) for k in labels])
    prob_w = max([8] + [len(k) for k in labels])

    def row(name, pred, probs):
        cells = [f'{probs[k]:>{prob_w}.3f}' if probs else f'{"-":>{prob_w}}' for k in labels]
        return f'{name:<{name_w}}  {pred or "-":<{pred_w}}  ' + '  '.join(cells)

    lines = [f'{"file":<{name_w}}  {"prediction":<{pred_w}}  ' + '  '.join(f'{k:>{prob_w}}' for k in labels)]
    for name, p in zip(names, predictions):
        lines.append(row(name, p.prediction, p.probabilities))
        if segments and len(p.segments) > 1:
            lines += [row(f'  {format_clock(s.start)}-{format_clock(s.end)}', s.prediction, s.probabilities) for s in p.segments]
    remarks = [f'{name}: error: {p.error}' for name, p in zip(names, predictions) if p.error]
    remarks += [f'{_some(files)}: {note}' for note, files in _by_note(names, predictions).items()]
    return '\n'.join(lines + ([''] + remarks if remarks else []))


def _by_note(names: Sequence[str], predictions: Sequence[Prediction]) -> Dict[str, List[str]]:
    """Each note with the files it was made on, in order of first appearance: a note many files share (the same
    cut, the training utterances of a corpus) is given once."""
    files: Dict[str, List[str]] = {}
    for name, p in zip(names, predictions):
        for note in dict.fromkeys(p.notes):
            files.setdefault(note, []).append(name)
    return files


def _some(files: List[str], shown: int = 3) -> str:
    """`files` named, the first `shown` of many and how many more (each file's own notes: its `Prediction`, or
    `tim-zoo predict --json` / `--output`)."""
    if len(files) <= shown + 1:
        return ', '.join(files)
    return f'{", ".join(files[:shown])} and {len(files) - shown} more files (each file\'s notes: --json or --output)'


def format_clock(seconds: float) -> str:
    """`mm:ss.s`, rounded to the tenth before the minutes are taken (59.96 s is `01:00.0`, not `00:60.0`)."""
    minutes, rest = divmod(round(seconds * 10), 600)
    return f'{minutes:02d}:{rest / 10:04.1f}'


def to_csv(predictions: Sequence[Prediction], segments: bool = False, labels: Optional[Sequence[str]] = None) -> str:
    """CSV text: `kind, file, start, end, status, prediction, <one column per class>, voiced, error, notes`; one
    row per recording (`kind` "recording": start 0, end its duration, voiced: its seconds of voiced speech), followed
    by one row per segment (`kind` "window", status "ok" or "no_speech", voiced: the segment's) with
    `segments=True`; a row that only carries a note about the inputs has `kind` "note". Count recordings with the
    rows whose `kind` is "recording"."""
    labels = _labels(predictions, labels)
    out = io.StringIO()
    writer = csv.writer(out, lineterminator='\n')
    writer.writerow(['kind', 'file', 'start', 'end', 'status', 'prediction'] + labels + ['voiced', 'error', 'notes'])

    def probs(p):
        return [f'{p[k]:.6f}' if p else '' for k in labels]

    def seconds(value):
        return '' if value is None else f'{value:.3f}'

    for p in predictions:
        writer.writerow([p.kind, p.file or '', '0.000' if p.duration is not None else '', seconds(p.duration),
                         p.status, p.prediction or ''] + probs(p.probabilities) + [seconds(p.voiced), p.error or '',
                                                                         ' | '.join(p.notes)])
        if segments and len(p.segments) > 1:
            for s in p.segments:
                writer.writerow(['window', p.file or '', f'{s.start:.3f}', f'{s.end:.3f}',
                                 'ok' if s.prediction else 'no_speech', s.prediction or '']
                                + probs(s.probabilities) + [f'{s.voiced:.3f}', '', ''])
    return out.getvalue()


def write_predictions(predictions: Sequence[Prediction], path, segments: bool = True,
                      labels: Optional[Sequence[str]] = None) -> Path:
    """Write `predictions` to `path`: `.json` (a list of `Prediction.to_dict`) or `.csv`
    (`to_csv`; segment rows with `segments`, class columns `labels`)."""

    path = check_output_path(path)
    if isinstance(predictions, Prediction):
        predictions = [predictions]
    if path.suffix.lower() == '.json':
        text = json.dumps([p.to_dict() for p in predictions], indent=2)
    else:
        text = to_csv(predictions, segments, labels)
    atomic_write(path, lambda tmp: Path(tmp).write_text(text))
    return path


def check_output_path(path, suffixes=('.csv', '.json')) -> Path:
    """`path` as a Path, after checking its suffix and that its folder exists (so a run fails before its work)."""

    path = Path(path)
    if suffixes and path.suffix.lower() not in suffixes:
        raise ConfigurationError(f'cannot write predictions to {path}: expected a {" or ".join(suffixes)} file name')
    if not path.parent.is_dir():
        raise ConfigurationError(f'cannot write {path}: the folder {path.parent} does not exist')
    return path
