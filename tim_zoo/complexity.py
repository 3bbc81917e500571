"""Parameter and multiply-accumulate counts."""
from typing import Sequence

import torch
from torch import nn
from torch.nn.attention import SDPBackend, sdpa_kernel
from torch.utils.flop_counter import FlopCounterMode


def count_params(model: nn.Module, trainable_only: bool = False) -> int:
    """Number of parameters (optionally only those that require grad)."""
    return sum(p.numel() for p in model.parameters() if p.requires_grad or not trainable_only)


def count_macs(model: nn.Module, input_shape: Sequence[int] = (1, 39, 188)) -> int:
    """Multiply-accumulates of one eval-mode forward pass on an input of `input_shape`.

    Counts matrix products and convolutions (attention included), as torch's FlopCounterMode does,
    halving its FLOPs; element-wise work is not counted.
    """
    was_training = model.training
    model.eval()
    try:
        param = next(model.parameters())
        x = torch.randn(*input_shape, dtype=param.dtype, device=param.device)
        # the math attention backend is made of countable matmuls; grad mode keeps the transformer
        # layers off their fused inference kernels, which the counter cannot see into
        with sdpa_kernel(SDPBackend.MATH), FlopCounterMode(display=False) as counter:
            model(x)
        return counter.get_total_flops() // 2
    finally:
        model.train(was_training)
