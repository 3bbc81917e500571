"""Activation checkpointing for the stacks of blocks (`set_grad_checkpointing`)."""
import torch
import torch.utils.checkpoint


def checkpoint(module: torch.nn.Module, x: torch.Tensor) -> torch.Tensor:
    """`module(x)`, keeping no activations for the backward pass (recomputed then, with the same random state)."""
    return torch.utils.checkpoint.checkpoint(module, x, use_reentrant=False)
