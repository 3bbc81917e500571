"""Speech emotion corpora as ordered item lists.

Every reader returns a `Corpus` in the canonical order of the TIM-Net releases: items grouped by
class in the release's class order, and naturally sorted by path (relative to the corpus root) within each
class, so that `KFold(10, shuffle=True, random_state=seed)` over the items reproduces the authors' folds.
"""
import csv
import difflib
import re
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Dict, List, Optional, Sequence

import numpy as np

from ..exceptions import ConfigurationError, DatasetError
from ..models.timnet_releases import TIMNET_RELEASES


@dataclass(frozen=True)
class CorpusItem:
    """One utterance: its audio file, class index and name, and speaker."""
    path: str
    label: int
    label_name: str
    speaker: str


@dataclass
class Corpus:
    """An ordered list of `CorpusItem` with the class names in index order."""
    name: str
    label_names: List[str]
    items: List[CorpusItem] = field(default_factory=list)

    def __len__(self) -> int:
        return len(self.items)

    def __iter__(self):
        return iter(self.items)

    def __getitem__(self, i):
        return self.items[i]

    @property
    def labels(self) -> np.ndarray:
        return np.array([it.label for it in self.items], dtype=np.int64)

    @property
    def speakers(self) -> List[str]:
        return [it.speaker for it in self.items]

    @property
    def paths(self) -> List[str]:
        return [it.path for it in self.items]

    def counts(self) -> Dict[str, int]:
        """Items per class."""
        return {name: int((self.labels == i).sum()) for i, name in enumerate(self.label_names)}


def natural_key(text: str):
    """Sort key that orders embedded numbers by value: `a2 < a10`."""
    return [int(part) if part.isdigit() else part.lower() for part in re.split(r'(\d+)', text)]


def _relative(path, root: Path) -> str:
    try:
        return str(Path(path).relative_to(root))
    except ValueError:                                    # a manifest may name files outside its folder
        return str(path)


def _build(name: str, root: Path, label_names: Sequence[str], found: List[tuple]) -> Corpus:
    """`found`: (path, label name, speaker) tuples in any order -> the canonical Corpus."""
    if not found:
        raise DatasetError(f'no {name} utterances found under {root}')
    index = {n: i for i, n in enumerate(label_names)}
    rows = sorted(found, key=lambda r: (index[r[1]], natural_key(_relative(r[0], root))))
    items = [CorpusItem(str(p), index[lab], lab, spk) for p, lab, spk in rows]
    return Corpus(name, list(label_names), items)


#: audio formats other than .wav that a folder of recordings may hold (`read_folders` reads .wav only and says so)
OTHER_AUDIO_SUFFIXES = ('.flac', '.ogg', '.oga', '.opus', '.mp3', '.m4a', '.aif', '.aiff', '.aifc', '.au', '.caf')


def _wavs(root: Path) -> List[Path]:
    if not root.is_dir():
        raise DatasetError(f'corpus folder {root} is not a folder' if root.exists() else
                           f'corpus folder {root} does not exist')
    return sorted(p for p in root.rglob('*') if p.suffix.lower() == '.wav' and p.is_file())


def _labels(release: str) -> tuple:
    return TIMNET_RELEASES[release]['labels']


_EMODB = {'W': 'angry', 'L': 'boredom', 'E': 'disgust', 'A': 'fear', 'F': 'happy', 'T': 'sad', 'N': 'neutral'}


def read_emodb(root) -> Corpus:
    """EMODB: `SSTTTEV.wav` (speaker, text, emotion letter W L E A F T N, version), in `root` or `root/wav`."""
    root = Path(root)
    found = []
    for p in _wavs(root):
        m = re.fullmatch(r'(\d\d)([a-z]\d\d)([WLEAFTN])([a-z])', p.stem)
        if m:
            found.append((p, _EMODB[m.group(3)], m.group(1)))
    return _build('emodb', root, _labels('EMODB_46'), found)


def read_casia(root) -> Corpus:
    """CASIA: `<speaker>/<emotion>/<n>.wav` with emotions angry fear happy neutral sad surprise."""
    root = Path(root)
    labels = _labels('CASIA_32')
    found = [(p, p.parent.name, p.parent.parent.name) for p in _wavs(root) if p.parent.name in labels]
    return _build('casia', root, labels, found)


_RAVDESS = {'01': 'neutral', '02': 'calm', '03': 'happy', '04': 'sad', '05': 'angry', '06': 'fear',
            '07': 'disgust', '08': 'surprise'}


