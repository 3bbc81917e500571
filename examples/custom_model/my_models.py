"""The project's model, from tim_zoo's blocks: a bidirectional TAB encoder whose backward direction is
aligned in time, the level differences, and a Gaussian-mixture pooling head initialised from the training
data.

`emotion_net` is the builder the engine calls (with the class count and channels of the data) and the
function `load_checkpoint` / `EmotionRecognizer.from_checkpoint` rebuild the model with.
"""
from torch import nn

from tim_zoo.layers import BiTemporalEncoder, DeltaAggregation, GMMClusteringHead, WeightLayer


class EmotionNet(nn.Module):
    """`[B, in_chans, T]` MFCC frames -> `[B, num_classes]` logits."""

    def __init__(self, num_classes: int, in_chans: int = 39, filters: int = 32, depth: int = 5,
                 components: int = 8, drop_rate: float = 0.1):
        super().__init__()
        self.encoder = BiTemporalEncoder(in_chans, filters, depth, align_backward=True, residual='add',
                                         drop_rate=drop_rate)
        self.aggregate = DeltaAggregation('delta')                   # depth x [B, F, T] -> [B, F, T, depth]
        self.fuse = WeightLayer(depth)                               # -> [B, F, T]
        self.head = GMMClusteringHead(filters, num_classes, num_components=components)

    def forward(self, x):
        return self.head(self.fuse(self.aggregate(self.encoder(x))))


def emotion_net(num_classes: int, in_chans: int = 39, filters: int = 32, depth: int = 5,
                components: int = 8, drop_rate: float = 0.1) -> EmotionNet:
    return EmotionNet(num_classes, in_chans, filters, depth, components, drop_rate)
