"""Convolutions over frame sequences `[B, C, T]`.

Channel groups carry independent sequences side by side, e.g. the two directions of the
bidirectional TIM encoder as `[B, 2F, T]`: one grouped convolution then does the work of one
convolution per sequence, and `share_groups=True` gives every group the same weights.
"""
import math
from typing import Optional, Tuple

import torch
import torch.nn.functional as F
from torch import nn

from ..exceptions import ConfigurationError
from .create import ActLayer, NormLayer, get_act_layer, get_norm_layer
from .dropout import SpatialDropout1d


def _check_groups(in_channels: int, out_channels: int, groups: int):
    if groups < 1 or in_channels % groups or out_channels % groups:
        raise ConfigurationError(f'in_channels ({in_channels}) and out_channels ({out_channels}) must be divisible by '
                         f'groups ({groups})')


def group_conv1d(x: torch.Tensor, weight: torch.Tensor, bias: Optional[torch.Tensor], groups: int, share_groups: bool,
                 padding: int, dilation: int) -> torch.Tensor:
    """`GroupConv1d`'s convolution of `[B, groups*C, T]` with its stored `weight`/`bias`. A leaf of `torch.fx` traces
    (`torch.fx.wrap`): the kernel is chosen here by the input's device, when the traced module runs."""
    if groups > 1 and x.is_cuda:
        # cuDNN's grouped kernels are several times slower here than plain convolutions
        if share_groups:            # groups are consecutive channel blocks: [B, G*C, T] is [B*G, C, T]
            out = F.conv1d(x.reshape(x.shape[0] * groups, -1, x.shape[-1]), weight, bias, padding=padding,
                           dilation=dilation)
            return out.reshape(x.shape[0], -1, out.shape[-1])
        n = weight.shape[0] // groups
        outs = []
        for i, xg in enumerate(x.chunk(groups, dim=1)):
            outs.append(F.conv1d(xg, weight[i * n:(i + 1) * n], None if bias is None else bias[i * n:(i + 1) * n],
                                 padding=padding, dilation=dilation))
        return torch.cat(outs, dim=1)
    if share_groups:
        weight = weight.repeat(groups, 1, 1)
        bias = None if bias is None else bias.repeat(groups)
    return F.conv1d(x, weight, bias, padding=padding, dilation=dilation, groups=groups)


torch.fx.wrap('group_conv1d')


def fold_batchnorm(weight: torch.Tensor, bias: Optional[torch.Tensor], running_mean: torch.Tensor,
                   running_var: torch.Tensor, bn_weight: Optional[torch.Tensor], bn_bias: Optional[torch.Tensor],
                   eps: float) -> Tuple[torch.Tensor, torch.Tensor]:
    """`(weight, bias)` of a convolution followed by an eval-mode BatchNorm, as one convolution. A leaf of `torch.fx`
    traces, so a traced model reads the norm's statistics when it runs (not a constant of the trace)."""
    scale = torch.rsqrt(running_var + eps)
    if bn_weight is not None:
        scale = scale * bn_weight
    folded_bias = -running_mean * scale if bias is None else (bias - running_mean) * scale
    if bn_bias is not None:
        folded_bias = folded_bias + bn_bias
    return weight * scale[:, None, None], folded_bias


torch.fx.wrap('fold_batchnorm')


