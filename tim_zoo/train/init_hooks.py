"""Ready-made `TrainConfig.init_hook`s: data-dependent initialisation before a split's first epoch."""
import torch
from torch import nn

from ..exceptions import ConfigurationError
from ..layers import GMMClusteringHead


@torch.no_grad()
def init_gmm_heads(model: nn.Module, x: torch.Tensor, batch_size: int = 64, method: str = 'kmeans') -> None:
    """Initialise every `GMMClusteringHead` in `model` from the frames it receives for the training features `x`
    `[N, C, T]` (`GMMClusteringHead.init_from_data`): the model runs once in eval mode over `x` in batches, each head's
    input (and mask) is gathered, then each head is set from its own frames. The model's mode is restored. For other
    settings (`method="em"`, ...) write a hook of your own that calls this one.

    As a hook: `TrainConfig(init_hook=init_gmm_heads)`, `--init-hook tim_zoo.train:init_gmm_heads`.

    Raises:
        ConfigurationError: `model` has no GMM head (the hook would do nothing).
    """
    heads = [m for m in model.modules() if isinstance(m, GMMClusteringHead)]
    if not heads:
        raise ConfigurationError(f'init_gmm_heads: {type(model).__name__} has no GMMClusteringHead to initialise')
    seen = {id(h): ([], []) for h in heads}

    def gather(head, args, kwargs):
        frames, masks = seen[id(head)]
        frames.append(args[0].detach())
        mask = kwargs.get('mask', args[2] if len(args) > 2 else None)
        masks.append(None if mask is None else mask.detach())

    handles = [h.register_forward_pre_hook(gather, with_kwargs=True) for h in heads]
    training = model.training
    try:
        model.eval()
        for start in range(0, len(x), batch_size):
            model(x[start:start + batch_size])
    finally:
        for handle in handles:
            handle.remove()
        model.train(training)
    for head in heads:
        frames, masks = seen[id(head)]
        if not frames:
            continue                                      # a head the forward pass does not reach
        if any(m is not None for m in masks):             # [B, D, T] with masks: only the valid frames
            valid = [f.transpose(1, 2)[m] if m is not None else f.transpose(1, 2).reshape(-1, f.shape[1])
                     for f, m in zip(frames, masks)]
            head.init_from_data(torch.cat(valid), method=method)
        else:
            head.init_from_data(torch.cat(frames), method=method)
