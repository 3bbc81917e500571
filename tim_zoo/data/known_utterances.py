"""The utterances of the corpora tim_zoo's published weights trained on, so that a recording can be recognised as one.

A model answers an utterance it trained on from memory: its answer says nothing of how it judges unseen speech.
The package holds, for EMODB, each utterance's name (`03a01Fa`), speaker, length and content fingerprint, in the
corpus' canonical order (`tim_zoo.data.corpora`), as `emodb_utterances.tsv`. `identify_utterance` finds a recording there by
its content (`audio_fingerprint`: the copy tim_zoo trains on, renamed or given as a waveform) or else by its file
name (another copy of the corpus keeps the names); `tim_zoo.train.protocols.seen_utterances` tells which of them a
model's weights trained on.
"""
import csv
import functools
import hashlib
from dataclasses import dataclass
from pathlib import Path
from typing import List, Optional, Sequence, Tuple

import numpy as np

from ..exceptions import AudioError
from .audio import audio_info, read_audio

#: corpus name (`Corpus.name`, the feature settings' `corpus`) -> its table, next to this module
TABLES = {'emodb': 'emodb_utterances.tsv'}


@dataclass(frozen=True)
class KnownCorpus:
    """A corpus' utterances in canonical order: `names[i]` is sample `i` of a feature set read from it."""
    corpus: str
    names: Tuple[str, ...]
    speakers: Tuple[str, ...]
    fingerprints: Tuple[str, ...]
    #: `(sample rate, samples)` of each utterance's file: a recording of another length is not fingerprinted
    lengths: Tuple[Tuple[int, int], ...]

    @property
    def digest(self) -> str:
        """`names_digest` of the names: what a checkpoint records of the utterances it trained on."""
        return names_digest(self.names)


def names_digest(names: Sequence[str]) -> str:
    """SHA-256 of utterance names in order (`03a01Fa`, ...): the same list of utterances in the same order."""
    return hashlib.sha256('\n'.join(names).encode()).hexdigest()


def utterance_name(path) -> str:
    """The name of an utterance by its file: the file name without its folder and suffix."""
    return Path(str(path)).stem


def audio_fingerprint(signal: np.ndarray, rate: int) -> str:
    """A recording's content as 16 hex digits: SHA-256 of its rate, length and sample-to-sample steps in 16-bit
    units. The steps do not change with a DC offset, so the file, the same file read by `librosa.load(sr=None)` or
    soundfile, and the signal `tim_zoo` analyses (its DC offset removed) agree for 16-bit recordings; a resampled,
    re-levelled or re-encoded copy is another recording.

    Args:
        signal: mono samples `[N]` in [-1, 1] at their own rate `rate`.
    """
    steps = np.rint(np.diff(np.asarray(signal, dtype=np.float64)) * 32768).astype(np.int32)
    head = np.array([int(rate), len(signal)], dtype=np.int64).tobytes()
    return hashlib.sha256(head + steps.tobytes()).hexdigest()[:16]


def known_utterances(corpus: Optional[str]) -> Optional[KnownCorpus]:
    """The packaged table of `corpus` (case-insensitive), or None when the package holds none for it."""
    return _read_table(str(corpus).lower()) if str(corpus).lower() in TABLES else None


@functools.lru_cache(maxsize=None)
def _read_table(corpus: str) -> KnownCorpus:
    with open(Path(__file__).with_name(TABLES[corpus]), newline='') as f:
        rows = list(csv.reader(f, delimiter='\t'))
    names, speakers, rates, samples, fingerprints = zip(*rows[1:])
    return KnownCorpus(corpus, names, speakers, fingerprints, tuple(zip(map(int, rates), map(int, samples))))


def identify_utterance(table: KnownCorpus, name: Optional[str] = None, signal: Optional[np.ndarray] = None,
                       rate: int = 0) -> Optional[Tuple[str, str]]:
    """`(utterance name, "content" or "name")` when a recording is one of `table`'s utterances, else None.

    Args:
        name: the recording's file name, if it has one (its folder and suffix are ignored).
        signal: its mono samples `[N]` at `rate`, to recognise the copy the table was made from whatever its name.
    """
    if signal is not None and (int(rate), len(signal)) in _length_set(table):
        index = _fingerprint_index(table)
        found = index.get(audio_fingerprint(signal, rate))
        if found is not None:
            return found, 'content'
    stem = utterance_name(name) if name else None
    return (stem, 'name') if stem in _name_set(table) else None


def recognised_names(paths: Sequence[str], table: Optional[KnownCorpus]) -> List[str]:
    """The utterance name of each file, for checking it against what weights trained on: the name of `table`'s
    recording it is a copy of, by its content (whatever the file is called now), else its file name
    (`utterance_name`). Only files of a table recording's rate and length are read; a file that cannot be read
    goes by its name."""
    names = []
    for path in paths:
        found = None
        if table is not None:
            info = audio_info(path)
            if info is not None and (info[1], info[0]) in _length_set(table):
                try:
                    signal, rate = read_audio(path)
                except AudioError:
                    signal, rate = None, 0
                found = identify_utterance(table, None, signal, rate) if signal is not None else None
        names.append(found[0] if found else utterance_name(path))
    return names


@functools.lru_cache(maxsize=None)
def _fingerprint_index(table: KnownCorpus) -> dict:
    return dict(zip(table.fingerprints, table.names))


@functools.lru_cache(maxsize=None)
def _length_set(table: KnownCorpus) -> frozenset:
    return frozenset(table.lengths)


@functools.lru_cache(maxsize=None)
def _name_set(table: KnownCorpus) -> frozenset:
    return frozenset(table.names)


def write_utterance_table(corpus, path, read=None) -> None:
    """Write the table of a corpus (a `Corpus`, in its canonical order) to `path`: each utterance's name, speaker,
    sample rate, length in samples and `audio_fingerprint` of its file as `read(path) -> (mono signal, rate)` gives it (default:
    `tim_zoo.data.audio.read_audio`)."""
    read = read or read_audio
    rows = [('name', 'speaker', 'rate', 'samples', 'fingerprint')]
    for item in corpus:
        signal, rate = read(item.path)
        rows.append((utterance_name(item.path), item.speaker, rate, len(signal), audio_fingerprint(signal, rate)))
    with open(path, 'w', newline='') as f:
        csv.writer(f, delimiter='\t', lineterminator='\n').writerows(rows)
