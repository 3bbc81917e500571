"""The runs the zoo's EMODB table needs: what is done, what is left, and starting the next ones in the background.

    python benchmarks/zoo.py status                 # every run: splits done / running / left, projected hours
    python benchmarks/zoo.py start --jobs 2         # start (or resume) the next splits, one process and thread each
    python benchmarks/zoo.py start --device cuda --jobs 14 --runs table.   # fp32 splits on a GPU (zoo_gpu.sh)
    python benchmarks/zoo.py stop                   # stop the running splits (they resume at the next start)
    python benchmarks/zoo.py features               # the table's feature file alone (carried to a GPU machine)
    python benchmarks/zoo.py unpack gpu_runs.tgz    # take splits finished on another machine (zoo_gpu.sh), then collect
    python benchmarks/zoo.py collect                # copy finished splits into docs/results/zoo/ (commit them)
    python benchmarks/zoo.py choose                 # the protocol choices, on validation accuracy only
    python benchmarks/zoo.py supersede RUN --why "..."   # set a run aside (kept) so that it trains afresh

Each split of each run trains in its own process (`python -m tim_zoo.train ... --fold K --threads 1`), in
`runs/zoo/<run>/fold<K>/`, and is resumed with `--resume` after an interruption. Run folders are not kept from one
machine to the next (splits finished on a lent GPU come back packed: `unpack`); finished splits are: `collect`
copies each split's `config.json` and `result.json` (with its per-epoch history and the machine it trained on) into
the tracked `docs/results/zoo/<run>/<split>/`, the layout of a run folder, and a split found there is done. So a new
machine loses at most the splits in progress. Once every split of a table, finding, leave-one-speaker-out or
first-repeat run is there, `collect` also writes `docs/results/zoo_<run>.json` (`benchmarks/collect_run.py`'s
format, which `benchmarks/make_tables.py` renders), and once a model's repeats are all in,
`docs/results/zoo_repeats.<model>.json`. Runs of the `choice` stage decide the table's protocol (feature setting,
input length); their tracked results keep the validation history and drop every test figure, so that no choice can
look at the test folds (`choose` reads validation accuracy only). Projected hours come from
`benchmarks/results/zoo_cost_*.json`.
"""
import argparse
import dataclasses
import json
import os
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Dict, List, Optional, Tuple

from tim_zoo.models._zoo import tag_precision, zoo_precision, zoo_recipe

import collect_run     # benchmarks/ siblings: on sys.path as this script's folder
import zoo_cost

ROOT = Path(__file__).resolve().parents[1]
RUNS = ROOT / 'runs' / 'zoo'
TRACKED = ROOT / 'docs' / 'results' / 'zoo'
EMODB = ROOT.parent / 'shared' / 'data' / 'emodb' / 'wav'
FOLDS = 10
#: how the splits run (results files say it after the machines)
HOW = 'one process per split, one thread each'
#: where `start` writes, in a split's run folder, the machine it started on (`collect` copies it into the result)
MACHINE_FILE = 'machine.txt'
#: the machine of the splits collected before each split recorded its own (`machine` in its tracked result)
EARLIER_MACHINE = 'AMD EPYC (Zen 4, avx512_bf16), 2 cores'

#: feature settings: name -> (MFCC order, samples per utterance at 22050 Hz: 44100 = the shared copy's 2.0 s, 87
#: frames; 96000 = the TIM-Net release length, 188 frames, more than half of it zero padding)
FEATURES = {'o1_87': (1, 44100), 'o1_188': (1, 96000), 'o3_87': (3, 44100)}


@dataclass
class Run:
    """One row's training: `model` with `recipe` on the features `features`, the authors' 10 folds (seed 46)."""
    name: str
    model: str
    recipe: str
    features: str
    stage: str = 'choice'
    precision: str = 'fp32'
    compile: str = 'off'
    seed: int = 46
    protocol: str = 'kfold'
    extra: List[str] = field(default_factory=list)
    #: the `--fold` indices: the k-fold's folds, loso's speakers (in sorted order), `all`'s single split
    folds: Tuple[int, ...] = tuple(range(1, FOLDS + 1))
    #: `start` takes runs of a lower order first, then in list order
    order: int = 0
    #: repeat r of the protocol: the same splits (`seed`), training seed `seed + repeat - 1`; repeat 1 is the run
    #: without `--repeats`
    repeat: int = 1

    @property
    def frames(self) -> int:
        return 1 + FEATURES[self.features][1] // 512

    def splits(self) -> List[str]:
        return [f'fold{k}' for k in self.folds]

    def command(self, split: str, resume: bool, device: str = 'cpu') -> List[str]:
        k = int(split[4:])
        cmd = [sys.executable, '-m', 'tim_zoo.train', '--features', str(feature_file(self.features)),
               '--model', self.model, '--recipe', self.recipe, '--seed', str(self.seed), '--protocol', self.protocol,
               '--fold', str(k), '--threads', '1', '--compile', self.compile, '--precision', self.precision, '--quiet',
               '--out', str(RUNS / self.name / split)] + self.extra
        if device != 'cpu':
            cmd += ['--device', device]
        if self.repeat > 1:
            cmd += ['--repeats', str(self.repeat), '--repeat', str(self.repeat)]
        if self.stage in CHOICE_STAGES:                   # a choice never sees the test folds, not even in a log
            cmd.append('--no-test')
        return cmd + ['--resume'] if resume else cmd

    def result(self, split: str, root: Path = None) -> Optional[Path]:
        """The split's `result.json` under `root` (the run folders, or the tracked copy): `<split>/<name>/` where
        `<name>` is the protocol's (`fold3`, `speaker_03`, `all`), inside `repeat<r>/` for a repeat."""
        base = (root or RUNS) / self.name / split / (f'repeat{self.repeat}' if self.repeat > 1 else '')
        found = sorted(p for p in base.glob('*/result.json') if not p.parent.name.startswith('repeat'))
        return found[0] if found else None


