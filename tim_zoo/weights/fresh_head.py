"""Whether a model's head is untrained: weights loaded for another class count, a new classifier
(`reset_classifier`), a model built without weights, or a checkpoint saved so. `EmotionRecognizer` says so in every
answer's notes while the head has not changed since."""
from typing import List, Optional, Tuple

import torch


def remember_fresh_head(model, source: str, labels: Optional[List[str]] = None) -> None:
    """Keep a copy of the head as the weights of `source` left it: freshly initialised (`untrained_head`), or with
    the classifier rows of `labels` fresh beside trained ones (`untrained_rows`)."""
    mark_fresh_head(model, f'loading {source} kept only its body (another class count, input length or kind of head)',
                    source, labels)


def mark_fresh_head(model, why: str, source: str = '', labels: Optional[List[str]] = None) -> None:
    """Remember `model`'s head as it is now as untrained (`why`, in words: how it came to be so), until it changes
    (a training step, weights loaded): `untrained_head_reason`, and the notes of `EmotionRecognizer`. `labels`:
    only the classifier rows of these are fresh. The classifier (`head.fc`) is what is compared: training and loading
    change it with the rest. A model without one (no classes: features) answers nothing, and is not marked."""
    state = _classifier_state(model)
    model._fresh_head = (source, {k: v.detach().clone() for k, v in state.items()}, labels, why) if state else None


def _classifier_state(model) -> dict:
    """The classifier's tensors (`head.fc.*`), without the whole model's state dict."""
    try:
        fc = model.get_submodule('head.fc')
    except AttributeError:
        return {}
    return {f'head.fc.{k}': v for k, v in fc.state_dict().items()}


def _head_as_marked(model) -> Tuple[str, Optional[List[str]], str]:
    """`(source, fresh labels, why)` of `mark_fresh_head` while the head has not changed since, else ('', None, '')."""
    model = getattr(model, '_orig_mod', model)      # torch.compile's wrapper, then DDP's
    model = getattr(model, 'module', model)
    source, fresh, labels, why = getattr(model, '_fresh_head', None) or (None, None, None, '')
    if not fresh:
        return '', None, ''
    state = _classifier_state(model)
    unchanged = all(k in state and torch.equal(state[k].detach().cpu(), v.to(state[k].dtype).cpu())   # .half() too
                    for k, v in fresh.items())
    return (source or '', labels, why) if unchanged else ('', None, '')


def _whole_head_untrained(model) -> Tuple[str, str]:
    """`(source, why)` of `mark_fresh_head` while the whole head is as marked, else ('', '')."""
    source, labels, why = _head_as_marked(model)
    return (source, why) if labels is None else ('', '')


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
    source, labels, _ = _head_as_marked(model)
    return (source, list(labels)) if source and labels else ('', [])


def fresh_head_record(model) -> Optional[dict]:
    """What a checkpoint keeps of an untrained head (`extra["fresh_head"]`: why, source, labels), or None."""
    source, labels, why = _head_as_marked(model)
    return dict(why=why, source=source, labels=labels) if why else None


def mark_from_record(model, record: Optional[dict]) -> None:
    """Mark the head a checkpoint was saved with as untrained again (`fresh_head_record`)."""
    if record and record.get('why'):
        mark_fresh_head(model, record['why'], record.get('source') or '', record.get('labels'))
