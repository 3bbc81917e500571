"""Per-speaker feature normalisation, the usual remedy for speaker variation in speaker-independent tests.

The statistics of a speaker come from all of that speaker's utterances, without their labels. Under
leave-one-speaker-out this uses the test speaker's unlabelled recordings (as speaker normalisation in
the literature does); models trained this way need a set of recordings of each new speaker.
"""
import dataclasses
from typing import Sequence

import numpy as np

from .._validation import check_choice
from ..exceptions import DatasetError

#: `none`; `speaker_mean`: subtract the speaker's mean of each coefficient (cepstral mean
#: normalisation per speaker; the scale of the features is kept); `speaker`: also divide by the
#: speaker's standard deviation of each coefficient.
NORMALIZE_MODES = ('none', 'speaker_mean', 'speaker')


def normalize_by_speaker(x: np.ndarray, speakers: Sequence[str], mode: str = 'speaker_mean',
                         eps: float = 1e-5) -> np.ndarray:
    """`x` `[N, C, T]` normalised per speaker: statistics of each coefficient over the frames of every
    utterance of that speaker. Returns a new float32 array."""
    check_choice('normalize', mode, NORMALIZE_MODES)
    x = np.asarray(x, dtype=np.float32)
    if mode == 'none':
        return x.copy()
    if x.ndim != 3:
        raise DatasetError(f'expected features [N, C, T], got shape {x.shape}')
    speakers = np.asarray(list(speakers))
    if len(speakers) != len(x) or not all(speakers):
        raise DatasetError(f'per-speaker normalisation needs a speaker for each of the {len(x)} utterances, '
                           f'got {len(speakers)} speaker names' + ('' if all(speakers) else ' with empty ones'))
    out = np.empty_like(x)
    for name in np.unique(speakers):
        rows = speakers == name
        part = x[rows].astype(np.float64)
        centred = part - part.mean(axis=(0, 2), keepdims=True)
        if mode == 'speaker':
            centred /= centred.std(axis=(0, 2), keepdims=True) + eps
        out[rows] = centred
    return out


def speakers_with_one_label(speakers, y) -> int:
    """The number of speakers where every speaker's recordings share one label (and the labels are not all one),
    else 0: per-speaker normalisation then removes speaker-level information that may be what the labels are."""
    by_speaker = {}
    for speaker, label in zip(speakers, np.asarray(y).tolist()):
        by_speaker.setdefault(speaker, set()).add(label)
    labels = set().union(*by_speaker.values()) if by_speaker else set()
    one = len(by_speaker) > 1 and len(labels) > 1 and all(len(v) == 1 for v in by_speaker.values())
    return len(by_speaker) if one else 0


def normalize_features(features, mode: str):
    """A `FeatureSet` normalised per speaker; `settings['normalize']` records `mode`
    so checkpoints trained on it say what their inputs need."""

    x = normalize_by_speaker(features.x, features.speakers, mode)
    settings = dict(features.settings, normalize=mode)
    return dataclasses.replace(features, x=x, settings=settings)