#: stages that choose (the protocol, a recipe): validation only, no test figure is computed or kept
CHOICE_STAGES = ('choice', 'recipe')
#: the folds the recipe probes use (their validation parts: 3 x 48 utterances); enough to tell an underfitting recipe
PROBE_FOLDS = (1, 2, 3)

#: the protocol choices: timnet and one seed model on validation data, per feature setting (`choose`); timnet's
#: step runs compiled (0.8x on this CPU, docs/speed.md), the seed models' eagerly (no faster compiled)
RUNS_LIST = [
    Run('choice.timnet.o1_87', 'timnet', 'timnet.paper_val', 'o1_87', compile='on'),
    Run('choice.timnet.o1_188', 'timnet', 'timnet.paper_val', 'o1_188', compile='on'),
    Run('choice.timnet.o3_87', 'timnet', 'timnet.paper_val', 'o3_87', compile='on'),
    # the notes' default recipe on the probe folds: train WAR 0.70-0.77 at epoch 100 (the lr below 4e-5 from epoch
    # 60), validation 0.51, so the seed models' recipe is adapted first (stage `recipe`, below)
    Run('choice.at_deltatim_v2.o1_87', 'at_deltatim_v2', 'default', 'o1_87', extra=['--select', 'val'],
        folds=PROBE_FOLDS),
]
#: recipe probes for the seed models, from the notes' recipes, on validation of the probe folds: (name, the
#: settings changed from `default`, why)
RECIPE_PROBES = [
    ('lr1e-3', ['--lr', '1e-3'], 'the MODMA transformer_tim recipe\'s lr, the default\'s step schedule'),
    ('lr1e-3_const', ['--lr', '1e-3', '--scheduler', 'none'], 'timnet\'s constant lr (the chosen one: on all folds, the\n'
     '    fp32 side of the bf16 check)'),
    ('lr1e-3_cos200', ['--lr', '1e-3', '--scheduler', 'cosine', '--epochs', '200'], 'longer, annealed to zero'),
]
RUNS_LIST += [Run(f'recipe.at_deltatim_v2.{name}', 'at_deltatim_v2', 'default', 'o1_87', stage='recipe',
                  extra=['--select', 'val'] + args, folds=tuple(range(1, FOLDS + 1)) if name == 'lr1e-3_const' else
                  PROBE_FOLDS, order=1 if name == 'lr1e-3_const' else 0) for name, args, _ in RECIPE_PROBES]
#: the seed models' recipe from the probes: each fits the training folds (train WAR 0.95-0.99 at lr 1e-3), none
#: lifts validation much above 0.55; a constant lr as timnet's recipe keeps the two families' protocols alike
SEED_RECIPE = ['--lr', '1e-3', '--scheduler', 'none']
RUNS_LIST += [
    # the feature settings with the seed recipe, on the probe folds
    Run('choice.at_deltatim_v2.const.o3_87', 'at_deltatim_v2', 'default', 'o3_87', extra=['--select', 'val'] + SEED_RECIPE,
        folds=PROBE_FOLDS),
    Run('choice.at_deltatim_v2.const.o1_188', 'at_deltatim_v2', 'default', 'o1_188',
        extra=['--select', 'val'] + SEED_RECIPE, folds=PROBE_FOLDS),
    # bf16 autocast against fp32 (recipe.at_deltatim_v2.lr1e-3_const) on all 10 folds' validation, before the heavy
    # rows use it
    Run('recipe.at_deltatim_v2.lr1e-3_const.bf16', 'at_deltatim_v2', 'default', 'o1_87', stage='recipe',
        precision='bf16', extra=['--select', 'val'] + SEED_RECIPE, order=1),
]

#: the feature setting of the table, chosen by `choose` on validation only: MFCC order 1 at 87 frames (the copy's
#: 2.0 s). The three settings differ by less than the fold noise for both models (timnet, 10 splits: o1_87 82.3,
#: o1_188 82.9, o3_87 80.4; at_deltatim_v2 with the seed recipe, folds 1-3: 54.2 / 52.8 / 56.9), and 188 frames cost
#: 2 to 3 times as much (docs/speed.md)
TABLE_FEATURES: Optional[str] = 'o1_87'
#: the table's recipe per model is `zoo_recipe(model)` (the paper's for timnet, `seed.emodb` for the TIM-family seed
#: models, `transformer.emodb` for the Transformer family), last epoch on all training utterances of each fold (no
#: validation carve): what the published models, trained on all 535, take. `seed.emodb` is `SEED_RECIPE` on the
#: notes' default, 10-fold, last epoch, as a named recipe; the recipe probes start from it
SEED_TABLE_RECIPE = 'seed.emodb'
#: the precision of each table row is `zoo_precision(model)`: bf16 autocast for the rows that trained under it on a
#: Zen 4 (`BF16_ROWS`: `recipe.at_deltatim_v2.lr1e-3_const.bf16` agreed with its fp32 run on all 10 validation splits,
#: bf16 - fp32 in validation WAR at the last epoch: +1.25 points, sample std 3.7, standard error 1.2), fp32 for the
#: others (timnet, which gains nothing from bf16: docs/speed.md, and the rows left when five sessions in a row had an
#: AVX2-only CPU, where bf16 autocast is refused)
TABLE_MODELS = ('timnet', 'tim', 'transformer', 'transformer_tim', 'transformer_deltatim', 'mltransformer_tim',
                'at_tim', 'at_deltatim', 'at_deltatim_v2', 'multitim', 'cnn_transformer', 'cnn_ml_transformer', 'set',
                'set_official')