def read_ravdess(root) -> Corpus:
    """RAVDESS speech: `Actor_AA/MM-VV-EE-II-SS-RR-AA.wav`; vocal channel 01 (speech) only, songs skipped."""
    root = Path(root)
    found = []
    for p in _wavs(root):
        m = re.fullmatch(r'(\d\d)-(\d\d)-(\d\d)-(\d\d)-(\d\d)-(\d\d)-(\d\d)', p.stem)
        if m and m.group(2) == '01' and m.group(3) in _RAVDESS:
            found.append((p, _RAVDESS[m.group(3)], m.group(7)))
    return _build('ravdess', root, _labels('RAVDE_46'), found)


_SAVEE = {'a': 'angry', 'd': 'disgust', 'f': 'fear', 'h': 'happy', 'n': 'neutral', 'sa': 'sad', 'su': 'surprise'}


def read_savee(root) -> Corpus:
    """SAVEE: `<speaker>/<code><nn>.wav` or `<speaker>_<code><nn>.wav` with codes a d f h n sa su."""
    root = Path(root)
    found = []
    for p in _wavs(root):
        m = re.fullmatch(r'(?:([A-Z]{2})_)?(sa|su|a|d|f|h|n)(\d+)', p.stem)
        if m:
            found.append((p, _SAVEE[m.group(2)], m.group(1) or p.parent.name))
    return _build('savee', root, _labels('SAVEE_44'), found)


_EMOVO = {'rab': 'angry', 'dis': 'disgust', 'pau': 'fear', 'gio': 'happy', 'neu': 'neutral', 'tri': 'sad',
          'sor': 'surprise'}


def read_emovo(root) -> Corpus:
    """EMOVO: `<speaker>/<emo>-<speaker>-<sentence>.wav` with emo rab dis pau gio neu tri sor."""
    root = Path(root)
    found = []
    for p in _wavs(root):
        m = re.fullmatch(r'([a-z]{3})-([a-z]\d)-(\w+)', p.stem)
        if m and m.group(1) in _EMOVO:
            found.append((p, _EMOVO[m.group(1)], m.group(2)))
    return _build('emovo', root, _labels('EMOVO_1'), found)


_IEMOCAP = {'ang': 'angry', 'hap': 'happy', 'exc': 'happy', 'neu': 'neutral', 'sad': 'sad'}


def read_iemocap(root, merge_excited: bool = True) -> Corpus:
    """IEMOCAP: labels from `Session*/dialog/EmoEvaluation/*.txt`, audio
    `Session*/sentences/wav/<dialog>/<utterance>.wav`; four classes (angry happy neutral sad), with
    "excited" merged into happy unless `merge_excited=False`. Speaker: session and gender (`Ses01F`)."""
    root = Path(root)
    mapping = dict(_IEMOCAP) if merge_excited else {k: v for k, v in _IEMOCAP.items() if k != 'exc'}
    label_files = sorted(root.glob('Session*/dialog/EmoEvaluation/*.txt'))
    if not label_files:
        raise DatasetError(f'no IEMOCAP label files (Session*/dialog/EmoEvaluation/*.txt) under {root}')
    found, missing = [], 0
    line_re = re.compile(r'^\[[\d.]+ - [\d.]+\]\s+(Ses(\d\d)[MF]_\S+?_([MF])\d+)\s+(\w+)\s+\[')
    for lf in label_files:
        session_dir = lf.parents[2]
        for line in lf.read_text(errors='replace').splitlines():
            m = line_re.match(line)
            if not m or m.group(4) not in mapping:
                continue
            utt = m.group(1)
            dialog = utt.rsplit('_', 1)[0]
            wav = session_dir / 'sentences' / 'wav' / dialog / f'{utt}.wav'
            if wav.is_file():
                found.append((wav, mapping[m.group(4)], f'Ses{m.group(2)}{m.group(3)}'))
            else:
                missing += 1
    if missing:
        warnings.warn(f'IEMOCAP: {missing} labelled utterances have no wav file under {root}; skipped them')
    return _build('iemocap', root, _labels('IEMOCAP_16'), found)


def _hidden(path: Path, root: Path) -> bool:
    """Whether `path` lies in (or is) a hidden file or folder below `root` (`.ipynb_checkpoints`, `.DS_Store` ...)."""
    return any(part.startswith('.') for part in path.relative_to(root).parts)


def _warn_case_twins(source, labels: Sequence[str]) -> None:
    """Warn of labels that differ only in case or spacing (`Angry`, `angry`): each is a class of its own."""
    groups: Dict[str, List[str]] = {}
    for label in labels:
        groups.setdefault(' '.join(label.casefold().split()), []).append(label)
    twins = [sorted(g) for g in groups.values() if len(g) > 1]
    if twins:
        warnings.warn(f'{source}: the labels {", ".join(" and ".join(map(repr, g)) for g in twins)} differ only in '
                      f'case or spacing and are different classes; rename them to one spelling to merge them',
                      UserWarning, stacklevel=4)


