"""Aggregate the outputs of the TAB levels: delta stacking and the learned weight layer."""
from typing import List, Union

import torch
from torch import nn

from .._validation import check_choice, traced_check
from ..exceptions import InputShapeError


class DeltaAggregation(nn.Module):
    """Stack level outputs `h_1 .. h_n` (a list of `[B, F, T]`, or one tensor `[B, F, T, n]` with the levels on
    its last axis, the layout the fusion blocks take) into `[B, F, T, m]`.

    Modes:
        `"delta"`: `[h_2-h_1, ..., h_n-h_(n-1), h_n]` (m = n), the seed default;
        `"all"`: `[h_1, ..., h_n]` (m = n);
        `"delta+all"`: the n-1 differences followed by all n levels (m = 2n - 1).
    """

    def __init__(self, mode: str = 'delta'):
        super().__init__()
        check_choice('mode', mode, ('delta', 'all', 'delta+all'))
        self.mode = mode

    def num_outputs(self, num_levels: int) -> int:
        """How many items `m` this aggregation makes from `num_levels` levels."""
        return 2 * num_levels - 1 if self.mode == 'delta+all' else num_levels

    def items_matrix(self, num_levels: int) -> torch.Tensor:
        """`A` `[m, n]` with `item_i = sum_j A[i, j] h_j`: every mode is linear in the levels."""
        eye = torch.eye(num_levels)
        deltas = eye[1:] - eye[:-1]
        if self.mode == 'delta':
            return torch.cat([deltas, eye[-1:]])
        if self.mode == 'all':
            return eye
        return torch.cat([deltas, eye])

    def level_weights(self, item_weights: torch.Tensor) -> torch.Tensor:
        """Per-level weights `c` `[n]` with `sum_i w_i item_i = sum_j c_j h_j`, for item weights `w` `[m]`.

        Lets a weighted sum of the items (`WeightLayer` after this block) be computed from the
        levels directly, without stacking them.
        """
        if self.mode == 'all':
            return item_weights
        m = item_weights.shape[0]
        num_levels = (m + 1) // 2 if self.mode == 'delta+all' else m
        return item_weights @ self.items_matrix(num_levels).to(item_weights)

    def forward(self, levels: Union[List[torch.Tensor], torch.Tensor]) -> torch.Tensor:
        if isinstance(levels, torch.Tensor):
            if levels.ndim != 4:
                raise InputShapeError(f'DeltaAggregation takes a list of levels [B, F, T] or one tensor [B, F, T, n] '
                                      f'(levels on the last axis), got shape {list(levels.shape)}')
            levels = list(levels.unbind(-1))
        elif not torch.jit.is_scripting() and not torch.jit.is_tracing():
            _check_same_shapes(levels)
        if self.mode == 'all':
            return torch.stack(levels, dim=-1)
        deltas = [levels[j + 1] - levels[j] for j in range(len(levels) - 1)]
        items = deltas + ([levels[-1]] if self.mode == 'delta' else list(levels))
        return torch.stack(items, dim=-1)

    def extra_repr(self) -> str:
        return f'mode={self.mode!r}'


@traced_check
def _check_same_shapes(levels: List[torch.Tensor]) -> None:
    """Every level one shape."""
    if len({tuple(level.shape) for level in levels}) > 1:
        raise InputShapeError(f'DeltaAggregation: every level must have one shape [B, F, T], got '
                              f'{[list(level.shape) for level in levels]}')


@traced_check
def _check_items(x: torch.Tensor, num_inputs: int) -> None:
    if x.shape[-1] != num_inputs:
        raise InputShapeError(f'WeightLayer expects {num_inputs} items in the last dimension, got shape {tuple(x.shape)}')


class WeightLayer(nn.Module):
    """Learned weighted sum over the last dimension: `[..., n] -> [...]`, `sum_j w_j * s_j`.

    No softmax, as in TIM-Net's dynamic fusion. The weights start uniform in `[-init_range, init_range]`
    (Keras `'uniform'` initializer: 0.05).
    """

    def __init__(self, num_inputs: int, init_range: float = 0.05):
        super().__init__()
        self.num_inputs = num_inputs
        self.weight = nn.Parameter(torch.empty(num_inputs).uniform_(-init_range, init_range))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not torch.jit.is_scripting():
            _check_items(x, self.num_inputs)
        return torch.matmul(x, self.weight)

    def extra_repr(self) -> str:
        return f'num_inputs={self.num_inputs}'
