"""Score a trained model on labelled utterances: accuracy overall and per class, and whether they were held out."""
from pathlib import Path
from typing import List, Optional

import numpy as np
import torch

from .._validation import resolve_device
from ..data import FeatureSet
from ..data.frame_selection import select_frames
from ..data.normalize import normalize_features
from ..data.speech import MIN_SPEECH_SECONDS
from ..evaluation import confusion_matrix, predict_proba, speaker_votes, uar, war
from ..exceptions import DatasetError
from ..weights.fresh_head import classifier_notes
from .protocols import heard_files

#: feature settings whose difference changes what the model hears (the corpus name does not)
_COMPARED_SETTINGS = ('sample_rate', 'n_mfcc', 'order', 'mean_signal_length', 'frames', 'level', 'hop_length')


def evaluate_model(model: torch.nn.Module, features: FeatureSet, batch_size: int = 64, device=None,
                   known_classes_only: bool = False) -> dict:
    """`model` on every utterance of the labelled `features`, matched to its classes by name. The model is put in
    eval mode (and, with `device`, moved there) and stays so.

    Args:
        model: a trained model; its `label_names` (from its checkpoint) name its outputs. A model without them is
            taken to answer the features' classes in their order, and a note says so.
        features: a `FeatureSet` (`tim_zoo.data.extract_features`), extracted as the model's training features
            were (its checkpoint's `feature_settings`: `MFCCExtractor.from_settings`); a difference is noted. The
            steps training took after extraction and the settings record, GMM frame selection (`gmm_select`) and
            per-speaker normalisation (`normalize`), are taken here, each with a note.
        device: where the model runs (default: where its parameters are).
        known_classes_only: score only the utterances of classes the model has, leaving out (with a note) those of
            classes it lacks, e.g. to score the weights a fine-tuning run started from on a corpus that adds a
            label; by default such a class is an error.

    Returns:
        `n`, `war` and `uar` (fractions), `label_names` (the features' classes), `model_label_names`, `per_class`
        (`{class: {"n", "recall"}}`), `confusion` (`[features' classes, model's classes]` counts), `utterances`
        (`path`, `label`, `predicted`, `heard`, `voiced`: seconds of voiced speech, None where not known),
        `speakers` (where every speaker has one label, the subject-level result: `tim_zoo.evaluation.speaker_votes`;
        else None), `heard` (how many utterances the weights trained on, by their training record `trained_on`: None
        where the record cannot tell, e.g. weights without one) and `notes` (what makes the figure other than a
        held-out score of these classes, such as recordings without speech).

    Raises:
        DatasetError: a class of the features that the model does not have, or a model without class names whose
            number of outputs differs from the features' classes; per-speaker normalisation without a speaker
            for every utterance.
    """
    notes, untrained = classifier_notes(model)           # an untrained or cut classifier's score means that
    classes = list(features.label_names)
    outputs = int(getattr(model, 'num_classes', 0) or 0)
    names = list(getattr(model, 'label_names', None) or [])
    if not names:
        if outputs and outputs != len(classes):
            raise DatasetError(f'the model has {outputs} outputs and names no classes; the features have '
                               f'{len(classes)} classes ({", ".join(classes)})')
        names = classes
        notes.append(f'the model names no classes: its outputs are taken to be the features\' classes in their order '
                     f'({", ".join(classes)})')
    missing = [c for c in classes if c not in names]
    if missing and known_classes_only and len(missing) < len(classes):
        counts = np.bincount(np.asarray(features.y, dtype=np.int64), minlength=len(classes))
        left = sum(int(counts[classes.index(c)]) for c in missing)
        # per-speaker statistics over all of a speaker's recordings, as training took them; then the classes
        features = _as_trained(features, (getattr(model, 'pretrained_cfg', None) or {}).get('feature_settings') or {},
                               notes).of_classes([c for c in classes if c not in missing])
        notes.append(f'scored on the {len(features.y)} utterances of the classes the model has; left out the {left} '
                     f'of {", ".join(missing)}, which it lacks (known_classes_only)')
        classes, missing = list(features.label_names), []
    if missing:
        raise DatasetError(f'the features have classes the model does not: {", ".join(missing)} (the model\'s: '
                           f'{", ".join(names)}); score it on recordings of its classes (a manifest or folders '
                           f'naming them), or leave out the others: known_classes_only=True '
                           f'(--known-classes-only)')
    heard, heard_mask = _heard((getattr(model, 'pretrained_cfg', None) or {}).get('trained_on'), features,
                               [] if untrained else notes)     # the score of an untrained classifier means nothing
    extra = [n for n in names if n not in classes]
    if extra:
        notes.append(f'the model has {len(extra)} classes the features lack ({", ".join(extra)}): an utterance '
                     f'answered with one of them counts as wrong')
    cfg = getattr(model, 'pretrained_cfg', None) or {}
    notes += _feature_differences(cfg.get('feature_settings'), features.settings)
    if features.fit_note():
        notes.append(features.fit_note())
    known = len(features.voiced) == len(features.y)
    voiced = [float(v) for v in features.voiced] if known else [None] * len(features.y)
    speechless = features.speechless()
    if speechless:
        shown = [Path(features.paths[i]).name if features.paths else str(i) for i in speechless]
        notes.append(f'the speech detector finds no speech (under {MIN_SPEECH_SECONDS} s voiced) in '
                     f'{len(speechless)} of these {len(features.y)} recordings ({", ".join(shown[:5])}'
                     f'{" ..." if len(shown) > 5 else ""}; "voiced" per utterance): they are scored as the others, '
                     f'so the figure includes answers to sounds that are not speech')
    features = _as_trained(features, cfg.get('feature_settings') or {}, notes)
    if device is not None:
        model = model.to(resolve_device(device))
    proba = predict_proba(model, features.x, batch_size)
    pred = proba.argmax(axis=1)
    to_model = np.array([names.index(c) for c in classes])
    true = to_model[np.asarray(features.y, dtype=np.int64)]
    confusion = confusion_matrix(true, pred, len(names))[to_model]
    per_class = {c: dict(n=int(row.sum()), recall=float(row[to_model[i]] / row.sum()) if row.sum() else None)
                 for i, (c, row) in enumerate(zip(classes, confusion))}
    utterances = [dict(path=str(p), label=classes[int(y)], predicted=names[int(k)], heard=bool(h), voiced=v)
                  for p, y, k, h, v in zip(features.paths or [''] * len(pred), features.y, pred, heard_mask, voiced)]
    speakers = speaker_votes(features.speakers, [u['label'] for u in utterances], [u['predicted'] for u in utterances])
    return dict(n=int(len(pred)), war=war(true, pred), uar=uar(true, pred), label_names=classes,
                model_label_names=names, per_class=per_class, confusion=confusion.tolist(), utterances=utterances,
                speakers=speakers, heard=heard, notes=notes)