def read_folders(root, label_names: Optional[Sequence[str]] = None) -> Corpus:
    """Folder per class: `root/<class>/*.wav`, or `root/<class>/<speaker>/**/*.wav` to name the speakers
    (needed for leave-one-speaker-out and per-speaker normalisation; files directly in a class folder have no
    speaker). Class order: `label_names`, or the folder names sorted as Python sorts strings (capitals first).
    Without `label_names`, a folder without a .wav file is no class; hidden files and folders (a name starting
    with ".", e.g. `.ipynb_checkpoints`) are never read; a warning names what was left out this way, and files
    lying directly in `root`."""
    root = Path(root)
    if not root.is_dir():
        raise DatasetError(f'corpus folder {root} is not a folder' if root.exists() else
                           f'corpus folder {root} does not exist')
    left_out = []
    if label_names:
        classes = list(label_names)
    else:
        folders = sorted(d.name for d in root.iterdir() if d.is_dir())
        classes = [name for name in folders if not name.startswith('.')]
        left_out += [f'the hidden folder {name}/' for name in folders if name.startswith('.')]
    found, hidden, other = [], 0, []
    for name in list(classes):
        folder = root / name
        if not folder.is_dir():
            raise DatasetError(f'class folder {folder} does not exist')
        wavs = _wavs(folder)
        visible = [p for p in wavs if not _hidden(p, folder)]
        hidden += len(wavs) - len(visible)
        others = sorted(p for p in folder.rglob('*') if p.suffix.lower() in OTHER_AUDIO_SUFFIXES and p.is_file()
                        and not _hidden(p, folder))
        other += others
        convert = (f'; {len(others)} audio files of other formats, such as {others[0].name}: the folders reader takes '
                   f'.wav only, convert them' if others else '')
        if not visible and not label_names:
            classes.remove(name)
            left_out.append(f'{name}/ (no .wav file: no class{convert})')
            continue
        if not visible:
            raise DatasetError(f'class folder {folder} holds no .wav file' + (' outside hidden folders and files'
                                                                             if wavs else '')
                               + f' (label_names names it as a class){convert}')
        found += [(p, name, p.relative_to(folder).parts[0] if len(p.relative_to(folder).parts) > 1 else '')
                  for p in visible]
    if hidden:
        left_out.append(f'{hidden} .wav files in hidden folders or with hidden names inside the class folders')
    other = [p for p in other if p.parent.relative_to(root).parts[0] in classes]   # the left-out classes said theirs
    if other:
        left_out.append(f'{len(other)} audio files that are not .wav ({", ".join(str(p.relative_to(root)) for p in other[:3])}'
                        + (' ...' if len(other) > 3 else '') + '): the folders reader takes .wav only; convert them')
    loose = [p.name for p in root.iterdir() if p.is_file() and p.suffix.lower() == '.wav']
    if loose:
        left_out.append(f'{len(loose)} .wav files directly in {root}, in no class folder ({", ".join(sorted(loose)[:3])}'
                        + (' ...)' if len(loose) > 3 else ')'))
    if left_out:
        warnings.warn(f'{root}: left out {"; ".join(left_out)}', UserWarning, stacklevel=3)
    _warn_case_twins(root, classes)
    unnamed = sum(1 for _, _, speaker in found if not speaker)
    if 0 < unnamed < len(found):
        warnings.warn(f'{root}: {unnamed} of {len(found)} files lie directly in a class folder and have no speaker '
                      f'(the others are in <class>/<speaker>/ folders); leave-one-speaker-out and per-speaker '
                      f'normalisation need a speaker for every file', UserWarning, stacklevel=3)
    return _build('folders', root, classes, found)


