"""Temporal-aware block (TAB), the unit of TIM-Net."""
import torch
from torch import nn

from .._validation import check_choice
from .conv import GroupConv1d
from .create import ActLayer, NormLayer, get_act_layer, get_norm_layer
from .dropout import SpatialDropout1d


class ConvNormActDrop(nn.Sequential):
    """`conv -> norm -> act -> SpatialDropout1d`, the repeated unit inside a TAB.

    When the norm is a BatchNorm in eval mode it is an affine map per channel, and it is folded into
    the convolution's weights (one pass over the activations instead of two).
    """

    def __init__(self, conv: GroupConv1d, norm: nn.Module, act: nn.Module, dropout: float):
        super().__init__()
        self.conv = conv
        self.norm = norm
        self.act = act
        self.drop = SpatialDropout1d(dropout)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        bn = self.norm
        if bn.training or not isinstance(bn, nn.modules.batchnorm._BatchNorm) or bn.running_mean is None:
            return super().forward(x)
        scale = torch.rsqrt(bn.running_var + bn.eps)
        if bn.weight is not None:
            scale = scale * bn.weight
        weight = self.conv.weight * scale[:, None, None]
        bias = -bn.running_mean * scale if self.conv.bias is None else (self.conv.bias - bn.running_mean) * scale
        if bn.bias is not None:
            bias = bias + bn.bias
        return self.drop(self.act(self.conv(x, weight, bias)))


class TemporalAwareBlock(nn.Module):
    """Temporal-aware block: gated causal dilated convolutions with a residual.

    `[B, in_channels, T] -> [B, out_channels, T]`:

        y = drop(act(norm(causal_conv_d(x))))        # twice ("standard")
        res = x, or Conv1d(in -> out, k=1)(x) when the widths differ
        out = res * sigmoid(y)     residual="mul" (TIM-Net)
        out = res + sigmoid(y)     residual="add"

    `conv_style="bottleneck"` replaces the two causal convolutions by
    `1x1 (in -> b) -> causal k dilated (b -> b) -> 1x1 (b -> out)`, each followed by
    norm, act and spatial dropout.

    Args:
        in_channels: input channels `C`.
        out_channels: output channels `F`.
        dilation: dilation of the causal convolutions.
        kernel_size: causal convolution kernel size.
        dropout: SpatialDropout1d probability after each convolution.
        residual: `"mul"` or `"add"`.
        conv_style: `"standard"` or `"bottleneck"`.
        bottleneck_channels: `b` for the bottleneck style.
        act_layer: activation name or class.
        norm_layer: norm name (`"batchnorm"`, `"batchnorm_keras"`, `"layernorm"`) or callable.
        groups: independent channel groups run side by side (all channel counts, `bottleneck_channels`
            included, are totals over the groups), e.g. 2 for both directions of a bidirectional stack.
        share_groups: the groups share one set of weights (`GroupConv1d`).
    """

    def __init__(
            self,
            in_channels: int,
            out_channels: int,
            dilation: int,
            kernel_size: int = 2,
            dropout: float = 0.1,
            residual: str = 'mul',
            conv_style: str = 'standard',
            bottleneck_channels: int = 13,
            act_layer: ActLayer = 'relu',
            norm_layer: NormLayer = 'batchnorm',
            groups: int = 1,
            share_groups: bool = False,
    ):
        super().__init__()
        check_choice('residual', residual, ('mul', 'add'))
        check_choice('conv_style', conv_style, ('standard', 'bottleneck'))
        self.residual = residual
        self.dilation = dilation
        norm = get_norm_layer(norm_layer)
        act = get_act_layer(act_layer)

        grouping = dict(groups=groups, share_groups=share_groups)

        def unit(c_in, c_out, k, d):
            conv = GroupConv1d(c_in, c_out, k, dilation=d, causal=k > 1, **grouping)
            return ConvNormActDrop(conv, norm(c_out, **grouping), act(), dropout)

        if conv_style == 'standard':
            self.convs = nn.Sequential(
                unit(in_channels, out_channels, kernel_size, dilation),
                unit(out_channels, out_channels, kernel_size, dilation),
            )
        else:
            b = bottleneck_channels
            self.convs = nn.Sequential(
                unit(in_channels, b, 1, 1),
                unit(b, b, kernel_size, dilation),
                unit(b, out_channels, 1, 1),
            )
        self.shortcut = (GroupConv1d(in_channels, out_channels, 1, **grouping) if in_channels != out_channels
                         else nn.Identity())

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        gate = torch.sigmoid(self.convs(x))
        res = self.shortcut(x)
        if self.residual == 'mul':
            return res * gate
        return res + gate

    def extra_repr(self) -> str:
        return f'dilation={self.dilation}, residual={self.residual!r}'
