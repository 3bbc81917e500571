"""Train one split: epochs, validation, checkpoint choice, test metrics, and resuming."""
import json
import logging
import os
from pathlib import Path
from typing import Callable, Optional

import numpy as np
import torch
from torch import nn

from .._utils import atomic_write, progress
from ..evaluation import confusion_matrix, uar, war
from ..layers import FrameMask
from ..weights import load_weights, save_checkpoint
from .config import TrainConfig
from .optim import build_optimizer, build_scheduler
from .protocols import Split

log = logging.getLogger('tim_zoo.train')

STATE_FILE = 'state.pt'
RESULT_FILE = 'result.json'


class StopTraining(Exception):
    """Raised by an `on_epoch_end` callback to stop after the epoch (its state is saved): resumable."""


def dist_info():
    """`(rank, world_size)`; `(0, 1)` outside `torch.distributed`."""
    dist = torch.distributed
    if dist.is_available() and dist.is_initialized():
        return dist.get_rank(), dist.get_world_size()
    return 0, 1


def barrier() -> None:
    if dist_info()[1] > 1:
        torch.distributed.barrier()


def _epoch_seed(seed: int, split_index: int, epoch: int) -> int:
    return (seed * 1_000_003 + split_index * 10_007 + epoch) % (2 ** 63)


@torch.no_grad()
def predict_logits(model: nn.Module, x: torch.Tensor, batch_size: int, device: torch.device) -> torch.Tensor:
    """Logits `[N, classes]` (on the CPU) in eval mode for `x` `[N, C, T]`."""
    model.eval()
    return torch.cat([model(x[i:i + batch_size].to(device)).float().cpu() for i in range(0, len(x), batch_size)])


def predict(model: nn.Module, x: torch.Tensor, batch_size: int, device: torch.device) -> np.ndarray:
    """Class indices predicted in eval mode for `x` `[N, C, T]`."""
    if not len(x):
        return np.zeros(0, dtype=np.int64)
    return predict_logits(model, x, batch_size, device).argmax(-1).numpy()


def better_checkpoint(val_war: float, val_loss: float, best_war: float, best_loss: float) -> bool:
    """Whether an epoch beats the best so far: higher validation accuracy, a tie broken by the lower validation
    loss (cross-entropy, no label smoothing). A validation set of 48 utterances moves accuracy in steps of 2.1
    points, so ties are common; keeping the earliest tied epoch chose epoch 65 of 500 on one EMODB fold, while the
    loss, continuous, prefers the epoch that is right with more confidence."""
    return val_war > best_war or (val_war == best_war and val_loss < best_loss)


def _metrics(y_true: np.ndarray, y_pred: np.ndarray, num_classes: int) -> dict:
    return dict(war=war(y_true, y_pred), uar=uar(y_true, y_pred, num_classes),
                confusion=confusion_matrix(y_true, y_pred, num_classes).tolist())


