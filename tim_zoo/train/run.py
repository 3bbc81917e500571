"""A whole training run: every split of a protocol, the outputs in `--out`, resuming."""
import json
import logging
import logging.handlers
import warnings
from pathlib import Path
from typing import Callable, Optional

import torch

from .._utils import atomic_write
from .._validation import NATIVE_BF16_FLAGS, native_bf16, resolve_device
from ..data.feature_set import FeatureSet
from ..data.frame_selection import select_frames, too_few_frames
from ..data.known_utterances import known_utterances, utterance_name
from ..data.normalize import normalize_features, speakers_with_one_label
from ..exceptions import ConfigurationError
from ..weights.label_rows import LabelRowsWarning
from ..weights.fresh_head import untrained_head
from .builders import dropout_note, import_function, model_builder
from .config import TrainConfig
from .compiling import compile_decision, compile_mode_note
from .device import barrier, dist_info, on_device, training_device
from .engine import RESULT_FILE, SplitTrainer, log, run_split
from .folds import batching_obstacle, train_splits_together
from .init_file import init_weight_file
from .initial_weights import check_init_held_out, init_settings_note
from .protocols import SPEAKER_HINT, class_notes, make_splits, trained_on
from .recipes import recipe_notes
from .records import CONFIG_FILE, DATA_FILE, check_data, config_to_run
from .report import repeats_summary, save_plots, split_summary, unfitted_note
from .training_model import check_init_fits, checkpoint_builder, create_training_model


METRICS_FILE = 'metrics.json'
#: fewer validation utterances than this make the checkpoint choice a warning
SMALL_VALIDATION = 20


def _check_output(model: torch.nn.Module, cfg: TrainConfig, features: FeatureSet) -> None:
    """A model of the user's must map `[B, C, T]` features to `[B, classes]` logits."""
    x = torch.as_tensor(features.x[:2], dtype=torch.float32)
    if cfg.gmm_select:
        x = x[..., :cfg.gmm_select]
    model.eval()
    try:
        with torch.no_grad():
            out = model(x)
    except Exception as e:  # noqa: BLE001 -- any failure of the user's model is reported with the input it got
        raise ConfigurationError(f'{cfg.model} fails on a batch of these features {list(x.shape)} ([B, C, T]): '
                                 f'{type(e).__name__}: {e}') from e
    want = [len(x), len(features.label_names)]
    if not isinstance(out, torch.Tensor) or list(out.shape) != want:
        got = list(out.shape) if isinstance(out, torch.Tensor) else type(out).__name__
        raise ConfigurationError(f'{cfg.model} must return logits {want} ([B, classes]) for features {list(x.shape)}, '
                                 f'got {got}')


