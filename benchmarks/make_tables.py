"""Write the measured tables of the docs from JSON, so no page holds a hand-typed figure.

In docs/speed.md each ``<!-- table:NAME -->`` ... ``<!-- /table -->`` block becomes the table of
``benchmarks/results/NAME.json`` (rows written by ``python -m tim_zoo.benchmark --json``); in
docs/training.md each ``<!-- results:NAME -->`` ... ``<!-- /results -->`` block becomes the per-split
table of ``docs/results/NAME.json`` (the result.json files of a ``tim-zoo train`` run, collected), and
each ``<!-- summary:NAME NAME ... -->`` ... ``<!-- /summary -->`` block a table of those runs' means, one
row per run, for comparing settings, and each ``<!-- compare:BASE NAME ... -->`` ... ``<!-- /compare -->`` block
the differences of each NAME from BASE with their standard errors; in docs/speed.md each
``<!-- predict:NAME -->`` ... ``<!-- /predict -->`` block the figures of ``benchmarks/results/NAME.json`` (written by ``benchmarks/predict_speed.py``),
and each ``<!-- zoo_cost:NAME -->`` ... ``<!-- /zoo_cost -->`` block the training cost per model of
``benchmarks/results/zoo_cost_NAME.json`` (written by ``benchmarks/zoo_cost.py``); in docs/training.md each
``<!-- zoo:STAGE -->`` ... ``<!-- /zoo -->`` block the state of the zoo's runs of that stage from their tracked splits
(``docs/results/zoo/``, written by ``benchmarks/zoo.py collect``): validation accuracy for the choice stage, test
accuracy for the others. The zoo's finished rows (``docs/results/zoo_table.<model>.json``, and
``zoo_repeats.<model>.json`` once its repeats are in: in place of the row, or for a model without one) are also
summarised into the package
(``tim_zoo/models/pretrained/zoo_table.json``), so that a zoo tag can say what its recipe scored; so are the
bundled ``timnet``'s recipe (``BUNDLED_RECIPE_RUN``) and each Keras release evaluated with ``tim-zoo evaluate -o
docs/results/releases/RELEASE.json``, whose ``<!-- release:RELEASE -->`` ... ``<!-- /release -->`` block in
docs/evaluation.md is written from that file.
``--check`` exits 1 when a page or that file is out of date.

    python benchmarks/make_tables.py [--check]
"""
import argparse
import functools
import json
import re
import sys
import textwrap
from pathlib import Path
from typing import Optional

import zoo_cost          # benchmarks/ siblings: on sys.path as this script's folder

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / 'benchmarks' / 'results'
PAGE = ROOT / 'docs' / 'speed.md'
BLOCK = re.compile(r'(<!-- table:([\w.-]+) -->\n)(.*?)(<!-- /table -->)', re.S)
TRAINING_PAGE = ROOT / 'docs' / 'training.md'
TRAINING_RESULTS = ROOT / 'docs' / 'results'
RESULTS_BLOCK = re.compile(r'(<!-- results:([\w.-]+) -->\n)(.*?)(<!-- /results -->)', re.S)
SUMMARY_BLOCK = re.compile(r'(<!-- summary:([\w. -]+?) -->\n)(.*?)(<!-- /summary -->)', re.S)
COMPARE_BLOCK = re.compile(r'(<!-- compare:([\w. -]+?) -->\n)(.*?)(<!-- /compare -->)', re.S)
PREDICT_BLOCK = re.compile(r'(<!-- predict:([\w.-]+) -->\n)(.*?)(<!-- /predict -->)', re.S)
ZOO_BLOCK = re.compile(r'(<!-- zoo:(\w+) -->\n)(.*?)(<!-- /zoo -->)', re.S)
ZOO = TRAINING_RESULTS / 'zoo'
#: the zoo rows' accuracy as the package ships it (`tim_zoo.models._zoo.zoo_accuracy` reads it)
PACKAGED_ZOO_TABLE = ROOT / 'tim_zoo' / 'models' / 'pretrained' / 'zoo_table.json'
#: the run that measures the recipe of the bundled `timnet` (timnet.paper at the release's 188 frames) on unseen
#: utterances: its tag's held-out figure
BUNDLED_RECIPE_RUN = 'emodb_timnet_paper_keras_r3'
EVALUATION_PAGE = ROOT / 'docs' / 'evaluation.md'
README = ROOT / 'README.md'
MODELS_PAGE = ROOT / 'docs' / 'models.md'
RELEASE_BLOCK = re.compile(r'(<!-- release:([\w.-]+) -->\n)(.*?)(<!-- /release -->)', re.S)
ZOO_COST_BLOCK = re.compile(r'(<!-- zoo_cost:([\w.-]+) -->\n)(.*?)(<!-- /zoo_cost -->)', re.S)