class GroupConv1d(nn.Module):
    """`Conv1d` over `groups` independent channel groups, optionally with one set of weights for all:
    `[B, in_channels, T] -> [B, out_channels, T]`.

    `[B, in_channels, T] -> [B, out_channels, T]`; channel counts are totals over the groups, as in
    `nn.Conv1d`. Without `share_groups` this is `nn.Conv1d(..., groups=groups)` with the same
    parameter layout; with it, `weight` is `[out_channels/groups, in_channels/groups, k]` and
    every group is convolved with it.

    Args:
        in_channels, out_channels: totals over the groups.
        kernel_size, dilation: of the convolution.
        groups: independent channel groups.
        share_groups: all groups use the same weights and bias.
        causal: pad `(kernel_size - 1) * dilation` zeros on the left (Keras `padding='causal'`), so
            output frame `t` sees only input frames `<= t`; else `'same'` padding (odd kernels).
        bias: add a learned bias.
    """

    def __init__(
            self,
            in_channels: int,
            out_channels: int,
            kernel_size: int = 1,
            dilation: int = 1,
            groups: int = 1,
            share_groups: bool = False,
            causal: bool = False,
            bias: bool = True,
    ):
        super().__init__()
        _check_groups(in_channels, out_channels, groups)
        self.in_channels = in_channels
        self.out_channels = out_channels
        self.kernel_size = (kernel_size,)
        self.dilation = (dilation,)
        self.groups = groups
        self.share_groups = share_groups and groups > 1
        self.causal = causal
        reach = (kernel_size - 1) * dilation
        self.causal_padding = reach if causal else 0
        self.padding = 0 if causal else reach // 2
        stored_out = out_channels // groups if self.share_groups else out_channels
        self.weight = nn.Parameter(torch.empty(stored_out, in_channels // groups, kernel_size))
        self.bias = nn.Parameter(torch.empty(stored_out)) if bias else None
        self.reset_parameters()

    def reset_parameters(self):
        """`nn.Conv1d`'s initialisation."""
        nn.init.kaiming_uniform_(self.weight, a=math.sqrt(5))
        if self.bias is not None:
            fan_in = self.weight.shape[1] * self.weight.shape[2]
            bound = 1 / math.sqrt(fan_in) if fan_in > 0 else 0
            nn.init.uniform_(self.bias, -bound, bound)

    def group_parameters(self, group: int) -> Tuple[torch.Tensor, Optional[torch.Tensor]]:
        """`(weight [out/groups, in/groups, k], bias)` used by one group."""
        if self.share_groups:
            return self.weight, self.bias
        rows = slice(group * self.out_channels // self.groups, (group + 1) * self.out_channels // self.groups)
        return self.weight[rows], None if self.bias is None else self.bias[rows]

    def forward(self, x: torch.Tensor, weight: Optional[torch.Tensor] = None,
                bias: Optional[torch.Tensor] = None) -> torch.Tensor:
        """`weight`/`bias` (stored layout) replace the module's own, e.g. with a norm folded in."""
        if weight is None:
            weight, bias = self.weight, self.bias
        if self.causal_padding:
            x = F.pad(x, (self.causal_padding, 0))
        return group_conv1d(x, weight, bias, self.groups, self.share_groups, self.padding, self.dilation[0])

    def extra_repr(self) -> str:
        s = f'{self.in_channels}, {self.out_channels}, kernel_size={self.kernel_size[0]}'
        if self.dilation[0] != 1:
            s += f', dilation={self.dilation[0]}'
        if self.groups != 1:
            s += f', groups={self.groups}' + (', share_groups=True' if self.share_groups else '')
        if self.causal:
            s += ', causal=True'
        return s


class CausalConv1d(GroupConv1d):
    """`Conv1d` whose output frame `t` sees only input frames `<= t`: `[B, C_in, T] -> [B, C_out, T]`.

    Pads `(kernel_size - 1) * dilation` zeros on the left (Keras `padding='causal'`), so the
    output has as many frames as the input. `[B, C_in, T] -> [B, C_out, T]`. `groups` and
    `share_groups` as `GroupConv1d`.
    """

    def __init__(self, in_channels: int, out_channels: int, kernel_size: int = 2, dilation: int = 1,
                 bias: bool = True, groups: int = 1, share_groups: bool = False):
        super().__init__(in_channels, out_channels, kernel_size, dilation, groups, share_groups, causal=True, bias=bias)


class ConvNormAct1d(nn.Sequential):
    """`conv -> [norm] -> [act] -> [SpatialDropout1d]` on `[B, in_channels, T] -> [B, out_channels, T]`.

    The one conv-norm-act unit of the package: the 1x1 stems of the TIM models (`norm_layer`/`act_layer` None gives
    the plain stem), the Transformer models' 1x1 projections and the causal dilated units inside a
    `TemporalAwareBlock` (`causal=True`, `drop_rate`). `groups`/`share_groups` as `GroupConv1d`, for conv and norm
    alike. When the norm is a BatchNorm in eval mode it is an affine map per channel and is folded into the
    convolution's weights (one pass over the activations instead of two; same result).

    Args:
        in_channels, out_channels: totals over the groups (as `nn.Conv1d`).
        kernel_size, dilation: of the convolution.
        causal: left padding only (Keras `padding='causal'`); else 'same' padding.
        norm_layer: norm name or callable, or None for no norm.
        act_layer: activation name or class, or None for no activation.
        drop_rate: SpatialDropout1d probability after the activation.
        drop_mode: what the dropout drops, `"channel"` (whole channels) or `"frame"` (whole frames, per group).
        groups, share_groups: independent channel groups, optionally with one set of weights.
    """

    def __init__(
            self,
            in_channels: int,
            out_channels: int,
            kernel_size: int = 1,
            dilation: int = 1,
            causal: bool = False,
            norm_layer: Optional[NormLayer] = None,
            act_layer: Optional[ActLayer] = None,
            drop_rate: float = 0.0,
            groups: int = 1,
            share_groups: bool = False,
            drop_mode: str = 'channel',
    ):
        super().__init__()
        self.conv = GroupConv1d(in_channels, out_channels, kernel_size, dilation=dilation, groups=groups,
                                share_groups=share_groups, causal=causal)
        if norm_layer is not None:
            self.norm = get_norm_layer(norm_layer)(out_channels, groups=groups, share_groups=share_groups)
        if act_layer is not None:
            self.act = get_act_layer(act_layer)()
        if drop_rate > 0:
            self.drop = SpatialDropout1d(drop_rate, drop_mode, groups)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        # hasattr on modules is decided when TorchScript compiles: only the branches this unit has are compiled
        if hasattr(self, 'norm'):
            if hasattr(self.norm, 'running_var'):
                if not self.norm.training:
                    weight, bias = fold_batchnorm(self.conv.weight, self.conv.bias, self.norm.running_mean,
                                                  self.norm.running_var, self.norm.weight, self.norm.bias,
                                                  self.norm.eps)
                    x = self.conv(x, weight, bias)
                else:
                    x = self.norm(self.conv(x))
            else:
                x = self.norm(self.conv(x))
        else:
            x = self.conv(x)
        if hasattr(self, 'act'):
            x = self.act(x)
        if hasattr(self, 'drop'):
            x = self.drop(x)
        return x
