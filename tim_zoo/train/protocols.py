"""Train / validation / test splits: k-fold (the authors' folds), leave one speaker out, hold-out."""
from dataclasses import dataclass
from typing import FrozenSet, List, Optional, Sequence, Tuple

import numpy as np

from ..data.known_utterances import known_utterances, names_digest, recognised_names, utterance_name
from ..evaluation import kfold_splits
from ..exceptions import DatasetError
from ..weights.load import training_records

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
    #: whether the validation part was drawn again so that every class stays in training (`make_splits(labels=)`)
    redrawn: bool = False


#: draws of a validation part tried before one that leaves a class out of training is kept (the run warns)
VAL_DRAWS = 100


def _carve(indices: np.ndarray, fraction: float, rng: np.random.Generator, groups: Optional[np.ndarray] = None,
           labels: Optional[np.ndarray] = None, redraw: Tuple[int, ...] = (0,)):
    """Split `indices` into (rest, val, redrawn) with about `fraction` in val; whole groups when `groups` given. With
    `labels`, a draw whose rest lacks a class of `indices` is drawn again (up to `VAL_DRAWS` times): with one label
    per speaker (a depression corpus), a validation speaker must not take the last training speaker of its class.
    The first draw is the one made without `labels`, from `rng`, which every split shares; redraws come from their
    own generators (seeded with `redraw` and the attempt), so that no other split's draw moves."""
    if fraction <= 0:
        return indices, indices[:0], False
    if groups is not None:
        names = np.unique(groups[indices])
        if len(names) < 2:
            raise DatasetError('a speaker-independent validation split needs at least two training speakers')
    first = None
    for attempt in range(VAL_DRAWS if labels is not None else 1):
        draw = rng if attempt == 0 else np.random.default_rng([*redraw, attempt])
        if groups is None:
            perm = draw.permutation(indices)
            n_val = max(1, int(round(fraction * len(indices))))
            rest, val = np.sort(perm[n_val:]), np.sort(perm[:n_val])
        else:
            n_val = max(1, int(round(fraction * len(names))))
            in_val = np.isin(groups[indices], draw.permutation(names)[:n_val])
            rest, val = indices[~in_val], indices[in_val]
        if first is None:
            first = rest, val
        if labels is None or set(labels[rest].tolist()) == set(labels[indices].tolist()):
            return rest, val, attempt > 0
    return (*first, False)


def make_splits(protocol: str, num_samples: int, speakers: Optional[Sequence[str]] = None, folds: int = 10,
                seed: int = 0, val_fraction: float = 0.1, labels: Optional[Sequence] = None) -> List[Split]:
    """The splits of a protocol over `num_samples` samples in canonical corpus order.

    `kfold`: test fold i is `KFold(folds, shuffle=True, random_state=seed)`'s i-th; `loso`: each
    speaker once as the test set, validation speakers drawn from the others; `holdout`: a seeded
    0.8 / 0.1 / 0.1 split (`val_fraction` of the whole); `all`: train on every sample (no validation,
    no test: for a model to ship). Validation samples always come out of the training part; with `labels` (one
    per sample) the validation parts of `kfold` and `loso` are drawn so that every class of the training part stays
    in training where a draw can (`_carve`; `holdout` draws its three parts at once and does not redraw). The test
    sets never depend on `labels`.
    """
    labels = None if labels is None else np.asarray(labels)
    if labels is not None and len(labels) != num_samples:
        raise DatasetError(f'labels: {len(labels)} for {num_samples} samples')
    rng = np.random.default_rng(seed)
    all_idx = np.arange(num_samples)
    if protocol == 'kfold':
        splits = []
        for i, (train, test) in enumerate(kfold_splits(num_samples, folds, seed), start=1):
            rest, val, redrawn = _carve(np.asarray(train), val_fraction, rng, labels=labels, redraw=(seed, i))
            splits.append(Split(f'fold{i}', rest, val, np.asarray(test), redrawn))
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
        for i, name in enumerate(names, start=1):
            test = all_idx[groups == name]
            rest, val, redrawn = _carve(all_idx[groups != name], val_fraction, rng, groups, labels, redraw=(seed, i))
            splits.append(Split(f'speaker_{name}', rest, val, test, redrawn))
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


def trained_on(corpus: str, protocol: str, split: str, folds: Optional[int], split_seed: int, val_fraction: float,
               recipe: Optional[str], names: Sequence[str]) -> dict:
    """What a checkpoint records of the utterances it trained on: the corpus, the split of the protocol (its folds,
    the seed that drew the splits, the validation share; `folds` None but under kfold), the recipe, and the names of
    the corpus' utterances in order as `names_sha256` (`tim_zoo.data.known_utterances.names_digest`), by which the
    split's utterances can be named again (`seen_utterances`). A checkpoint trained from initial weights (`--init`)
    that kept a record adds theirs as `earlier`: the weights heard those utterances too."""
    return dict(corpus=corpus, protocol=protocol, split=split, folds=folds, split_seed=split_seed,
                val_fraction=val_fraction, recipe=recipe, utterances=len(names), names_sha256=names_digest(names))


@dataclass
class Heard:
    """What one training of a record (`training_records`) heard of a list of files."""
    #: the training (a record without its `earlier`)
    training: dict
    #: how many utterances it trained on (or chose its epoch on)
    trained: int
    #: whether it trained on each file, in the files' order
    mask: np.ndarray
    #: known by the files' content (`heard_fingerprints`): the training drew its splits from another list of them
    by_content: bool = False