#: rows held back (last in `start`'s order) until their recipe is probed on validation, and given no results file
#: (`zoo_table.<model>.json`, which the pages quote) until then. The Transformer family waited here until
#: `transformer.emodb` was chosen (TRANSFORMER_PROBES)
RECIPE_PENDING: Tuple[str, ...] = ()
#: recipe probes for the Transformer family, on transformer_tim (5 of its 10 table folds never fitted their training
#: data: train WAR 0.22 to 0.83 at epoch 100, folds 1 and 4 at chance; fold 1's train loss 130 after the first epoch): `seed.emodb` with a validation carve (10 %) on the probe
#: folds, bf16 as the table; (name, the settings changed, why). First in `start`'s order: they decide eight rows.
#: Validation WAR at the last epoch, folds 1-3: seed 49.3, lr1e-4 76.4, clip1 50.0, noam 77.1; lr 1e-4 and the
#: warm-up train every fold (training WAR 0.99-1.00), clipping does not. Chosen: lr 1e-4 held constant
#: (`transformer.emodb`), the notes' own lr for the model, as good as the warm-up and one setting simpler
TRANSFORMER_PROBES = [
    ('seed', [], 'the table recipe as it is (constant lr 1e-3): the baseline'),
    ('lr1e-4', ['--lr', '1e-4'], 'the notes\' IEMOCAP transformer_tim lr: "the lower lr stops big swings"'),
    ('clip1', ['--grad-clip', '1'], 'lr 1e-3 with the gradient norm clipped at 1'),
    ('noam', ['--scheduler', 'noam', '--warmup-steps', '70'], 'lr 1e-3 reached after a 10-epoch linear warm-up (7 '
     'steps an epoch), then 1/sqrt(step) decay'),
]
RUNS_LIST += [Run(f'recipe.transformer_tim.{name}', 'transformer_tim', SEED_TABLE_RECIPE, 'o1_87', stage='recipe',
                  precision='bf16', extra=['--val-fraction', '0.1'] + args, folds=PROBE_FOLDS, order=-1)
              for name, args, _ in TRANSFORMER_PROBES]
#: the same lr on the attention TIM models, which fit their training folds at lr 1e-3 (0.99) but reach 57 % on
#: validation; the baseline is `recipe.at_deltatim_v2.lr1e-3_const.bf16` (the same settings at lr 1e-3). Chosen on
#: validation like every recipe: a win would rerun the TIM-family rows and tags with it. Outcome (folds 1-3): 46.5 %
#: at the last epoch (best epoch 51.4) against 56.9 % at lr 1e-3, training accuracy only 0.58-0.62 after 100
#: epochs: lr 1e-4 underfits these models, so `seed.emodb` stays the TIM family's recipe
RUNS_LIST += [Run('recipe.at_deltatim_v2.lr1e-4', 'at_deltatim_v2', SEED_TABLE_RECIPE, 'o1_87', stage='recipe',
                  precision='bf16', extra=['--val-fraction', '0.1', '--lr', '1e-4'], folds=PROBE_FOLDS,
                  order=-1)]
#: the models of tier 2 (repeats and leave one speaker out) and, but timnet, of the packaged tags
TIER2_MODELS = ('timnet', 'tim', 'at_tim', 'at_deltatim', 'at_deltatim_v2', 'multitim')
#: beyond tier 2: the table's best row after timnet (transformer_deltatim, 80.6 %) with a speaker held out, so that
#: the figure a researcher asks next of the runner-up ("and on a speaker it never heard?") is measured too; 10
#: splits, about 3.3 single-thread hours (a GPU's batch)
EXTRA_LOSO = ('transformer_deltatim',)
#: training seeds per tier-2 model
REPEATS = 3
#: the notes' findings the zoo tests (tier 3): a variant run per finding, compared over the same splits with the
#: run it varies (`finding_base`; `make_tables` compare blocks); `(name, model, model arguments, the finding)`
FINDINGS = [
    ('tim.mul', 'tim', dict(residual='mul'), 'for plain TIM the additive TAB residual was much better'),
    ('at_deltatim.mul', 'at_deltatim', dict(residual='mul'), 'for AT_DeltaTIM the multiplicative residual was better'),
    ('at_deltatim.all', 'at_deltatim', dict(aggregation='all'), 'the 7 deltas + last level are as good as all levels'),
    ('tim.stem_norm', 'tim', dict(stem_norm=True), 'BatchNorm + ReLU after the stem stabilises every TIM variant'),
    ('set_official.pos', 'set_official', dict(pos_embed=True), 'SET_official settles higher without positional '
     'encoding: 90 % without, 86 % with (the notes\' corpus, MODMA, and their split)'),
    ('set_official.pos_sincos', 'set_official', dict(pos_embed=True, pos_encoding='sincos'),
     'the same with a real sinusoidal encoding (the research table is a defect)'),
    ('at_deltatim_v2.standard', 'at_deltatim_v2', dict(fusion_style='standard'),
     'AT_DeltaTIM_v2 with the corrected attention (its findings rest on the research attention)'),
]
#: tier 2 and the findings train in fp32, the reference precision, which every machine runs (bf16 autocast needs
#: avx512_bf16 or amx_bf16, and is refused on an AVX2-only CPU); a paired comparison needs both sides in one precision
TIER2_PRECISION = 'fp32'
#: the tier-2 models whose table row trained in another precision than their repeats (`BF16_ROWS`): they get a
#: `repeat.<m>.r1`, the row's command in fp32 (the same seed and splits), so that their three repeats share one
#: precision and, paired with the bf16 row, check bf16 autocast on a full 10-fold test run
SEED_TIER2 = tuple(m for m in TIER2_MODELS if zoo_precision(m) != TIER2_PRECISION)
#: `start`'s order after the probes and the published models (order -1), and the bf16 rows' folds left (0, which
#: only a CPU with native bf16 runs): first (1) these runs, which finish what a
#: page shows in part (tim's tier 2) and give tier 3 its four findings (at_deltatim's two, on its fp32 repeat 1); then
#: (2) the tier-1 rows still missing, the small models' first; then (3) the rest of tier 2, which the issue's "done"
#: needs; then (4) the findings left, beyond tier 3's first four; last (5) rows whose recipe is still probed
#: (`RECIPE_PENDING`)
FIRST_RUNS = ('repeat.tim.r3', 'loso.tim', 'repeat.at_deltatim.r1', 'finding.at_deltatim.mul',
              'finding.at_deltatim.all')


