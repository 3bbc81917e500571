"""Resolve norm and activation layers given by name or by class.

Models take names (``"batchnorm"``, ``"relu"``) so that their constructor arguments stay plain data
that a checkpoint can record; blocks also accept any callable ``f(num_channels) -> nn.Module``.
"""
from functools import partial
from typing import Callable, Type, Union

import torch
from torch import nn

from .._validation import check_choice


class ChannelLayerNorm1d(nn.LayerNorm):
    """LayerNorm over the channel dimension of a ``[B, C, T]`` tensor."""

    def __init__(self, num_channels: int, eps: float = 1e-5):
        super().__init__(num_channels, eps=eps)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return super().forward(x.transpose(1, 2)).transpose(1, 2)


# Keras BatchNormalization defaults (epsilon 1e-3, momentum 0.99) in PyTorch terms.
KerasBatchNorm1d = partial(nn.BatchNorm1d, eps=1e-3, momentum=0.01)

_NORM_LAYERS = {
    'batchnorm': nn.BatchNorm1d,
    'batchnorm_keras': KerasBatchNorm1d,
    'layernorm': ChannelLayerNorm1d,
}

_ACT_LAYERS = {
    'relu': nn.ReLU,
    'gelu': nn.GELU,
    'silu': nn.SiLU,
    'elu': nn.ELU,
    'tanh': nn.Tanh,
}

NormLayer = Union[str, Callable[[int], nn.Module]]
ActLayer = Union[str, Type[nn.Module], Callable[[], nn.Module]]


def get_norm_layer(norm_layer: NormLayer) -> Callable[[int], nn.Module]:
    """Return a callable ``f(num_channels)`` building a norm layer for ``[B, C, T]`` tensors.

    Names: ``"batchnorm"`` (PyTorch defaults), ``"batchnorm_keras"`` (eps 1e-3, momentum 0.01, as
    Keras), ``"layernorm"`` (LayerNorm over channels).
    """
    if isinstance(norm_layer, str):
        check_choice('norm_layer', norm_layer, _NORM_LAYERS)
        return _NORM_LAYERS[norm_layer]
    return norm_layer


def get_act_layer(act_layer: ActLayer) -> Callable[[], nn.Module]:
    """Return a callable building an activation module; names: relu, gelu, silu, elu, tanh."""
    if isinstance(act_layer, str):
        check_choice('act_layer', act_layer, _ACT_LAYERS)
        return _ACT_LAYERS[act_layer]
    return act_layer
