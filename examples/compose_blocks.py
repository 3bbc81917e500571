"""Build a custom model from tim_zoo.layers: a bidirectional TAB encoder, delta aggregation,
attention fusion and a GMM clustering head.

    python examples/compose_blocks.py
"""
import torch
from torch import nn

from tim_zoo.layers import AttentionFusion, BiTemporalEncoder, DeltaAggregation, GMMClusteringHead


class MyEmotionNet(nn.Module):
    def __init__(self, in_chans=39, filters=39, depth=6, num_classes=4):
        super().__init__()
        self.encoder = BiTemporalEncoder(
            in_chans, filters, depth, share_weights=True, merge='fuse', stem_norm=True, residual='add',
            align_backward=True)                      # frame t means input frame t in both directions
        self.aggregate = DeltaAggregation('delta')
        self.fusion = AttentionFusion(filters, num_levels=depth, d_qkv=32, d_ff=256)
        self.head = GMMClusteringHead(filters * depth, num_classes, num_components=8)

    def forward(self, x):                                    # [B, C, T]
        stacked = self.aggregate(self.encoder(x))            # [B, F, T, n]
        frames = self.fusion(stacked).transpose(1, 2)        # [B, n*F, T]
        return self.head(frames)                             # [B, classes]


def main():
    torch.manual_seed(0)
    model = MyEmotionNet()
    x = torch.randn(8, 39, 120)
    with torch.no_grad():
        model.head.init_from_data(model.fusion(model.aggregate(model.encoder(x))).transpose(1, 2))
    opt = torch.optim.AdamW(model.parameters(), lr=1e-3)
    y = torch.randint(0, 4, (8,))
    for step in range(3):
        loss = nn.functional.cross_entropy(model(x), y)
        opt.zero_grad()
        loss.backward()
        opt.step()
        print(f'step {step}: loss {loss.item():.4f}')


if __name__ == '__main__':
    main()