#: per-split WAR differences (points) this close are ties
TIE = 1e-9


def _ms(v):
    return '-' if v is None else f'{v:,.1f}'


@functools.lru_cache(maxsize=None)
def _current_params(model: str, frames: int) -> Optional[int]:
    """`model`'s parameter count as defined now, built for `frames` as the benchmark builds it (a fixed-length
    head's size follows the length)."""
    import tim_zoo
    if model not in tim_zoo.list_models():
        return None
    return tim_zoo.count_params(tim_zoo.create_model_for_frames(model, frames))


def render(rows, current_params=None) -> str:
    """A benchmark file as tables narrow enough for the site's column: the measurements, then (where the run
    timed the two-pass reference encoder too) the comparison with it. A row of a model whose parameter count has
    changed since is marked: it was measured on an earlier definition."""
    current_params = current_params or _current_params
    header = ['model', 'frames', 'params', 'MACs/sample', 'infer ms', 'train step ms', 'peak MB']
    lines = ['| ' + ' | '.join(header) + ' |', '|' + '---|' * len(header)]
    stale = []
    for r in rows:
        now = current_params(r['model'], r['frames'])
        params = f"{r['params']:,}"
        if now is not None and now != r['params']:
            params += ' †'
            stale.append(f"`{r['model']}` {now:,}")
        lines.append('| ' + ' | '.join([f"`{r['model']}`", str(r['frames']), params, f"{r['macs'] / 1e6:,.1f} M",
                                        _ms(r['infer_ms']), _ms(r['train_step_ms']),
                                        f"{r['peak_mem_mb']:,.0f}"]) + ' |')
    first = rows[0]
    lines.append('')
    lines.append(f"batch {first['batch']}, device {first['device']}, {first['threads']} threads, torch "
                 f"{first['torch_version']}" + (', glibc allocator tuned' if first.get('tuned_malloc') else '')
                 + (f", torch.compile mode {first['compiled']}" if first.get('compiled') else ''))
    if stale:
        lines.append('')
        lines.append('† measured on an earlier definition of the model; parameters now: ' + ', '.join(stale)
                     + ' (rerun the benchmark to update the row)')
    compared = [r for r in rows if r.get('ref_infer_ms') is not None]
    if compared:
        lines += ['', 'Against the two-pass reference encoder (`tim_zoo.benchmark.ReferenceBiTemporalEncoder`), '
                  'same run:', '',
                  '| model | two-pass infer / train ms | speed-up infer / train | max abs diff |', '|---|---|---|---|']
        for r in compared:
            train = (f"{r['ref_train_step_ms'] / r['train_step_ms']:.2f}x"
                     if r.get('ref_train_step_ms') and r.get('train_step_ms') else '-')
            lines.append(f"| `{r['model']}` | {_ms(r['ref_infer_ms'])} / {_ms(r['ref_train_step_ms'])} | "
                         f"{r['ref_infer_ms'] / r['infer_ms']:.2f}x / {train} | {r['ref_max_abs_diff']:.1e} |")
    return '\n'.join(lines) + '\n'


def _settings(cfg: dict) -> str:
    parts = [cfg['optimizer'], f"lr {cfg['lr']}", f"weight decay {cfg['weight_decay']}"]
    if cfg.get('scheduler', 'none') != 'none':
        parts.append(f"{cfg['scheduler']} schedule")
    parts += [f"{cfg['epochs']} epochs", f"batch {cfg['batch_size']}"]
    if cfg.get('frame_mask'):
        parts.append(f"frame masking {cfg['frame_mask']}")
    if cfg.get('normalize', 'none') != 'none':
        parts.append(f"`--normalize {cfg['normalize']}`")
    return ', '.join(parts)


def _selection(cfg: dict) -> str:
    if cfg['select'] == 'last':
        return 'the last epoch (no validation split)'
    part = 'speakers, held out whole' if cfg['protocol'] == 'loso' else 'utterances'
    return f"best validation accuracy (validation: {cfg['val_fraction']:.0%} of the training {part})"


def _mean_std(folds, key):
    """Mean and population standard deviation of ``key`` over the splits, in percent."""
    values = [100 * f[key] for f in folds]
    mean = sum(values) / len(values)
    return mean, (sum((v - mean) ** 2 for v in values) / len(values)) ** 0.5