def _as_trained(features: FeatureSet, trained: dict, notes: List[str]) -> FeatureSet:
    """`features` after the steps training took after extraction, as the model's feature settings record them:
    GMM frame selection (`tim_zoo.train` selects before normalising), then per-speaker normalisation."""
    select = trained.get('gmm_select')
    if select and not features.settings.get('gmm_select'):
        fits, seed = trained.get('gmm_fits', 8), trained.get('gmm_seed')
        features = select_frames(features, select, fits, 0 if seed is None else seed)
        notes.append(f'each utterance shortened to {select} frames by GMM frame selection, as in training '
                     f'(gmm_fits={fits}; ' + (f'seed {seed})' if seed is not None else 'seed 0, where the training '
                                              'run used its own seed, which the weights do not record: a few frames '
                                              'may differ)'))
    mode = trained.get('normalize', 'none')
    if mode != 'none' and features.settings.get('normalize', 'none') == 'none':
        features = normalize_features(features, mode)
        notes.append(f'features normalised per speaker ({mode}), as in training: over these recordings\' speakers')
    return features


def _feature_differences(trained: Optional[dict], given: Optional[dict]) -> List[str]:
    """A note naming each feature setting in which `given` differs from the model's training features."""
    if not trained or not given:
        return [] if trained or not given else ['the model keeps no feature settings: whether these features are '
                                                'made as its training features were is not known']
    differ = [f'{k} {given[k]} (the model\'s {trained[k]})' for k in _COMPARED_SETTINGS
              if k in trained and k in given and trained[k] != given[k]]
    return [f'the features differ from the model\'s training features: {", ".join(differ)}'] if differ else []


def _heard(record: Optional[dict], features: FeatureSet, notes: List[str]):
    """`(count, mask)` of the utterances the weights trained on, by their record (count None where no training of
    it can tell); a note says what the count means, and names each training that cannot tell."""
    mask = np.zeros(len(features.y), dtype=bool)
    if not record:
        notes.append('the weights keep no record of what they trained on: whether these utterances are held out '
                     'from them is not known')
        return None, mask
    if len(features.paths) != len(features.y):
        notes.append('the features name no file per utterance: whether the weights trained on them is not known')
        return None, mask
    found, unknown = heard_files(record, features.paths, features.speakers or None, features.fingerprints or None)
    for training in found:
        mask |= training.mask
    if mask.any():
        notes.append(f'the weights trained on {int(mask.sum())} of these {len(mask)} utterances: on those the '
                     f'figure is not a held-out score (each utterance\'s "heard")')
    for training in unknown:
        notes.append(f'the weights trained on {training.get("corpus")} ({training.get("protocol")}, split '
                     f'{training.get("split")}), a list of utterances tim_zoo cannot draw again here: whether they '
                     f'heard these is not known' + (', so more of them may be heard' if found else ''))
    return (int(mask.sum()) if found else None), mask