def run_training(
        cfg: TrainConfig,
        features: FeatureSet,
        out_dir,
        resume: bool = False,
        show_progress: bool = True,
        on_epoch_end: Optional[Callable[[int, dict], None]] = None,
        source: Optional[dict] = None,
) -> dict:
    """Train and test `cfg.model` on every split of `cfg.protocol`; returns the metrics summary.

    Writes to `out_dir`: `config.json`, one folder per split (`best`/`last` checkpoints,
    `result.json` with the history, `state.pt` for resuming), `metrics.json` (per split WAR, UAR,
    confusion matrix; mean and std; pooled), `curves.png`, `confusion.png` and `train.log`. The summary's
    `checkpoints` lists each trained split's last-epoch checkpoint (repeat by repeat, split by split).
    With `resume` an interrupted run continues: finished splits are kept, the split in progress
    continues after its last saved epoch (`STATE_EVERY_S`), with the configuration saved by the first run; a `cfg` given with
    `resume` may differ from it only in where and how it runs (`records.RESUME_CHANGEABLE`: device, batch_folds, compile, compile_mode, test;
    other differences are refused, listed), and `features` must be the ones the run started with (`data.json`
    records their digest and `source`, a description such as `{"features": "/path/to/file.npz"}`). A folder whose
    earlier start ended before its first epoch holds no run: a new start overwrites it.
    Under `torch.distributed` every process calls this; rank 0 alone writes.
    """
    out_dir = Path(out_dir)
    # what happens before train.log exists (resumed settings, the features' record) is held and written into it
    held = logging.handlers.MemoryHandler(capacity=10_000, flushLevel=logging.CRITICAL + 1)
    warnings_shown = logging.StreamHandler()              # what changes a run (a compile fallback...) shows on stderr
    warnings_shown.setLevel(logging.WARNING)
    warnings_shown.setFormatter(logging.Formatter('tim_zoo.train: %(message)s'))
    # a library adds no handler where the application (or the CLI) has configured logging
    handlers = [held] if log.hasHandlers() else [held, warnings_shown]
    for h in handlers:
        log.addHandler(h)
    log.setLevel(logging.INFO)
    try:
        cfg, data_record = _prepare(cfg, features, out_dir, resume, source)
        if dist_info()[0] != 0:                           # only rank 0 writes a log
            log.removeHandler(held)
            return _run(cfg, features, out_dir, False, on_epoch_end)
        out_dir.mkdir(parents=True, exist_ok=True)
        atomic_write(out_dir / CONFIG_FILE, lambda tmp: Path(tmp).write_text(cfg.to_json()))
        atomic_write(out_dir / DATA_FILE, lambda tmp: Path(tmp).write_text(json.dumps(data_record, indent=2)))
        to_file = logging.FileHandler(out_dir / 'train.log')
        to_file.setFormatter(logging.Formatter('%(asctime)s %(message)s'))
        held.setTarget(to_file)
        held.flush()
        log.removeHandler(held)
        log.addHandler(to_file)
        handlers.append(to_file)
        return _run(cfg, features, out_dir, show_progress, on_epoch_end)
    finally:
        for h in handlers:
            log.removeHandler(h)
            h.close()


def _prepare(cfg: Optional[TrainConfig], features: FeatureSet, out_dir: Path, resume: bool, source: Optional[dict]):
    """`(cfg, data record)` of a run about to start or resume in `out_dir`, after every check that needs nothing
    written; every process has looked when it returns."""
    cfg = config_to_run(cfg, out_dir, resume)
    _check_before_writing(cfg, features)
    data_record = check_data(features, out_dir, resume, source)
    barrier()                                             # every process has looked before rank 0 writes
    return cfg, data_record


def check_config(cfg: TrainConfig) -> None:
    """What can be checked without the data: the model name, the device, and the initial weights: their file, and
    that the run's model takes their body (`check_init_fits`). `tim-zoo train` calls it before it extracts features."""
    _check_settings(cfg)
    if cfg.init:
        check_init_fits(cfg)


def _check_settings(cfg: TrainConfig) -> None:
    model_builder(cfg.model)
    if cfg.init_hook:
        import_function(cfg.init_hook, 'init_hook')
    device = resolve_device(cfg.device)
    if cfg.precision == 'bf16' and not native_bf16(device):
        raise ConfigurationError(
            f'precision=bf16 needs a device that computes bfloat16 natively; {device} does not (a CPU needs '
            f'{" or ".join(NATIVE_BF16_FLAGS)} in its flags; emulated bf16 runs hundreds of times slower than float32): '
            f'train with precision fp32 (--precision fp32)')
    if cfg.init:
        init_weight_file(cfg.init)


