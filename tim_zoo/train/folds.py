"""Train the splits of a run together: their forward and backward passes as one grouped computation.

`timnet` on EMODB is small (39 channels, 188 frames, batches of 64), so a training step of one fold is a few hundred
small kernels and its time goes to launching them. Here the fold models stay separate modules, each with its own
optimizer and schedule, but every step concatenates their weights along the channel axis (fold-major: fold 0's
forward direction, fold 0's backward direction, fold 1's forward direction, ...), so each convolution, BatchNorm
and activation runs once for all folds, and the gradients flow back to each fold's own parameters. Each fold keeps
its own batches (its own shuffle), its own dropout masks (drawn from a generator holding the random state the fold
would have had alone), its own BatchNorm statistics and optimizer state: the same computation as the one-by-one
training, equal up to floating-point rounding (the grouped kernels sum in another order; `tests/test_train.py`
compares the weights after 3 epochs on a CPU; over 500 epochs rounding differences may grow).
"""
import math
from typing import List, Optional, Sequence

import torch
import torch.nn.functional as F
from torch import nn

from .._utils import progress
from ..layers import GroupConv1d, PoolHead
from ..models import TIMNet
from .compiling import CompiledForward
from .device import full_fp32, sum_dtype
from .engine import SplitTrainer, log


def batching_obstacle(model: nn.Module, frame_mask: float, world_size: int) -> str:
    """Why the splits of a run cannot be trained together with `model` ('' when they can)."""
    if world_size > 1:
        return 'several processes (DDP) train one split at a time'
    if frame_mask:
        return 'input frame masking (frame_mask > 0) is drawn per batch'
    if type(model) is not TIMNet:
        return f'{type(model).__name__} has no batched form (only timnet has)'
    tim, enc = model.tim, model.tim.encoder
    if tim.stem is not None or enc.share_weights or enc.merge != 'add' or enc.align_backward:
        return 'only timnet\'s own encoder (separate directions, merged by adding) is batched'
    if hasattr(enc.stem, 'norm') or tim.fusion != 'weight' or tim.aggregate.mode != 'all':
        return 'only the plain stem and the weight-layer fusion are batched'
    if not isinstance(model.head, PoolHead) or model.head.drop.p:
        return 'only the pooling head without dropout is batched'
    for block in enc.stack.blocks:
        if len(block.convs) != 2 or not isinstance(block.shortcut, nn.Identity):
            return 'only standard TABs are batched'
        for unit in block.convs:
            norm = getattr(unit, 'norm', None)
            if not isinstance(norm, nn.BatchNorm1d) or getattr(norm, 'share_groups', False) or norm.momentum is None:
                return 'only BatchNorm with a momentum is batched'
            if not norm.weight.requires_grad:
                return 'frozen BatchNorm trains one by one'
            if not isinstance(getattr(unit, 'act', None), nn.ReLU):
                return 'only ReLU TABs are batched'
            if 'drop' in unit._modules and unit.drop.mode != 'channel':
                return 'only channel-wise spatial dropout is batched (drop_mode="channel")'
    return ''


def _conv(convs: Sequence[GroupConv1d], x: torch.Tensor) -> torch.Tensor:
    c = convs[0]
    weight = torch.cat([m.weight for m in convs])
    bias = torch.cat([m.bias for m in convs]) if c.bias is not None else None
    if c.causal_padding:
        x = F.pad(x, (c.causal_padding, 0))
    return F.conv1d(x, weight, bias, padding=c.padding, dilation=c.dilation[0], groups=c.groups * len(convs))


def _batch_norm(norms: Sequence[nn.BatchNorm1d], x: torch.Tensor) -> torch.Tensor:
    n = norms[0]
    running_mean = torch.cat([m.running_mean for m in norms])
    running_var = torch.cat([m.running_var for m in norms])
    out = F.batch_norm(x, running_mean, running_var, torch.cat([m.weight for m in norms]),
                       torch.cat([m.bias for m in norms]), True, n.momentum, n.eps)
    with torch.no_grad():                                  # F.batch_norm updated the concatenated statistics
        for m, mean, var in zip(norms, running_mean.chunk(len(norms)), running_var.chunk(len(norms))):
            m.running_mean.copy_(mean)
            m.running_var.copy_(var)
            m.num_batches_tracked.add_(1)
    return out