def render_summary(runs: dict) -> str:
    """One row per run (name -> collected run): its settings and the mean (std) over its splits."""
    lines = ['| run | model | recipe, settings | protocol (splits) | WAR % (std) | UAR % (std) |',
             '|---|---|---|---|---|---|']
    for name, run in runs.items():
        cfg, folds = run['config'], run['folds']
        war, uar = _mean_std(folds, 'war'), _mean_std(folds, 'uar')
        splits = str(len(folds))
        if 'repeat_summary' in run:                      # the std is over the repeats' means
            rs = run['repeat_summary']
            war, uar = (100 * rs['war_mean'], 100 * rs['war_std']), (100 * rs['uar_mean'], 100 * rs['uar_std'])
            splits += f" x {rs['num_repeats']} repeats"
        lines.append(f"| `{name}` | `{cfg['model']}` | `{cfg['recipe']}`: {_settings(cfg)} | {cfg['protocol']} "
                     f"({splits}) | {war[0]:.2f} ({war[1]:.2f}) | {uar[0]:.2f} ({uar[1]:.2f}) |")
    return '\n'.join(lines) + '\n'


def _split_wars(run: dict) -> dict:
    """Per split the WAR in percent, averaged over the repeats of a repeated run."""
    repeats = [r['folds'] for r in run['repeats']] if 'repeats' in run else [run['folds']]
    return {f['split']: 100 * sum(r[j]['war'] for r in repeats) / len(repeats) for j, f in enumerate(repeats[0])}


def _repeat_means(run: dict) -> list:
    """The mean WAR over splits of each repeat, in percent (one value for a single run)."""
    repeats = [r['folds'] for r in run['repeats']] if 'repeats' in run else [run['folds']]
    return [100 * sum(f['war'] for f in folds) / len(folds) for folds in repeats]


def _sample_std(values: list) -> float:
    mean = sum(values) / len(values)
    return (sum((v - mean) ** 2 for v in values) / (len(values) - 1)) ** 0.5


def render_comparison(runs: dict) -> str:
    """How each run differs from the first (name -> collected run) in mean WAR, with two standard errors: paired
    over the splits (the same test utterances; the spread of the per-split differences) and over the repeats
    (the spread of each run's 10-fold mean over its training seeds; only where both runs have repeats). The
    ratio is the difference over its standard error, a guide rather than a test: k-fold splits share most of
    their training data, so the paired error understates the uncertainty. Runs must test the same utterances
    (protocol, folds, seed and the splits' sizes); each row says the precision it trained in."""
    (base_name, base), *others = runs.items()
    a = _split_wars(base)
    lines = [f'| run | mean WAR % (repeats, precision) | difference from `{base_name}` | paired over splits: std error (ratio) '
             f'| over repeats: std error (ratio) | splits better / equal / worse |', '|---|---|---|---|---|---|']
    rows = [(base_name, base, None)] + [(name, run, _split_wars(run)) for name, run in others]
    for name, run, b in rows:
        means = _repeat_means(run)
        mean = sum(means) / len(means)
        head = f'| `{name}` | {mean:.2f} ({len(means)}, {run["config"].get("precision", "fp32")}) |'
        if b is None:
            lines.append(head + ' | | | |')
            continue
        same = ('protocol', 'folds', 'seed') + (('val_fraction',) if run['config']['protocol'] == 'holdout' else ())
        sizes = [{f['split']: f['n_test'] for f in r['folds']} for r in (base, run)]
        if set(a) != set(b) or sizes[0] != sizes[1] or any(run['config'][k] != base['config'][k] for k in same):
            raise ValueError(f'{name} tested other splits than {base_name}')
        diffs = [b[k] - a[k] for k in a]
        d = sum(diffs) / len(diffs)
        paired = _sample_std(diffs) / len(diffs) ** 0.5 if len(diffs) > 1 else None
        base_means = _repeat_means(base)
        over = '-'
        if len(means) > 1 and len(base_means) > 1:
            se = (_sample_std(means) ** 2 / len(means) + _sample_std(base_means) ** 2 / len(base_means)) ** 0.5
            over = f'{se:.2f} ({d / se:+.1f})' if se else '0.00 (-)'
        # a tie averaged over seeds differs by float rounding (1e-14), not by an utterance (1.9 points of 54)
        counts = (sum(x > TIE for x in diffs), sum(abs(x) <= TIE for x in diffs), sum(x < -TIE for x in diffs))
        paired_cell = '-' if paired is None else f'{paired:.2f} ({d / paired:+.1f})' if paired else '0.00 (-)'
        lines.append(head + f' {d:+.2f} | {paired_cell} | {over} | '
                     f'{" / ".join(map(str, counts))} |')
    return '\n'.join(lines) + '\n'