def train_split(
        build: Callable[[], nn.Module],
        x: torch.Tensor,
        y: torch.Tensor,
        split: Split,
        split_index: int,
        num_classes: int,
        cfg: TrainConfig,
        fold_dir: Path,
        checkpoint_meta: Optional[dict] = None,
        on_epoch_end: Optional[Callable[[int, dict], None]] = None,
        show_progress: bool = True,
        seed: Optional[int] = None,
) -> dict:
    """Train a fresh model from `build()` on `split.train`, choose the checkpoint on `split.val` (or take
    the last epoch) and report its test metrics; resumes from `fold_dir/state.pt` when present.

    Returns the fold's result (also written to `fold_dir/result.json`): test WAR/UAR/confusion matrix,
    the chosen epoch and the per-epoch history (train loss and accuracy, validation accuracy and UAR).
    `checkpoint_meta` (label_names, feature_settings) goes into the saved checkpoints. `seed` (default `cfg.seed`)
    draws the batches; repeats of a protocol train the same splits with other seeds.

    Under `torch.distributed` (`torchrun`) every process takes its share of each batch (sample
    `rank::world_size`), gradients are averaged by `DistributedDataParallel` and weighted so that
    a step equals the single-process step on the whole batch; training loss and accuracy are summed
    over the processes; every process evaluates the (small) validation and test sets itself; only
    rank 0 writes files. BatchNorm statistics are per process, as in plain DDP.
    """
    rank, world = dist_info()
    device = torch.device(cfg.device)
    if world > 1 and device.type == 'cuda' and device.index is None:
        device = torch.device('cuda', int(os.environ.get('LOCAL_RANK', 0)))
    if rank == 0:
        fold_dir.mkdir(parents=True, exist_ok=True)
    model = build().to(device)
    train_model = model
    if world > 1:
        train_model = nn.parallel.DistributedDataParallel(model, device_ids=[device] if device.type == 'cuda' else None)
    optimizer = build_optimizer(model, cfg)
    steps_per_epoch = max(1, -(-len(split.train) // cfg.batch_size))
    scheduler = build_scheduler(optimizer, cfg, steps_per_epoch)
    criterion = nn.CrossEntropyLoss(label_smoothing=cfg.label_smoothing, reduction='sum')
    frame_mask = FrameMask(cfg.frame_mask)                # input masking; a module in training mode
    meta = checkpoint_meta or {}

    def save(path, extra):
        if rank == 0:
            save_checkpoint(model, path, label_names=meta.get('label_names'),
                            feature_settings=meta.get('feature_settings'),
                            extra=dict(extra, train_config=json.loads(cfg.to_json())))

    seed = cfg.seed if seed is None else seed
    history, best_score, best_loss, best_epoch, start = [], -1.0, float('inf'), None, 0
    state_path = fold_dir / STATE_FILE
    if state_path.exists():
        state = torch.load(state_path, map_location=device, weights_only=True)
        model.load_state_dict(state['model'])
        optimizer.load_state_dict(state['optimizer'])
        scheduler.load_state_dict(state['scheduler'])
        torch.set_rng_state(state['rng'])
        history, best_score, best_epoch = json.loads(state['history']), state['best_score'], state['best_epoch']
        best_loss = state.get('best_loss', float('inf'))
        start = len(history)
        log.info('%s: resuming after epoch %d', split.name, start)

    train_idx = torch.as_tensor(split.train)
    for epoch in range(start, cfg.epochs):
        model.train()
        order = train_idx[torch.randperm(len(train_idx), generator=torch.Generator().manual_seed(
            _epoch_seed(seed, split_index, epoch)))]
        total_loss, correct = 0.0, 0
        batches = progress(range(0, len(order), cfg.batch_size), desc=f'{split.name} epoch {epoch + 1}/{cfg.epochs}',
                           enabled=show_progress, leave=False)
        for start_i in batches:
            batch = order[start_i:start_i + cfg.batch_size]
            if len(batch) < world:                        # every process needs a sample; only at an epoch's end
                continue
            idx = batch[rank::world]
            xb, yb = frame_mask(x[idx].to(device)), y[idx].to(device)
            logits = train_model(xb)
            loss_sum = criterion(logits, yb)
            optimizer.zero_grad(set_to_none=True)
            # DDP averages gradients over processes: this weighting makes the step the whole batch's mean loss
            (loss_sum * (world / len(batch))).backward()
            if cfg.grad_clip:
                nn.utils.clip_grad_norm_(model.parameters(), cfg.grad_clip)
            optimizer.step()
            scheduler.step()
            total_loss += loss_sum.item()
            correct += (logits.argmax(-1) == yb).sum().item()
        sums = torch.tensor([total_loss, correct], dtype=torch.float64)
        if world > 1:
            torch.distributed.all_reduce(sums)
        record = dict(epoch=epoch + 1, train_loss=sums[0].item() / len(order), train_war=sums[1].item() / len(order),
                      lr=optimizer.param_groups[0]['lr'])
        if len(split.val):
            val_logits = predict_logits(model, x[split.val], cfg.batch_size, device)
            val_pred, val_true = val_logits.argmax(-1).numpy(), y[split.val].numpy()
            val_loss = nn.functional.cross_entropy(val_logits, y[split.val]).item()
            record.update(val_war=war(val_true, val_pred), val_uar=uar(val_true, val_pred, num_classes),
                          val_loss=val_loss)
            if cfg.select == 'val' and better_checkpoint(record['val_war'], val_loss, best_score, best_loss):
                best_score, best_loss, best_epoch = record['val_war'], val_loss, epoch + 1
                save(fold_dir / 'best.safetensors', dict(epoch=epoch + 1, split=split.name, val_war=best_score,
                                                         val_loss=best_loss))
        history.append(record)
        state = dict(model=model.state_dict(), optimizer=optimizer.state_dict(), scheduler=scheduler.state_dict(),
                     rng=torch.get_rng_state(), history=json.dumps(history), best_score=best_score,
                     best_loss=best_loss, best_epoch=best_epoch)
        if rank == 0:
            atomic_write(state_path, lambda tmp: torch.save(state, tmp))
        log.info('%s epoch %d: %s', split.name, epoch + 1,
                 ', '.join(f'{k} {v:.4f}' for k, v in record.items() if k != 'epoch'))
        if on_epoch_end is not None:
            on_epoch_end(epoch + 1, record)

    save(fold_dir / 'last.safetensors', dict(epoch=cfg.epochs, split=split.name))
    barrier()                                             # rank 0's checkpoints are on disk for everyone
    chosen = cfg.epochs
    if cfg.select == 'val' and best_epoch is not None:
        load_weights(model, fold_dir / 'best.safetensors', allow_head_reset=False)
        chosen = best_epoch
    result = dict(split=split.name, chosen_epoch=chosen, n_train=len(split.train), n_val=len(split.val),
                  n_test=len(split.test))
    if len(split.test):
        result.update(_metrics(y[split.test].numpy(), predict(model, x[split.test], cfg.batch_size, device),
                               num_classes))
    result['history'] = history
    barrier()
    if rank == 0:
        atomic_write(fold_dir / RESULT_FILE, lambda tmp: Path(tmp).write_text(json.dumps(result, indent=2)))
        state_path.unlink()                               # the split is done; its checkpoints stay
    return result
