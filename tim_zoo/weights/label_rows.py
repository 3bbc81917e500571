"""A weight file's classifier rows matched to other labels by name (`load_weights(..., label_names=)`): fine-tuning
on a corpus whose labels are another order, a subset or an overlap of those the weights trained on."""
from typing import Dict, List, Optional, Sequence, Tuple

import torch

from ..exceptions import ConfigurationError

_FC = ('head.fc.weight', 'head.fc.bias')

class LabelRowsWarning(UserWarning):
    """What loading weights did to their classifier rows for the model's labels (reordered, some fresh, none kept)."""


#: what `rows_for_labels` did: nothing, the rows reordered, some kept and others fresh, or none kept
SAME, REORDERED, PARTLY, NONE = 'same', 'reordered', 'partly', 'none'


def checked_label_names(label_names: Sequence[str]) -> List[str]:
    """`label_names` as a list, refused when empty (a model without a classifier is `num_classes=0`) or when a name
    comes twice."""
    label_names = list(label_names)
    if not label_names:
        raise ConfigurationError('label_names is empty: name the model\'s outputs in order (a model without a '
                                 'classifier, for features, is num_classes=0)')
    if len(set(label_names)) != len(label_names):
        raise ConfigurationError(f'label_names {label_names} name a label twice')
    return label_names


def renames_outputs(file_labels: Optional[Sequence[str]], label_names: Sequence[str], file_classes: int) -> bool:
    """Whether `label_names`, given for weights whose classifier has `file_classes` rows trained on `file_labels`,
    name those rows in order (the same count, and no name in common: the same labels spelled otherwise, or a file
    that names none) rather than choose rows by name (`rows_for_labels`)."""
    return file_classes == len(label_names) and not set(file_labels or ()) & set(label_names)


def labels_asked_for(names: Optional[Sequence[str]], file_labels: Optional[Sequence[str]],
                     state_dict: Optional[Dict[str, torch.Tensor]]) -> Tuple[Optional[List[str]], bool]:
    """`(names, by_name)` of label names a caller gives for weights (`pretrained_cfg_overlay` `label_names`):
    `names` checked (`checked_label_names`; None where none were given), and whether they choose the classifier
    rows of `state_dict` (trained on `file_labels`) by name; else they rename its outputs in order (`renames_outputs`)
    or there are no weights."""
    if names is None:
        return None, False
    names = checked_label_names(names)
    if state_dict is None:
        return names, False
    weight = state_dict.get(_FC[0])
    return names, not renames_outputs(file_labels, names, int(weight.shape[0]) if weight is not None else 0)


def rows_for_labels(model, state_dict: Dict[str, torch.Tensor], file_labels: Optional[Sequence[str]],
                    label_names: Sequence[str], source: str) -> Tuple[Dict[str, torch.Tensor], str, str, List[str]]:
    """`(state_dict, outcome, said, fresh labels)`: `state_dict` with its classifier (`head.fc`, `[num_classes, D]`
    and `[num_classes]`) rebuilt for `label_names`: the row of each label the file names (`file_labels`, matched by
    exact name) is kept, in `label_names`' order; a label the file lacks gets the model's own freshly initialised
    row. `outcome` is `SAME`, `REORDERED`, `PARTLY` or `NONE`, `said` what was done in words ('' where nothing was
    to say), for the caller to warn of once it knows the rest of the head loaded. A classifier that does not fit by
    its other dimensions (another input length for a head that flattens time), or a file without a classifier, is
    left to `apply_state_dict`."""
    label_names, own = checked_label_names(label_names), model.state_dict()
    if _FC[0] not in state_dict or _FC[0] not in own or own[_FC[0]].shape[0] != len(label_names):
        return state_dict, SAME, '', []
    file_w = state_dict[_FC[0]]
    if not file_labels:
        said = (f'{source} does not name the labels of its classifier: its rows are taken as {label_names}, in that '
                f'order' if file_w.shape == own[_FC[0]].shape else '')
        return state_dict, SAME, said, []
    file_labels = list(file_labels)
    if (file_labels == label_names or len(set(file_labels)) != len(file_labels) or file_w.shape[0] != len(file_labels)
            or file_w.shape[1:] != own[_FC[0]].shape[1:]):
        return state_dict, SAME, '', []
    kept = [n for n in label_names if n in file_labels]
    fresh = [n for n in label_names if n not in file_labels]
    dropped = [n for n in file_labels if n not in label_names]
    rows = dict(state_dict)
    for key in _FC:
        if key in state_dict and key in own:
            theirs = state_dict[key]
            rows[key] = torch.stack([theirs[file_labels.index(n)] if n in file_labels else own[key][i].to(theirs)
                                     for i, n in enumerate(label_names)]).to(own[key].dtype)
    if not kept:
        outcome = NONE
        said = (f'{source}: its classifier was trained on {file_labels}, none of these labels {label_names}; loaded '
                f'the body and kept a freshly initialised classifier (fine-tune it)' + _close_names(fresh, file_labels))
    elif not fresh and not dropped:
        outcome = REORDERED
        said = (f'{source}: its classifier was trained on the same labels in another order ({file_labels}); its rows '
                f'were reordered to {label_names}')
    else:
        outcome = PARTLY
        said = (f'{source}: its classifier was trained on {file_labels}; kept the rows of {_names(kept)}, matched by '
                f'name' + (f', and started {_names(fresh)} fresh (fine-tune them)' if fresh else '')
                + (f'; left out {_names(dropped)}, which these labels lack' if dropped else '')
                + _close_names(fresh, dropped))
    return rows, outcome, said, fresh


def _close_names(fresh: List[str], known: List[str]) -> str:
    """A hint where a fresh label differs from one the file knows only in case, spacing or punctuation."""
    def key(name: str) -> str:
        return ''.join(c for c in name.casefold() if c.isalnum())
    pairs = [(n, k) for n in fresh for k in known if key(n) == key(k)]
    return ('; labels are matched exactly (case and punctuation count): did you mean ' + ', '.join(
        f'{k!r} for {n!r}' for n, k in pairs) + '?') if pairs else ''


def _names(names: List[str]) -> str:
    return ', '.join(names)