def _check_before_writing(cfg: TrainConfig, features: FeatureSet) -> None:
    """Refuse a run that cannot start (unknown model or device, model arguments or initial weights that do not
    fit, a protocol or normalisation the data cannot follow, splits that do not exist) before anything is
    written, so a corrected rerun finds an empty folder."""
    _check_settings(cfg)                                  # the model is built below, with the data's dimensions
    splits = make_splits(cfg.protocol, len(features.y), features.speakers or None, cfg.folds, cfg.seed,
                         cfg.val_fraction, features.y)
    bad = [i for i in cfg.only_folds or [] if not 1 <= i <= len(splits)]
    if bad:
        raise ConfigurationError(f'--fold {" ".join(map(str, bad))}: the {cfg.protocol} protocol has splits 1 to '
                                 f'{len(splits)} here')
    if cfg.normalize != 'none' and (len(features.speakers) != len(features.y) or not all(features.speakers)):
        raise ConfigurationError(f'--normalize {cfg.normalize} needs a speaker for every recording; these features '
                                 f'have {sum(map(bool, features.speakers))} of {len(features.y)} {SPEAKER_HINT}')
    frames = cfg.gmm_select or features.x.shape[2]
    with warnings.catch_warnings(record=True) as said:  # a head re-initialised for new classes warns again in the run
        warnings.simplefilter('always')
        model = create_training_model(cfg, len(features.label_names), features.x.shape[1], frames,
                                      features.label_names)
    rows = '; '.join(str(w.message) for w in said if issubclass(w.category, LabelRowsWarning))
    if model_builder(cfg.model) is not None:
        _check_output(model, cfg, features)
    if cfg.init:
        check_init_held_out(cfg, features, model, splits)
        if dist_info()[0] == 0:                           # into train.log, which the warnings do not reach
            log.info('initial weights %s%s%s%s%s', cfg.init,
                     ': the body loaded, a fresh classifier' + ('' if rows else ' (another class count, input length or '
                                                                 'kind of head)') if untrained_head(model) else '',
                     f' ({rows})' if rows else '',
                     f'; frozen: {" ".join(cfg.freeze)}' if cfg.freeze else '',
                     f'; learning-rate multipliers: {cfg.lr_mult}' if cfg.lr_mult else '')
            other = init_settings_note(model, features)
            if other:
                log.warning(other)
    if cfg.init_hook:                                     # on a few utterances: a failing hook stops nothing written
        x = torch.as_tensor(features.x[:16], dtype=torch.float32)
        try:
            import_function(cfg.init_hook, 'init_hook')(model, x[..., :cfg.gmm_select] if cfg.gmm_select else x)
        except Exception as e:  # noqa: BLE001 -- the user's hook: any failure is reported with what it got
            raise ConfigurationError(f'init_hook {cfg.init_hook}(model, x {list(x.shape)}) fails: '
                                     f'{type(e).__name__}: {e}') from e


def _trained_on(cfg: TrainConfig, features: FeatureSet) -> Optional[dict]:
    """What each checkpoint of the run records of its training utterances (`trained_on`, the split added as it is
    saved), or None when the features name no corpus or files. A corpus the package has no table of adds its
    recordings' content fingerprints where the features have them, which each checkpoint narrows to its split's
    (`fingerprints`): the package cannot draw that corpus' splits again, but can know its recordings."""
    corpus = (features.settings or {}).get('corpus')
    if not corpus or len(features.paths) != len(features.y):
        return None
    record = trained_on(corpus, cfg.protocol, '', cfg.folds if cfg.protocol == 'kfold' else None, cfg.seed,
                        cfg.val_fraction, cfg.recipe, [utterance_name(p) for p in features.paths])
    if len(features.fingerprints) == len(features.y) and known_utterances(corpus) is None:
        record['fingerprints'] = list(features.fingerprints)
    return record


