"""Where a training process runs: its rank under `torch.distributed`, its device, its random state there, and
how fp32 stays fp32 on a GPU."""
import contextlib
import os

import torch

from .config import TrainConfig


def dist_info():
    """`(rank, world_size)`; `(0, 1)` outside `torch.distributed`."""
    dist = torch.distributed
    if dist.is_available() and dist.is_initialized():
        return dist.get_rank(), dist.get_world_size()
    return 0, 1


def barrier() -> None:
    if dist_info()[1] > 1:
        torch.distributed.barrier()


def rng_state(device: torch.device) -> torch.Tensor:
    return torch.cuda.get_rng_state(device) if device.type == 'cuda' else torch.get_rng_state()


def set_rng_state(device: torch.device, state: torch.Tensor) -> None:
    if device.type == 'cuda':
        torch.cuda.set_rng_state(state, device)
    else:
        torch.set_rng_state(state)


def sum_dtype(device: torch.device) -> torch.dtype:
    """The dtype of loss sums kept on `device`: float64, float32 on Apple's MPS, which has no float64."""
    return torch.float32 if device.type == 'mps' else torch.float64


def training_device(cfg: TrainConfig) -> torch.device:
    """The device this process trains on: `cfg.device`, under torchrun on CUDA the process's local GPU."""
    device = torch.device(cfg.device)
    if dist_info()[1] > 1 and device.type == 'cuda' and device.index is None:
        device = torch.device('cuda', int(os.environ.get('LOCAL_RANK', 0)))
    return device


@contextlib.contextmanager
def full_fp32(device: torch.device):
    """Within: float32 convolutions and matrix products on CUDA in full precision. cuDNN's default lets convolutions
    round their inputs to TF32's 10-bit mantissas, which makes a GPU's fp32 run another precision than a CPU's; the
    settings are restored after. Elsewhere nothing changes."""
    if device.type != 'cuda':
        yield
        return
    saved = torch.backends.cudnn.allow_tf32, torch.get_float32_matmul_precision()   # 'medium' too, not a flag
    torch.backends.cudnn.allow_tf32 = False
    torch.set_float32_matmul_precision('highest')
    try:
        yield
    finally:
        torch.backends.cudnn.allow_tf32 = saved[0]
        torch.set_float32_matmul_precision(saved[1])


def on_device(t: torch.Tensor, device: torch.device, limit_bytes: int = 2 ** 31) -> torch.Tensor:
    """`t` on a CUDA `device` when it is under `limit_bytes` (a corpus' features, copied once instead of every
    batch), else `t` as it is."""
    if device.type == 'cuda' and t.numel() * t.element_size() <= limit_bytes:
        return t.to(device)
    return t
