"""Train one split: epochs, validation, checkpoint choice, test metrics, and resuming."""
import json
import logging
import time
from pathlib import Path
from typing import Callable, Optional, Sequence

import numpy as np
import torch
from torch import nn

from .._utils import atomic_write, progress
from ..evaluation import confusion_matrix, uar, war
from ..exceptions import ConfigurationError, WeightFileError
from ..layers import FrameMask
from ..weights import load_weights, save_checkpoint
from ..weights.checkpoint import check_builder, is_tim_zoo_model
from .builders import function_name, import_function
from .compiling import CompiledForward, compile_decision
from .config import TrainConfig
from .device import barrier, dist_info, full_fp32, rng_state, set_rng_state, sum_dtype, training_device
from .optim import build_optimizer, build_scheduler
from .protocols import Split, training_records

log = logging.getLogger('tim_zoo.train')

STATE_FILE = 'state.pt'
RESULT_FILE = 'result.json'
#: seconds between writes of a split's resumable state (also written after its first and last epoch of a session and
#: when a callback stops or fails): a write per epoch copies every weight and optimizer moment off a GPU
STATE_EVERY_S = 30.0


class StopTraining(Exception):
    """Raised by an `on_epoch_end` callback to stop after the epoch (its state is saved): resumable."""


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


