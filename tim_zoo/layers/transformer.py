"""Transformer encoder layers whose outputs can all be kept."""
import torch
from torch import nn


class TransformerEncoderStack(nn.Module):
    """`num_layers` independent `nn.TransformerEncoderLayer` (post-norm, batch first).

    `[B, T, d_model] -> [B, T, d_model]` (the last layer's output), or, with `keep_all=True`,
    every layer's output stacked as `[B, T, d_model, num_layers]`.
    """

    def __init__(
            self,
            d_model: int = 256,
            num_heads: int = 8,
            d_ff: int = 1024,
            num_layers: int = 3,
            dropout: float = 0.1,
            act_layer: str = 'relu',
            keep_all: bool = False,
    ):
        super().__init__()
        self.keep_all = keep_all
        self.num_layers = num_layers
        self.layers = nn.ModuleList([
            nn.TransformerEncoderLayer(
                d_model, num_heads, d_ff, dropout=dropout, activation=act_layer, batch_first=True, norm_first=False)
            for _ in range(num_layers)])

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        outputs = []
        for layer in self.layers:
            x = layer(x)
            outputs.append(x)
        if self.keep_all:
            return torch.stack(outputs, dim=-1)
        return x