def finding_base(model: str) -> str:
    """The run a finding on `model` is compared with over the same splits: the same training in its precision."""
    return f'repeat.{model}.r1' if model in SEED_TIER2 else f'table.{model}'


def repeat_parts(model: str) -> List['Run']:
    """A tier-2 model's repeats in repeat order: `repeat.<m>.r<r>`, with its table row as repeat 1 where it has no
    `repeat.<m>.r1` (timnet, whose table row is fp32 like its repeats)."""
    parts = [r for r in RUNS_LIST if r.model == model and r.stage == 'repeat']
    if not any(r.repeat == 1 for r in parts):
        parts += [r for r in RUNS_LIST if r.name == f'table.{model}']
    return sorted(parts, key=lambda r: r.repeat)


if TABLE_FEATURES is not None:
    def _table_run(name: str, model: str, model_args: dict, stage: str, precision: Optional[str] = None) -> Run:
        extra = []
        for key, value in model_args.items():         # the CLI reads JSON values; a string goes as it is
            extra += ['--model-arg', f'{key}={value if isinstance(value, str) else json.dumps(value)}']
        precision = precision or zoo_precision(model)
        # a bf16 row's folds run only on a CPU with native bf16 (unsupported elsewhere): first where one is lent
        order = (5 if model in RECIPE_PENDING else 0 if precision == 'bf16' else 1 if name in FIRST_RUNS
                 else 2 if stage == 'table' else 4 if stage == 'finding' else 3)
        return Run(name, model, zoo_recipe(model), TABLE_FEATURES, stage=stage,
                   compile='on' if model == 'timnet' else 'off', precision=precision,
                   extra=extra, order=order)
    RUNS_LIST += [_table_run(f'table.{m}', m, {}, 'table')
                  for m in sorted(TABLE_MODELS, key=lambda m: m not in TIER2_MODELS)]
    RUNS_LIST += [_table_run(f'finding.{name}', m, args, 'finding')
                  for name, m, args, _ in FINDINGS if m not in TIER2_MODELS]
    # the published models (`<model>.tim_zoo_emodb`): the table recipe once on all 535 utterances (under bf16 autocast
    # on a Zen 4: `tag_precision`); first, they are short (about 1.25 folds each). timnet's tag is the bundled model
    # (timnet.paper at the release's 188 frames, tim_zoo.pretrained), which the table does not replace
    RUNS_LIST += [dataclasses.replace(_table_run(f'tag.{m}', m, {}, 'tag', tag_precision(m)), protocol='all',
                                      folds=(1,), order=-1)
                  for m in TIER2_MODELS if m != 'timnet']
    # tier 2: repeats 2 and 3 (training seeds 47, 48 on the same splits) and leave one speaker out (EMODB's 10
    # speakers), and the findings on these models, model by model: a `SEED_TIER2` model's fp32 repeat 1 first (its
    # findings' base); the cheapest first, and at_deltatim (two findings) before at_tim
    TIER2_ORDER = ('timnet', 'tim', 'at_deltatim', 'at_tim', 'at_deltatim_v2', 'multitim')
    assert sorted(TIER2_ORDER) == sorted(TIER2_MODELS)
    for m in TIER2_ORDER:
        firsts = [1] if m in SEED_TIER2 else []
        RUNS_LIST += [dataclasses.replace(_table_run(f'repeat.{m}.r{r}', m, {}, 'repeat', TIER2_PRECISION), repeat=r)
                      for r in firsts]
        RUNS_LIST += [_table_run(f'finding.{name}', model, args, 'finding', TIER2_PRECISION)
                      for name, model, args, _ in FINDINGS if model == m]
        RUNS_LIST += [dataclasses.replace(_table_run(f'repeat.{m}.r{r}', m, {}, 'repeat', TIER2_PRECISION), repeat=r)
                      for r in range(2, REPEATS + 1)]
        RUNS_LIST += [dataclasses.replace(_table_run(f'loso.{m}', m, {}, 'loso', TIER2_PRECISION), protocol='loso')]
    # beyond tier 2, with the findings left (order 4): `EXTRA_LOSO` with a speaker held out
    RUNS_LIST += [dataclasses.replace(_table_run(f'loso.{m}', m, {}, 'loso', TIER2_PRECISION), protocol='loso',
                                      order=4) for m in EXTRA_LOSO]


def feature_file(name: str) -> Path:
    return RUNS / 'features' / f'emodb_{name}.npz'


def ensure_features(name: str) -> Path:
    """The EMODB feature file of setting `name`, extracted from ../shared once (level peak, as the bundled model)."""
    path = feature_file(name)
    if not path.exists():
        from tim_zoo.data import MFCCExtractor, cached_features, load_corpus
        order, length = FEATURES[name]
        path.parent.mkdir(parents=True, exist_ok=True)
        cached_features(load_corpus('emodb', EMODB), MFCCExtractor(length, 39, order=order, level='peak'), path)
    return path


def tracked(run: Run, split: str) -> Optional[Path]:
    """The tracked copy of a finished split's `result.json` (in `<split>/`, the layout of the run folder, beside the
    run's `config.json`); None until collected."""
    return run.result(split, TRACKED)


def _jobs() -> Dict[str, int]:
    path = RUNS / 'jobs.json'
    jobs = json.loads(path.read_text()) if path.exists() else {}
    return {key: pid for key, pid in jobs.items() if _alive(pid)}


def _save_jobs(jobs: Dict[str, int]) -> None:
    """Write the running splits' process ids, which `_jobs` reads back."""
    (RUNS / 'jobs.json').parent.mkdir(parents=True, exist_ok=True)
    (RUNS / 'jobs.json').write_text(json.dumps(jobs, indent=1))


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except OSError:
        return False
    return True


