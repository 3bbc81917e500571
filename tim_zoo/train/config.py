"""The resolved settings of one training run."""
import dataclasses
import difflib
import json
from dataclasses import InitVar, dataclass, field
from typing import Callable, Dict, Iterable, List, Optional, Tuple, Union

from .._validation import check_choice
from ..data.normalize import NORMALIZE_MODES
from ..exceptions import ConfigurationError
from ..version import MODEL_DEFAULTS
from .builders import canonical_model, function_name
from .init_file import init_architecture
from .recipes import RECIPES, get_recipe

#: the model of a run that names none, in its recipe or initial weights
DEFAULT_MODEL = 'timnet'
#: `TrainConfig.compile` and `TrainConfig.batch_folds` settings
AUTO_ON_OFF = ('auto', 'on', 'off')
#: `TrainConfig.precision` settings: float32, or the training forward under bfloat16 autocast
PRECISIONS = ('fp32', 'bf16')
#: `TrainConfig.compile_mode` settings: torch.compile's modes (`reduce-overhead` replays CUDA graphs, on CUDA only)
TORCH_COMPILE_MODES = ('default', 'reduce-overhead', 'max-autotune', 'max-autotune-no-cudagraphs')


@dataclass
class TrainConfig:
    """Everything a run needs; `from_recipe` fills it from a recipe plus overrides.

    `model` is a tim_zoo model name, a name registered with timm, or a function that builds the model (or its
    import name `"package.module:function"`); not given, it is the recipe's, else the model the initial weights
    (`init`) were saved from where their file says (`--init at_tim.tim_zoo_emodb` trains `at_tim`; only the
    architecture: its other arguments are this run's), else `timnet`. The model is called with `model_args` and, where it takes them, `num_classes`,
    `in_chans` and `seq_len` from the data and `drop_rate` from `dropout`; the function must be importable again
    (not a lambda, a local function or one in a script run as `__main__`). `init_hook(model, x)` (a function or its
    import name) runs on each split's fresh model before its first epoch, with the split's training features `x`
    `[N, C, T]` on the training device: data-dependent initialisation such as `GMMClusteringHead.init_from_data`.

    Protocols: `"kfold"` (`folds` folds, `KFold(shuffle=True, random_state=seed)` on the canonical
    corpus order, so fold i is the released model's test fold), `"loso"` (leave one speaker out) and
    `"holdout"` (seeded 0.8 / 0.1 / 0.1) and `"all"` (train on everything, last epoch, no test: a
    model to ship). The validation split is carved from the training part
    (`val_fraction`; speaker-disjoint under loso); `select="val"` keeps the epoch with the best
    validation accuracy, `"last"` the last epoch. The test part never chooses anything; `test=False` does not
    evaluate it at all (runs that make a choice on validation accuracy: their results and logs hold no test figure).
    `normalize` (`"none"`, `"speaker_mean"`, `"speaker"`) normalises the features per speaker
    before training (see `normalize_by_speaker`). `repeats` runs the whole protocol that many times on the
    same splits (`seed` fixes the splits); repeat `r` (1-based) trains with seed `seed + r - 1`. `batch_folds`
    trains the splits of a run together when the model allows it (`tim_zoo.train.folds`; the same computation,
    equal up to rounding): `"on"`, `"off"`, or `"auto"`: on for CUDA in one process (a 10-fold `timnet.paper` run on
    an H200 took 0.39x the time of eager one-by-one training, ahead of compiled one by one), off elsewhere (1.8x
    slower on a 2-core CPU); `True`/`False` read as `"on"`/`"off"`.
    `compile` compiles the one-by-one training step with `torch.compile` (`"on"`, `"off"`, or `"auto"`: on for CUDA
    in one process, off elsewhere; on a CPU compiling `timnet` takes about a minute, seconds once inductor's cache
    holds it, then a step takes about 0.75x the time, while the Transformer hybrids ran no faster); the same
    computation up to rounding, and a compile failure in the first epoch falls back to eager training (logged).
    Configurations written before `compile` existed read as `"off"`. `compile_mode` is torch.compile's `mode`
    (`"reduce-overhead"` also records and replays CUDA graphs on CUDA); where `compile="auto"` compiles nothing only
    at run time (CUDA under several processes), a mode other than `"default"` is logged as unused. `only_folds` and
    `only_repeats` (1-based) run a part of a run, so that processes can share it: `benchmarks/collect_run.py` joins
    their folders.
    `precision` is `"fp32"` or `"bf16"`: the training forward pass under bfloat16 autocast (weights, optimizer and
    the loss stay float32; validation and test run in float32). Only where the device computes bfloat16 natively (a
    CPU with AVX-512 BF16 or AMX, a CUDA GPU that supports it); elsewhere it is refused (emulated bf16 is hundreds of
    times slower). Configurations written before it read as `"fp32"`.
    `model_defaults` is the version of the model definitions the run builds its model with (`tim_zoo.version`);
    a configuration written before it was recorded reads as 1 and is rebuilt with those definitions
    (`tim_zoo.weights.legacy`).
    """
    model: Optional[Union[str, Callable]] = None
    model_args: Dict[str, object] = field(default_factory=dict)
    recipe: Optional[str] = None
    optimizer: str = 'adamw'
    lr: float = 4e-4
    weight_decay: float = 0.2
    betas: Tuple[float, float] = (0.93, 0.98)
    momentum: float = 0.9
    scheduler: str = 'step'
    step_size: int = 30
    gamma: float = 0.3
    warmup_steps: int = 400
    epochs: int = 100
    batch_size: int = 64
    dropout: Optional[float] = 0.1
    label_smoothing: float = 0.1
    frame_mask: float = 0.0
    grad_clip: Optional[float] = None
    seed: int = 34
    protocol: str = 'holdout'
    folds: int = 10
    repeats: int = 1
    batch_folds: str = 'auto'
    compile: str = 'auto'
    compile_mode: str = 'default'
    precision: str = 'fp32'
    only_folds: Optional[List[int]] = None
    only_repeats: Optional[List[int]] = None
    val_fraction: float = 0.1
    select: str = 'val'
    test: bool = True
    init_hook: Optional[Union[str, Callable]] = None
    init: Optional[str] = None
    freeze: List[str] = field(default_factory=list)
    lr_mult: Dict[str, float] = field(default_factory=dict)
    gmm_select: Optional[int] = None
    gmm_fits: int = 8
    normalize: str = 'none'
    device: str = 'cpu'
    note: str = ''
    model_defaults: int = MODEL_DEFAULTS
    #: refuse settings this run would not use (`unused_settings`) given other than their recipe's or default
    #: value; False for a configuration read back from a run, which is a record of what ran
    check_unused: InitVar[bool] = True

    def __post_init__(self, check_unused: bool = True):
        if self.model is None:
            self.model = (self.init and init_architecture(self.init)) or DEFAULT_MODEL
        self.model = canonical_model(self.model)          # functions are kept by import name: the config is JSON
        if self.init_hook is not None:
            self.init_hook = function_name(self.init_hook, 'init_hook')
        check_choice('optimizer', self.optimizer, ('adamw', 'adam', 'sgd'))
        check_choice('scheduler', self.scheduler, ('step', 'cosine', 'noam', 'none'))
        check_choice('protocol', self.protocol, ('kfold', 'loso', 'holdout', 'all'))
        check_choice('select', self.select, ('val', 'last'))
        check_choice('normalize', self.normalize, NORMALIZE_MODES)
        if isinstance(self.batch_folds, bool):          # configurations and callers from before 'auto'
            self.batch_folds = 'on' if self.batch_folds else 'off'
        check_choice('batch_folds', self.batch_folds, AUTO_ON_OFF)
        check_choice('compile', self.compile, AUTO_ON_OFF)
        check_choice('compile_mode', self.compile_mode, TORCH_COMPILE_MODES)
        check_choice('precision', self.precision, PRECISIONS)
        if not 0.0 <= self.val_fraction < 1.0:
            raise ConfigurationError(f'val_fraction must be in [0, 1), got {self.val_fraction}')
        self.betas = tuple(self.betas)
        if check_unused:
            self.check_unused_settings()
        if self.protocol == 'all':
            self.val_fraction, self.select = 0.0, 'last'
        if self.select == 'val' and self.val_fraction == 0.0:
            raise ConfigurationError('select="val" needs a validation split (val_fraction > 0); use select="last"')
        if self.protocol == 'kfold' and self.folds < 2:
            raise ConfigurationError(f'k-fold needs at least 2 folds, got folds={self.folds}')
        if self.repeats < 1:
            raise ConfigurationError(f'repeats must be >= 1, got {self.repeats}')
        bad = [r for r in self.only_repeats or [] if not 1 <= r <= self.repeats]
        if bad:
            raise ConfigurationError(f'only_repeats {bad}: the run has repeats 1 to {self.repeats} (repeats='
                                     f'{self.repeats})')
        if self.epochs < 1 or self.batch_size < 1:
            raise ConfigurationError(f'epochs and batch_size must be >= 1, got {self.epochs} and {self.batch_size}')

    def unused_settings(self) -> Dict[str, str]:
        """The settings this run does not use, each with why (e.g. `step_size` with `scheduler="none"`)."""
        why = {}
        if self.optimizer == 'sgd':
            why['betas'] = 'optimizer="sgd" has no betas (adam and adamw have)'
        else:
            why['momentum'] = f'optimizer={self.optimizer!r} has no momentum setting (sgd has)'
        if self.scheduler != 'step':
            why['step_size'] = why['gamma'] = f'scheduler={self.scheduler!r}: only scheduler="step" decays in steps'
        if self.scheduler != 'noam':
            why['warmup_steps'] = f'scheduler={self.scheduler!r}: only scheduler="noam" warms up'
        if self.protocol != 'kfold':
            why['folds'] = f'protocol={self.protocol!r} has no folds to count (folds sets protocol="kfold")'
        if self.protocol == 'all':
            why['val_fraction'] = why['select'] = ('protocol="all" trains on every utterance and keeps the last '
                                                   'epoch (no validation split)')
        if self.compile == 'off' or (self.compile == 'auto' and self.device == 'cpu'):
            why['compile_mode'] = (f'compile={self.compile!r} trains eagerly on {self.device}: nothing is compiled '
                                   f'(pass compile="on")')
        if self.gmm_select is None:
            why['gmm_fits'] = 'no GMM frame selection (gmm_fits sets gmm_select\'s)'
        if self.dropout is not None and self.model_args.get('drop_rate', self.dropout) != self.dropout:
            why['dropout'] = (f'model_args drop_rate={self.model_args["drop_rate"]!r} sets the model\'s dropout: give '
                              f'one of them')
        return why

    def check_unused_settings(self, given: Optional[Iterable[str]] = None) -> None:
        """Refuse the unused settings (`unused_settings`) among `given` (e.g. the flags of a resumed run), or, without
        it, those whose value is not the one nobody gave (the recipe's, else the default)."""
        unused = self.unused_settings()
        if given is None:
            baseline = {f.name: f.default for f in dataclasses.fields(self)}
            baseline.update(RECIPES.get(self.recipe, {}) if self.recipe else {})
            consistent = dict(val_fraction=0.0, select='last')   # what protocol="all" uses anyway
            given = [k for k in unused
                     if getattr(self, k) != baseline[k] and getattr(self, k) != consistent.get(k, baseline[k])]
        wrong = {k: why for k, why in unused.items() if k in set(given)}
        if wrong:
            raise ConfigurationError('settings this run would not use: ' + '; '.join(
                f'{k}={getattr(self, k)!r} ({why})' for k, why in wrong.items()))

    @classmethod
    def from_recipe(cls, recipe: Optional[str] = None, **overrides) -> 'TrainConfig':
        """Recipe settings (`"default"` when None), then `overrides` (None values are ignored)."""
        settings = get_recipe(recipe or 'default')
        settings['recipe'] = recipe or 'default'
        model_args = {**settings.pop('model_args', {}), **(overrides.pop('model_args', None) or {})}
        settings.update({k: v for k, v in overrides.items() if v is not None})
        unknown = set(settings) - {f.name for f in dataclasses.fields(cls)}
        if unknown:
            fields = [f.name for f in dataclasses.fields(cls)]
            raise ConfigurationError('unknown training settings: ' + ', '.join(
                f'{u} (did you mean {c[0]}?)' if (c := difflib.get_close_matches(u, fields, n=1)) else u
                for u in sorted(unknown)))
        return cls(model_args=model_args, **settings)

    def to_json(self) -> str:
        return json.dumps(dataclasses.asdict(self), indent=2)

    @classmethod
    def from_json(cls, text: str) -> 'TrainConfig':
        settings = json.loads(text)
        settings.setdefault('compile', 'off')            # a run from before `compile` trained eagerly
        settings.setdefault('batch_folds', 'off')        # ... and one by one unless it said otherwise
        settings.setdefault('model_defaults', 1)         # ... and with the model definitions of version 1
        return cls(**settings, check_unused=False)