def _run(cfg, features, out_dir, show_progress, on_epoch_end) -> dict:
    if cfg.gmm_select:
        short = sum(too_few_frames(f, cfg.gmm_select) for f in features.x)
        if dist_info()[0] == 0:
            log.info('GMM frame selection: %d of each utterance\'s %d frames (%d fits, seed %d)', cfg.gmm_select,
                     features.x.shape[-1], cfg.gmm_fits, cfg.seed)
            if short:
                log.warning('GMM frame selection: %d of %d utterances have fewer distinct frames than %d (short '
                            'recordings, padded): they keep their first %d frames after the leading padding, the '
                            'rest padding', short, len(features.x), cfg.gmm_select, cfg.gmm_select)
        features = select_frames(features, cfg.gmm_select, cfg.gmm_fits, cfg.seed, show_progress)
    if cfg.normalize != 'none':
        one_label = speakers_with_one_label(features.speakers, features.y)
        if one_label and dist_info()[0] == 0:
            log.warning('--normalize %s subtracts each speaker\'s own mean, and each of the %d speakers has one '
                        'label: what sets a speaker\'s label apart may be in that mean, which the model then never '
                        'sees (a depression corpus); compare with --normalize none', cfg.normalize, one_label)
        features = normalize_features(features, cfg.normalize)
    x = torch.as_tensor(features.x, dtype=torch.float32)
    y = torch.as_tensor(features.y, dtype=torch.long)
    num_classes = len(features.label_names)
    splits = make_splits(cfg.protocol, len(y), features.speakers or None, cfg.folds, cfg.seed, cfg.val_fraction,
                         features.y)
    chosen = range(1, len(splits) + 1) if not cfg.only_folds else cfg.only_folds
    notes = recipe_notes(cfg.recipe, cfg.model, features.settings or {}) + \
        class_notes([splits[i - 1] for i in chosen], features.y, features.label_names)
    for note in notes if dist_info()[0] == 0 else ():
        log.warning(note)
    names = [utterance_name(p) for p in features.paths] if len(features.paths) == len(y) else None
    meta = dict(label_names=list(features.label_names), feature_settings=features.settings,
                trained_on=_trained_on(cfg, features),
                **checkpoint_builder(cfg, len(features.label_names), x.shape[1], x.shape[2]))
    log.info('training %s (%s) on %d samples, %d classes, %s protocol: %d split%s%s', cfg.model, cfg.recipe, len(y),
             num_classes, cfg.protocol, len(chosen), 's' if len(chosen) != 1 else '',
             f', {cfg.repeats} repeats' if cfg.repeats > 1 else '')
    builder = model_builder(cfg.model)
    note = dropout_note(builder[1] if builder else None, cfg.model_args, cfg.dropout)
    if note and dist_info()[0] == 0:
        log.warning(note)
    smallest = min(len(splits[i - 1].val) for i in chosen)
    if cfg.select == 'val' and smallest == 0 and dist_info()[0] == 0:
        log.warning('a validation split is empty (too few samples for --val-fraction %s): its split keeps the last '
                    'epoch', cfg.val_fraction)
    elif cfg.select == 'val' and smallest < SMALL_VALIDATION and dist_info()[0] == 0:
        log.warning('a validation split holds %d utterances: its accuracy moves in steps of %.0f points, so the '
                    'chosen epoch says little (a larger --val-fraction, or --select last)', smallest,
                    100 / max(smallest, 1))

    writer = dist_info()[0] == 0
    compiling = dict(zip(('on', 'why'), compile_decision(cfg, dist_info()[1])))
    unused_mode = compile_mode_note(cfg, dist_info()[1])
    if writer and unused_mode:
        log.warning(unused_mode)
    by_name = {split.name: split for split in splits}
    if cfg.repeats == 1:
        results = _run_splits(cfg, x, y, splits, chosen, out_dir, cfg.seed, meta, on_epoch_end, show_progress,
                              compiling, names)
        summary = split_summary(results, cfg.protocol == 'loso')
        summary['trained'] = [{k: v for k, v in r.items() if k not in ('history', 'test')} for r in results]
        failed = [unfitted_note(results, features.y, by_name)]
        if writer:
            save_plots(results, features.label_names, out_dir)
    else:
        runs, failed = [], []
        for r in sorted(set(cfg.only_repeats or range(1, cfg.repeats + 1))):
            seed = cfg.seed + r - 1
            log.info('repeat %d of %d (training seed %d)', r, cfg.repeats, seed)
            results = _run_splits(cfg, x, y, splits, chosen, out_dir / f'repeat{r}', seed, meta, on_epoch_end,
                                  show_progress, compiling, names)
            runs.append(dict(split_summary(results, cfg.protocol == 'loso'), repeat=r, seed=seed))
            failed.append(unfitted_note(results, features.y, by_name, repeat=r))
            if writer:
                save_plots(results, features.label_names, out_dir / f'repeat{r}')
        summary = repeats_summary(runs)
    for note in filter(None, failed):
        notes.append(note)
        if writer:
            log.warning(note)
    summary.update(model=cfg.model, recipe=cfg.recipe, protocol=cfg.protocol, label_names=list(features.label_names),
                   world_size=dist_info()[1], notes=notes)
    if writer:
        atomic_write(out_dir / METRICS_FILE, lambda tmp: Path(tmp).write_text(json.dumps(summary, indent=2)))
    folders = ([out_dir] if cfg.repeats == 1 else          # not in metrics.json: a run folder may move
               [out_dir / f'repeat{r}' for r in sorted(set(cfg.only_repeats or range(1, cfg.repeats + 1)))])
    summary['checkpoints'] = [str(folder / splits[i - 1].name / 'last.safetensors') for folder in folders
                              for i in chosen]
    if summary['folds']:
        log.info('mean WAR %.4f (std %.4f), mean UAR %.4f (std %.4f)', summary['war_mean'], summary['war_std'],
                 summary['uar_mean'], summary['uar_std'])
    return summary


