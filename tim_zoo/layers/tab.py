"""Temporal-aware block (TAB), the unit of TIM-Net."""
import difflib
import inspect
import numbers

import torch
from torch import nn

from .._utils import renamed_arguments
from .._validation import check_block_input, check_choice
from ..exceptions import ConfigurationError, UnknownArgumentError
from .conv import ConvNormAct1d, GroupConv1d
from .create import ActLayer, NormLayer


class TemporalAwareBlock(nn.Module):
    """Temporal-aware block, `[B, in_chans, T] -> [B, filters, T]`: gated causal dilated convolutions with a residual
    (TIM-Net's `residual="mul"`, `drop_mode="channel"` by default; the seed models use the research code's `"add"`,
    `"frame"`).

    `[B, in_chans, T] -> [B, filters, T]`:

        y = drop(act(norm(causal_conv_d(x))))        # twice ("standard")
        res = x, or Conv1d(in -> out, k=1)(x) when the widths differ
        out = res * sigmoid(y)     residual="mul" (TIM-Net)
        out = res + sigmoid(y)     residual="add"

    `conv_style="bottleneck"` replaces the two causal convolutions by
    `1x1 (in -> b) -> causal k dilated (b -> b) -> 1x1 (b -> out)`, each followed by
    norm, act and spatial dropout.

    The arguments in `TAB_ARGS` are declared here only: stacks, encoders and models pass them through unchanged.

    Args:
        in_chans: input channels `C`.
        filters: output channels `F`.
        dilation: dilation of the causal convolutions.
        kernel_size: causal convolution kernel size.
        drop_rate: SpatialDropout1d probability after each convolution.
        drop_mode: what that dropout drops: `"channel"` (whole channels, Keras `SpatialDropout1D`, TIM-Net) or
            `"frame"` (whole frames, the research group's `SpatialDropout`).
        residual: `"mul"` or `"add"`.
        conv_style: `"standard"` or `"bottleneck"`.
        bottleneck_chans: `b` for the bottleneck style (per direction in a bidirectional encoder).
        act_layer: activation name or class.
        norm_layer: norm name (`"batchnorm"`, `"batchnorm_keras"`, `"layernorm"`) or callable.
        groups: independent channel groups run side by side (all channel counts, `bottleneck_chans`
            included, are totals over the groups), e.g. 2 for both directions of a bidirectional stack.
        share_groups: the groups share one set of weights (`GroupConv1d`).
    """

    @renamed_arguments(in_channels='in_chans', out_channels='filters', dropout='drop_rate',
                       bottleneck_channels='bottleneck_chans')
    def __init__(
            self,
            in_chans: int,
            filters: int,
            dilation: int,
            kernel_size: int = 2,
            drop_rate: float = 0.1,
            residual: str = 'mul',
            conv_style: str = 'standard',
            bottleneck_chans: int = 13,
            act_layer: ActLayer = 'relu',
            norm_layer: NormLayer = 'batchnorm',
            groups: int = 1,
            share_groups: bool = False,
            drop_mode: str = 'channel',
    ):
        super().__init__()
        check_choice('residual', residual, ('mul', 'add'))
        check_choice('conv_style', conv_style, ('standard', 'bottleneck'))
        for name, value in dict(in_chans=in_chans, filters=filters, dilation=dilation, kernel_size=kernel_size).items():
            if not isinstance(value, numbers.Integral) or value < 1:
                raise ConfigurationError(f'TemporalAwareBlock: {name} must be a whole number of at least 1, got '
                                         f'{value!r}')
        # a stack over two direction groups passes the width over both: twice the default changes nothing either
        default = TAB_DEFAULTS['bottleneck_chans']
        if conv_style != 'bottleneck' and bottleneck_chans not in (default, default * groups):
            raise ConfigurationError(f'bottleneck_chans sets the width of conv_style="bottleneck", and conv_style='
                                     f'{conv_style!r} has no bottleneck: pass conv_style="bottleneck" too, or leave '
                                     f'bottleneck_chans at {default}')
        self.residual = residual
        self.dilation = dilation
        self.in_chans = in_chans
        self.check_input = True               # a stack checks its input once and turns this off for its blocks

        def unit(c_in, c_out, k, d):
            return ConvNormAct1d(c_in, c_out, k, dilation=d, causal=k > 1, norm_layer=norm_layer, act_layer=act_layer,
                                 drop_rate=drop_rate, groups=groups, share_groups=share_groups, drop_mode=drop_mode)

        if conv_style == 'standard':
            self.convs = nn.Sequential(
                unit(in_chans, filters, kernel_size, dilation),
                unit(filters, filters, kernel_size, dilation),
            )
        else:
            b = bottleneck_chans
            self.convs = nn.Sequential(
                unit(in_chans, b, 1, 1),
                unit(b, b, kernel_size, dilation),
                unit(b, filters, 1, 1),
            )
        self.shortcut = (GroupConv1d(in_chans, filters, 1, groups=groups, share_groups=share_groups)
                         if in_chans != filters else nn.Identity())

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.check_input:
            if not torch.jit.is_scripting():
                check_block_input(x, 'TemporalAwareBlock', 'B C T', C=self.in_chans)
        gate = torch.sigmoid(self.convs(x))
        res = self.shortcut(x)
        if self.residual == 'mul':
            return res * gate
        return res + gate

    def extra_repr(self) -> str:
        return f'dilation={self.dilation}, residual={self.residual!r}'


#: the arguments of `TemporalAwareBlock` that stacks, encoders and models pass through unchanged
TAB_ARGS = ('kernel_size', 'drop_rate', 'drop_mode', 'residual', 'conv_style', 'bottleneck_chans', 'act_layer',
            'norm_layer')

#: their defaults, as `TemporalAwareBlock` declares them
TAB_DEFAULTS = {name: p.default for name, p in inspect.signature(TemporalAwareBlock.__init__).parameters.items()
                if name in TAB_ARGS}


def check_tab_kwargs(owner: str, tab_kwargs: dict, own_args=(), extra=()) -> None:
    """Refuse keyword arguments `owner` would pass on to its TABs that a TAB does not take (or that the owner sets
    itself, such as `dilation`), naming close names among `TAB_ARGS`, `extra` and the owner's `own_args`."""
    wrong = sorted(set(tab_kwargs) - set(TAB_ARGS) - set(extra))
    if wrong:
        names = list(TAB_ARGS) + list(extra) + list(own_args)
        hints = [f'{w} (did you mean {", ".join(c)}?)' if (c := difflib.get_close_matches(w, names, n=2)) else w
                 for w in wrong]
        raise UnknownArgumentError(f'{owner} got arguments it does not take: {"; ".join(hints)}. It takes '
                                   f'{", ".join(own_args)} and passes {", ".join(TAB_ARGS)} to its TABs')
