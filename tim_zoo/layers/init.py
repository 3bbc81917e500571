"""Weight initialisation schemes for whole models: PyTorch's defaults, or Keras' (the TIM-Net authors' code)."""
import math

import torch
from torch import nn

from .._validation import check_choice
from .aggregation import WeightLayer
from .conv import GroupConv1d
from .create import ChannelLayerNorm1d

#: `"torch"`: every module's own PyTorch default; `"keras"`: Keras' defaults, as the TIM-Net authors' model had them;
#: `"research"`: PyTorch's defaults with the research code's weight layers (standard normal)
WEIGHT_INITS = ('torch', 'keras', 'research')


def glorot_bound(fan_in: int, fan_out: int) -> float:
    """Keras' `glorot_uniform` limit: `sqrt(6 / (fan_in + fan_out))`."""
    return math.sqrt(6.0 / (fan_in + fan_out))


@torch.no_grad()
def init_weights_(model: nn.Module, scheme: str = 'keras') -> nn.Module:
    """Initialise `model` in place by `scheme` and return it.

    `"keras"`: kernels of convolutions (`nn.Conv1d`, `GroupConv1d`, per channel group as Keras saw one
    direction: fan in `in/groups * k`, fan out `out/groups * k`) and of every `nn.Linear` (the attention
    fusion's projections and the Transformer layers' feed-forward ones included) drawn from `glorot_uniform`,
    all their biases zero; `WeightLayer` uniform in `[-0.05, 0.05]`; BatchNorm and LayerNorm scale 1, shift 0,
    running mean 0 and variance 1. `nn.MultiheadAttention`'s input projection (already xavier-uniform), GMM
    components and AFT position biases keep their own initialisation. `"torch"`: nothing changes (PyTorch's defaults:
    kernel bounds `1/sqrt(fan_in)`, non-zero biases). `"research"`: PyTorch's defaults, and every `WeightLayer` drawn
    from a standard normal, as the research group's `WeightLayer` (`torch.randn(n, 1)`) starts.
    """
    check_choice('weight_init', scheme, WEIGHT_INITS)
    if scheme == 'torch':
        return model
    if scheme == 'research':
        for module in model.modules():
            if isinstance(module, WeightLayer):
                nn.init.normal_(module.weight)
        return model
    for module in model.modules():
        if isinstance(module, (nn.Conv1d, GroupConv1d)):
            w = module.weight                                 # [out (or out/groups if shared), in/groups, k]
            k = w.shape[2]
            out_per_group = w.shape[0] if getattr(module, 'share_groups', False) else w.shape[0] // module.groups
            bound = glorot_bound(w.shape[1] * k, out_per_group * k)
            nn.init.uniform_(w, -bound, bound)
            if module.bias is not None:
                nn.init.zeros_(module.bias)
        elif isinstance(module, nn.Linear):
            bound = glorot_bound(module.in_features, module.out_features)
            nn.init.uniform_(module.weight, -bound, bound)
            if module.bias is not None:
                nn.init.zeros_(module.bias)
        elif isinstance(module, WeightLayer):
            nn.init.uniform_(module.weight, -0.05, 0.05)
        elif isinstance(module, (nn.modules.batchnorm._BatchNorm, nn.LayerNorm, ChannelLayerNorm1d)):
            if getattr(module, 'weight', None) is not None:
                nn.init.ones_(module.weight)
                nn.init.zeros_(module.bias)
            if getattr(module, 'running_mean', None) is not None:
                module.reset_running_stats()
    return model
