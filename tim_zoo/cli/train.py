"""`tim-zoo train` (also `python -m tim_zoo.train`): train and test a model under a protocol."""
import argparse
import json
import logging
import os
import shlex
import sys
from pathlib import Path

import torch

from .._utils import import_from_cwd
from .._factory import load_checkpoint
from ..data.normalize import NORMALIZE_MODES
from ..exceptions import ConfigurationError
from ..train import TrainConfig, run_training
from ..train.device import dist_info
from ..train.config import AUTO_ON_OFF, PRECISIONS, TORCH_COMPILE_MODES
from ..train.records import check_new_start, has_trained, resume_config, training_features
from ..train.run import check_config
from ..weights import save_for_hub
from .audio import add_level_argument, speaker_line


def _key_values(items, what, cast):
    out = {}
    for item in items or []:
        key, sep, value = item.partition('=')
        if not sep:
            raise ConfigurationError(f'{what} takes KEY=VALUE, got {item!r}')
        try:
            out[key] = cast(value)
        except ValueError:
            raise ConfigurationError(f'{what} takes KEY=VALUE with a number for VALUE, got {item!r}') from None
    return out


def _literal(value: str):
    """`--model-arg` values: JSON when it parses (numbers, true/false, lists), Python's spelling of True, False and
    None too, else the string."""
    try:
        return json.loads(value)
    except json.JSONDecodeError:
        return {'True': True, 'False': False, 'None': None}.get(value, value)


def _features_after_rank_0(args, init=None):
    """`load_training_features` where rank 0 goes first (extracting and caching the features) and the other ranks
    then read them; a failure on rank 0 stops every rank with its message instead of leaving them waiting."""
    rank, world = dist_info()
    if world == 1:
        return load_training_features(args, init)
    outcome = [None]
    if rank == 0:
        try:
            loaded = load_training_features(args, init)
        except Exception as e:
            outcome[0] = f'{type(e).__name__}: {e}'
            torch.distributed.broadcast_object_list(outcome, src=0)
            raise
        torch.distributed.broadcast_object_list(outcome, src=0)
        return loaded
    torch.distributed.broadcast_object_list(outcome, src=0)
    if outcome[0] is not None:
        raise ConfigurationError(f'rank 0 could not load the features, so rank {rank} stops too: {outcome[0]}')
    return load_training_features(args, init)


def load_training_features(args, init=None):
    """`(features, source)` of the flags (`records.training_features`; `init`: the run's initial weights, `--init`
    or the resumed run's), the cut or padded recordings noted."""
    features, source = training_features(
        args.out, features=args.features or None, corpus=args.corpus or None, data_root=args.data_root or None,
        level=args.level, mean_signal_length=args.mean_signal_length or None, resume=args.resume,
        show_progress=not args.quiet, init=init or args.init or None)
    if source.get('settings_from') and dist_info()[0] == 0:
        taken = dict(source['settings_from'])
        print(f'note: the features are made as the initial weights {taken.pop("init")} record theirs: '
              + ', '.join(f'{k} {v}' for k, v in taken.items()) + ' (--mean-signal-length and --level set others)',
              file=sys.stderr)
    if args.corpus and features.fit_note():
        print(f'note: {features.fit_note()}', file=sys.stderr)
    return features, source


def config_from_args(args):
    return TrainConfig.from_recipe(args.recipe, **_overrides(args))


def resume_config_from_args(args):
    """The stored configuration of the run in `--out` with the flags given now (`records.resume_config`)."""
    return resume_config(args.out, args.recipe, **_overrides(args))


def _overrides(args) -> dict:
    """The hyperparameter flags (None where not given)."""
    return dict(
        model=args.model, lr=args.lr, weight_decay=args.weight_decay, optimizer=args.optimizer,
        betas=tuple(args.betas) if args.betas else None, momentum=args.momentum, scheduler=args.scheduler,
        step_size=args.step_size, gamma=args.gamma, warmup_steps=args.warmup_steps, epochs=args.epochs,
        batch_size=args.batch_size, dropout=args.dropout, label_smoothing=args.label_smoothing,
        frame_mask=args.frame_mask, grad_clip=args.grad_clip, seed=args.seed, protocol=args.protocol,
        folds=args.folds, repeats=args.repeats, batch_folds=args.batch_folds, compile=args.compile,
        only_folds=args.fold, only_repeats=args.repeat, compile_mode=args.compile_mode, precision=args.precision,
        val_fraction=args.val_fraction, select=args.select, test=False if args.no_test else None,
        init_hook=args.init_hook,
        init=args.init, freeze=args.freeze, lr_mult=_key_values(args.lr_mult, '--lr-mult', float) or None,
        gmm_select=args.gmm_select, normalize=args.normalize, device=args.device,
        model_args=_key_values(args.model_arg, '--model-arg', _literal))


