"""Model families, one per module; importing this registers every model with timm's registry."""
from ._base import SERModel
from .at_tim import ATTIM, MultiTIM
from .cnn_transformer import CNNTransformer
from .set import SpeechEmotionTransformer
from .timnet import KerasTIMNet, TIMNet, read_keras_timnet
from .timnet_releases import TIMNET_RELEASES, release_metadata
from .transformer_tim import TransformerTIM

__all__ = [
    'ATTIM', 'CNNTransformer', 'KerasTIMNet', 'MultiTIM', 'SERModel', 'SpeechEmotionTransformer', 'TIMNet', 'TransformerTIM',
    'TIMNET_RELEASES', 'read_keras_timnet', 'release_metadata',
]
