"""What a run folder records about its run (`config.json`, `data.json`) and the checks made from it before a run
starts or resumes there: the same features, the same settings, no run overwritten."""
import dataclasses
import json
from pathlib import Path
from typing import Optional, Tuple

from ..data.corpora import load_corpus
from ..data.feature_set import FeatureSet, cached_features, corpus_extractor
from ..exceptions import ConfigurationError
from .config import TrainConfig
from .engine import RESULT_FILE, STATE_FILE, log
from .init_file import recorded_feature_settings


CONFIG_FILE = 'config.json'
DATA_FILE = 'data.json'


def config_to_run(cfg: Optional[TrainConfig], out_dir: Path, resume: bool) -> TrainConfig:
    """The configuration a run in `out_dir` runs with: the stored one when resuming (with `cfg`'s changeable
    settings, `resumed_config`), else `cfg`, after checking that no run is there to be overwritten."""
    config_path = out_dir / CONFIG_FILE
    stored_text = config_path.read_text() if config_path.exists() else None
    stored = TrainConfig.from_json(stored_text) if stored_text is not None else None
    if resume:
        if stored is None:
            raise ConfigurationError(f'nothing to resume in {out_dir}: no {CONFIG_FILE}')
        cfg = resumed_config(stored, cfg, out_dir)
        if 'repeats' not in json.loads(stored_text) and 'weight_init' not in cfg.model_args:
            # a run started before models took weight_init: every model then started from PyTorch's initialisation
            cfg = dataclasses.replace(cfg, model_args=dict(cfg.model_args, weight_init='torch'), check_unused=False)
    elif stored is not None:
        check_new_start(out_dir)
        log.info('%s holds no finished epoch of an earlier start; starting over', out_dir)
    return cfg


def check_data(features: FeatureSet, out_dir: Path, resume: bool, source: Optional[dict]) -> dict:
    """The record of the features a run trains on (digest, shape, labels, source). A resumed run must train on the
    features it started with: other features are refused, naming where the first ones came from. `source['features']`
    is kept relative to `out_dir` when the file lies inside it, so the folder can move."""
    source = dict(source or {})
    if source.get('features') and Path(source['features']).resolve().is_relative_to(out_dir.resolve()):
        source['features'] = str(Path(source['features']).resolve().relative_to(out_dir.resolve()))
    record = dict(digest=features.digest(), samples=len(features.y), shape=list(features.x.shape[1:]),
                  label_names=list(features.label_names), source=source)
    stored = read_data_record(out_dir) if resume else None
    if stored is None:
        if resume:
            log.info('%s records no features (started before runs recorded them): recording these, unchecked', out_dir)
        return record
    old_source = stored.get('source', {})
    if stored.get('digest') != record['digest']:
        where = ', '.join(f'{k} {v}' for k, v in old_source.items()) or 'not recorded'
        same_file = source.get('features') and source.get('features') == old_source.get('features')
        raise ConfigurationError(
            f'{out_dir} was started on other features ({stored.get("samples")} samples of {stored.get("shape")}, '
            f'labels {stored.get("label_names")}; source: {where}) than these ({record["samples"]} samples of '
            f'{record["shape"]}, labels {record["label_names"]})'
            + ('; the file has changed since the run started' if same_file else '')
            + '; resume with the features the run started with')
    if not source.get('features') or source.get('features') == old_source.get('features'):
        return dict(record, source=old_source or source)
    log.info('%s: the same features are now read from %s (recorded before: %s)', out_dir, source['features'],
             old_source.get('features'))
    return dict(record, source=source)


def read_data_record(out_dir) -> Optional[dict]:
    """What `run_training` recorded about the features of the run in `out_dir` (None for a run without a record)."""
    path = Path(out_dir) / DATA_FILE
    if not path.is_file():
        return None
    try:
        record = json.loads(path.read_text())
    except json.JSONDecodeError as e:
        raise ConfigurationError(f'{path} is not valid JSON ({e}); delete it to resume unchecked') from e
    if not isinstance(record, dict) or 'digest' not in record:
        raise ConfigurationError(f'{path} holds no feature digest; delete it to resume unchecked')
    return record


def recorded_features(out_dir) -> Path:
    """The feature file the run in `out_dir` recorded (a path inside `out_dir` is stored relative to it); an error
    saying what to give instead when there is no run, no record or no file in it."""
    out_dir = Path(out_dir)
    if not out_dir.is_dir():
        raise ConfigurationError(f'nothing to resume: {out_dir} does not exist (drop --resume to start a run there)')
    if not (out_dir / CONFIG_FILE).is_file():
        raise ConfigurationError(f'nothing to resume in {out_dir}: no {CONFIG_FILE}')
    record = read_data_record(out_dir)
    if record is None:
        raise ConfigurationError(f'{out_dir} does not record its features (a run started before tim_zoo recorded '
                                 f'them); give --features FILE.npz, or --corpus NAME --data-root DIR')
    path = record.get('source', {}).get('features')
    if not path:
        raise ConfigurationError(f'{out_dir} records the digest of its features but no file (started from Python '
                                 f'without source=); give --features FILE.npz, or --corpus NAME --data-root DIR')
    found = out_dir / path                                # an absolute path stays as it is
    if not found.is_file():
        raise ConfigurationError(f'{out_dir} was trained on {found}, which is gone; give the same features again with '
                                 f'--features FILE.npz (their digest is checked)')
    return found


