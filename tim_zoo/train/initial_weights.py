"""Initial weights of a training run (`TrainConfig.init`, `--init`): finding their file, loading them into the run's
model with a hint when the file holds another model, and refusing them where they heard the run's test utterances."""
import json
from pathlib import Path

from ..data.feature_set import FeatureSet
from ..exceptions import CheckpointMismatchError, ConfigurationError
from ..weights import load_weights, read_checkpoint
from .config import TrainConfig
from .device import dist_info
from .engine import log
from .init_file import init_weight_file
from .protocols import heard_files


def load_initial_weights(model, cfg: TrainConfig, label_names=None) -> None:
    """Load `cfg.init` into `model` (a different class count re-initialises the head; the classifier rows of the
    file's labels are matched to the data's `label_names` by name, `load_weights`); a file of another model raises
    `CheckpointMismatchError` with the train flags that build the file's model, where the file says."""
    path = init_weight_file(cfg.init)
    try:
        load_weights(model, path, allow_head_reset=True, label_names=label_names)
    except CheckpointMismatchError as e:
        hint = _rebuild_hint(path, cfg, model)
        raise CheckpointMismatchError(f'{e}; {hint}' if hint else str(e)) from None


#: the feature settings that change what the initial weights' first layers receive
_INPUT_SETTINGS = ('n_mfcc', 'order', 'sample_rate', 'hop_length', 'level', 'mean_signal_length')
#: the `tim-zoo extract` flag of each setting it takes
_EXTRACT_FLAGS = dict(n_mfcc='--n-mfcc', order='--order', level='--level', mean_signal_length='--mean-signal-length')


def init_settings_note(model, features: FeatureSet) -> str:
    """Where the initial weights record features of other settings than the run's (another level, MFCC order,
    input length...), in words; '' where they agree or the weights record none."""
    theirs = ((getattr(model, 'pretrained_cfg', None) or {}).get('feature_settings')) or {}
    ours = features.settings or {}
    differ = [k for k in _INPUT_SETTINGS if k in theirs and k in ours and ours[k] != theirs[k]]
    if not differ:
        return ''
    flags = ' '.join(f'{_EXTRACT_FLAGS[k]} {theirs[k]}' for k in differ if k in _EXTRACT_FLAGS)
    return (f'the initial weights trained on features with {", ".join(f"{k} {theirs[k]}" for k in differ)}; these '
            f'have {", ".join(f"{k} {ours.get(k)}" for k in differ)}: the body starts on inputs unlike those it '
            f'learned from (fine-tuning adapts it; features extracted with the weights\' settings start where they '
            f'were' + (f': tim-zoo extract {flags}; tim-zoo train --corpus --init takes the settings not given from '
                       f'the weights)' if flags else ')'))


def _rebuild_hint(path: Path, cfg: TrainConfig, model) -> str:
    """How to build the model that weights `path` were saved from, as train flags, where the file says and the run
    builds another ('' where it does not say: a bare state dict, a Keras file)."""
    if path.suffix.lower() != '.safetensors':
        return ''
    meta = read_checkpoint(path, verify=False)[1] or {}
    from_data = ('num_classes', 'in_chans', 'seq_len')
    if meta.get('builder'):                       # the builder's own defaults are not known here: every argument
        name = meta['builder']
        differ = {k: v for k, v in (meta.get('model_args') or {}).items() if k not in from_data}
    elif meta.get('architecture'):
        name, built = meta['architecture'], getattr(model, 'init_args', None) or {}
        differ = {} if name != str(cfg.model) else {    # another architecture: its name first
            k: v for k, v in (meta.get('model_args') or {}).items() if k not in from_data and built.get(k, v) != v}
    else:
        return ''
    flags = (f' --model {name}' if name != str(cfg.model) else '') + ''.join(
        f' --model-arg {k}={json.dumps(v)}' for k, v in sorted(differ.items()))
    return f'the file was saved from {name}: train it with{flags}' if flags else ''


def check_init_held_out(cfg: TrainConfig, features: FeatureSet, model, splits) -> None:
    """Refuse initial weights that trained on test utterances of the chosen splits (by the record the weights keep:
    `tim_zoo.train.protocols.seen_utterances`): their test accuracy would not be held out."""
    record = (getattr(model, 'pretrained_cfg', None) or {}).get('trained_on')
    if not record:
        return
    if len(features.paths) != len(features.y):
        if dist_info()[0] == 0:
            log.warning('the initial weights %s record the utterances they trained on, but these features name no '
                        'file per utterance: whether they heard this run\'s test utterances is not checked', cfg.init)
        return
    found, unknown = heard_files(record, features.paths, features.speakers or None, features.fingerprints or None)
    corpus = (features.settings or {}).get('corpus')
    if any(r.get('corpus') == corpus for r in unknown) and dist_info()[0] == 0:
        log.warning('the initial weights %s trained on %s, but on another list of its utterances than these: which '
                    'of this run\'s test utterances they heard is not known', cfg.init, corpus)
    for training in found:
        heard = [(split.name, int(training.mask[split.test].sum()), len(split.test))
                 for split in (splits[i - 1] for i in (cfg.only_folds or range(1, len(splits) + 1)))]
        heard = [h for h in heard if h[1]]
        if heard:
            listed = ', '.join(f'{n} of {total} in {name}' for name, n, total in heard[:4]) + \
                (' ...' if len(heard) > 4 else '')
            clean = [str(i) for i, split in enumerate(splits, start=1) if not training.mask[split.test].any()]
            held_out = _held_out_from(training.training, training.trained, training.by_content,
                                      (int(training.mask.sum()), len(features.y)))
            raise ConfigurationError(
                f'the initial weights {cfg.init} (--init) trained on test utterances of this run ({listed}), so this '
                f'run\'s test accuracy would not be held out: {held_out}; '
                + (f'the splits whose test utterances they did not hear: --fold {" ".join(clean)}; ' if clean else '')
                + 'start from weights that did not hear them, from scratch, or train on all of it (--protocol all), '
                'which tests nothing')


def _held_out_from(record: dict, seen: int, by_content: bool = False, here: tuple = (0, 0)) -> str:
    """Which split of its corpus is held out from weights of this training record, in words (`here`: how many of
    this run's utterances they heard, of how many)."""
    corpus, split, protocol = str(record.get('corpus')).upper(), record.get('split'), record.get('protocol')
    if protocol == 'all' and here[0] < here[1]:
        return (f'they trained on all {seen} utterances of their {corpus} list, {here[0]} of this run\'s {here[1]}, '
                f'so only splits whose test utterances lie among the others are held out from them')
    if protocol == 'all':
        return f'they trained on all {seen} {corpus} utterances, so no split of it is held out from them'
    if by_content:
        return (f'they trained on {seen} {corpus} recordings (known by their content) of another list of the corpus '
                f'than these features, so no split of this list is held out from them; the feature file they trained '
                f'from holds out their split {split}')
    flags = {'kfold': f'--protocol kfold --folds {record.get("folds")} --seed {record.get("split_seed")}',
             'loso': '--protocol loso', 'holdout': f'--protocol holdout --seed {record.get("split_seed")}'}.get(
                 protocol, f'--protocol {protocol}')
    return (f'they trained on {seen} {corpus} utterances, all but the test set of their split {split}, which only '
            f'that split of {flags} holds out')