def render_results(run: dict) -> str:
    if 'repeat_summary' in run:
        return _render_repeated_results(run)
    folds = run['folds']
    lines = ['| split | test samples | chosen epoch | WAR % | UAR % |', '|---|---|---|---|---|']
    for f in folds:
        lines.append(f"| {f['split']} | {f['n_test']} | {f['chosen_epoch']} | {100 * f['war']:.2f} | {100 * f['uar']:.2f} |")
    war, uar = _mean_std(folds, 'war'), _mean_std(folds, 'uar')
    lines.append(f'| **mean (std)** | {sum(f["n_test"] for f in folds)} | | **{war[0]:.2f}** ({war[1]:.2f}) '
                 f'| **{uar[0]:.2f}** ({uar[1]:.2f}) |')
    cfg = run['config']
    lines.append('')
    lines.append(f"`{cfg['model']}`, recipe `{cfg['recipe']}` ({_settings(cfg)}), protocol `{cfg['protocol']}`, seed "
                 f"{cfg['seed']}, checkpoint: {_selection(cfg)}"
                 + (f", weight_init {cfg['model_args']['weight_init']}" if 'weight_init' in cfg.get('model_args', {})
                    else '') + f"; {run['device']}, torch {run['torch']}")
    return '\n'.join(lines) + '\n'


def _render_repeated_results(run: dict) -> str:
    """Per split the mean and std over repeats; the last row the mean and std over the repeats' means."""
    repeats, rs = run['repeats'], run['repeat_summary']
    lines = ['| split | test samples | WAR % per repeat | mean (std) over repeats |', '|---|---|---|---|']
    for j, fold in enumerate(repeats[0]['folds']):
        wars = [100 * r['folds'][j]['war'] for r in repeats]
        mean = sum(wars) / len(wars)
        std = (sum((w - mean) ** 2 for w in wars) / max(len(wars) - 1, 1)) ** 0.5
        lines.append(f"| {fold['split']} | {fold['n_test']} | {' / '.join(f'{w:.2f}' for w in wars)} | "
                     f"{mean:.2f} ({std:.2f}) |")
    means = ' / '.join(f"{100 * sum(f['war'] for f in r['folds']) / len(r['folds']):.2f}" for r in repeats)
    lines.append(f"| **mean over splits** | {sum(f['n_test'] for f in repeats[0]['folds'])} | {means} | "
                 f"**{100 * rs['war_mean']:.2f}** ({100 * rs['war_std']:.2f}) |")
    cfg = run['config']
    lines += ['', f"WAR mean ± std over {rs['num_repeats']} repeats: {100 * rs['war_mean']:.2f} ± {100 * rs['war_std']:.2f} "
                  f"% (UAR {100 * rs['uar_mean']:.2f} ± {100 * rs['uar_std']:.2f} %; std over splits within a repeat "
                  f"{100 * rs['fold_war_std']:.2f}). `{cfg['model']}`, recipe `{cfg['recipe']}` ({_settings(cfg)}), "
                  f"protocol `{cfg['protocol']}`, seed {cfg['seed']} (training seeds {cfg['seed']}.."
                  f"{cfg['seed'] + rs['num_repeats'] - 1}), checkpoint: {_selection(cfg)}, weight_init "
                  f"{cfg.get('model_args', {}).get('weight_init', 'the model default')}; {run['device']}, "
                  f"torch {run['torch']}"]
    return '\n'.join(lines) + '\n'


def render_predict(r: dict) -> str:
    """The figures of ``benchmarks/predict_speed.py`` (or of ``benchmarks/predict_memory.py``: rows)."""
    if 'rows' in r:
        return render_predict_memory(r)
    lines = ['| measured | wall time | figure | goal |', '|---|---|---|---|',
             f"| `python -c \"import timm\"` | {r['import_timm_s']:.2f} s | | |",
             f"| cold `tim-zoo predict ONE.wav` | {r['predict_one_s']:.2f} s | {r['ratio']:.2f}x import timm | <= 1.25x |",
             f"| `tim-zoo predict FOLDER` ({r['files']} EMODB files, one call) | {r['predict_folder_s']:.2f} s "
             f"| {r['files_per_s']:.0f} files/s | >= 100 files/s |",
             f"| the same after start-up (`predict_many` in a running process) | {r['in_process_s']:.2f} s "
             f"| {r['in_process_files_per_s']:.0f} files/s | |", '',
             f"{r['cpu']}, {r['cores']} cores ({', '.join(r['flags'])}), {r['threads']} torch threads, torch "
             f"{r['torch_version']}; each wall time the median of {r['repeats']} fresh processes "
             f"(the folder: {max(1, r['repeats'] // 2)})"]
    return '\n'.join(lines) + '\n'


def render_predict_memory(r: dict) -> str:
    """Peak memory and time of one long recording, streamed and read whole (``benchmarks/predict_memory.py``)."""
    lines = ['| recording | windows | streamed: peak memory | time | read whole: peak memory | time | same answers |',
             '|---|---|---|---|---|---|---|']
    for row in r['rows']:
        whole = (f"{row['whole_mb']} MB | {row['whole_s']:.1f} s | {'yes' if row['equal'] else 'NO'}"
                 if 'whole_mb' in row else '| |')
        lines.append(f"| {row['recording']} | {row['windows']} | {row['streamed_mb']} MB | {row['streamed_s']:.1f} s "
                     f"| {whole} |")
    lines += ['', f"{r['cpu']}, {r['cores']} cores ({', '.join(r['flags'])}), {r['threads']} torch threads, torch "
              f"{r['torch_version']}; peak resident memory of the whole process (Python, PyTorch, timm and the model "
              f"included), time of `predict` alone, one fresh process each"]
    return '\n'.join(lines) + '\n'