def _dropout_units(model: TIMNet):
    """The TAB units of `model` that apply spatial dropout, in the order they run."""
    return [unit for block in model.tim.encoder.stack.blocks for unit in block.convs if 'drop' in unit._modules]


def draw_masks(models: Sequence[TIMNet], batch: int, generators, like: torch.Tensor) -> List[Optional[torch.Tensor]]:
    """Every spatial-dropout mask of a grouped step, `[B, K*C, 1]` per dropout layer (None where p is 0), already
    scaled by `1 / (1 - p)`: fold k's part drawn from `generators[k]` in the order its layers would draw alone.
    Drawn before the step so that a compiled step holds no random draws."""
    masks = []
    for units in zip(*[_dropout_units(m) for m in models]):
        p = units[0].drop.p
        if p == 0.0:
            masks.append(None)
            continue
        width = units[0].conv.weight.shape[0]
        keep = torch.cat([torch.empty(batch, width, 1, dtype=like.dtype, device=like.device).bernoulli_(1.0 - p, generator=g)
                          for g in generators], dim=1)  # each fold's mask from its own random state, as alone
        masks.append(keep.div_(1.0 - p))
    return masks


def forward_together(models: Sequence[TIMNet], xs: Sequence[torch.Tensor], masks) -> List[torch.Tensor]:
    """Training-mode logits of each `timnet` in `models` on its own batch `xs[k]` `[B, C, T]` (equal shapes),
    computed as one grouped pass; `masks` are the dropout masks of `draw_masks`."""
    k = len(models)
    masks = iter(masks)
    x = torch.cat([torch.cat([xb, xb.flip(-1)], dim=1) for xb in xs], dim=1)      # [B, K*2C, T]
    encoders = [m.tim.encoder for m in models]
    h = _conv([e.stem.conv for e in encoders], x)
    levels = []
    for j, block in enumerate(encoders[0].stack.blocks):
        blocks = [e.stack.blocks[j] for e in encoders]
        y = h
        for u in range(len(block.convs)):
            units = [b.convs[u] for b in blocks]
            y = torch.relu(_batch_norm([m.norm for m in units], _conv([m.conv for m in units], y)))
            if 'drop' in units[0]._modules:
                mask = next(masks)
                if mask is not None:
                    y = y * mask
        gate = torch.sigmoid(y)
        h = h * gate if block.residual == 'mul' else h + gate
        both = h.view(h.shape[0], k, 2, -1, h.shape[-1])
        levels.append(both[:, :, 0] + both[:, :, 1])                              # [B, K, F, T]
    weights = torch.stack([m.tim.aggregate.level_weights(m.tim.weight_layer.weight) for m in models])   # [K, n]
    out = levels[0] * weights[:, 0].view(1, k, 1, 1)
    for j in range(1, len(levels)):
        out = torch.addcmul(out, levels[j], weights[:, j].view(1, k, 1, 1))
    pooled = out.mean(dim=-1)                                                      # [B, K, F]
    return [m.head.fc(pooled[:, i]) for i, m in enumerate(models)]


def grouped_step(forward: CompiledForward, trainers: Sequence[SplitTrainer], xs, ys, masks, size: int):
    """`(logits, summed loss)` of each trainer on its batch `xs[k]`, `ys[k]` under the masks drawn for them (the same
    on a rerun); gradients accumulated. `forward` is `forward_together`, compiled or not: until it is proven (a
    whole epoch: every group of splits the last batches make), a compiler error restores the weights and statistics
    of before the batch and runs it eagerly, as every later step."""
    def keep():
        before = [{k: v.clone() for k, v in t.model.state_dict().items()} for t in trainers]

        def restore():
            for t, state in zip(trainers, before):
                t.optimizer.zero_grad(set_to_none=True)
                t.model.load_state_dict(state)
        return restore

    def step(forward_fn):
        logits = forward_fn([t.model for t in trainers], xs, masks)
        out, total = [], 0.0
        for t, lg, yb in zip(trainers, logits, ys):
            loss_sum, loss = t.loss(lg, yb, size)
            total = total + loss
            out.append((lg, loss_sum))
        total.backward()
        return out
    return forward.run(step, keep, f'the grouped step of {len(trainers)} splits')