def _run_splits(cfg, x, y, splits, chosen, out_dir: Path, seed: int, meta, on_epoch_end, show_progress,
                compiling: dict, names) -> list:
    """Train and test the chosen splits into `out_dir/<split>/` with training seed `seed`; finished ones are read.
    The unfinished splits are trained together (`train_splits_together`) when the model and settings allow it
    (`batch_folds`), else one by one; the log says which and why. `compiling` (`on`, `why`) says whether one-by-one
    training compiles its step; a compile failure turns it off for the rest of the run."""
    num_classes, in_chans, frames = len(meta['label_names']), x.shape[1], x.shape[2]
    device = training_device(cfg)      # the features are copied to a GPU once, not batch by batch
    x, y = on_device(x, device), on_device(y, device)

    def build():
        return create_training_model(cfg, num_classes, in_chans, frames, meta['label_names'])

    def trainer(i, compiled):
        torch.manual_seed(seed * 1000 + i)              # each split starts from its own seed, whichever way it trains
        return SplitTrainer(build, x, y, splits[i - 1], i, num_classes, cfg, out_dir / splits[i - 1].name, meta,
                            on_epoch_end, seed, compiled, names)

    results, pending = {}, []
    for i in chosen:
        result_file = out_dir / splits[i - 1].name / RESULT_FILE
        if result_file.exists():
            results[i] = json.loads(result_file.read_text())
        else:
            pending.append(i)
    trained = list(pending)
    obstacle = _batching_obstacle(cfg, pending, build)
    if not obstacle:
        trainers = [trainer(i, False) for i in pending]
        if len({t.start for t in trainers}) == 1:
            compile_together = compiling['on'] and cfg.compile == 'on'
            why = compiling['why'] if compile_together or not compiling['on'] else \
                'compile=auto trains the grouped step eagerly (compiled, it is not yet measured on a GPU; --compile on)'
            log.info('training %d splits together (one grouped computation per step, %s: %s)', len(trainers),
                     'compiled' if compile_together else 'eagerly', why)
            results.update(zip(pending, train_splits_together(trainers, show_progress, compile_together)))
            if compile_together and not trainers[0].compiled:          # failed: the rest of the run eagerly
                compiling.update(on=False, why='torch.compile failed')
            pending = []
        else:
            obstacle = 'the interrupted splits stopped after different epochs'
    if pending and obstacle:
        log.info('training the splits one by one: %s; %s (%s)', obstacle,
                 'the training step is compiled' if compiling['on'] else 'eagerly', compiling['why'])
    for i in trained:
        if i in pending:                                 # one by one: each split's result as soon as it is done
            barrier()
            split_trainer = trainer(i, compiling['on'])
            results[i] = run_split(split_trainer, show_progress)
            if compiling['on'] and not split_trainer.compiled:      # failed once: the rest of the run eagerly
                compiling.update(on=False, why='torch.compile failed')
        r = results[i]
        if 'war' in r:
            log.info('%s: test WAR %.4f UAR %.4f (epoch %d)', r['split'], r['war'], r['uar'], r['chosen_epoch'])
    return [results[i] for i in chosen]


def _batching_obstacle(cfg: TrainConfig, pending: list, build) -> str:
    """Why the pending splits are not trained together ('' when they are)."""
    if len(pending) < 2:
        return 'one split to train' if pending else ''
    if cfg.batch_folds == 'off':
        return 'batch_folds=off'
    if cfg.precision != 'fp32':
        return f'precision={cfg.precision} trains one by one'
    device = training_device(cfg).type
    if cfg.batch_folds == 'auto' and (device != 'cuda' or dist_info()[1] > 1):
        return (f'batch_folds=auto trains one by one on {device}' + (' under several processes' if device == 'cuda'
                else ' (together took 1.8x the time on a 2-core CPU; --batch-folds on trains them together)'))
    return batching_obstacle(build(), cfg.frame_mask, dist_info()[1])