def render_zoo_cost(r: dict) -> str:
    """Per model: seconds of a training step and of an EMODB epoch, and the hours of a 10-fold run, per length and
    precision (``benchmarks/zoo_cost.py``), with each setting's total over the table."""
    settings = sorted({(row['frames'], row['precision']) for row in r['rows']}, key=lambda s: (s[0], s[1] != 'fp32'))
    models = sorted({row['model'] for row in r['rows']})
    cell = {(row['model'], row['frames'], row['precision']): row for row in r['rows']}
    head = ' | '.join(f'{f} frames {p}' for f, p in settings)
    lines = [f'| model | {head} |', '|---|' + '---|' * len(settings)]
    for m in models:
        cells = [cell.get((m, f, p)) for f, p in settings]
        lines.append(f'| `{m}` | ' + ' | '.join('-' if c is None else f"{c['step_s']:.2f} s / {c['epoch_s']:.1f} s / "
                                                  f"{c['run_h']:.2f} h" for c in cells) + ' |')
    totals = [sum(row['run_h'] for row in r['rows'] if (row['frames'], row['precision']) == s) for s in settings]
    lines.append('| **all, one repeat** | ' + ' | '.join(f'**{t:.1f} h**' for t in totals) + ' |')
    flags = [f for f in ('avx512f', 'avx512_bf16', 'amx_bf16') if r.get(f)]
    import zoo as driver                        # the zoo's driver imports torch: only where a block needs it
    table_h, missing = driver.table_hours(r['rows'])
    bf16 = [f'`{run.model}`' for run in driver.RUNS_LIST if run.stage == 'table' and run.precision == 'bf16']
    without = f'; without {", ".join(missing)}, not measured' if missing else ''
    lines += ['', f"Each cell: a training step (batch {r['batch']}) / an epoch / a {r['folds']}-fold run of {r['epochs']} "
              f"epochs, single-thread hours ({r.get('protocol', 'an epoch: the steps of a split')}). "
              f"{r['cpu']} ({', '.join(flags) or 'no AVX-512'}), {r['threads']} thread, torch {r['torch']}; each step "
              f"the median of its repeats in a fresh process. **The zoo table, one repeat of its rows as they train: "
              f"{table_h:.1f} single-thread hours** (87 frames, `timnet` for its recipe's 500 epochs, the other rows "
              f"for 100; {', '.join(bf16)} under bf16 autocast, the others in fp32{without})."]
    return '\n'.join(lines) + '\n'


def _zoo_results(run_dir: Path) -> list:
    """The tracked split results of a zoo run, in split order."""
    from tim_zoo.data import natural_key
    files = sorted(run_dir.glob('*/**/result.json'), key=lambda p: natural_key(p.parent.name))
    return [dict(json.loads(f.read_text()), split=f.parent.name) for f in files]


def _fold_span(folds: list) -> str:
    """`[1, 2, 3, 5]` -> `folds 1-3, 5`."""
    spans, start = [], folds[0]
    for a, b in zip(folds, folds[1:] + [None]):
        if b != a + 1:
            spans.append(f'{start}' if start == a else f'{start}-{a}')
            start = b
    return ('fold ' if spans == [str(folds[0])] else 'folds ') + ', '.join(spans)


def _recipe_cell(cfg: dict) -> str:
    """A run's recipe and what it changed of it (`seed.emodb`, `seed.emodb`, lr 0.0001, ...)."""
    from tim_zoo.train.recipes import get_recipe
    recipe, changed = get_recipe(cfg['recipe']), []
    for key in ('lr', 'scheduler', 'warmup_steps', 'grad_clip', 'epochs'):
        if cfg.get(key) != recipe.get(key) and (key != 'warmup_steps' or cfg.get('scheduler') == 'noam'):
            changed.append(f'{key.replace("_", " ")} {cfg[key]}')
    changed += [f'{k}={v!r}' for k, v in cfg.get('model_args', {}).items() if v != recipe['model_args'].get(k)]
    return ', '.join([f"`{cfg['recipe']}`"] + changed)