def heard_files(record: Optional[dict], paths: Sequence[str], speakers: Optional[Sequence[str]] = None,
                fingerprints: Optional[Sequence[str]] = None) -> Tuple[List[Heard], List[dict]]:
    """Which of the files `paths` each training of `record` (its own, then `earlier` ones) trained on, and the
    trainings that cannot tell (their utterance list cannot be drawn again here: `heard_by`). A training of this
    very list of files (its `names_sha256`) goes by the files' names; one of a corpus the package has a table of
    (`tim_zoo.data.known_utterances`) by each file's content where it is a copy of one of its recordings, renamed or
    not, else by its name; one of another list that recorded its recordings' content (`heard_fingerprints`) by the
    files' `fingerprints` (`FeatureSet.fingerprints`), where given."""
    names = [utterance_name(p) for p in paths]
    own_list = names_digest(names)
    heard, unknown, recognised = [], [], {}
    for training in training_records(record):
        found = heard_by(training, names, speakers)
        known = heard_fingerprints(training)
        if not found and known and fingerprints is not None and len(fingerprints) == len(paths):
            seen = known[0][1]
            heard.append(Heard(training, len(seen), np.array([f in seen for f in fingerprints], dtype=bool), True))
            continue
        if not found:
            unknown.append(training)
            continue
        seen = found[0][1]
        table = known_utterances(training.get('corpus'))
        if training.get('names_sha256') != own_list and table is not None:
            if table.corpus not in recognised:
                recognised[table.corpus] = recognised_names(paths, table)
            listed = recognised[table.corpus]
        else:
            listed = names
        heard.append(Heard(training, len(seen), np.array([n in seen for n in listed], dtype=bool)))
    return heard, unknown


def class_notes(splits: Sequence[Split], y: np.ndarray, label_names: Sequence[str]) -> List[str]:
    """What the splits' classes make of a run, in words: a split whose validation part was drawn again to keep every
    class in training, a split whose training part lacks a class the data has
    (its model never learns that class), and test sets that each hold one class (a split's UAR is then that class's
    recall, so only the UAR pooled over the splits weighs every class)."""
    y = np.asarray(y)
    classes = set(np.unique(y).tolist())
    notes = [f'{split.name}: its validation part was drawn again, so that every class stays in its training part'
             for split in splits if split.redrawn]
    for split in splits:
        missing = sorted(classes - set(y[split.train].tolist()))
        if missing and len(split.train):
            notes.append(f'{split.name} trains on no utterance of {", ".join(label_names[i] for i in missing)}'
                         f'{" (its validation part took them)" if set(y[split.val].tolist()) & set(missing) else ""}: '
                         f'its model cannot answer that class')
    tested = [split for split in splits if len(split.test)]
    if len(tested) > 1 and all(len(np.unique(y[split.test])) == 1 for split in tested):
        notes.append('every test set holds one class (one label per speaker?): a split\'s UAR is that class\'s '
                     'recall; the UAR pooled over the splits (pooled_uar) is the figure that weighs every class')
    return notes


def heard_by(record: Optional[dict], names: Optional[Sequence[str]] = None,
             speakers: Optional[Sequence[str]] = None) -> List[Tuple[dict, FrozenSet[str]]]:
    """Per training the record names (its own, then `earlier` ones), the names of the utterances it trained on
    (with those it chose its epoch on, a validation share): those whose splits can be drawn again. The utterance
    list is `names` (with `speakers`, for leave one speaker out) when the record's `names_sha256` is theirs, else
    the package's table of the record's corpus (`tim_zoo.data.known_utterances`), when the record is of that list,
    trained on all of it, or the TIM-Net authors' folds of it (`whole_corpus`)."""
    found = []
    for rec in training_records(record):
        listing = _listing(rec, names, speakers)
        if listing is None:
            continue
        listed, who = listing
        if rec.get('protocol') == 'all':
            found.append((rec, frozenset(listed)))
            continue
        try:
            splits = make_splits(rec['protocol'], len(listed), who, int(rec.get('folds') or 10), int(rec['split_seed']),
                                 float(rec.get('val_fraction') or 0.0))
        except (KeyError, TypeError, ValueError, DatasetError):
            continue
        test = next((s.test for s in splits if s.name == rec.get('split')), None)
        if test is not None:
            held_out = set(test.tolist())
            found.append((rec, frozenset(n for i, n in enumerate(listed) if i not in held_out)))
    return found


def heard_fingerprints(record: Optional[dict]) -> List[Tuple[dict, FrozenSet[str]]]:
    """Per training the record names that kept its recordings' content (`fingerprints`: a corpus the package has no
    table of, `tim_zoo.train.run`), the fingerprints (`audio_fingerprint`) of those it trained or chose its epoch on."""
    return [(rec, frozenset(rec['fingerprints'])) for rec in training_records(record) if rec.get('fingerprints')]


def _listing(record: dict, names, speakers):
    """`(names, speakers)` of the utterance list `record` drew its splits from, or None when it is not known."""
    if names is not None and record.get('names_sha256') == names_digest(names):
        return list(names), (list(speakers) if speakers is not None and all(speakers) else None)
    table = known_utterances(record.get('corpus'))
    if table is None:
        return None
    digest = record.get('names_sha256')
    if digest == table.digest or record.get('whole_corpus') or (digest is None and record.get('protocol') == 'all'):
        return list(table.names), list(table.speakers)
    return None                                           # another list of the corpus' utterances (a subset)


def seen_utterances(record: Optional[dict], names: Optional[Sequence[str]] = None,
                    speakers: Optional[Sequence[str]] = None) -> Optional[FrozenSet[str]]:
    """The names of the utterances a model's weights trained on, over the record's chain (`heard_by`); None when
    none of it is known: no record, a corpus the package has no table of and not `names`' list, or a split of
    another list of utterances."""
    found = heard_by(record, names, speakers)
    return frozenset().union(*(seen for _, seen in found)) if found else None