def _epochs_done(run: Run, split: str) -> int:
    log = RUNS / run.name / split / 'train.log'
    if not log.exists():
        return 0
    return sum(1 for line in log.read_text().splitlines() if f'{split} epoch ' in line and 'train_loss' in line)


def _epochs(run: Run) -> int:
    from tim_zoo.train import get_recipe
    if '--epochs' in run.extra:
        return int(run.extra[run.extra.index('--epochs') + 1])
    return get_recipe(run.recipe)['epochs']


def _epoch_seconds(run: Run, rows: Optional[List[dict]] = None) -> Optional[float]:
    """Seconds of one epoch of `run` at the cost measured in `rows` (default: `zoo_cost.COST_FILE`'s), scaled from
    the nearest measured length; None where its model and precision were not measured."""
    cost = zoo_cost
    step_s = cost.step_seconds(run.model, run.precision, run.frames, rows)
    return None if step_s is None else step_s * cost.STEPS_PER_EPOCH


def _attempts() -> Dict[str, List[int]]:
    path = RUNS / 'attempts.json'
    return json.loads(path.read_text()) if path.exists() else {}


def split_state(run: Run, split: str, jobs: Dict[str, int], attempts: Optional[Dict[str, List[int]]] = None) -> str:
    """done (tracked), finished (not yet collected), running, failed (started twice more without an epoch's
    progress: see its `<split>.out`), unsupported (bf16 on a device without native bf16), started or pending.
    `attempts`: the start attempts (`_attempts()`, read here when not given)."""
    if tracked(run, split) is not None:
        return 'done'
    if run.result(split) is not None:
        return 'finished'                                 # not yet collected
    if f'{run.name}/{split}' in jobs:
        return 'running'
    if run.precision == 'bf16' and not _native_bf16():
        return 'unsupported'
    starts = (_attempts() if attempts is None else attempts).get(f'{run.name}/{split}', [])
    if len(starts) >= 3 and len(set(starts[-3:] + [_epochs_done(run, split)])) == 1:
        return 'failed'
    return 'started' if (RUNS / run.name / split).exists() else 'pending'


def _native_bf16() -> bool:
    import torch

    from tim_zoo._validation import native_bf16
    return native_bf16(torch.device('cpu'))


def table_hours(rows: List[dict]) -> Tuple[float, List[str]]:
    """Single-thread hours of one repeat of the zoo table as it trains (each row's precision, epochs and length)
    at the epoch costs `rows` (a `zoo_cost` results file's), and the rows whose cost was not measured."""
    hours, missing = 0.0, []
    for run in RUNS_LIST:
        if run.stage == 'table':
            epoch_s = _epoch_seconds(run, rows)
            if epoch_s is None:
                missing.append(run.model)
            else:
                hours += epoch_s * _epochs(run) * len(run.folds) / 3600
    return hours, missing


def cmd_status(args) -> int:
    jobs, attempts = _jobs(), _attempts()
    total_h = 0.0
    print(f'{"run":40s} {"done":>4s} {"fin":>4s} {"run":>4s} {"left":>4s} {"hours left":>10s}  note')
    for run in RUNS_LIST:
        states = [split_state(run, s, jobs, attempts) for s in run.splits()]
        epoch_s, epochs = _epoch_seconds(run), _epochs(run)
        left = sum(epochs - _epochs_done(run, s) for s, st in zip(run.splits(), states) if st not in ('done', 'finished'))
        hours = None if epoch_s is None else left * epoch_s / 3600
        total_h += hours or 0.0
        notes = [f'{st}: {", ".join(s for s, t in zip(run.splits(), states) if t == st)}'
                 for st in ('failed', 'unsupported') if st in states]
        print(f'{run.name:40s} {states.count("done"):4d} {states.count("finished"):4d} {states.count("running"):4d} '
              f'{sum(st in ("pending", "started") for st in states):4d} '
              f'{"?" if hours is None else f"{hours:.1f}":>10s}  {"; ".join(notes)}')
    print(f'projected: {total_h:.1f} single-thread hours left at the speed of {zoo_cost.COST_FILE.name} '
          f'(this machine: '
          f'{this_machine()}; bf16 runs only where it has avx512_bf16 or amx_bf16)')
    if TABLE_FEATURES is None:
        print('table runs: not listed until TABLE_FEATURES is set from `choose` (validation accuracy only)')
    return 0


def _chosen_runs(patterns: Optional[List[str]]) -> List[Run]:
    """`RUNS_LIST` in start order (`order`, then list order), or, given name `patterns` (a run's name or the start
    of names: `table.`), the runs they match in the patterns' order."""
    runs = sorted(RUNS_LIST, key=lambda r: r.order)
    if not patterns:
        return runs
    matched = {p: [r for r in runs if r.name == p or (p.endswith('.') and r.name.startswith(p))] for p in patterns}
    unknown = [p for p, found in matched.items() if not found]
    if unknown:
        raise SystemExit(f'--runs: no run is named {", ".join(unknown)} (`status` lists them; end a prefix with ".")')
    chosen = {r.name: r for p in patterns for r in matched[p]}        # the first pattern that names a run places it
    return list(chosen.values())


def machine_record(device: str) -> str:
    """The machine a split starts on, in words: this CPU, or the GPU `device` with this machine's CPU beside it."""
    if device == 'cpu':
        return this_machine()
    import torch
    dev = torch.device(device)
    return f'{torch.cuda.get_device_name(dev)} (CUDA, fp32 without TF32) on a host with {this_machine()}'


def split_machines(folder: Path) -> str:
    """Where the split in run folder `folder` trained, in words: each machine it started on (`start` adds a line
    per start), in order, or this machine for a split started before splits recorded theirs."""
    record = folder / MACHINE_FILE
    lines = list(dict.fromkeys(record.read_text().split('\n'))) if record.exists() else []
    return ' then '.join(line for line in lines if line) or this_machine()