def render_zoo_choice() -> str:
    """The README's "which model" table: every zoo row, best first, as the packaged zoo table has it (WAR ± the
    folds' std, the seeds; with a speaker held out where measured) and how its EMODB weights are had."""
    import tim_zoo
    from tim_zoo.models._zoo import PACKAGED
    packaged = json.loads(packaged_zoo_table())
    table, bundled = packaged['models'], packaged['bundled']['timnet']
    latency, frames, _ = zoo_cost.zoo_latency()
    if frames != zoo_cost.ZOO_FRAMES:                    # measured at another length than the zoo's models take
        latency = {}
    lines = ['| model | EMODB WAR %, new utterances (mean ± std over 10 folds) | a speaker held out (10 speakers) | '
             'params | CPU ms, a batch of 64 | its EMODB weights |',
             '|---|---|---|---|---|---|']

    def war(row):
        seeds = f' ({row["repeats"]} seeds)' if row.get('repeats', 1) > 1 else ''
        return f'{row["war_mean"]:.1f} ± {row["war_std"]:.1f}{seeds}'
    for model in sorted(tim_zoo.list_models(), key=lambda m: -table[m]['war_mean'] if m in table else 0):
        row = table.get(model)
        weights = (f'ship in the package (the default of `tim-zoo predict`, at the release\'s {bundled["frames"]} '
                   f'frames: {war(bundled)})' if model == 'timnet' else
                   'ship in the package' if model in PACKAGED else
                   f'one command trains them (about {row["tag_hours"] * 60:.0f} min on one thread of a Zen 4 CPU)'
                   if row and row.get('tag_hours') else 'one command trains them')
        loso = war(row['loso']) if row and row.get('loso') else 'not measured'
        params = zoo_cost.zoo_size(model)[0]
        timed = latency.get(model)
        ms = f'{timed["infer_ms"]:.0f}' if timed and timed['params'] == params else '-'
        lines.append(f'| `{model}` | {war(row) if row else "not finished yet"} | {loso} | {params / 1e6:.2f} M | {ms} | '
                     f'{weights} |')
    return '\n'.join(lines) + '\n'


def render_zoo(stage: str) -> str:
    """The zoo's runs of `stage` from their tracked splits: for `choice` the mean validation accuracy (last epoch,
    best epoch; the tracked results hold no test figure), else the test WAR and UAR over the splits done; `readme`:
    the README's table of every row (`render_zoo_choice`)."""
    if stage == 'readme':
        return render_zoo_choice()
    runs = sorted(d for d in ZOO.glob(f'{stage}.*') if d.is_dir()) if ZOO.is_dir() else []
    if stage in ('choice', 'recipe'):
        lines = ['| run | splits done | validation WAR %, last epoch | the same, folds 1-3 | validation WAR %, best '
                 'epoch |', '|---|---|---|---|---|']
        for run_dir in runs:
            results = _zoo_results(run_dir)
            if not results:
                lines.append(f'| `{run_dir.name}` | 0 | - | - | - |')
                continue
            last = [100 * r['history'][-1]['val_war'] for r in results]
            best = [100 * max(h['val_war'] for h in r['history']) for r in results]
            probe = [v for r, v in zip(results, last) if r['split'] in ('fold1', 'fold2', 'fold3')]
            folds = sorted(int(r['split'][4:]) for r in results)
            lines.append(f'| `{run_dir.name}` | {len(results)} ({_fold_span(folds)}) | {sum(last) / len(last):.2f} | '
                         + (f'{sum(probe) / 3:.2f}' if len(probe) == 3 else '-') + f' | {sum(best) / len(best):.2f} |')
    else:
        lines = ['| run | recipe | precision | splits done | WAR % (std) | UAR % (std) |', '|---|---|---|---|---|---|']
        for run_dir in runs:
            results = [r for r in _zoo_results(run_dir) if 'war' in r]
            config = json.loads(next(run_dir.glob('*/config.json')).read_text())
            cells = f'| `{run_dir.name}` | {_recipe_cell(config)} | {config.get("precision", "fp32")} |'
            if not results:
                lines.append(f'{cells} 0 / 10 | - | - |')
                continue
            war, uar = _mean_std(results, 'war'), _mean_std(results, 'uar')
            lines.append(f'{cells} {len(results)} / 10 | {war[0]:.2f} ({war[1]:.2f}) | {uar[0]:.2f} ({uar[1]:.2f}) |')
    if not runs:
        lines.append('| (none yet) |' + ' |' * (lines[0].count('|') - 2))
    if stage in ('table', 'repeat', 'loso'):             # what is still to come, in the order `start` takes it
        import zoo
        names = {d.name for d in runs}
        waiting = [r for r in sorted(zoo.RUNS_LIST, key=lambda r: r.order) if r.stage == stage and r.name not in names]
        if waiting:
            lines += ['', 'No split committed yet (some may be training), in the order `benchmarks/zoo.py start` takes '
                      'them: ' + ', '.join(
                f'`{r.name}` ({r.precision})' for r in waiting) + '.']
    if stage == 'finding':                               # what each variant tests, started or not
        import zoo
        lines += ['', '| run | the notes\' finding | the run it varies |', '|---|---|---|']
        lines += [f'| `finding.{name}` | {claim} | `{zoo.finding_base(model)}` |' for name, model, _, claim in zoo.FINDINGS]
    return '\n'.join(lines) + '\n'


