"""Extracted features of a corpus: computing them with a progress bar, caching, and file formats."""
import dataclasses
import hashlib
import json
import warnings
import zipfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import List, Optional, Sequence

import numpy as np

from .._utils import atomic_write, progress
from ..exceptions import ConfigurationError, DatasetError, UnsafeFileError
from .audio import read_audio, resample
from .corpora import Corpus, release_signal_length
from .features import MFCCExtractor
from .known_utterances import audio_fingerprint
from .speech import MIN_SPEECH_SECONDS, SpeechDetector


@dataclass
class FeatureSet:
    """Features `x` `[N, C, T]` (float32) with labels `y` `[N]` and what they came from."""
    x: np.ndarray
    y: np.ndarray
    label_names: List[str]
    paths: List[str] = field(default_factory=list)
    speakers: List[str] = field(default_factory=list)
    settings: dict = field(default_factory=dict)
    #: seconds of each recording as read, before it was cut or padded to the fixed length (empty: not known)
    durations: List[float] = field(default_factory=list)
    #: each recording's content as read (`tim_zoo.data.known_utterances.audio_fingerprint`; empty: not known), by
    #: which a model trained on them knows them again, renamed or not
    fingerprints: List[str] = field(default_factory=list)
    #: seconds of voiced speech the speech detector found in each recording as read (`tim_zoo.data.speech`; empty:
    #: not known); under `MIN_SPEECH_SECONDS` it holds no speech
    voiced: List[float] = field(default_factory=list)

    def speechless(self) -> List[int]:
        """Indices of the recordings in which the speech detector found no speech (empty where not known)."""
        if len(self.voiced) != len(self.y):
            return []
        return [i for i, v in enumerate(self.voiced) if v < MIN_SPEECH_SECONDS]

    def __len__(self) -> int:
        return len(self.y)

    def of_classes(self, names: Sequence[str]) -> 'FeatureSet':
        """The utterances of classes `names` (a subset of `label_names`), labelled in that order; every per-utterance
        record (paths, speakers, durations, fingerprints, voiced) follows them."""
        unknown = [n for n in names if n not in self.label_names]
        if unknown:
            raise DatasetError(f'classes {unknown} are not among these features\' {list(self.label_names)}')
        old = np.asarray([self.label_names.index(n) for n in names], dtype=np.int64)
        keep = np.flatnonzero(np.isin(np.asarray(self.y), old))
        relabel = {int(o): i for i, o in enumerate(old)}
        per_utterance = {name: [getattr(self, name)[i] for i in keep] if len(getattr(self, name)) == len(self.y)
                         else list(getattr(self, name))
                         for name in ('paths', 'speakers', 'durations', 'fingerprints', 'voiced')}
        return dataclasses.replace(self, x=self.x[keep], label_names=list(names), settings=dict(self.settings),
                                   y=np.asarray([relabel[int(v)] for v in np.asarray(self.y)[keep]], dtype=np.int64),
                                   **per_utterance)

    def __repr__(self) -> str:
        """A summary, not the arrays: utterances, shape, classes, speakers and the settings' corpus."""
        speakers = len(set(self.speakers)) if self.speakers and all(self.speakers) else 0
        corpus = (self.settings or {}).get('corpus')
        return (f'FeatureSet({len(self)} utterances, x {list(np.shape(self.x))} {np.asarray(self.x).dtype}, '
                f'{len(self.label_names)} classes [{", ".join(map(str, self.label_names))}]'
                + (f', {speakers} speakers' if speakers else '') + (f', corpus {corpus}' if corpus else '') + ')')

    def save(self, path) -> Path:
        """Write an `.npz` file (no pickle: strings are stored as unicode arrays, settings as JSON)."""
        path = Path(path)

        def write(tmp):
            with open(tmp, 'wb') as f:
                np.savez(
                    f, x=self.x.astype(np.float32), y=self.y.astype(np.int64), label_names=np.array(self.label_names),
                    paths=np.array(self.paths, dtype=str), speakers=np.array(self.speakers, dtype=str),
                    settings=np.array(json.dumps(self.settings)), durations=np.array(self.durations, dtype=np.float64),
                    fingerprints=np.array(self.fingerprints, dtype=str), voiced=np.array(self.voiced, dtype=np.float64))
        atomic_write(path, write)
        return path

    @classmethod
    def load(cls, path) -> 'FeatureSet':
        """Read a file written by `save` (never unpickles)."""
        path = Path(path)
        if not path.is_file():
            raise DatasetError(f'no feature file at {path}')
        with open(path, 'rb') as f:
            magic = f.read(6)
        if magic.startswith(b'\x93NUMPY'):
            raise DatasetError(f'{path} is a .npy array, not a tim_zoo feature file (.npz); a TIM-Net .npy file reads '
                               f'with load_timnet_npy, audio is extracted with tim-zoo extract')
        if not magic.startswith(b'PK'):
            raise DatasetError(f'{path} is not a tim_zoo feature file (not an .npz archive); make one with tim-zoo '
                               f'extract or FeatureSet.save')
        try:
            with np.load(path, allow_pickle=False) as d:
                return cls(
                    x=d['x'], y=d['y'], label_names=[str(s) for s in d['label_names']],
                    paths=[str(s) for s in d['paths']], speakers=[str(s) for s in d['speakers']],
                    settings=json.loads(str(d['settings'])),
                    durations=[float(v) for v in d['durations']] if 'durations' in d.files else [],
                    fingerprints=[str(s) for s in d['fingerprints']] if 'fingerprints' in d.files else [],
                    voiced=[float(v) for v in d['voiced']] if 'voiced' in d.files else [])
        except (KeyError, ValueError, OSError, zipfile.BadZipFile) as e:
            reason = ('it holds pickled objects, which tim_zoo does not load' if 'Object arrays cannot be loaded'
                      in str(e) else f'{type(e).__name__}: {e}')
            raise DatasetError(f'{path} is not a tim_zoo feature file ({reason}); make one with tim-zoo extract or '
                               f'FeatureSet.save') from e

    def digest(self) -> str:
        """SHA-256 of what training sees (`x` as float32, `y`, label names, speakers, which the speaker-wise
        protocols and normalisations use): equal for equal features wherever they are stored."""
        h = hashlib.sha256()
        h.update(np.ascontiguousarray(self.x, dtype=np.float32).tobytes())
        h.update(np.ascontiguousarray(self.y, dtype=np.int64).tobytes())
        h.update(json.dumps([list(self.x.shape), list(self.label_names), list(self.speakers)]).encode())
        return h.hexdigest()

    def fit_note(self) -> str:
        """How many recordings were cut to the fixed length (their middle kept) or zero-padded around, in words
        ('' when none was, or when the lengths or the fixed length are not known)."""
        length, rate = self.settings.get('mean_signal_length'), self.settings.get('sample_rate')
        if not (length and rate and self.durations):
            return ''
        seconds, slack = length / rate, 1.0 / rate
        durations = np.asarray(self.durations)
        cut, padded = durations > seconds + slack, durations < seconds - slack
        parts = []
        if cut.any():
            parts.append(f'{cut.sum()} of {len(durations)} recordings longer than {seconds:.2f} s were cut to their '
                         f'middle {seconds:.2f} s (the longest, {durations.max():.2f} s, lost '
                         f'{100 * (1 - seconds / durations.max()):.0f} % of it)')
        if padded.any():
            parts.append(f'{padded.sum()} of {len(durations)} shorter than {seconds:.2f} s were zero-padded around '
                         f'(the shortest {durations.min():.2f} s)')
        return '; '.join(parts)

    def to_keras_layout(self) -> np.ndarray:
        """`x` as `[N, T, C]` (TIM-Net's Keras layout)."""
        return np.ascontiguousarray(self.x.transpose(0, 2, 1))


