"""Convolutions over frame sequences ``[B, C, T]``."""
from typing import Optional

import torch
import torch.nn.functional as F
from torch import nn

from .create import ActLayer, NormLayer, get_act_layer, get_norm_layer


class CausalConv1d(nn.Conv1d):
    """``Conv1d`` whose output frame ``t`` sees only input frames ``<= t``.

    Pads ``(kernel_size - 1) * dilation`` zeros on the left (Keras ``padding='causal'``), so the
    output has as many frames as the input. ``[B, C_in, T] -> [B, C_out, T]``.
    """

    def __init__(self, in_channels: int, out_channels: int, kernel_size: int = 2, dilation: int = 1, bias: bool = True):
        super().__init__(in_channels, out_channels, kernel_size, dilation=dilation, padding=0, bias=bias)
        self.causal_padding = (kernel_size - 1) * dilation

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.causal_padding:
            x = F.pad(x, (self.causal_padding, 0))
        return super().forward(x)


class ConvNormAct1d(nn.Sequential):
    """``Conv1d(k) -> [norm] -> [act]`` on ``[B, C_in, T] -> [B, C_out, T]`` ('same' padding).

    Used as the 1x1 stem of the TIM models (``norm_layer``/``act_layer`` None gives the plain
    stem) and for the Transformer models' 1x1 projections.
    """

    def __init__(
            self,
            in_channels: int,
            out_channels: int,
            kernel_size: int = 1,
            norm_layer: Optional[NormLayer] = None,
            act_layer: Optional[ActLayer] = None,
    ):
        super().__init__()
        self.conv = nn.Conv1d(in_channels, out_channels, kernel_size, padding=kernel_size // 2)
        if norm_layer is not None:
            self.norm = get_norm_layer(norm_layer)(out_channels)
        if act_layer is not None:
            self.act = get_act_layer(act_layer)()
