"""What a model's classifier is, as loading or building left it, until it changes: untrained (weights loaded for
another class count, a new classifier from `reset_classifier`, a model built without weights, or a checkpoint saved
so), or cut to some of the labels its weights trained on. `EmotionRecognizer` says so in every answer's notes while
the classifier has not changed since (a training step, weights loaded)."""
from typing import List, Optional, Tuple

import torch

#: the model attributes of the two marks: `(classifier tensors as marked, record)`
_FRESH, _LEFT_OUT = '_fresh_head', '_labels_left_out'


def _classifier_state(model) -> dict:
    """The classifier's tensors (`head.fc.*`), without the whole model's state dict."""
    try:
        fc = model.get_submodule('head.fc')
    except AttributeError:
        return {}
    return {f'head.fc.{k}': v for k, v in fc.state_dict().items()}


def _mark(model, attr: str, record: Optional[dict]) -> None:
    """Keep `record` with a copy of the classifier as it is now (none: a model without one answers nothing)."""
    state = _classifier_state(model)
    setattr(model, attr, ({k: v.detach().clone() for k, v in state.items()}, record) if state and record else None)


def _as_marked(model, attr: str) -> Optional[dict]:
    """The record of mark `attr` while the classifier has not changed since it was marked, else None."""
    model = getattr(model, '_orig_mod', model)      # torch.compile's wrapper, then DDP's
    model = getattr(model, 'module', model)
    tensors, record = getattr(model, attr, None) or (None, None)
    if not tensors:
        return None
    state = _classifier_state(model)
    unchanged = all(k in state and torch.equal(state[k].detach().cpu(), v.to(state[k].dtype).cpu())   # .half() too
                    for k, v in tensors.items())
    return record if unchanged else None


def remember_fresh_head(model, source: str, labels: Optional[List[str]] = None) -> None:
    """Mark the head as the weights of `source` left it: freshly initialised (`untrained_head`), or with the
    classifier rows of `labels` fresh beside trained ones (`untrained_rows`)."""
    mark_fresh_head(model, f'loading {source} kept only its body (another class count, input length or kind of head)',
                    source, labels)


def mark_fresh_head(model, why: str, source: str = '', labels: Optional[List[str]] = None) -> None:
    """Remember `model`'s head as it is now as untrained (`why`, in words: how it came to be so), until it changes
    (a training step, weights loaded): `untrained_head_reason`, and the notes of `EmotionRecognizer`. `labels`:
    only the classifier rows of these are fresh. The classifier (`head.fc`) is what is compared: training and loading
    change it with the rest. A model without one (no classes: features) answers nothing, and is not marked."""
    _mark(model, _FRESH, dict(why=why, source=source or '', labels=None if labels is None else list(labels)))


def _whole_head_untrained(model) -> Tuple[str, str]:
    """`(source, why)` of `mark_fresh_head` while the whole head is as marked, else ('', '')."""
    record = _as_marked(model, _FRESH)
    return (record['source'], record['why']) if record and record['labels'] is None else ('', '')


def untrained_head(model) -> str:
    """The weight file whose loading left `model` a freshly initialised head (another class count, input length or
    kind of head) that has not been trained since, or '' (a head loaded, or changed by training since)."""
    return _whole_head_untrained(model)[0]


def untrained_head_reason(model) -> str:
    """Why `model`'s whole head is untrained, in words, while it is (`mark_fresh_head`: weights loaded for another
    class count, `reset_classifier`, a model built without weights or saved so), else ''."""
    return _whole_head_untrained(model)[1]


def untrained_rows(model) -> Tuple[str, List[str]]:
    """`(weight file, labels)` where loading it gave the classifier fresh rows for `labels` the file did not know
    beside the trained rows of those it did (`load_weights(label_names=)`), not trained since; else ('', [])."""
    record = _as_marked(model, _FRESH)
    return (record['source'], list(record['labels'])) if record and record['source'] and record['labels'] \
        else ('', [])


def fresh_head_record(model) -> Optional[dict]:
    """What a checkpoint keeps of an untrained head (`extra["fresh_head"]`: why, source, labels), or None."""
    return _as_marked(model, _FRESH)


def mark_from_record(model, record: Optional[dict]) -> None:
    """Mark the head a checkpoint was saved with as untrained again (`fresh_head_record`)."""
    if record and record.get('why'):
        mark_fresh_head(model, record['why'], record.get('source') or '', record.get('labels'))


def mark_labels_left_out(model, source: str, trained: List[str], left_out: List[str]) -> None:
    """Remember that `model`'s classifier keeps the rows of some of the labels weights `source` trained on
    (`trained`) and leaves out those of `left_out`, until it changes: its answers put a recording of a label left
    out onto one of the others, and what was measured of the weights (their held-out accuracy) is not this model's
    (`labels_left_out`, the notes of `EmotionRecognizer`)."""
    _mark(model, _LEFT_OUT, dict(source=source, trained=list(trained), left_out=list(left_out)) if left_out else None)


def labels_left_out(model) -> Optional[dict]:
    """`dict(source, trained, left_out)` of `mark_labels_left_out` while the classifier is as marked, else None;
    also what a checkpoint keeps of it (`extra["labels_left_out"]`)."""
    return _as_marked(model, _LEFT_OUT)


def classifier_notes(model) -> Tuple[List[str], bool]:
    """`(notes, untrained)`: what an answer of `model` should say of its classifier while it is as loading or
    building left it: untrained as a whole (then `untrained`, and nothing else matters), rows untrained beside
    trained ones, labels left out of those its weights trained on. Empty once the classifier has changed."""
    why = untrained_head_reason(model)
    if why:
        return [f'the model\'s classifier is untrained: {why}, so these probabilities mean nothing until it is '
                f'trained'], True
    notes = []
    source, labels = untrained_rows(model)
    if source:
        notes.append(f'the classifier\'s rows of {", ".join(labels)} are untrained: {source} did not know '
                     f'{"that label" if len(labels) == 1 else "those labels"}, so their probabilities, and every '
                     f'answer beside them, mean nothing until the model is fine-tuned')
    record = labels_left_out(model)
    if record:
        left, trained = record['left_out'], record['trained']
        notes.append(f'the classifier answers {len(trained) - len(left)} of the {len(trained)} labels its weights '
                     f'({record["source"]}) trained on, leaving out {", ".join(left)}: a recording of '
                     f'{"that label" if len(left) == 1 else "those labels"} is answered with one of the others, and '
                     f'what was measured of the weights (their held-out accuracy) is not this classifier\'s')
    return notes, False