#: recordings read before their speech is found and their MFCC computed together, fewer where they are long: at
#: most `EXTRACT_SAMPLES` samples are held (64 recordings of 96000 samples, 25 MB)
EXTRACT_BATCH = 64
EXTRACT_SAMPLES = EXTRACT_BATCH * 96000


#: the level of `corpus_extractor` (`tim-zoo extract`, `tim-zoo train --corpus`) when none is given
CORPUS_LEVEL = 'peak'


def corpus_extractor(corpus: str, mean_signal_length: Optional[int] = None, n_mfcc: int = 39, order: int = 1,
                     level: Optional[str] = None) -> MFCCExtractor:
    """The extractor `tim-zoo extract` and `tim-zoo train --corpus` use for corpus `corpus` (a `load_corpus` name):
    `mean_signal_length` defaults to the length of the corpus's Keras release (`release_signal_length`: emodb
    96000) and `level` to "peak" (each recording scaled to a full-scale peak, so a model does not learn the
    microphone's gain). `MFCCExtractor` alone defaults to `level="none"`, the TIM-Net authors' features."""
    return MFCCExtractor(mean_signal_length or release_signal_length(corpus), n_mfcc, order=order,
                         level=level or CORPUS_LEVEL)


def extract_features(corpus: Corpus, extractor: MFCCExtractor, show_progress: bool = True) -> FeatureSet:
    """Compute `extractor` on every item of `corpus`, in order, with a tqdm progress bar. Recordings in which the
    speech detector finds no speech (`tim_zoo.data.speech`: digital silence, noise, a tone) are extracted all the
    same, and a warning names them: a model trained on them learns labels for sounds that are not speech."""
    items = progress(corpus.items, show_progress, desc=f'MFCC {corpus.name}', unit='file')
    rate, durations, fingerprints, voiced, feats = extractor.sample_rate, [], [], [], []
    detector = SpeechDetector(rate)

    def extract(group):                     # [(path, waveform)]: speech found and MFCC computed together
        waves = [wave for _, wave in group]
        voiced.extend(activity.voiced_seconds() for activity in detector.batch(waves))
        if extractor.mean_signal_length is None:
            feats.extend(extractor(wave, rate) for wave in waves)
        else:                               # equal lengths: MFCC in batches
            feats.extend(extractor.batch([extractor.signal(wave, rate) for wave in waves]))

    group, held = [], 0
    for item in items:
        signal, native = read_audio(item.path)
        fingerprints.append(audio_fingerprint(signal, native))
        wave = resample(signal, native, rate)
        durations.append(len(wave) / rate)
        group.append((item.path, wave))
        held += len(wave)
        if len(group) == EXTRACT_BATCH or held >= EXTRACT_SAMPLES:
            extract(group)
            group, held = [], 0
    if group:
        extract(group)
    speechless = [path for path, seconds in zip(corpus.paths, voiced) if seconds < MIN_SPEECH_SECONDS]
    if speechless:
        warnings.warn(f'{corpus.name}: the speech detector finds no speech (under {MIN_SPEECH_SECONDS} s voiced) in '
                      f'{len(speechless)} of {len(durations)} recordings, extracted as the others: '
                      f'{", ".join(speechless[:5])}' + (' ...' if len(speechless) > 5 else '')
                      + '; leave them out of the corpus unless their labels are meant for such sounds', UserWarning,
                      stacklevel=2)
    lengths = {f.shape[1] for f in feats}
    if len(lengths) != 1:
        raise DatasetError(
            f'utterances have {len(lengths)} different frame counts; use a fixed mean_signal_length to stack them')
    return FeatureSet(
        x=np.stack(feats), y=corpus.labels, label_names=list(corpus.label_names), paths=corpus.paths,
        speakers=corpus.speakers, settings=dict(extractor.settings, corpus=corpus.name), durations=durations,
        fingerprints=fingerprints, voiced=voiced)


