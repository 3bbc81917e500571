"""Batches of variable-length feature sequences: padding, lengths, a `DataLoader` collate function."""
from typing import Sequence, Tuple

import numpy as np
import torch

from ..exceptions import InputShapeError


def pad_sequences(sequences: Sequence, pad_value: float = 0.0,
                  dtype: torch.dtype = torch.float32) -> Tuple[torch.Tensor, torch.Tensor]:
    """Features `[C, T_i]` (numpy arrays or tensors) -> `(x [B, C, max T_i] of dtype, lengths [B])`: each sequence
    at the start of its row, the rest `pad_value`. `lengths` goes to the masked poolings (`MaskedStatsPool`,
    `AttentiveStatsPool`, `GMMClusteringHead` via `lengths_to_mask`) so that padding changes nothing."""
    if not len(sequences):
        raise InputShapeError('pad_sequences needs at least one sequence')
    tensors = [torch.as_tensor(np.asarray(s) if not isinstance(s, torch.Tensor) else s) for s in sequences]
    bad = [i for i, t in enumerate(tensors) if t.ndim != 2 or t.shape[0] != tensors[0].shape[0] or t.shape[1] == 0]
    if bad:
        raise InputShapeError(f'pad_sequences needs features [C, T] with the same C and T >= 1; sequence {bad[0]} has '
                              f'shape {list(tensors[bad[0]].shape)}, the first {list(tensors[0].shape)}')
    lengths = torch.tensor([t.shape[1] for t in tensors])
    x = torch.full((len(tensors), tensors[0].shape[0], int(lengths.max())), pad_value, dtype=dtype)
    for row, t in zip(x, tensors):
        row[:, :t.shape[1]] = t
    return x, lengths


def pad_collate(batch: Sequence):
    """`collate_fn` for a `DataLoader` over variable-length items: items `features [C, T]` give `(x, lengths)`,
    items `(features, label)` give `(x, lengths, labels)` (labels as `torch.utils.data.default_collate` makes
    them), with `x` and `lengths` from `pad_sequences`."""
    if isinstance(batch[0], (tuple, list)):
        features = [item[0] for item in batch]
        labels = torch.utils.data.default_collate([item[1] for item in batch])
        return (*pad_sequences(features), labels)
    return pad_sequences(batch)