class SplitTrainer:
    """The training of one split, step by step: a fresh model from `build()`, its optimizer and schedule, the
    per-epoch bookkeeping (validation, checkpoint choice, resumable state) and the final test.

    `train_split` drives one trainer; `train_splits_together` (`tim_zoo.train.folds`) drives several, with their
    forward and backward passes computed as one.
    """

    def __init__(self, build, x, y, split: Split, split_index: int, num_classes: int, cfg: TrainConfig, fold_dir: Path,
                 checkpoint_meta: Optional[dict] = None, on_epoch_end=None, seed: Optional[int] = None,
                 compile_step: Optional[bool] = None, names: Optional[Sequence[str]] = None):
        self.rank, self.world = dist_info()
        if names is not None and len(names) != len(y):
            raise ConfigurationError(f'names: {len(names)} utterance names for {len(y)} samples')
        self.names = None if names is None else list(names)
        device = training_device(cfg)
        self.device, self.x, self.y, self.split, self.split_index = device, x, y, split, split_index
        self.num_classes, self.cfg, self.fold_dir, self.on_epoch_end = num_classes, cfg, fold_dir, on_epoch_end
        self.seed = cfg.seed if seed is None else seed
        if self.rank == 0:
            fold_dir.mkdir(parents=True, exist_ok=True)
        self.model = build().to(device)
        self.meta = checkpoint_meta or {}
        self.state_path = fold_dir / STATE_FILE
        self._check_saveable()
        if cfg.init_hook and not self.state_path.exists():    # a resumed split has its initialised weights
            import_function(cfg.init_hook, 'init_hook')(self.model, x[torch.as_tensor(split.train)].to(device))
        self.train_model = self.model
        if self.world > 1:
            self.train_model = nn.parallel.DistributedDataParallel(
                self.model, device_ids=[device] if device.type == 'cuda' else None)
        if compile_step is None:
            compile_step, why = compile_decision(cfg, self.world)
            log.info('%s: %s (%s)', split.name, 'the training step is compiled' if compile_step else 'eagerly', why)
        # the training forward, compiled or not: it shares the model's parameters and buffers
        self.training_forward = CompiledForward(self.train_model, compile_step, cfg.compile_mode, device)
        self.optimizer = build_optimizer(self.model, cfg)
        self.scheduler = build_scheduler(self.optimizer, cfg, max(1, -(-len(split.train) // cfg.batch_size)))
        self.criterion = nn.CrossEntropyLoss(label_smoothing=cfg.label_smoothing, reduction='sum')
        self.frame_mask = FrameMask(cfg.frame_mask)       # input masking; a module in training mode
        self.history, self.best_score, self.best_loss, self.best_epoch, self.start = [], -1.0, float('inf'), None, 0
        self.saved_at, self.saved_epochs = None, 0          # when state.pt was last written, after how many epochs
        if self.state_path.exists():
            state = torch.load(self.state_path, map_location=device, weights_only=True)
            self.model.load_state_dict(state['model'])
            self.optimizer.load_state_dict(state['optimizer'])
            self.scheduler.load_state_dict(state['scheduler'])
            torch.set_rng_state(state['rng'])
            if 'device_rng' in state and device.type == 'cuda':       # the split's CUDA random state (dropout)
                torch.cuda.set_rng_state(state['device_rng'].cpu(), device)
            self.history, self.best_score, self.best_epoch = (json.loads(state['history']), state['best_score'],
                                                              state['best_epoch'])
            self.best_loss = state.get('best_loss', float('-inf'))   # an older state: ties kept the earliest epoch
            self.start = len(self.history)
            log.info('%s: resuming after epoch %d', split.name, self.start)
        self.train_idx = torch.as_tensor(split.train)
        # the random state this split continues from; train_splits_together draws the split's dropout from it
        self.rng_state = rng_state(device)
        self.own_rng = False

    def _check_saveable(self) -> None:
        """A checkpoint names the model's architecture, or the function that built it: refused before training when
        it could name neither."""
        if self.meta.get('builder'):
            try:
                check_builder(import_function(self.meta['builder'], 'builder'), self.meta.get('builder_args') or {},
                              self.model.state_dict(), self.meta['builder'])
            except WeightFileError as e:
                raise ConfigurationError(f'checkpoint_meta: {e}') from e
            except TypeError as e:
                raise ConfigurationError(f'checkpoint_meta: {self.meta["builder"]}(**{self.meta.get("builder_args")}) '
                                         f'fails: {e}') from e
            return
        if not is_tim_zoo_model(getattr(self.model, 'model_name', None)):
            raise ConfigurationError(
                f'{type(self.model).__name__} is not a tim_zoo model, so its checkpoints must name the function that '
                f'builds it: checkpoint_meta=dict(builder="package.module:function", builder_args=dict(...)) '
                f'(run_training does this for TrainConfig(model=function))')

    def save(self, path: Path, extra: dict) -> None:
        if self.rank == 0:
            save_checkpoint(self.model, path, label_names=self.meta.get('label_names'),
                            feature_settings=self.meta.get('feature_settings'),
                            extra=dict(extra, train_config=json.loads(self.cfg.to_json()), **self._trained_on()),
                            builder=self.meta.get('builder'), builder_args=self.meta.get('builder_args'))

    def _trained_on(self) -> dict:
        """`{"trained_on": ...}`: the run's record of its utterances with this split's name and, as `earlier`, the
        record of the initial weights (`--init`), which heard theirs; {} when the run has no record (then
        `save_checkpoint` keeps the initial weights' own)."""
        record = self.meta.get('trained_on')
        if not record:
            return {}
        model = getattr(self.model, '_orig_mod', self.model)
        model = getattr(model, 'module', model)
        initial = (getattr(model, 'pretrained_cfg', None) or {}).get('trained_on') if self.cfg.init else None
        chain = training_records(initial)
        record = dict(record, split=self.split.name)
        if record.get('fingerprints'):                  # the run's recordings: this split's trained and chosen on
            heard = np.concatenate([self.split.train, self.split.val])
            record['fingerprints'] = sorted({record['fingerprints'][i] for i in heard.tolist()})
        return dict(trained_on=dict(record, earlier=chain) if chain else record)

    def epoch_order(self, epoch: int) -> torch.Tensor:
        """This split's training samples in the order of `epoch` (its own seeded shuffle), on the device that holds
        the features: one copy per epoch, where a copy per batch would make the host wait for the GPU every step."""
        generator = torch.Generator().manual_seed(_epoch_seed(self.seed, self.split_index, epoch))
        return self.train_idx[torch.randperm(len(self.train_idx), generator=generator)].to(self.x.device)

    def batch(self, idx: torch.Tensor):
        """`(x, y)` of the samples `idx` on the device, input masking applied."""
        return self.frame_mask(self.x[idx].to(self.device)), self.y[idx].to(self.device)

    def loss(self, logits: torch.Tensor, yb: torch.Tensor, batch_size: int) -> torch.Tensor:
        """The summed loss and the loss to differentiate (DDP averages gradients over processes: this weighting
        makes a step the whole batch's mean loss)."""
        loss_sum = self.criterion(logits, yb)
        return loss_sum, loss_sum * (self.world / batch_size)

    def forward_backward(self, xb: torch.Tensor, yb: torch.Tensor, batch_size: int):
        """Training-mode logits and summed loss of a batch, its gradients accumulated. Until the compiled step has
        run a whole epoch (every batch shape), a compile failure restores the model and the random state of before
        the batch and trains eagerly from there on; under several processes it is an error instead (the others
        would wait for the failed one)."""
        def keep():
            before, rng = {k: v.clone() for k, v in self.model.state_dict().items()}, rng_state(self.device)

            def restore():
                self.optimizer.zero_grad(set_to_none=True)
                self.model.load_state_dict(before)
                set_rng_state(self.device, rng)
            return restore
        refuse = f'{self.split.name}: torch.compile failed on rank {self.rank}' if self.world > 1 else ''
        return self.training_forward.run(lambda forward: self._forward_backward(forward, xb, yb, batch_size), keep,
                                self.split.name, refuse)

    @property
    def compiled(self) -> bool:
        """Whether the training step runs compiled (False from a compiler failure on)."""
        return self.training_forward.is_compiled

    def _forward_backward(self, forward, xb, yb, batch_size):
        with torch.autocast(self.device.type, dtype=torch.bfloat16, enabled=self.cfg.precision == 'bf16'):
            logits = forward(xb)
        loss_sum, loss = self.loss(logits.float(), yb, batch_size)
        loss.backward()
        return logits, loss_sum

    def step(self) -> None:
        """Clip, step the optimizer and the schedule, clear the gradients."""
        if self.cfg.grad_clip:
            nn.utils.clip_grad_norm_(self.model.parameters(), self.cfg.grad_clip)
        self.optimizer.step()
        self.scheduler.step()
        self.optimizer.zero_grad(set_to_none=True)

    def end_epoch(self, epoch: int, total_loss: float, correct: int, seen: int) -> None:
        """Record epoch `epoch` (0-based): training loss and accuracy, validation and checkpoint choice, state."""
        sums = torch.tensor([total_loss, correct], dtype=sum_dtype(self.device), device=self.device)   # NCCL: on the GPU
        if self.world > 1:
            torch.distributed.all_reduce(sums)
        split, cfg = self.split, self.cfg
        scaled = [g for g in self.optimizer.param_groups if g.get('lr_mult', 1.0)]   # the base rate: a group's
        lr = scaled[0]['lr'] / scaled[0].get('lr_mult', 1.0) if scaled else 0.0      # over its --lr-mult factor
        record = dict(epoch=epoch + 1, train_loss=sums[0].item() / seen, train_war=sums[1].item() / seen, lr=lr)
        improved = False
        if len(split.val):
            val_logits = predict_logits(self.model, self.x[split.val], cfg.batch_size, self.device)
            val_true = self.y[split.val].cpu()
            val_pred = val_logits.argmax(-1).numpy()
            val_loss = nn.functional.cross_entropy(val_logits, val_true).item()
            val_true = val_true.numpy()
            record.update(val_war=war(val_true, val_pred), val_uar=uar(val_true, val_pred, self.num_classes),
                          val_loss=val_loss)
            if cfg.select == 'val' and better_checkpoint(record['val_war'], val_loss, self.best_score, self.best_loss):
                self.best_score, self.best_loss, self.best_epoch = record['val_war'], val_loss, epoch + 1
                improved = True                            # the state must name the epoch best.safetensors holds
                self.save(self.fold_dir / 'best.safetensors', dict(epoch=epoch + 1, split=split.name,
                                                                   val_war=self.best_score, val_loss=self.best_loss))
        self.history.append(record)
        self.training_forward.prove()
        self.epoch_rng = self._rng_snapshot()             # the random state after this epoch, before any callback
        if (improved or self.saved_at is None or epoch + 1 == cfg.epochs
                or time.monotonic() - self.saved_at >= STATE_EVERY_S):
            self.save_state()
        log.info('%s epoch %d: %s', split.name, epoch + 1,
                 ', '.join(f'{k} {v:.3g}' if k == 'lr' else f'{k} {v:.4f}' for k, v in record.items() if k != 'epoch'))
        if self.on_epoch_end is not None:
            try:
                self.on_epoch_end(epoch + 1, record)
            except BaseException:                          # a stop (or failure) resumes after this epoch
                if self.saved_epochs != len(self.history):
                    self.save_state()
                raise

    def _rng_snapshot(self) -> dict:
        """The random states a resume needs: the CPU's (batches, frame masks; the split's own generator when the
        splits train together on a CPU) and, on CUDA, the split's CUDA state (dropout)."""
        cpu = self.device.type == 'cpu'
        snapshot = dict(rng=self.rng_state if self.own_rng and cpu else torch.get_rng_state())
        if self.device.type == 'cuda':
            snapshot['device_rng'] = self.rng_state if self.own_rng else torch.cuda.get_rng_state(self.device)
        return snapshot

    def save_state(self) -> None:
        """Write the resumable state after the last recorded epoch (`state.pt`: weights, optimizer, schedule,
        random states as the epoch ended, history, checkpoint choice)."""
        state = dict(model=self.model.state_dict(), optimizer=self.optimizer.state_dict(),
                     scheduler=self.scheduler.state_dict(), **self.epoch_rng,
                     history=json.dumps(self.history),
                     best_score=self.best_score, best_loss=self.best_loss, best_epoch=self.best_epoch)
        if self.rank == 0:
            atomic_write(self.state_path, lambda tmp: torch.save(state, tmp))
        self.saved_at, self.saved_epochs = time.monotonic(), len(self.history)

    def finish(self) -> dict:
        """Save the last checkpoint, take the chosen one, test it, write `result.json`; the result."""
        cfg, split, y = self.cfg, self.split, self.y
        self.save(self.fold_dir / 'last.safetensors', dict(epoch=cfg.epochs, split=split.name))
        barrier()                                         # rank 0's checkpoints are on disk for everyone
        chosen = cfg.epochs
        if cfg.select == 'val' and self.best_epoch is not None:
            load_weights(self.model, self.fold_dir / 'best.safetensors', allow_head_reset=False)
            chosen = self.best_epoch
        result = dict(split=split.name, chosen_epoch=chosen, n_train=len(split.train), n_val=len(split.val),
                      n_test=len(split.test), compiled=self.compiled)
        if len(split.test) and cfg.test:
            y_true = y[split.test].cpu().numpy()
            y_pred = predict(self.model, self.x[split.test], cfg.batch_size, self.device)
            result.update(_metrics(y_true, y_pred, self.num_classes))
            result['test'] = dict(utterances=[self.names[i] for i in split.test] if self.names else
                                  [int(i) for i in split.test], label=y_true.tolist(), predicted=y_pred.tolist())
        result['history'] = self.history
        barrier()
        if self.rank == 0:
            atomic_write(self.fold_dir / RESULT_FILE, lambda tmp: Path(tmp).write_text(json.dumps(result, indent=2)))
            self.state_path.unlink()                      # the split is done; its checkpoints stay
        return result


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
        names: Optional[Sequence[str]] = None,
) -> dict:
    """Train a fresh model from `build()` on `split.train`, choose the checkpoint on `split.val` (or take
    the last epoch) and report its test metrics; resumes from `fold_dir/state.pt` when present.

    Returns the fold's result (also written to `fold_dir/result.json`): test WAR/UAR/confusion matrix,
    each test utterance's answer (`test`: `utterances`, by `names`, one per sample, else by index into `x`; their
    `label` and `predicted` class indices), the chosen epoch and the per-epoch history (train loss and accuracy,
    validation accuracy, UAR and loss).
    `checkpoint_meta` (label_names, feature_settings; `trained_on`, the record of the corpus' utterances
    `tim_zoo.train.protocols.trained_on` makes, to which each checkpoint adds its split's name) goes into the saved
    checkpoints. `seed` (default `cfg.seed`)
    draws the batches; repeats of a protocol train the same splits with other seeds.

    Under `torch.distributed` (`torchrun`) every process takes its share of each batch (sample
    `rank::world_size`), gradients are averaged by `DistributedDataParallel` and weighted so that
    a step equals the single-process step on the whole batch; training loss and accuracy are summed
    over the processes; every process evaluates the (small) validation and test sets itself; only
    rank 0 writes files. BatchNorm statistics are per process, as in plain DDP.
    """
    trainer = SplitTrainer(build, x, y, split, split_index, num_classes, cfg, Path(fold_dir),
                           check_checkpoint_meta(checkpoint_meta), on_epoch_end, seed, names=names)
    return run_split(trainer, show_progress)


#: the keys of `train_split`'s `checkpoint_meta`
CHECKPOINT_META_KEYS = ('label_names', 'feature_settings', 'builder', 'builder_args', 'trained_on')


def check_checkpoint_meta(meta: Optional[dict]) -> dict:
    """`checkpoint_meta` checked before training: known keys; a builder that imports, with its `builder_args`."""
    meta = dict(meta or {})
    unknown = sorted(set(meta) - set(CHECKPOINT_META_KEYS))
    if unknown:
        raise ConfigurationError(f'checkpoint_meta: unknown keys {", ".join(unknown)} (known: '
                                 f'{", ".join(CHECKPOINT_META_KEYS)})')
    if meta.get('builder') is not None:
        name = function_name(meta['builder'], 'checkpoint_meta builder')
        if meta.get('builder_args') is None:
            raise ConfigurationError(f'checkpoint_meta: give builder_args, the arguments {name} builds the model with')
        meta['builder'] = name
    return meta


def run_split(trainer: SplitTrainer, show_progress: bool = True) -> dict:
    """Train one split's `trainer` from its start epoch to the end, then test it; its result. fp32 stays fp32 on a
    GPU (`full_fp32`)."""
    with full_fp32(trainer.device):
        return _run_split(trainer, show_progress)


def _run_split(trainer: SplitTrainer, show_progress: bool) -> dict:
    rank, world, cfg, split = trainer.rank, trainer.world, trainer.cfg, trainer.split
    for epoch in range(trainer.start, cfg.epochs):
        trainer.model.train()
        order = trainer.epoch_order(epoch)
        # summed on the device, read once per epoch: no wait for the device after every step
        total_loss = torch.zeros((), dtype=sum_dtype(trainer.device), device=trainer.device)
        correct = torch.zeros((), dtype=torch.long, device=trainer.device)
        batches = progress(range(0, len(order), cfg.batch_size), desc=f'{split.name} epoch {epoch + 1}/{cfg.epochs}',
                           enabled=show_progress, leave=False)
        for start_i in batches:
            batch = order[start_i:start_i + cfg.batch_size]
            if len(batch) < world:                        # every process needs a sample; only at an epoch's end
                continue
            xb, yb = trainer.batch(batch[rank::world])
            logits, loss_sum = trainer.forward_backward(xb, yb, len(batch))
            trainer.step()
            total_loss += loss_sum.detach()
            correct += (logits.argmax(-1) == yb).sum()
        trainer.end_epoch(epoch, total_loss.item(), correct.item(), len(order))
    return trainer.finish()