def cmd_start(args) -> int:
    jobs, attempts = _jobs(), _attempts()
    free = args.jobs - len(jobs)
    started, failed, kept = [], [], []
    where = None
    for run in _chosen_runs(args.runs):
        if args.stage and run.stage != args.stage:
            continue
        if args.device != 'cpu' and run.precision == 'bf16':
            kept.append(run.name)                         # bf16 rows keep their CPU's bf16 (zoo_precision)
            continue
        for split in run.splits():
            state = split_state(run, split, jobs, attempts)
            if state == 'failed':
                failed.append(f'{run.name}/{split}')
            if free <= 0 or state not in ('pending', 'started'):
                continue
            ensure_features(run.features)
            where = where or machine_record(args.device)
            attempts.setdefault(f'{run.name}/{split}', []).append(_epochs_done(run, split))
            (RUNS / 'attempts.json').parent.mkdir(parents=True, exist_ok=True)
            (RUNS / 'attempts.json').write_text(json.dumps(attempts))
            out = RUNS / run.name / split
            resume = (out / 'config.json').exists()
            out.mkdir(parents=True, exist_ok=True)
            with open(out / MACHINE_FILE, 'a') as record:  # a line per start: a split resumed elsewhere says both
                record.write(where + '\n')
            log = open(RUNS / run.name / f'{split}.out', 'a')
            proc = subprocess.Popen(run.command(split, resume, args.device), cwd=ROOT, stdout=log,
                                    stderr=subprocess.STDOUT, start_new_session=True,
                                    env=dict(os.environ, OMP_NUM_THREADS='1'))
            jobs[f'{run.name}/{split}'] = proc.pid
            started.append(f'{run.name}/{split}' + (' (resumed)' if resume else ''))
            free -= 1
    _save_jobs(jobs)
    print('started: ' + (', '.join(started) if started else 'nothing') + f'; running: {len(jobs)}')
    if kept and args.runs:
        print(f'not on {args.device}: {", ".join(kept)} (bf16 rows train on a CPU with native bf16)')
    if failed:                                            # said every time, with the first one's last words
        out = RUNS / failed[0].replace('/', os.sep, 1)
        lines = Path(f'{out}.out').read_text().strip().splitlines() if Path(f'{out}.out').exists() else []
        print(f'failed, not restarted ({len(failed)}): {", ".join(failed[:4])}' + (' ...' if len(failed) > 4 else '')
              + (f'; {failed[0]}: {lines[-1]}' if lines else ''))
    return 0


def _stop_job(key: str, pid: int) -> None:
    """Stop the split `key`'s training (its process group: `start` makes each split a session of its own)."""
    import signal
    import time
    try:
        os.killpg(pid, signal.SIGTERM)
    except OSError:
        return
    for _ in range(50):                                   # its last epoch's state stays; wait for it to go
        if not _alive(pid):
            return
        time.sleep(0.1)
    print(f'{key}: still running 5 s after SIGTERM (pid {pid})', file=sys.stderr)


def cmd_stop(args) -> int:
    """Stop every split `start` started that still runs; each resumes from its last epoch at the next `start`."""
    jobs = _jobs()
    for key, pid in jobs.items():
        _stop_job(key, pid)
    _save_jobs(_jobs())
    print(f'stopped: {", ".join(jobs) if jobs else "nothing"}')
    return 0


def cmd_unpack(args) -> int:
    """Take the finished splits of an archive packed on another machine (`zoo_gpu.sh`'s `gpu_runs.tgz`: paths
    `runs/zoo/<run>/<split>/...`) into the run folders, for `collect`. A split finished here already keeps its own;
    one training here is stopped, and its folder (checkpoints, log) replaced by the archive's finished one."""
    import shutil
    import tarfile
    runs = {r.name: r for r in RUNS_LIST}
    taken, kept, unknown = [], [], []
    if not Path(args.archive).is_file():
        print(f'no archive {args.archive}: give the gpu_runs.tgz that zoo_gpu.sh wrote', file=sys.stderr)
        return 2
    with tarfile.open(args.archive) as archive:
        members: Dict[Tuple[str, str], list] = {}
        for m in archive.getmembers():
            parts = Path(m.name).parts
            if not m.isfile() or len(parts) < 5 or parts[:2] != ('runs', 'zoo') or '..' in parts:
                continue
            members.setdefault((parts[2], parts[3]), []).append(m)
        jobs = _jobs()
        for (name, split), files in sorted(members.items()):
            run = runs.get(name)
            if run is None or split not in run.splits():
                unknown.append(f'{name}/{split}')
                continue
            if not any(Path(m.name).name == 'result.json' for m in files):
                unknown.append(f'{name}/{split} (unfinished)')
                continue
            state = split_state(run, split, jobs)
            if state in ('done', 'finished'):
                kept.append(f'{name}/{split}')
                continue
            if state == 'running':
                _stop_job(f'{name}/{split}', jobs.pop(f'{name}/{split}'))
            shutil.rmtree(RUNS / name / split, ignore_errors=True)
            for m in files:
                target = RUNS.joinpath(*Path(m.name).parts[2:])
                target.parent.mkdir(parents=True, exist_ok=True)
                target.write_bytes(archive.extractfile(m).read())
            taken.append(f'{name}/{split}')
    if not members:
        print(f'{args.archive} holds no split folder (runs/zoo/<run>/<split>/): is it gpu_logs.tgz, the logs?',
              file=sys.stderr)
        return 2
    _save_jobs(jobs)
    print(f'taken: {", ".join(taken) if taken else "nothing"}' + (f'; kept the finished splits here: {", ".join(kept)}'
                                                                    if kept else '')
          + (f'; not a finished split of a listed run: {", ".join(unknown)}' if unknown else '')
          + ('; now `collect`' if taken else ''))
    return 0