def cached_features(corpus: Corpus, extractor: MFCCExtractor, cache_path, show_progress: bool = True,
                    overwrite: bool = True) -> FeatureSet:
    """Load `cache_path` if it holds these files with these settings, else extract and write it. With `overwrite`
    False, a file at `cache_path` that holds other features is refused instead of replaced (a file someone named
    may be their only copy)."""
    cache_path = Path(cache_path)
    expected = dict(extractor.settings, corpus=corpus.name)
    if cache_path.is_file():
        cached = FeatureSet.load(cache_path)
        if cached.settings == expected and cached.paths == corpus.paths:
            return cached
        if not overwrite:
            differ = sorted(k for k in set(expected) | set(cached.settings)
                            if expected.get(k) != cached.settings.get(k))
            what = (f'settings differ in {", ".join(differ)}' if differ else
                    f'{len(cached.paths)} files there, {len(corpus.paths)} in the corpus now')
            raise ConfigurationError(f'{cache_path} holds other features than {corpus.name} gives now ({what}); it is '
                                     f'left as it is: give another file to extract into, or delete this one')
    features = extract_features(corpus, extractor, show_progress)
    features.save(cache_path)
    return features


def load_timnet_npy(path, label_names: Optional[List[str]] = None, allow_pickle: bool = False) -> FeatureSet:
    """Read a TIM-Net `.npy` feature file: a pickled dict with `x` `[N, T, 39]` and one-hot `y`.

    These files are pickles, so reading them can run code; pass `allow_pickle=True` only for files you trust.
    """
    if not allow_pickle:
        raise UnsafeFileError(
            f'{path} is a TIM-Net .npy file, a pickled dict, and unpickling can run arbitrary code; '
            f'pass allow_pickle=True only if you trust the file')
    data = np.load(path, allow_pickle=True).item()
    x, y = np.asarray(data['x'], dtype=np.float32), np.asarray(data['y'])
    if x.ndim != 3 or y.ndim != 2 or len(x) != len(y):
        raise DatasetError(f'{path}: expected x [N, T, C] and one-hot y [N, classes], got {x.shape} and {y.shape}')
    names = list(label_names) if label_names else [str(i) for i in range(y.shape[1])]
    return FeatureSet(x=np.ascontiguousarray(x.transpose(0, 2, 1)), y=y.argmax(axis=1).astype(np.int64), label_names=names)


def save_timnet_npy(features: FeatureSet, path) -> Path:
    """Write the TIM-Net `.npy` format (dict with `x` `[N, T, C]` and one-hot `y`)."""
    path = Path(path)
    one_hot = np.eye(len(features.label_names), dtype=np.float32)[features.y]
    atomic_write(path, lambda tmp: np.save(open(tmp, 'wb'), {'x': features.to_keras_layout(), 'y': one_hot}))
    return path
