"""Transformer encoder layers whose outputs can all be kept."""
from typing import List

import torch
from torch import nn

from .._utils import renamed_arguments
from .._validation import check_block_input
from ._checkpoint import checkpoint


class TransformerEncoderStack(nn.Module):
    """`num_layers` `nn.TransformerEncoderLayer` (post-norm, batch first): `[B, T, d_model] -> [B, T, d_model]`;
    independent layers, or with `share_layers=True` one layer applied `num_layers` times.

    The research `MLTransformer_TIM` appends one layer object `n_layer` times, so its layers share their weights
    (`share_layers=True`); the state dict then holds `layers.0` only.

    `[B, T, d_model] -> [B, T, d_model]` (the last layer's output), or, with `keep_all=True`,
    every layer's output stacked as `[B, T, d_model, num_layers]`. `forward_layers` returns every layer's output as a
    list. `grad_checkpointing = True` recomputes each layer in the backward pass (less memory, same gradients).
    """

    __constants__ = ['share_layers']         # TorchScript compiles only the branch of the layers this stack has

    @renamed_arguments(dropout='drop_rate')
    def __init__(
            self,
            d_model: int = 256,
            num_heads: int = 8,
            d_ff: int = 1024,
            num_layers: int = 3,
            drop_rate: float = 0.1,
            act_layer: str = 'relu',
            keep_all: bool = False,
            share_layers: bool = False,
    ):
        super().__init__()
        self.keep_all = keep_all
        self.num_layers = num_layers
        self.share_layers = share_layers
        self.d_model = d_model
        self.layers = nn.ModuleList([
            nn.TransformerEncoderLayer(
                d_model, num_heads, d_ff, dropout=drop_rate, activation=act_layer, batch_first=True, norm_first=False)
            for _ in range(1 if share_layers else num_layers)])
        # one identity per layer whose output is that layer's output as frame features [B, d_model, T]: what forward
        # hooks and fx feature extraction read (a shared layer's own output would be every level at once)
        self.outputs = nn.ModuleList([nn.Identity() for _ in range(num_layers)])
        self.grad_checkpointing = False

    def truncate(self, num_layers: int) -> None:
        """Keep the first `num_layers` layers (a shared layer is kept while one application remains)."""
        self.layers = self.layers[:1 if self.share_layers and num_layers else num_layers]
        self.outputs = self.outputs[:num_layers]
        self.num_layers = num_layers

    def forward_layers(self, x: torch.Tensor) -> List[torch.Tensor]:
        """`[B, T, d_model]` -> every layer's output, each `[B, T, d_model]`."""
        if not torch.jit.is_scripting():
            check_block_input(x, 'TransformerEncoderStack', 'B T d', d=self.d_model)
        ran = []
        if self.share_layers:
            for _ in range(self.num_layers):
                layer = self.layers[0]
                if not torch.jit.is_scripting() and self.grad_checkpointing and torch.is_grad_enabled():
                    x = checkpoint(layer, x)
                else:
                    x = layer(x)
                ran.append(x)
        else:
            for layer in self.layers:              # (TorchScript indexes module lists only by iterating them)
                if not torch.jit.is_scripting() and self.grad_checkpointing and torch.is_grad_enabled():
                    x = checkpoint(layer, x)
                else:
                    x = layer(x)
                ran.append(x)
        outputs = []
        for j, output in enumerate(self.outputs):
            outputs.append(output(ran[j].transpose(1, 2)).transpose(1, 2))
        return outputs

    def stack(self, outputs: List[torch.Tensor]) -> torch.Tensor:
        """The layer outputs -> the module's output (`keep_all`: `[B, T, d_model, num_layers]`, else the last)."""
        if self.keep_all:
            return torch.stack(outputs, dim=-1)
        return outputs[-1]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.stack(self.forward_layers(x))