def render_release(r: dict) -> str:
    """The evaluation of a Keras release (`tim-zoo evaluate -o`): its mean and per-fold accuracy."""
    folds = ', '.join(f"{100 * f['war']:.2f}/{100 * f['uar']:.2f}" for f in r['per_fold'])
    training = f"{100 * r['training_war']:.2f}" if 'training_war' in r else '-'
    return '\n'.join([
        '| release | corpus (folder) | utterances | KFold seed | mean WAR % | WAR std | pooled UAR % | '
        'WAR % on its training folds |',
        '|---|---|---|---|---|---|---|---|',
        f"| {r['release']} | {r['corpus']} (`{r['data_root']}`) | {r['utterances']} | {r['seed']} | "
        f"{100 * r['war']:.2f} | {100 * r['war_std']:.2f} | {100 * r['uar']:.2f} | {training} |",
        '', *textwrap.wrap(f'Per fold (WAR / UAR %): {folds}.', 100)]) + '\n'


def update(text: str) -> str:
    def table(m):
        rows = json.loads((RESULTS / f'{m.group(2)}.json').read_text())
        return m.group(1) + render(rows) + m.group(4)

    def results(m):
        run = json.loads((TRAINING_RESULTS / f'{m.group(2)}.json').read_text())
        return m.group(1) + render_results(run) + m.group(4)

    def summary(m):
        runs = {name: json.loads((TRAINING_RESULTS / f'{name}.json').read_text()) for name in m.group(2).split()}
        return m.group(1) + render_summary(runs) + m.group(4)
    def compare(m):
        runs = {name: json.loads((TRAINING_RESULTS / f'{name}.json').read_text()) for name in m.group(2).split()}
        return m.group(1) + render_comparison(runs) + m.group(4)

    def predict(m):
        return m.group(1) + render_predict(json.loads((RESULTS / f'{m.group(2)}.json').read_text())) + m.group(4)

    def zoo_cost(m):
        return m.group(1) + render_zoo_cost(json.loads((RESULTS / f'zoo_cost_{m.group(2)}.json').read_text())) + m.group(4)
    def zoo(m):
        return m.group(1) + render_zoo(m.group(2)) + m.group(4)

    def release(m):
        return m.group(1) + render_release(_release_run(m.group(2))) + m.group(4)
    text = RELEASE_BLOCK.sub(release, text)
    text = SUMMARY_BLOCK.sub(summary, RESULTS_BLOCK.sub(results, BLOCK.sub(table, text)))
    return ZOO_BLOCK.sub(zoo, ZOO_COST_BLOCK.sub(zoo_cost, PREDICT_BLOCK.sub(predict, COMPARE_BLOCK.sub(compare, text))))


def _release_run(release: str) -> dict:
    return json.loads((TRAINING_RESULTS / 'releases' / f'{release}.json').read_text())


#: decimals the packaged zoo table keeps of each figure (%): enough that a figure shown to 0.1 or 0.01 is rounded
#: once, from the measured value (78.8679 ± 5.4468 shows as 78.9 ± 5.4; kept to 2 decimals, 5.45, it showed 5.5)
FIGURE_DIGITS = 6


def _figures(run: dict) -> dict:
    """WAR and UAR (%) of a collected run: the mean over its splits and their population std, like for like for every
    row; a repeated run gives the mean over all its trainings, the std over the splits averaged over the repeats, and
    the spread of the repeats' means apart (`seed_war_std`, `seed_uar_std`: sample stds)."""
    repeats = [r['folds'] for r in run['repeats']] if 'repeat_summary' in run else [run['folds']]
    row = dict(repeats=len(repeats))
    for key in ('war', 'uar'):
        stats = [_mean_std(folds, key) for folds in repeats]
        row[f'{key}_mean'] = round(sum(m for m, _ in stats) / len(stats), FIGURE_DIGITS)
        row[f'{key}_std'] = round(sum(s for _, s in stats) / len(stats), FIGURE_DIGITS)
    if len(repeats) > 1:
        rs = run['repeat_summary']
        row.update(seed_war_std=round(100 * rs['war_std'], FIGURE_DIGITS),
                   seed_uar_std=round(100 * rs['uar_std'], FIGURE_DIGITS))
    return row


#: EMODB's utterances, all of which a zoo tag trains on
EMODB_UTTERANCES = 535


def tag_hours(model: str, config: dict) -> Optional[float]:
    """Single-thread CPU hours (`zoo_cost.COST_FILE`'s machine) of training `model`'s zoo tag: its row's recipe
    (`config`: the epochs) once on all 535 utterances, in the tag's precision; None where no cost was measured."""
    from tim_zoo.models._zoo import tag_precision
    hours = zoo_cost.training_hours(model, tag_precision(model), config['epochs'], EMODB_UTTERANCES)
    return None if hours is None else round(hours, 2)