def cmd_train(args) -> int:
    try:
        return _train_in_process_group(args)
    except KeyboardInterrupt:
        state = Path(args.out).is_dir() and has_trained(Path(args.out))
        print('tim-zoo train: interrupted' + (f'; continue with: tim-zoo train --resume --out {shlex.quote(args.out)}'
                                               if state
                                               else ' before the first epoch ended; nothing to resume'),
              file=sys.stderr)
        return 130


def _train_in_process_group(args) -> int:
    shown = logging.StreamHandler()                       # the run's warnings (a compile fallback...) on stderr
    shown.setLevel(logging.WARNING)
    shown.setFormatter(logging.Formatter('tim-zoo train: %(message)s'))
    train_log = logging.getLogger('tim_zoo.train')
    train_log.addHandler(shown)
    try:
        return _in_process_group(args)
    finally:
        train_log.removeHandler(shown)


def _in_process_group(args) -> int:
    import_from_cwd()                                     # --model my_models:build imports from here
    if args.threads:
        torch.set_num_threads(args.threads)
    if int(os.environ.get('WORLD_SIZE', '1')) > 1 and not torch.distributed.is_initialized():
        # started by torchrun: one process per rank; CUDA ranks talk over NCCL, CPU ranks over gloo
        on_cuda = (args.device or '').startswith('cuda')
        if on_cuda:                                       # NCCL's object collectives use the current device
            torch.cuda.set_device(int(os.environ.get('LOCAL_RANK', 0)))
        torch.distributed.init_process_group('nccl' if on_cuda else 'gloo')
        try:
            return _train(args)
        finally:
            torch.distributed.destroy_process_group()
    return _train(args)


def _train(args) -> int:
    cfg = resume_config_from_args(args) if args.resume else config_from_args(args)
    if cfg is not None:
        check_config(cfg)                                 # before the features are extracted into --out
    if args.hub_folder and (cfg.protocol if cfg is not None else 'all') != 'all':
        raise ConfigurationError(f'--hub-folder writes the model trained on all the data (--protocol all); this run '
                                 f'tests {cfg.protocol} splits, whose models each miss their test part')
    if not args.resume:
        check_new_start(args.out)                         # before anything is extracted into --out
    rank, _ = dist_info()
    features, source = _features_after_rank_0(args, cfg.init if cfg is not None else None)
    summary = run_training(cfg, features, args.out, resume=args.resume, show_progress=not args.quiet, source=source)
    if rank != 0:
        return 0
    for note in summary.get('notes') or []:                # warned at the start; here beside the figures they concern
        print(f'note: {note}')
    repeated = 'num_repeats' in summary or len(summary.get('repeats') or []) > 1
    if not summary['folds'] and summary['protocol'] != 'all':     # --no-test: trained splits, no test figure
        splits = ', '.join(t['split'] for t in summary.get('trained', []))
        print(f'{summary["model"]} ({summary["recipe"]}, {summary["protocol"]}) trained {splits} without a test '
              f'figure (--no-test); each split\'s result.json has its training and validation history; outputs in '
              f'{args.out}')
        return 0
    if not summary['folds']:
        where = summary['checkpoints']
        print(f'{summary["model"]} ({summary["recipe"]}) trained on all {features.x.shape[0]} samples; '
              f'checkpoint{"s" if len(where) > 1 else ""} in {", ".join(map(str, where))}')
        if args.hub_folder:
            if len(where) > 1:
                raise ConfigurationError(f'--hub-folder takes one model; this run trained {len(where)} repeats')
            save_for_hub(load_checkpoint(where[0]), args.hub_folder, checkpoint=where[0])
            print(f'wrote the hub folder {args.hub_folder} (config.json, model.safetensors, README.md)')
        return 0
    if repeated and summary['num_repeats'] == 1:        # one repeat of a repeated run (--repeat): no spread yet
        part = summary['repeats'][0]
        for fold in part['folds']:
            print(f'{fold["split"]:>14}: WAR {100 * fold["war"]:6.2f}  UAR {100 * fold["uar"]:6.2f}')
        print(f'{summary["model"]} ({summary["recipe"]}, {summary["protocol"]}, repeat {part["repeat"]} only, training '
              f'seed {part["seed"]}): mean WAR {100 * part["war_mean"]:.2f} (std {100 * part["war_std"]:.2f} over '
              f'splits); benchmarks/collect_run.py joins the repeats run apart; outputs in {args.out}')
        return 0
    if repeated:
        for fold in summary['folds']:
            print(f'{fold["split"]:>14}: WAR {100 * fold["war_mean"]:6.2f} (std {100 * fold["war_std"]:.2f} over '
                  f'{summary["num_repeats"]} repeats)')
        print(f'{summary["model"]} ({summary["recipe"]}, {summary["protocol"]}, {summary["num_repeats"]} repeats): '
              f'mean WAR {100 * summary["war_mean"]:.2f} (std {100 * summary["war_std"]:.2f} over repeats), mean UAR '
              f'{100 * summary["uar_mean"]:.2f} (std {100 * summary["uar_std"]:.2f}), UAR pooled over the splits '
              f'{100 * summary["pooled_uar"]:.2f}; outputs in {args.out}')
        return 0
    for fold in summary['folds']:
        print(f'{fold["split"]:>14}: WAR {100 * fold["war"]:6.2f}  UAR {100 * fold["uar"]:6.2f}  '
              f'(epoch {fold["chosen_epoch"]}, {fold["n_test"]} test samples)')
    if len(summary['folds']) == 1:
        print(f'{summary["model"]} ({summary["recipe"]}, {summary["protocol"]}, one split): WAR '
              f'{100 * summary["war_mean"]:.2f}, UAR {100 * summary["uar_mean"]:.2f}; outputs in {args.out}')
        return 0
    print(f'{summary["model"]} ({summary["recipe"]}, {summary["protocol"]}): mean WAR {100 * summary["war_mean"]:.2f} '
          f'(std {100 * summary["war_std"]:.2f}), mean UAR {100 * summary["uar_mean"]:.2f} '
          f'(std {100 * summary["uar_std"]:.2f}); pooled over the splits: WAR {100 * summary["pooled_war"]:.2f}, UAR '
          f'{100 * summary["pooled_uar"]:.2f}; outputs in {args.out}')
    if summary.get('speakers'):
        print(speaker_line(summary['speakers']))
    return 0