def train_splits_together(trainers: Sequence[SplitTrainer], show_progress: bool = True, compile_on: bool = False
                          ) -> List[dict]:
    """Train the splits of `trainers` (built one after another, each right after seeding its fold) at once, the
    grouped step compiled with `compile_on` (torch.compile mode `cfg.compile_mode`); their results, as
    `SplitTrainer.finish` gives them (`compiled`: whether the grouped step stayed compiled). fp32 stays fp32 on a
    GPU (`full_fp32`)."""
    with full_fp32(trainers[0].device):
        return _train_splits_together(trainers, show_progress, compile_on)


def _train_splits_together(trainers: Sequence[SplitTrainer], show_progress: bool, compile_on: bool) -> List[dict]:
    cfg = trainers[0].cfg
    grouped = CompiledForward(forward_together, compile_on, cfg.compile_mode, trainers[0].device)
    generators = []
    for t in trainers:                              # the random state each fold had after its build (or resume)
        g = torch.Generator(device=t.device)
        g.set_state(t.rng_state)
        generators.append(g)
        t.own_rng = True
    start = trainers[0].start
    for epoch in range(start, cfg.epochs):
        for t in trainers:
            t.model.train()
        orders = [t.epoch_order(epoch) for t in trainers]
        device = trainers[0].device                     # sums stay on the device until the epoch ends
        totals = [torch.zeros((), dtype=sum_dtype(device), device=device) for _ in trainers]
        corrects = [torch.zeros((), dtype=torch.long, device=device) for _ in trainers]
        steps = max(math.ceil(len(o) / cfg.batch_size) for o in orders)
        for b in progress(range(steps), desc=f'{len(trainers)} splits epoch {epoch + 1}/{cfg.epochs}',
                          enabled=show_progress, leave=False):
            batches = [o[b * cfg.batch_size:(b + 1) * cfg.batch_size] for o in orders]
            for size in sorted({len(batch) for batch in batches if len(batch)}):   # splits differ in the last batch
                members = [i for i, batch in enumerate(batches) if len(batch) == size]
                data = [trainers[i].batch(batches[i]) for i in members]
                for i, (xb, _) in zip(members, data):
                    trainers[i].model._check_input(xb)
                masks = draw_masks([trainers[i].model for i in members], size, [generators[i] for i in members],
                                   data[0][0])
                outputs = grouped_step(grouped, [trainers[i] for i in members], [xb for xb, _ in data],
                                       [yb for _, yb in data], masks, size)
                for i, (lg, loss_sum), (_, yb) in zip(members, outputs, data):
                    totals[i] += loss_sum.detach()
                    corrects[i] += (lg.argmax(-1) == yb).sum()
                for i in members:
                    trainers[i].step()
        grouped.prove()
        stop = None
        for i, t in enumerate(trainers):                 # every split records the epoch, so they resume together
            t.rng_state = generators[i].get_state()
            try:
                t.end_epoch(epoch, totals[i].item(), corrects[i].item(), len(orders[i]))
            except Exception as e:                      # StopTraining from a callback, or another failure
                stop = stop or e
        if stop is not None or any(t.saved_epochs == len(t.history) for t in trainers):
            for t in trainers:                          # all splits saved after the same epoch: they resume together
                if t.saved_epochs != len(t.history):
                    t.save_state()
        if stop is not None:
            raise stop
    log.info('trained %d splits together%s', len(trainers), ', compiled' if grouped.is_compiled else '')
    for t in trainers:
        t.training_forward = grouped                     # the forward they trained with: what result.json records
    return [t.finish() for t in trainers]