def training_features(out_dir, features=None, corpus: Optional[str] = None, data_root=None,
                      level: Optional[str] = None, mean_signal_length: Optional[int] = None, resume: bool = False,
                      show_progress: bool = True, init: Optional[str] = None) -> Tuple[FeatureSet, dict]:
    """`(features, source)`: what a run in `out_dir` trains on and where it came from (`run_training`'s `source`),
    as `tim-zoo train` finds it.

    - `features` alone: that feature file; a `level` or `mean_signal_length` it was not extracted with is refused.
    - `corpus` and `data_root`: the corpus's MFCCs (`mean_signal_length` samples, default the corpus's release's:
      `release_signal_length`; `level`, default "peak"), extracted once into `features` when given (a file you
      name is never replaced) or `out_dir/features.npz` (replaced on a new start, kept on `resume`). With initial
      weights `init` (`TrainConfig.init`) that record their features, those set the length, level and MFCC order and
      count not given, so the weights start on inputs like those they learned from; `source["settings_from"]` says so.
    - `resume` with neither: the feature file the run recorded (`recorded_features`).
    The features' `fit_note()` says how many recordings were cut or padded."""
    if resume and not (features or corpus):
        features = recorded_features(out_dir)
    if features and not corpus:
        loaded = FeatureSet.load(features)
        recorded = loaded.settings.get('level', 'none')
        if level and level != recorded:
            raise ConfigurationError(f'level={level!r} (--level {level}): the features in {features} were extracted '
                                     f'with level={recorded!r}; extract them again with that level')
        length = loaded.settings.get('mean_signal_length')
        if mean_signal_length and mean_signal_length != length:
            raise ConfigurationError(f'mean_signal_length={mean_signal_length} (--mean-signal-length '
                                     f'{mean_signal_length}): the features in {features} have {length}; extract them '
                                     f'again with that length')
        return loaded, dict(features=str(Path(features).resolve()))
    if not (corpus and data_root):
        raise ConfigurationError('give a feature file (--features FILE.npz), or a corpus and its folder (--corpus '
                                 'NAME --data-root DIR)')
    recordings = load_corpus(corpus, data_root)           # a wrong name or folder: refused before anything is made
    theirs = recorded_feature_settings(init) if init else {}
    taken = {k: theirs[k] for k, given in (('mean_signal_length', mean_signal_length), ('level', level),
                                           ('order', None), ('n_mfcc', None)) if given is None and k in theirs}
    extractor = corpus_extractor(corpus, taken.get('mean_signal_length', mean_signal_length),
                                 taken.get('n_mfcc', 39), taken.get('order', 1), taken.get('level', level))
    cache = Path(features or Path(out_dir) / 'features.npz')
    cache.parent.mkdir(parents=True, exist_ok=True)
    source = dict(features=str(cache.resolve()), corpus=corpus, data_root=str(Path(data_root).resolve()),
                  level=extractor.level)
    if taken:
        source['settings_from'] = dict(init=init, **taken)
    loaded = cached_features(recordings, extractor, cache, show_progress, overwrite=not (features or resume))
    return loaded, source


def resume_config(out_dir, recipe: Optional[str] = None, **changes) -> Optional[TrainConfig]:
    """The stored configuration of the run in `out_dir` with `changes` (`TrainConfig` fields; None values are
    ignored, `model_args` merge into the stored ones) and `recipe`, for `run_training(cfg, ..., resume=True)`, which
    refuses the changes that would alter what the run computes (`RESUME_CHANGEABLE`); None when nothing is
    stored there."""
    path = Path(out_dir) / CONFIG_FILE
    if not path.is_file():
        return None
    stored = dataclasses.asdict(TrainConfig.from_json(path.read_text()))
    given = {k: v for k, v in changes.items() if v is not None and v != {}}
    if recipe:
        given['recipe'] = recipe
    if 'model_args' in given:
        given['model_args'] = {**stored['model_args'], **given['model_args']}
    cfg = TrainConfig(**{**stored, **given}, check_unused=False)      # the stored settings are a record of what ran
    cfg.check_unused_settings(given)                                   # the changes given now are checked
    return cfg

def check_new_start(out_dir) -> None:
    """Refuse to start a new run in a folder that holds one (a split that finished an epoch)."""
    if Path(out_dir).is_dir() and has_trained(Path(out_dir)):
        raise ConfigurationError(f'{out_dir} already holds a run; pass resume=True (--resume) to continue it '
                                 f'or choose another output folder')


def has_trained(out_dir: Path) -> bool:
    """Whether any split of the run in `out_dir` has finished an epoch (a resumable state or a result)."""
    return any(out_dir.rglob(STATE_FILE)) or any(out_dir.rglob(RESULT_FILE))


#: settings a resumed run may change: they do not change what it computes or writes, only where and how it runs
RESUME_CHANGEABLE = ('device', 'batch_folds', 'compile', 'compile_mode', 'test')


def resumed_config(stored: TrainConfig, given: Optional[TrainConfig], out_dir: Path) -> TrainConfig:
    """The stored configuration of a run, with the given one's changeable settings; any other difference is
    refused with the list of differences (a resumed run must compute what the run started computing)."""
    if given is None:
        return stored
    old, new = dataclasses.asdict(stored), dataclasses.asdict(given)
    changed = {k for k in old if old[k] != new[k] and k not in RESUME_CHANGEABLE and k not in ('note', 'model_defaults')}
    if changed:
        raise ConfigurationError(
            f'{out_dir} was started with other settings; --resume continues it as it was started, so drop these flags '
            f'or start a new run: ' + '; '.join(f'{k}: run {old[k]!r}, now {new[k]!r}' for k in sorted(changed)))
    applied = {k: new[k] for k in RESUME_CHANGEABLE if old[k] != new[k]}
    if applied:
        log.info('resuming %s with %s', out_dir, ', '.join(f'{k}={v!r} (was {old[k]!r})' for k, v in applied.items()))
    return dataclasses.replace(stored, **applied, check_unused=False)     # a record of what ran