def cmd_collect(args) -> int:
    new, assembled = [], []
    for run in RUNS_LIST:
        for split in run.splits():
            result = run.result(split)
            if result is None or tracked(run, split) is not None:
                continue
            data = json.loads(result.read_text())
            if run.stage in CHOICE_STAGES:                # validation only: the test figures stay in the run folder
                data = {k: v for k, v in data.items() if k not in ('war', 'uar', 'confusion')}
            data['machine'] = split_machines(RUNS / run.name / split)
            if run.stage == 'tag':
                data['checkpoint'] = publish(run, result.parent / 'last.safetensors')
            copy = TRACKED / result.relative_to(RUNS)
            copy.parent.mkdir(parents=True, exist_ok=True)
            (TRACKED / run.name / split / 'config.json').write_text((RUNS / run.name / split / 'config.json').read_text())
            copy.write_text(json.dumps(data, indent=1) + '\n')
            new.append(f'{run.name}/{split}')
        done = all(tracked(run, s) is not None for s in run.splits())
        whole = run.stage in ('table', 'finding', 'loso') or (run.stage == 'repeat' and run.repeat == 1)
        if whole and done and run.model not in RECIPE_PENDING:
            out = TRACKED.parent / f'zoo_{run.name}.json'
            if not out.exists():
                out.write_text(json.dumps(assemble(run), indent=1) + '\n')
                assembled.append(out.name)
        if run.stage == 'repeat' and run.repeat == REPEATS:
            out = TRACKED.parent / f'zoo_repeats.{run.model}.json'
            parts = repeat_parts(run.model)
            if not out.exists() and all(tracked(r, s) is not None for r in parts for s in r.splits()):
                out.write_text(json.dumps(assemble_repeats(parts), indent=1) + '\n')
                assembled.append(out.name)
    if new and TRACKED == ROOT / 'docs' / 'results' / 'zoo':    # the pages' zoo tables follow (make_tables)
        subprocess.run([sys.executable, str(Path(__file__).with_name('make_tables.py'))], cwd=ROOT, check=False)
    print('collected: ' + (', '.join(new) if new else 'nothing new') + (f'; assembled {", ".join(assembled)}'
                                                                          if assembled else '')
          + (f'; commit {TRACKED.relative_to(ROOT)}, the pages and tim_zoo/models/pretrained' if new else ''))
    return 0


def cmd_supersede(args) -> int:
    """Set a run's finished splits aside (a later recipe or definition replaces them) so that `start` trains it
    afresh: its tracked splits and results file move to `superseded/` (kept as evidence, with `why` in its
    README), its run folder likewise, and its start attempts are forgotten. Refused while a split runs."""
    import shutil
    run = next((r for r in RUNS_LIST if r.name == args.run), None)
    if run is None:
        import difflib
        close = difflib.get_close_matches(args.run, [r.name for r in RUNS_LIST], n=3)
        print(f'no run {args.run!r}' + (f'; close: {", ".join(close)}' if close else ''), file=sys.stderr)
        return 2
    running = [key for key in _jobs() if key.startswith(f'{run.name}/')]
    if running:
        print(f'{", ".join(running)} still running: stop them first', file=sys.stderr)
        return 1
    moved = []
    for folder, results in ((TRACKED, TRACKED.parent / f'zoo_{run.name}.json'), (RUNS, None)):
        target = folder / 'superseded' / run.name
        if (folder / run.name).exists():
            if target.exists():
                print(f'{target} exists already: move it away first', file=sys.stderr)
                return 1
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.move(str(folder / run.name), str(target))
            moved.append(str(target.relative_to(ROOT)))
        if results is not None and results.exists():
            shutil.move(str(results), str(target / results.name))
            moved.append(str((target / results.name).relative_to(ROOT)))
    repeats = TRACKED.parent / f'zoo_repeats.{run.model}.json'
    if repeats.exists() and run.name in [r.name for r in repeat_parts(run.model)]:    # it holds this run's splits
        target = TRACKED / 'superseded' / run.name
        target.mkdir(parents=True, exist_ok=True)
        shutil.move(str(repeats), str(target / repeats.name))
        moved.append(str((target / repeats.name).relative_to(ROOT)))
    readme = TRACKED / 'superseded' / 'README.md'
    if (TRACKED / 'superseded' / run.name).exists():
        with readme.open('a') as f:
            f.write(f'\n- `{run.name}`: {args.why}\n')
    attempts = {k: v for k, v in _attempts().items() if not k.startswith(f'{run.name}/')}
    if (RUNS / 'attempts.json').exists():
        (RUNS / 'attempts.json').write_text(json.dumps(attempts))
    print(f'{run.name}: ' + ('moved ' + ', '.join(moved) if moved else 'nothing to move') +
          '; `start` trains it afresh')
    return 0


def publish(run: Run, checkpoint: Path) -> dict:
    """A finished all-data run's checkpoint as its tag's file: the six small models' into the package
    (`tim_zoo/models/pretrained/<model>_emodb.safetensors`); returns the file's name, size and SHA-256."""
    import hashlib
    import shutil

    from tim_zoo.models import _zoo as zoo_tags
    data = checkpoint.read_bytes()
    info = dict(file=checkpoint.name, bytes=len(data), sha256=hashlib.sha256(data).hexdigest())
    if run.model in zoo_tags.PACKAGED:
        target = zoo_tags.packaged_file(run.model)
        shutil.copyfile(checkpoint, target)
        info['file'] = str(target.relative_to(ROOT))
    return info


def this_machine() -> str:
    """This machine's CPU in words: its model name, the vector flags that decide its speed and whether bf16 runs
    natively, and its cores."""
    from tim_zoo._utils import cpu_info
    name, flags = cpu_info()
    vector = [f for f in ('avx2', 'avx512f', 'avx512_bf16', 'amx_bf16') if f in flags]
    return f'{name or "unknown CPU"} ({", ".join(vector) or "no avx2"}), {os.cpu_count()} cores'


