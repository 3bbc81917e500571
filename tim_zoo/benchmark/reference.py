"""The straightforward computation of the bidirectional TAB encoder, kept as a yardstick.

Two separate passes (forward, then the reversed input), one layer at a time, each causal
convolution padded on both sides and sliced back to the input length, as the research scripts
do it. It reads the parameters of a `BiTemporalEncoder`, so the benchmark
times it against the same weights and the tests check the grouped implementation against it.
Dropout is applied as the modules do; BatchNorm uses batch statistics in training (without
updating the running ones) and running statistics in eval.
"""
from typing import List

import torch
import torch.nn.functional as F
from torch import nn

from ..exceptions import ConfigurationError
from ..layers import BiTemporalEncoder, ChannelLayerNorm1d, GroupBatchNorm1d, GroupConv1d, SpatialDropout1d


def _conv(x: torch.Tensor, conv: GroupConv1d, group: int) -> torch.Tensor:
    weight, bias = conv.group_parameters(group)
    k, d = conv.kernel_size[0], conv.dilation[0]
    if conv.causal:
        return F.conv1d(x, weight, bias, padding=(k - 1) * d, dilation=d)[..., :x.shape[-1]]
    return F.conv1d(x, weight, bias, padding=conv.padding, dilation=d)


def _norm(x: torch.Tensor, norm: nn.Module, group: int) -> torch.Tensor:
    if isinstance(norm, GroupBatchNorm1d):
        mean, var, weight, bias = norm.group_parameters(group)
        if norm.training:
            return F.batch_norm(x, None, None, weight, bias, True, 0.0, norm.eps)
        return F.batch_norm(x, mean, var, weight, bias, False, 0.0, norm.eps)
    if isinstance(norm, ChannelLayerNorm1d):
        n = x.shape[1]
        rows = slice(0, n) if norm.share_groups else slice(group * n, (group + 1) * n)
        y = F.layer_norm(x.transpose(1, 2), (n,), norm.weight[rows], norm.bias[rows], norm.eps)
        return y.transpose(1, 2)
    raise ConfigurationError(f'the reference encoder knows BatchNorm and LayerNorm, not {type(norm).__name__}')


def _stem(x: torch.Tensor, stem: nn.Module, group: int) -> torch.Tensor:
    x = _conv(x, stem.conv, group)
    if hasattr(stem, 'norm'):
        x = _norm(x, stem.norm, group)
    if hasattr(stem, 'act'):
        x = stem.act(x)
    return x


def _direction(x: torch.Tensor, encoder: BiTemporalEncoder, group: int) -> List[torch.Tensor]:
    x = _stem(x, encoder.stem, group)
    levels = []
    for block in encoder.stack.blocks:
        y = x
        for unit in block.convs:
            y = unit.act(_norm(_conv(y, unit.conv, group), unit.norm, group))
            if 'drop' in unit._modules:                     # one direction: its own mask, as a separate pass draws
                y = SpatialDropout1d(unit.drop.p, unit.drop.mode).train(unit.drop.training)(y)
        res = x if isinstance(block.shortcut, nn.Identity) else _conv(x, block.shortcut, group)
        gate = torch.sigmoid(y)
        x = res * gate if block.residual == 'mul' else res + gate
        levels.append(x)
    return levels


def reference_bi_temporal_encoder(encoder: BiTemporalEncoder, x: torch.Tensor) -> List[torch.Tensor]:
    """What `encoder(x)` computes, done the straightforward way: `[B, C, T]` -> `depth` x `[B, F, T]`."""
    fwd = _direction(x, encoder, 0)
    bwd = _direction(x.flip(-1), encoder, 1)
    merged = []
    for j, (f, b) in enumerate(zip(fwd, bwd)):
        if encoder.align_backward:
            b = b.flip(-1)
        merged.append(f + b if encoder.fuse is None else encoder.fuse[j](torch.cat([f, b], dim=1)))
    return merged


class ReferenceBiTemporalEncoder(nn.Module):
    """Wraps a `BiTemporalEncoder` (sharing its parameters) and runs the reference computation."""

    def __init__(self, encoder: BiTemporalEncoder):
        super().__init__()
        self.encoder = encoder

    def forward(self, x: torch.Tensor) -> List[torch.Tensor]:
        return reference_bi_temporal_encoder(self.encoder, x)