def add_arguments(p: argparse.ArgumentParser) -> None:
    data = p.add_argument_group('data')
    data.add_argument('--features', help='feature file (.npz from tim-zoo extract); with --corpus, the cache to use')
    data.add_argument('--corpus', help='corpus name (emodb, casia, ravdess, savee, emovo, iemocap, folders, manifest)')
    data.add_argument('--data-root', help='corpus folder (manifest: the CSV file path,label[,speaker])')
    add_level_argument(data, default='default, unless the --init weights record another level')
    data.add_argument('--mean-signal-length', type=int, default=0,
                      help="with --corpus: samples after centre pad/crop (default: the --init weights', else the corpus's release)")
    run = p.add_argument_group('run')
    run.add_argument('--model', help='a tim_zoo model (default: the recipe\'s, else the --init weights\' model, else '
                                     'timnet), a model registered with timm, '
                                     'or your function that builds one, as package.module:function (imported from the '
                                     'current folder or the installed packages)')
    run.add_argument('--recipe', help='training recipe, e.g. timnet.paper, at_deltatim.iemocap (default: "default")')
    run.add_argument('--out', required=True, help='output folder')
    run.add_argument('--resume', action='store_true', help='continue the interrupted run in --out (on the features it '
                                                            'recorded, unless given again)')
    run.add_argument('--hub-folder', help='with --protocol all: also write the trained model as a hub-ready folder '
                                          '(tim_zoo.save_for_hub: config.json, the checkpoint as model.safetensors, '
                                          'README.md), e.g. where a zoo tag looks for it')
    run.add_argument('--device', default=None, help='cpu, cuda, cuda:1 ...')
    run.add_argument('--threads', type=int, help='torch CPU threads')
    run.add_argument('--compile', choices=AUTO_ON_OFF,
                     help='compile the training step with torch.compile (auto: on CUDA, not on the CPU; same results '
                          'up to rounding; a compile failure trains eagerly)')
    run.add_argument('--compile-mode', choices=TORCH_COMPILE_MODES,
                     help='torch.compile mode (default: default; reduce-overhead also replays CUDA graphs on CUDA)')
    run.add_argument('--precision', choices=PRECISIONS,
                     help='fp32 (default) or bf16: the training forward under bfloat16 autocast, only where the device '
                          'computes bf16 natively (CPU flags avx512_bf16 or amx_bf16, or a CUDA GPU)')
    run.add_argument('--quiet', action='store_true', help='no progress bars')
    hp = p.add_argument_group('hyperparameters (override the recipe)')
    hp.add_argument('--lr', type=float)
    hp.add_argument('--weight-decay', type=float)
    hp.add_argument('--optimizer', choices=('adamw', 'adam', 'sgd'))
    hp.add_argument('--betas', type=float, nargs=2)
    hp.add_argument('--momentum', type=float)
    hp.add_argument('--scheduler', choices=('step', 'cosine', 'noam', 'none'))
    hp.add_argument('--step-size', type=int, help='StepLR period in epochs')
    hp.add_argument('--gamma', type=float, help='StepLR factor')
    hp.add_argument('--warmup-steps', type=int, help='Noam warm-up steps')
    hp.add_argument('--epochs', type=int)
    hp.add_argument('--batch-size', type=int)
    hp.add_argument('--dropout', type=float, help='the model\'s drop_rate')
    hp.add_argument('--label-smoothing', type=float)
    hp.add_argument('--frame-mask', type=float, help='zero each input frame with this probability in training')
    hp.add_argument('--grad-clip', type=float, help='clip the gradient norm')
    hp.add_argument('--seed', type=int)
    hp.add_argument('--model-arg', action='append', metavar='KEY=VALUE', help='model constructor argument (repeat)')
    hp.add_argument('--init-hook', metavar='MODULE:FUNCTION',
                    help='call FUNCTION(model, training features [N, C, T]) on each split\'s new model before training '
                         '(e.g. tim_zoo.train:init_gmm_heads)')
    hp.add_argument('--gmm-select', type=int, metavar='N', help='train on N GMM-selected frames per utterance')
    hp.add_argument('--normalize', choices=NORMALIZE_MODES,
                    help="per-speaker feature normalisation: subtract each speaker's mean (speaker_mean), also divide "
                         "by the speaker's standard deviation (speaker), or none")
    proto = p.add_argument_group('protocol')
    proto.add_argument('--protocol', choices=('kfold', 'loso', 'holdout', 'all'),
                       help='all: train on every sample, no test (a model to ship)')
    proto.add_argument('--folds', type=int)
    proto.add_argument('--batch-folds', nargs='?', const='on', choices=AUTO_ON_OFF,
                       help='train timnet\'s splits together, one grouped computation per step (same results up to '
                            'rounding); auto (default): on CUDA in one process, not on a CPU, where it is slower; '
                            '--batch-folds alone means on')
    proto.add_argument('--repeats', type=int, help='run the whole protocol N times on the same splits with training '
                       'seeds seed, seed+1, ...; results report mean and std over repeats')
    proto.add_argument('--fold', type=int, nargs='+', help='run only these splits (1-based)')
    proto.add_argument('--repeat', type=int, nargs='+', help='run only these repeats (1-based, with --repeats; '
                       'processes can share a run: benchmarks/collect_run.py joins their folders)')
    proto.add_argument('--val-fraction', type=float, help='validation share carved from the training part')
    proto.add_argument('--select', choices=('val', 'last'), help='checkpoint: best validation accuracy, or last epoch')
    proto.add_argument('--no-test', action='store_true',
                       help='do not evaluate the test part (runs that choose on validation: no test figure anywhere)')
    ft = p.add_argument_group('fine-tuning')
    ft.add_argument('--init', help='start from weights: tim_zoo .safetensors, a Keras TIM-Net .hdf5, or a pretrained tag '
                    '(tim-zoo weights; a model name: its default tag), of the model they were saved from unless --model '
                    'or the recipe names one; its classifier rows follow your labels by name, labels it lacks start '
                    'fresh')
    ft.add_argument('--freeze', nargs='+', default=None, metavar='PATTERN', help='freeze parameters by name pattern')
    ft.add_argument('--lr-mult', action='append', metavar='PATTERN=FACTOR', help='learning-rate multiplier (repeat)')


def add_commands(sub) -> None:
    p = sub.add_parser('train', help='train and test a model under a protocol (kfold, loso, holdout, all)',
                       description='Train a tim_zoo model, a timm-registered one or your own (a builder function) on a '
                                   'corpus or feature file under a protocol (k-fold, '
                                   'leave one speaker out, holdout, or all data for a model to ship), with a recipe '
                                   'and overrides, and write checkpoints, metrics, curves and confusion matrices '
                                   '(docs/training.md).')
    add_arguments(p)
    p.set_defaults(func=cmd_train)
