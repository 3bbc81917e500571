"""Train / validation / test splits: k-fold (the authors' folds), leave one speaker out, hold-out."""
from dataclasses import dataclass
from typing import List, Optional, Sequence

import numpy as np

from ..evaluation import kfold_splits
from ..exceptions import DatasetError

#: where speakers come from, for the errors of what needs them
SPEAKER_HINT = ('(speakers come from a "speaker" column of a manifest, or from folders data/<class>/<speaker>/*.wav; '
                'the known corpora name them)')


@dataclass
class Split:
    """Sample indices of one fold; `name` says which (`fold3`, `speaker_03`, `holdout`)."""
    name: str
    train: np.ndarray
    val: np.ndarray
    test: np.ndarray


def _carve(indices: np.ndarray, fraction: float, rng: np.random.Generator, groups: Optional[np.ndarray] = None):
    """Split `indices` into (rest, val) with about `fraction` in val; whole groups when `groups` given."""
    if fraction <= 0:
        return indices, indices[:0]
    if groups is None:
        perm = rng.permutation(indices)
        n_val = max(1, int(round(fraction * len(indices))))
        return np.sort(perm[n_val:]), np.sort(perm[:n_val])
    names = np.unique(groups[indices])
    if len(names) < 2:
        raise DatasetError('a speaker-independent validation split needs at least two training speakers')
    n_val = max(1, int(round(fraction * len(names))))
    val_names = rng.permutation(names)[:n_val]
    in_val = np.isin(groups[indices], val_names)
    return indices[~in_val], indices[in_val]


def make_splits(protocol: str, num_samples: int, speakers: Optional[Sequence[str]] = None, folds: int = 10,
                seed: int = 0, val_fraction: float = 0.1) -> List[Split]:
    """The splits of a protocol over `num_samples` samples in canonical corpus order.

    `kfold`: test fold i is `KFold(folds, shuffle=True, random_state=seed)`'s i-th; `loso`: each
    speaker once as the test set, validation speakers drawn from the others; `holdout`: a seeded
    0.8 / 0.1 / 0.1 split (`val_fraction` of the whole); `all`: train on every sample (no validation,
    no test: for a model to ship). Validation samples always come out of the training part.
    """
    rng = np.random.default_rng(seed)
    all_idx = np.arange(num_samples)
    if protocol == 'kfold':
        splits = []
        for i, (train, test) in enumerate(kfold_splits(num_samples, folds, seed), start=1):
            rest, val = _carve(np.asarray(train), val_fraction, rng)
            splits.append(Split(f'fold{i}', rest, val, np.asarray(test)))
        return splits
    if protocol == 'loso':
        if speakers is None or len(speakers) != num_samples or not all(speakers):
            have = sum(map(bool, speakers or []))
            raise DatasetError(f'leave-one-speaker-out needs a speaker for every sample; these have {have} of '
                               f'{num_samples} {SPEAKER_HINT}')
        groups = np.asarray(speakers)
        names = np.unique(groups)
        if len(names) < 3:
            raise DatasetError(f'leave-one-speaker-out needs at least 3 speakers, got {len(names)}')
        splits = []
        for name in names:
            test = all_idx[groups == name]
            rest, val = _carve(all_idx[groups != name], val_fraction, rng, groups)
            splits.append(Split(f'speaker_{name}', rest, val, test))
        return splits
    if protocol == 'all':
        return [Split('all', all_idx, all_idx[:0], all_idx[:0])]
    if protocol == 'holdout':
        perm = rng.permutation(num_samples)
        n_test = max(1, int(round(0.1 * num_samples)))
        n_val = int(round(val_fraction * num_samples))
        test, val, train = perm[:n_test], perm[n_test:n_test + n_val], perm[n_test + n_val:]
        return [Split('holdout', np.sort(train), np.sort(val), np.sort(test))]
    raise DatasetError(f'unknown protocol {protocol!r}; expected kfold, loso, holdout or all')
