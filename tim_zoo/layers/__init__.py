"""Composable blocks. Every block works alone with explicit constructor arguments.

Shapes: frame sequences are `[B, C, T]` (batch, channels, frames).
"""
from .aggregation import DeltaAggregation, WeightLayer
from .conv import CausalConv1d, ConvNormAct1d, GroupConv1d
from .create import (
    ChannelLayerNorm1d, GroupBatchNorm1d, KerasBatchNorm1d, PerGroupNorm, get_act_layer, get_norm_layer,
)
from .dropout import FrameMask, FrequencyMask, SpatialDropout1d
from .fusion import AFTLocalFusion, AttentionFusion
from .gmm import GMMClusteringHead
from .init import WEIGHT_INITS, init_weights_
from .heads import ClassifierHead, ConvMapHead, FlattenHead, FrameScoreHead, PoolHead, TimeProjectionHead
from .mfcc import MFCC
from .pooling import AttentiveStatsPool, MaskedStatsPool, lengths_to_mask
from .pos_embed import SinusoidalPositionalEncoding
from .tab import TemporalAwareBlock
from .temporal import BiTemporalEncoder, TemporalStack
from .tim_encoder import TIMEncoder
from .transformer import TransformerEncoderStack

__all__ = [
    'AFTLocalFusion', 'AttentionFusion', 'AttentiveStatsPool', 'BiTemporalEncoder', 'CausalConv1d', 'ChannelLayerNorm1d',
    'ClassifierHead', 'ConvMapHead', 'ConvNormAct1d', 'DeltaAggregation', 'FlattenHead', 'FrameMask', 'FrequencyMask',
    'FrameScoreHead', 'GMMClusteringHead', 'GroupBatchNorm1d', 'GroupConv1d', 'KerasBatchNorm1d',
    'MFCC', 'MaskedStatsPool', 'PerGroupNorm', 'PoolHead', 'SinusoidalPositionalEncoding', 'SpatialDropout1d', 'TIMEncoder',
    'TemporalAwareBlock', 'TemporalStack', 'TimeProjectionHead', 'TransformerEncoderStack', 'WeightLayer',
    'WEIGHT_INITS', 'get_act_layer', 'get_norm_layer', 'init_weights_',
    'lengths_to_mask',
]
