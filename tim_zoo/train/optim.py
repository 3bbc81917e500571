"""Optimizers with frozen modules and per-module learning-rate multipliers; schedulers."""
import difflib
import fnmatch
import math
from typing import Dict, List, Sequence

import torch
from torch import nn

from ..exceptions import ConfigurationError


def _matches(name: str, pattern: str) -> bool:
    """`pattern` is a shell pattern over parameter names; a plain prefix like `tim.encoder` also matches."""
    return fnmatch.fnmatch(name, pattern) or name.startswith(pattern.rstrip('.') + '.')


def _no_match(what: str, pattern: str, model: nn.Module) -> ConfigurationError:
    """The error of a pattern that matches no parameter, naming close module prefixes of the model's parameters."""
    prefixes = sorted({'.'.join(n.split('.')[:i]) for n, _ in model.named_parameters()
                       for i in range(1, n.count('.') + 1)})
    close = difflib.get_close_matches(pattern.rstrip('.*'), prefixes, n=3, cutoff=0.6)
    hint = (f'; did you mean {", ".join(close)}?' if close else '.') + \
        f' Its top-level modules: {", ".join(sorted({p.split(".")[0] for p in prefixes}))}'
    return ConfigurationError(f'{what} {pattern!r} matches no parameter of the model{hint}')


def freeze(model: nn.Module, patterns: Sequence[str]) -> List[str]:
    """Stop gradients for parameters whose names match any pattern; returns their names. A BatchNorm whose
    parameters are all frozen is frozen too (`freeze_batch_norm`): its running statistics stop moving."""
    frozen = []
    for pattern in patterns:
        hits = [n for n, _ in model.named_parameters() if _matches(n, pattern)]
        if not hits:
            raise _no_match('freeze pattern', pattern, model)
        frozen += hits
    for name, p in model.named_parameters():
        if name in frozen:
            p.requires_grad_(False)
    for module in model.modules():
        params = list(module.parameters(recurse=False))
        if isinstance(module, nn.modules.batchnorm._BatchNorm) and params and not any(p.requires_grad for p in params):
            freeze_batch_norm(module)
    return sorted(set(frozen))


class _StayInEval:
    """What a frozen BatchNorm's `train` becomes: it puts the module in eval mode whatever mode is asked for (a
    class, not a local function, so that a model holding it can be pickled and copied)."""

    def __init__(self, module: nn.Module):
        self.module = module

    def __call__(self, mode: bool = True) -> nn.Module:
        return nn.Module.train(self.module, False)


def freeze_batch_norm(module: nn.Module) -> nn.Module:
    """Keep every BatchNorm in `module` in eval mode, whatever `train()` later says: it normalises with its
    running statistics and no longer updates them (timm's `freeze_batch_norm_2d` does this by replacing the
    layers; here they stay, so state dicts are unchanged). Its parameters are frozen too. Returns `module`."""
    for m in module.modules():
        if isinstance(m, nn.modules.batchnorm._BatchNorm):
            m.train = _StayInEval(m)
            nn.Module.train(m, False)
            for p in m.parameters(recurse=False):
                p.requires_grad_(False)
    return module


def param_groups(model: nn.Module, lr: float, lr_mult: Dict[str, float]) -> List[dict]:
    """Trainable parameters grouped by learning rate: the first matching `lr_mult` pattern scales `lr`."""
    for pattern in lr_mult:
        if not any(_matches(n, pattern) for n, _ in model.named_parameters()):
            raise _no_match('lr multiplier pattern', pattern, model)
    groups: Dict[float, dict] = {}
    for name, p in model.named_parameters():
        if not p.requires_grad:
            continue
        mult = next((m for pattern, m in lr_mult.items() if _matches(name, pattern)), 1.0)
        group = groups.setdefault(mult, dict(params=[], names=[], lr=lr * mult, lr_mult=mult))
        group['params'].append(p)
        group['names'].append(name)
    return list(groups.values())


def fused_adam(groups: List[dict]) -> bool:
    """Whether Adam/AdamW run fused (one kernel for all parameters): when every parameter is on a CUDA device, where
    the step of a small model like timnet is bound by kernel launches (0.85 ms with `foreach`, 0.22 fused, on an
    H200); the CPU keeps the default implementation."""
    return all(p.is_cuda for group in groups for p in group['params'])


def build_optimizer(model: nn.Module, cfg) -> torch.optim.Optimizer:
    """`cfg.optimizer` over the trainable parameters of `model` (placed on its device first), with `cfg.lr_mult`."""
    groups = param_groups(model, cfg.lr, cfg.lr_mult)
    if not groups:
        raise ConfigurationError('every parameter is frozen: nothing to train')
    if cfg.optimizer in ('adam', 'adamw'):
        adam = torch.optim.AdamW if cfg.optimizer == 'adamw' else torch.optim.Adam
        return adam(groups, lr=cfg.lr, betas=cfg.betas, weight_decay=cfg.weight_decay,
                    **(dict(fused=True) if fused_adam(groups) else {}))
    return torch.optim.SGD(groups, lr=cfg.lr, momentum=cfg.momentum, weight_decay=cfg.weight_decay)


def build_scheduler(optimizer: torch.optim.Optimizer, cfg, steps_per_epoch: int):
    """A scheduler stepped once per optimizer step (the epoch-based ones are converted)."""
    if cfg.scheduler == 'step':
        step = max(1, cfg.step_size * steps_per_epoch)
        return torch.optim.lr_scheduler.LambdaLR(optimizer, lambda s: cfg.gamma ** (s // step))
    if cfg.scheduler == 'cosine':
        total = max(1, cfg.epochs * steps_per_epoch)
        return torch.optim.lr_scheduler.LambdaLR(optimizer, lambda s: 0.5 * (1 + math.cos(math.pi * min(s, total) / total)))
    if cfg.scheduler == 'noam':
        warmup = max(1, cfg.warmup_steps)
        # linear warm-up to the base lr, then inverse square root decay (peak = lr at step `warmup`)
        return torch.optim.lr_scheduler.LambdaLR(optimizer, lambda s: min((s + 1) / warmup, math.sqrt(warmup / (s + 1))))
    return torch.optim.lr_scheduler.LambdaLR(optimizer, lambda s: 1.0)