def read_manifest(path, label_names: Optional[Sequence[str]] = None) -> Corpus:
    """A CSV file with a header naming the columns `path` and `label`, and optionally `speaker` (other columns
    are ignored); paths relative to the CSV's folder (or absolute). Class order: `label_names`, or the labels sorted
    as Python sorts strings (capitals first). Every file must exist; a row without a path or label is an error
    naming its line, a row naming a file again is left out with a warning (the same label and speaker) or an
    error (another label or speaker)."""

    path = Path(path)
    if not path.is_file():
        raise DatasetError(f'no manifest at {path} (a CSV file with the columns path,label[,speaker])')
    root = path.parent
    with path.open(newline='', encoding='utf-8-sig') as f:
        reader = csv.DictReader(f)
        columns = [c.strip().lower() for c in reader.fieldnames or []]
        if 'path' not in columns or 'label' not in columns:
            raise DatasetError(f'{path}: the first line must name the columns path,label[,speaker]; got {columns}')
        rows = [(reader.line_num, {k.strip().lower(): (v or '').strip() for k, v in row.items() if k})
                for row in reader]                        # the file's line numbers: blank lines are skipped
    found, missing, first, repeats = [], [], {}, []
    for line, row in rows:
        if not row['path'] or not row['label']:
            raise DatasetError(f'{path}, line {line}: a path and a label are needed, got {row}')
        audio = Path(row['path']) if Path(row['path']).is_absolute() else root / row['path']
        if not audio.is_file():
            missing.append(f'{row["path"]} (line {line})')
        item = (audio, row['label'], row.get('speaker', ''))
        key = str(audio.resolve())
        if key in first:                                  # one recording twice could be in training and test
            earlier_line, earlier = first[key]
            if earlier[1:] != item[1:]:
                raise DatasetError(f'{path}: line {line} names {row["path"]} again, as line {earlier_line} does, '
                                   f'with another label or speaker ({item[1]!r}, {item[2]!r} against '
                                   f'{earlier[1]!r}, {earlier[2]!r}); keep one of them')
            repeats.append(f'line {line} (= line {earlier_line})')
            continue
        first[key] = (line, item)
        found.append(item)
    if missing:
        raise DatasetError(f'{path}: {len(missing)} files do not exist: {", ".join(missing[:5])}'
                           + (' ...' if len(missing) > 5 else ''))
    kept = {line for line, _ in first.values()}
    blank = [line for line, row in rows if line in kept and 'speaker' in row and not row['speaker']]
    if blank and len(blank) < len(kept):
        warnings.warn(f'{path}: {len(blank)} of {len(kept)} rows name no speaker (line'
                      f'{"s" if len(blank) > 1 else ""} {", ".join(map(str, blank[:8]))}'
                      + (' ...' if len(blank) > 8 else '') + '); leave-one-speaker-out and per-speaker normalisation '
                      'need a speaker for every file', UserWarning, stacklevel=3)
    if repeats:
        warnings.warn(f'{path}: left out {len(repeats)} rows that repeat an earlier row (the same file, label and '
                      f'speaker): {", ".join(repeats[:5])}' + (' ...' if len(repeats) > 5 else ''),
                      UserWarning, stacklevel=3)
    labels = sorted({r[1] for r in found})
    _warn_case_twins(path, labels)
    if label_names:
        unknown = sorted(set(labels) - set(label_names))
        if unknown:
            raise DatasetError(f'{path}: labels {unknown} are not among label_names {list(label_names)}')
        labels = list(label_names)
    return _build('manifest', root, labels, found)


CORPUS_READERS: Dict[str, Callable[..., Corpus]] = {
    'emodb': read_emodb, 'casia': read_casia, 'ravdess': read_ravdess, 'savee': read_savee,
    'emovo': read_emovo, 'iemocap': read_iemocap, 'folders': read_folders, 'manifest': read_manifest,
}

#: the Keras release each corpus's canonical order and classes follow
CORPUS_RELEASES = {'emodb': 'EMODB_46', 'casia': 'CASIA_32', 'ravdess': 'RAVDE_46', 'savee': 'SAVEE_44',
                   'emovo': 'EMOVO_1', 'iemocap': 'IEMOCAP_16'}


def release_signal_length(corpus: str, default: int = 96000) -> int:
    """The input length in samples (`MFCCExtractor(mean_signal_length)`) of `corpus`'s Keras release, the
    default of `tim-zoo extract`/`train`/`evaluate --corpus`: emodb 96000, casia 88000, iemocap 310000 ...;
    `default` for a corpus without a release (folders, manifest)."""
    release = CORPUS_RELEASES.get(corpus.lower())
    return TIMNET_RELEASES[release]['mean_signal_length'] if release else default


def load_corpus(name: str, root, **kwargs) -> Corpus:
    """Read corpus `name` (emodb, casia, ravdess, savee, emovo, iemocap, folders) from the folder `root`, or
    `manifest` from the CSV file `root`."""
    key = name.lower()
    if key not in CORPUS_READERS:
        close = difflib.get_close_matches(key, list(CORPUS_READERS), n=1)
        raise ConfigurationError(f'unknown corpus {name!r}' + (f' (did you mean {close[0]}?)' if close else '')
                                 + f'; known: {", ".join(CORPUS_READERS)}')
    return CORPUS_READERS[key](root, **kwargs)