def machines(parts: List[Run]) -> str:
    """Where the tracked splits of `parts` trained, in words: one machine, or each machine with its splits."""
    where: Dict[str, List[str]] = {}
    for run in parts:
        for split in run.splits():
            machine = json.loads(tracked(run, split).read_text()).get('machine', EARLIER_MACHINE)
            where.setdefault(machine, []).append(split if len(parts) == 1 else f'{run.name}/{split}')
    if len(where) == 1:
        return f'{next(iter(where))}: {HOW}'
    return '; '.join(f'{", ".join(splits)} on {machine}' for machine, splits in where.items()) + f': {HOW}'


def assemble(run: Run) -> dict:
    """The results file of a finished run from its tracked splits (`collect_run.collect` over the split folders)."""
    import torch
    return collect_run.collect([TRACKED / run.name / s for s in run.splits()], device=machines([run]),
                                  torch_version=torch.__version__)


def assemble_repeats(parts: List[Run]) -> dict:
    """The repeats file of a model (tier 2): its repeat 1 (`assemble`) and its other repeats' tracked splits,
    as one run of `repeats=REPEATS` (`collect_run`'s repeated format: `repeats`, `repeat_summary`)."""
    from tim_zoo.data import natural_key
    from tim_zoo.train import repeats_summary, split_summary
    runs = sorted(parts, key=lambda r: r.repeat)
    first = assemble(runs[0])
    ignored = collect_run.IGNORED | {'repeats', 'only_repeats'}    # where a run ran, and which repeat
    folds = {1: first['folds']}
    for run in runs[1:]:
        for split in run.splits():
            config = json.loads((TRACKED / run.name / split / 'config.json').read_text())
            differ = sorted(k for k in set(config) | set(first['config']) if k not in ignored
                            and config.get(k) != first['config'].get(k))
            if differ:
                raise SystemExit(f'{run.name}/{split}: configuration differs from {runs[0].name} in {", ".join(differ)}')
        results = [json.loads(tracked(run, s).read_text()) for s in run.splits()]
        folds[run.repeat] = sorted(({k: v for k, v in r.items() if k != 'history'} for r in results),
                                   key=lambda r: natural_key(r['split']))
    summaries = [dict(split_summary(f), repeat=r, seed=runs[0].seed + r - 1) for r, f in sorted(folds.items())]
    summary = repeats_summary(summaries)
    return dict(first, config=dict(first['config'], repeats=len(runs)), runs=[r.name for r in runs],
                device=machines(runs),
                repeats=[dict(repeat=s['repeat'], seed=s['seed'], folds=s['folds']) for s in summaries],
                repeat_summary={k: summary[k] for k in ('num_repeats', 'war_mean', 'war_std', 'uar_mean', 'uar_std',
                                                        'fold_war_std')})


def cmd_choose(args) -> int:
    """Mean validation accuracy per feature setting (last epoch, and the best epoch), over the splits done."""
    print(f'{"run":40s} {"splits":>6s} {"val WAR last":>12s} {"val WAR best":>12s}')
    for run in RUNS_LIST:
        if run.stage not in CHOICE_STAGES:
            continue
        last, best = [], []
        for split in run.splits():
            if tracked(run, split) is not None:
                history = json.loads(tracked(run, split).read_text())['history']
                last.append(history[-1]['val_war'])
                best.append(max(h['val_war'] for h in history))
        if last:
            n = len(last)
            print(f'{run.name:40s} {n:6d} {100 * sum(last) / n:12.2f} {100 * sum(best) / n:12.2f}')
    return 0


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split('\n\n')[0], epilog=__doc__.split('\n\n')[1],
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest='command', required=True)
    sub.add_parser('status', help='every run: splits done, running and left, and the projected hours')
    start = sub.add_parser('start', help='start (or resume) the next splits in the background')
    start.add_argument('--jobs', type=int, default=2, help='processes to keep running (one thread each)')
    start.add_argument('--stage', help='only runs of this stage (choice, ...)')
    start.add_argument('--runs', nargs='+', help='only these runs, in this order (names, or prefixes ending in "."'
                       ' such as table.)')
    start.add_argument('--device', default='cpu', type=_device, help='cpu, or cuda (cuda:1, ...): the splits train '
                       'on this GPU (fp32 rows only; several at a time with --jobs)')
    sub.add_parser('stop', help='stop the running splits (each resumes from its last epoch at the next start)')
    sub.add_parser('features', help='extract the table\'s feature file from ../shared (what a GPU machine is given)')
    unpack = sub.add_parser('unpack', help='take the finished splits of an archive packed elsewhere (zoo_gpu.sh)',
                            description=cmd_unpack.__doc__ + ' Then `collect` and commit.')
    unpack.add_argument('archive', help='gpu_runs.tgz (zoo_gpu.sh\'s gpu_logs.tgz holds logs only)')
    sub.add_parser('collect', help='copy the finished splits into docs/results/zoo/ and assemble finished runs')
    sub.add_parser('choose', help='the protocol choices, on validation accuracy only')
    supersede = sub.add_parser('supersede', help='set a run\'s splits aside so that it trains afresh')
    supersede.add_argument('run', help='the run\'s name (`status` lists them)')
    supersede.add_argument('--why', required=True, help='one line for superseded/README.md')
    args = parser.parse_args(argv)
    return dict(status=cmd_status, start=cmd_start, stop=cmd_stop, unpack=cmd_unpack, collect=cmd_collect,
                choose=cmd_choose, supersede=cmd_supersede, features=cmd_features)[args.command](args)


def cmd_features(args) -> int:
    """Extract the table's feature file (once; `start` does it too before a split needs it) and say where it is."""
    print(ensure_features(TABLE_FEATURES).relative_to(ROOT))
    return 0


def _device(text: str) -> str:
    if text == 'cpu' or text == 'cuda' or (text.startswith('cuda:') and text[5:].isdigit()):
        return text
    raise argparse.ArgumentTypeError(f'{text!r}: cpu or cuda (cuda:1, ...)')


if __name__ == '__main__':
    sys.exit(main())