def packaged_zoo_table() -> str:
    """The JSON text of `PACKAGED_ZOO_TABLE`: per model, the test WAR and UAR (%) of its zoo row, mean and population
    std over the splits (once its repeats are in: the mean over them, the splits' std averaged over them, and the
    repeats' means' sample std apart as `seed_war_std`/`seed_uar_std`), how many splits and repeats, its
    recipe and its results file, and under `loso` the same recipe's figures with each speaker held out in turn once
    that run is in; the same of the bundled `timnet`'s recipe (`bundled`); per evaluated Keras release
    its mean WAR (std over folds), pooled UAR and per-fold WAR and UAR on its own test folds (`releases`)."""
    models, rows = {}, {}
    for kind in ('table', 'repeats'):          # the repeats, once in, replace a one-run row or stand for a missing one
        rows.update({path.name.split('.')[1]: path for path in TRAINING_RESULTS.glob(f'zoo_{kind}.*.json')})
    for _, path in sorted(rows.items()):
        run = json.loads(path.read_text())
        models[run['config']['model']] = dict(
            splits=len(run['folds']), recipe=run['config']['recipe'], precision=run['config']['precision'],
            results=str(path.relative_to(ROOT)), **_figures(run))
    for model, row in models.items():
        hours = tag_hours(model, json.loads((ROOT / row['results']).read_text())['config'])
        if hours is not None:
            row['tag_hours'] = hours
    for path in sorted(TRAINING_RESULTS.glob('zoo_loso.*.json')):      # the same recipe, a speaker held out
        run = json.loads(path.read_text())
        if run['config']['model'] in models:
            models[run['config']['model']]['loso'] = dict(
                splits=len(run['folds']), precision=run['config']['precision'], results=str(path.relative_to(ROOT)),
                **{k: v for k, v in _figures(run).items() if k != 'repeats'})
    bundled_path = TRAINING_RESULTS / f'{BUNDLED_RECIPE_RUN}.json'
    bundled = json.loads(bundled_path.read_text())
    bundled = dict(timnet=dict(splits=len(bundled['folds']), recipe=bundled['config']['recipe'], frames=188,
                               precision=bundled['config'].get('precision', 'fp32'),   # older than bf16: fp32
                               results=str(bundled_path.relative_to(ROOT)), **_figures(bundled)))
    releases = {}
    for path in sorted(TRAINING_RESULTS.glob('releases/*.json')):
        r = json.loads(path.read_text())
        releases[r['release']] = dict(
            corpus=r['corpus'], seed=r['seed'], results=str(path.relative_to(ROOT)),
            war_mean=round(100 * r['war'], FIGURE_DIGITS), war_std=round(100 * r['war_std'], FIGURE_DIGITS),
            uar_pooled=round(100 * r['uar'], FIGURE_DIGITS),
            per_fold=[dict(fold=f['fold'], war=round(100 * f['war'], FIGURE_DIGITS),
                           uar=round(100 * f['uar'], FIGURE_DIGITS))
                      for f in r['per_fold']])
    table = dict(protocol='EMODB (535 utterances, 7 classes), the TIM-Net authors\' 10 folds (seed 46, speakers '
                          'mixed): trained on nine folds with the zoo recipe, tested on the tenth at the last epoch; '
                          'mean and population std over the 10 splits; with several repeats (training seeds), the '
                          'mean over them, the splits\' std averaged over them, and the sample std of the repeats\' '
                          'means as seed_war_std / seed_uar_std; loso: the same recipe trained on nine speakers and '
                          'tested on the tenth, each in turn (docs/training.md, "The zoo")', models=models,
                 bundled=bundled, releases=releases)
    return json.dumps(table, indent=1) + '\n'


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument('--check', action='store_true', help='exit 1 if a page or the packaged zoo table is out of date')
    args = p.parse_args(argv)
    stale = []
    for page in (PAGE, TRAINING_PAGE, EVALUATION_PAGE, README, MODELS_PAGE):
        text = page.read_text()
        new = update(text)
        if new != text:
            stale.append(page)
            if not args.check:
                page.write_text(new)
    packaged = packaged_zoo_table()
    if not PACKAGED_ZOO_TABLE.exists() or PACKAGED_ZOO_TABLE.read_text() != packaged:
        stale.append(PACKAGED_ZOO_TABLE)
        if not args.check:
            PACKAGED_ZOO_TABLE.write_text(packaged)
    if args.check and stale:
        print(f'{", ".join(map(str, stale))} out of date: run python benchmarks/make_tables.py', file=sys.stderr)
        return 1
    return 0


if __name__ == '__main__':
    sys.exit(main())
