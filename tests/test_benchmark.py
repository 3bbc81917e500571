"""The benchmark harness measures what it says; timings themselves are never asserted."""
import json
import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace

import pytest

import tim_zoo
from tim_zoo.benchmark import ReferenceBiTemporalEncoder, measure, reference_encoders, select_models
from tim_zoo.layers import BiTemporalEncoder

from conftest import benchmark_script

REQUIRED_KEYS = {'model', 'batch', 'frames', 'device', 'params', 'macs', 'infer_ms', 'train_step_ms', 'peak_mem_mb'}


def test_measure_reports_reference_speedup_with_equal_outputs():
    row = measure('at_deltatim_v2', batch=2, frames=24, repeats=2, warmup=1)
    assert row.params == tim_zoo.count_params(tim_zoo.create_model('at_deltatim_v2', seq_len=24))
    assert row.macs > 0 and row.infer_ms > 0 and row.train_step_ms > 0
    assert row.ref_infer_ms > 0 and row.ref_train_step_ms > 0
    assert row.ref_max_abs_diff <= 1e-5


def test_models_without_a_bidirectional_encoder_have_no_reference():
    row = measure('set', batch=2, frames=16, repeats=1, warmup=1, train=False)
    assert row.train_step_ms is None and row.ref_infer_ms is None and row.ref_max_abs_diff is None


def test_reference_encoders_are_swapped_back():
    model = tim_zoo.create_model('transformer_tim', seq_len=20)
    encoder = model.tim.encoder
    with reference_encoders(model) as n:
        assert n == 1 and isinstance(model.tim.encoder, ReferenceBiTemporalEncoder)
        assert model.tim.encoder.encoder is encoder
    assert model.tim.encoder is encoder and isinstance(encoder, BiTemporalEncoder)


def test_select_models_patterns():
    assert select_models(['tim*']) == ['tim', 'timnet']
    with pytest.raises(ValueError, match='no model matches'):
        select_models(['resnet*'])


@pytest.mark.slow
def test_cli_writes_json_rows(tmp_path):
    out = tmp_path / 'rows.json'
    done = subprocess.run(
        [sys.executable, '-m', 'tim_zoo.benchmark', '--models', 'timnet', '--batch', '2', '--frames', '16', '24',
         '--repeats', '2', '--warmup', '1', '--threads', '1', '--json', str(out)],
        capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    rows = json.loads(out.read_text())
    assert [r['frames'] for r in rows] == [16, 24]
    assert all(REQUIRED_KEYS <= set(r) and r['device'] == 'cpu' and r['threads'] == 1 for r in rows)
    assert 'timnet' in done.stdout and 'speed-up' in done.stdout


def test_doc_tables_match_the_recorded_rows():
    root = Path(__file__).resolve().parents[1]
    done = subprocess.run([sys.executable, str(root / 'benchmarks' / 'make_tables.py'), '--check'],
                          capture_output=True, text=True)
    assert done.returncode == 0, done.stderr


def test_zoo_driver_tracks_finished_splits_and_keeps_test_figures_out_of_choices(tmp_path, monkeypatch, capsys):
    """A split is done once its result is in the tracked folder; a choice run's tracked result holds its validation
    history but no test figure, and `choose` reads validation accuracy only."""
    zoo = benchmark_script('zoo')
    monkeypatch.setattr(zoo, 'RUNS', tmp_path / 'runs')
    monkeypatch.setattr(zoo, 'TRACKED', tmp_path / 'tracked')
    monkeypatch.setattr(zoo, 'ROOT', tmp_path)
    run = zoo.RUNS_LIST[0]
    assert run.stage == 'choice' and len(run.splits()) == 10
    assert [s for s in run.splits() if zoo.split_state(run, s, {}) != 'pending'] == []
    folder = tmp_path / 'runs' / run.name / 'fold3'
    (folder / 'fold3').mkdir(parents=True)
    (folder / 'config.json').write_text(json.dumps(dict(model=run.model)))
    history = [dict(epoch=1, val_war=0.5), dict(epoch=2, val_war=0.75)]
    (folder / 'fold3' / 'result.json').write_text(json.dumps(dict(split='fold3', war=0.9, uar=0.8, confusion=[[1]],
                                                                  history=history)))
    assert zoo.split_state(run, 'fold3', {}) == 'finished'
    assert zoo.cmd_collect(None) == 0
    assert zoo.split_state(run, 'fold3', {}) == 'done'
    kept = json.loads((tmp_path / 'tracked' / run.name / 'fold3' / 'fold3' / 'result.json').read_text())
    assert kept['history'] == history and not {'war', 'uar', 'confusion'} & set(kept)
    assert json.loads((tmp_path / 'tracked' / run.name / 'fold3' / 'config.json').read_text()) == dict(model=run.model)
    capsys.readouterr()
    zoo.cmd_choose(None)
    line = next(line for line in capsys.readouterr().out.splitlines() if line.startswith(run.name))
    assert line.split()[1:] == ['1', '75.00', '75.00']
    cmd = run.command('fold3', resume=True)
    assert cmd[-1] == '--resume' and cmd[cmd.index('--fold') + 1] == '3' and '--threads' in cmd
    assert '--no-test' in cmd                             # choice runs never evaluate the test folds


def test_zoo_driver_assembles_a_finished_table_run(tmp_path, monkeypatch):
    from tim_zoo.train import TrainConfig
    zoo = benchmark_script('zoo')
    monkeypatch.setattr(zoo, 'RUNS', tmp_path / 'runs')
    monkeypatch.setattr(zoo, 'TRACKED', tmp_path / 'results' / 'zoo')
    monkeypatch.setattr(zoo, 'ROOT', tmp_path)
    run = zoo.Run('table.tim', 'tim', 'default', 'o1_87', stage='table')
    monkeypatch.setattr(zoo, 'RUNS_LIST', [run])
    for k, split in enumerate(run.splits(), start=1):
        folder = tmp_path / 'runs' / run.name / split
        (folder / split).mkdir(parents=True)
        (folder / 'config.json').write_text(TrainConfig(model='tim', protocol='kfold', seed=46, only_folds=[k]).to_json())
        (folder / split / 'result.json').write_text(json.dumps(dict(
            split=split, chosen_epoch=100, n_train=433, n_val=48, n_test=54, war=0.5 + k / 100, uar=0.5,
            confusion=[[1]], history=[dict(epoch=1)])))
        zoo.cmd_collect(None)
        assert (tmp_path / 'results' / 'zoo_table.tim.json').exists() == (k == 10)
    assembled = json.loads((tmp_path / 'results' / 'zoo_table.tim.json').read_text())
    assert [f['split'] for f in assembled['folds']] == run.splits()
    assert assembled['folds'][2]['war'] == 0.53 and 'history' not in assembled['folds'][2]
    assert 'only_folds' not in assembled['config']
    assert assembled['device'] == f'{zoo.this_machine()}: {zoo.HOW}'       # every split trained here
    assert all(f['machine'] == zoo.this_machine() for f in assembled['folds'])
    # splits from two machines: each machine with its splits; a split collected before splits recorded theirs
    for split, machine in (('fold1', None), ('fold2', 'Other CPU (avx2), 2 cores')):
        path = zoo.tracked(run, split)
        result = json.loads(path.read_text())
        result.pop('machine')
        path.write_text(json.dumps(result if machine is None else dict(result, machine=machine)))
    where = zoo.machines([run])
    assert where.startswith(f'fold1 on {zoo.EARLIER_MACHINE}; fold2 on Other CPU (avx2), 2 cores; fold3, fold4')
    assert where.endswith(f'fold10 on {zoo.this_machine()}: {zoo.HOW}')
    # a row whose recipe is still probed gets no results file (the pages would quote it)
    (tmp_path / 'results' / 'zoo_table.tim.json').unlink()
    monkeypatch.setattr(zoo, 'RECIPE_PENDING', ('tim',))
    zoo.cmd_collect(None)
    assert not (tmp_path / 'results' / 'zoo_table.tim.json').exists()
    # a superseded run: its splits and results file set aside with the reason, its attempts forgotten, trained afresh
    monkeypatch.setattr(zoo, 'RECIPE_PENDING', ())
    zoo.cmd_collect(None)
    (tmp_path / 'runs' / 'attempts.json').write_text(json.dumps({'table.tim/fold1': [0], 'other/fold1': [3]}))
    args = SimpleNamespace(run='table.tim', why='a better recipe')
    monkeypatch.setattr(zoo, '_jobs', lambda: {'table.tim/fold2': 1})
    assert zoo.cmd_supersede(args) == 1 and zoo.split_state(run, 'fold1', {}) == 'done'   # refused while one runs
    monkeypatch.setattr(zoo, '_jobs', lambda: {})
    assert zoo.cmd_supersede(SimpleNamespace(run='table.tin', why='x')) == 2               # unknown: close names
    assert zoo.cmd_supersede(args) == 0
    aside = tmp_path / 'results' / 'zoo' / 'superseded'
    assert (aside / 'table.tim' / 'zoo_table.tim.json').exists() and (aside / 'table.tim' / 'fold3').is_dir()
    assert '`table.tim`: a better recipe' in (aside / 'README.md').read_text()
    assert not (tmp_path / 'results' / 'zoo_table.tim.json').exists()
    assert (tmp_path / 'runs' / 'superseded' / 'table.tim' / 'fold1').is_dir()
    assert json.loads((tmp_path / 'runs' / 'attempts.json').read_text()) == {'other/fold1': [3]}
    assert {zoo.split_state(run, s, {}) for s in run.splits()} == {'pending'}


def test_zoo_driver_starts_chosen_runs_on_a_gpu_and_records_where_each_split_trained(tmp_path, monkeypatch, capsys):
    """`start --device cuda --runs ...`: the fp32 splits of the named runs in the names' order, each told its device;
    bf16 rows keep their CPU, and that is said; each machine a split started on reaches its tracked result."""
    import torch
    zoo = benchmark_script('zoo')
    monkeypatch.setattr(zoo, 'RUNS', tmp_path / 'runs')
    monkeypatch.setattr(zoo, 'TRACKED', tmp_path / 'results' / 'zoo')
    monkeypatch.setattr(zoo, 'ROOT', tmp_path)
    runs = [zoo.Run('table.a', 'tim', 'seed.emodb', 'o1_87', stage='table', folds=(1, 2)),
            zoo.Run('table.b', 'tim', 'seed.emodb', 'o1_87', stage='table', precision='bf16', folds=(1,)),
            zoo.Run('repeat.c.r2', 'tim', 'seed.emodb', 'o1_87', stage='repeat', repeat=2, folds=(1,))]
    monkeypatch.setattr(zoo, 'RUNS_LIST', runs)
    monkeypatch.setattr(zoo, 'ensure_features', lambda name: None)
    monkeypatch.setattr(zoo, '_native_bf16', lambda: True)
    monkeypatch.setattr(torch.cuda, 'get_device_name', lambda device=None: 'Some GPU')
    started = []

    class Proc:
        def __init__(self, cmd, **kwargs):
            started.append(cmd)
            self.pid = 10 ** 7 + len(started)             # no such process: the next start sees it gone

    def out(cmd):
        return tuple(cmd[cmd.index('--out') + 1].split('/')[-2:])

    monkeypatch.setattr(zoo.subprocess, 'Popen', Proc)
    capsys.readouterr()
    assert zoo.cmd_start(SimpleNamespace(jobs=9, stage=None, runs=['repeat.', 'table.'], device='cuda')) == 0
    assert [(out(c), c[c.index('--device') + 1]) for c in started] == [
        (('repeat.c.r2', 'fold1'), 'cuda'), (('table.a', 'fold1'), 'cuda'), (('table.a', 'fold2'), 'cuda')]
    assert 'not on cuda: table.b (bf16 rows train on a CPU with native bf16)' in capsys.readouterr().out
    gpu = f'Some GPU (CUDA, fp32 without TF32) on a host with {zoo.this_machine()}'
    folder = tmp_path / 'runs' / 'table.a' / 'fold1'
    assert (folder / zoo.MACHINE_FILE).read_text() == gpu + '\n'
    # resumed on this CPU: both machines, in order
    started.clear()
    assert zoo.cmd_start(SimpleNamespace(jobs=9, stage=None, runs=None, device='cpu')) == 0
    assert {out(c) for c in started} == {('table.a', 'fold1'), ('table.a', 'fold2'), ('table.b', 'fold1'),
                                         ('repeat.c.r2', 'fold1')}
    assert not any('--device' in c for c in started)
    result = folder / 'fold1' / 'result.json'
    result.parent.mkdir()
    (folder / 'config.json').write_text('{}')
    result.write_text(json.dumps(dict(split='fold1', war=0.5, uar=0.5, confusion=[[1]], history=[])))
    zoo.cmd_collect(None)
    assert json.loads(zoo.tracked(runs[0], 'fold1').read_text())['machine'] == f'{gpu} then {zoo.this_machine()}'
    with pytest.raises(SystemExit, match='no run is named table.z'):
        zoo.cmd_start(SimpleNamespace(jobs=1, stage=None, runs=['table.z'], device='cuda'))


def test_zoo_driver_unpacks_splits_finished_elsewhere_over_the_ones_training_here(tmp_path, monkeypatch, capsys):
    """`unpack`: a finished split of the archive replaces the same split training here (stopped first) or not yet
    started; a split finished here keeps its own; an unfinished or unknown one is not taken; `stop` stops them all."""
    import tarfile
    zoo = benchmark_script('zoo')
    monkeypatch.setattr(zoo, 'RUNS', tmp_path / 'runs')
    monkeypatch.setattr(zoo, 'TRACKED', tmp_path / 'results' / 'zoo')
    monkeypatch.setattr(zoo, 'ROOT', tmp_path)
    run = zoo.Run('table.a', 'tim', 'seed.emodb', 'o1_87', stage='table', folds=(1, 2, 3, 4))
    monkeypatch.setattr(zoo, 'RUNS_LIST', [run])
    packed = tmp_path / 'gpu' / 'runs' / 'zoo'
    for split, finished in (('fold1', True), ('fold2', True), ('fold3', True), ('fold4', False)):
        (packed / 'table.a' / split / split).mkdir(parents=True)
        (packed / 'table.a' / split / 'config.json').write_text('{"device": "cuda"}')
        (packed / 'table.a' / split / zoo.MACHINE_FILE).write_text('Some GPU\n')
        if finished:
            (packed / 'table.a' / split / split / 'result.json').write_text(json.dumps(dict(split=split, war=0.9)))
    (packed / 'table.x' / 'fold1' / 'fold1').mkdir(parents=True)
    (packed / 'table.x' / 'fold1' / 'fold1' / 'result.json').write_text('{}')
    with tarfile.open(tmp_path / 'gpu_runs.tgz', 'w:gz') as archive:
        archive.add(tmp_path / 'gpu' / 'runs', arcname='runs')
    here = tmp_path / 'runs' / 'table.a'
    (here / 'fold1').mkdir(parents=True)                  # training here: stopped, replaced
    (here / 'fold1' / 'last.safetensors').write_text('partial')
    (here / 'fold2' / 'fold2').mkdir(parents=True)        # finished here: kept
    (here / 'fold2' / 'fold2' / 'result.json').write_text(json.dumps(dict(split='fold2', war=0.1)))
    (here / 'fold2' / 'config.json').write_text('{}')
    stopped = []
    monkeypatch.setattr(zoo, '_jobs', lambda: {'table.a/fold1': 4242})
    monkeypatch.setattr(zoo, '_stop_job', lambda key, pid: stopped.append((key, pid)))
    capsys.readouterr()
    assert zoo.cmd_unpack(SimpleNamespace(archive=tmp_path / 'gpu_runs.tgz')) == 0
    said = capsys.readouterr().out
    assert said.startswith('taken: table.a/fold1, table.a/fold3; kept the finished splits here: table.a/fold2')
    assert 'table.a/fold4 (unfinished)' in said and 'table.x/fold1' in said
    assert stopped == [('table.a/fold1', 4242)] and not (here / 'fold1' / 'last.safetensors').exists()
    assert json.loads(run.result('fold1').read_text())['war'] == 0.9
    assert json.loads(run.result('fold2').read_text())['war'] == 0.1
    assert run.result('fold4') is None and not (tmp_path / 'runs' / 'table.x').exists()
    monkeypatch.setattr(zoo, '_jobs', lambda: {})
    zoo.cmd_collect(None)
    assert json.loads(zoo.tracked(run, 'fold3').read_text())['machine'] == 'Some GPU'
    stopped.clear()
    monkeypatch.setattr(zoo, '_jobs', lambda: {'table.a/fold4': 1, 'table.a/fold2': 2})
    assert zoo.cmd_stop(None) == 0 and stopped == [('table.a/fold4', 1), ('table.a/fold2', 2)]
    # a missing archive, or the logs' archive, is said
    assert zoo.cmd_unpack(SimpleNamespace(archive=tmp_path / 'none.tgz')) == 2
    with tarfile.open(tmp_path / 'gpu_logs.tgz', 'w:gz') as archive:
        (tmp_path / 'gpu' / 'runs' / 'zoo' / 'table.a' / 'fold1.out').write_text('log')
        archive.add(tmp_path / 'gpu' / 'runs' / 'zoo' / 'table.a' / 'fold1.out', arcname='runs/zoo/table.a/fold1.out')
    capsys.readouterr()
    assert zoo.cmd_unpack(SimpleNamespace(archive=tmp_path / 'gpu_logs.tgz')) == 2
    assert 'is it gpu_logs.tgz' in capsys.readouterr().err


def test_zoo_driver_assembles_a_seed_models_repeats_apart_from_its_bf16_table_row(tmp_path, monkeypatch):
    from tim_zoo.train import TrainConfig
    zoo = benchmark_script('zoo')
    monkeypatch.setattr(zoo, 'RUNS', tmp_path / 'runs')
    monkeypatch.setattr(zoo, 'TRACKED', tmp_path / 'results' / 'zoo')
    monkeypatch.setattr(zoo, 'ROOT', tmp_path)
    table = zoo.Run('table.tim', 'tim', 'seed.emodb', 'o1_87', stage='table', precision='bf16', folds=(1, 2))
    repeats = [zoo.Run(f'repeat.tim.r{r}', 'tim', 'seed.emodb', 'o1_87', stage='repeat', precision='fp32',
                       folds=(1, 2), repeat=r) for r in (1, 2, 3)]
    monkeypatch.setattr(zoo, 'RUNS_LIST', [table] + repeats)
    monkeypatch.setattr(zoo, 'REPEATS', 3)
    for run in [table] + repeats:
        for k, split in enumerate(run.splits(), start=1):
            folder = tmp_path / 'runs' / run.name / split
            result = folder / (f'repeat{run.repeat}' if run.repeat > 1 else '') / split / 'result.json'
            result.parent.mkdir(parents=True)
            more = dict(repeats=3, only_repeats=[run.repeat]) if run.repeat > 1 else {}
            (folder / 'config.json').write_text(TrainConfig(
                model='tim', recipe='seed.emodb', precision=run.precision, only_folds=[k], **more).to_json())
            war = round(0.5 + k / 10 + run.repeat / 100 + (run.precision == 'bf16') / 5, 4)
            result.write_text(json.dumps(dict(split=split, war=war, uar=0.5, confusion=[[1]], history=[])))
    zoo.cmd_collect(None)
    results = tmp_path / 'results'
    assert json.loads((results / 'zoo_table.tim.json').read_text())['config']['precision'] == 'bf16'
    first = json.loads((results / 'zoo_repeat.tim.r1.json').read_text())       # the bf16 row's fp32 twin
    assert first['config']['precision'] == 'fp32' and [f['war'] for f in first['folds']] == [0.61, 0.71]
    together = json.loads((results / 'zoo_repeats.tim.json').read_text())
    assert together['runs'] == ['repeat.tim.r1', 'repeat.tim.r2', 'repeat.tim.r3']
    assert together['config']['precision'] == 'fp32' and together['config']['repeats'] == 3
    assert [[f['war'] for f in r['folds']] for r in together['repeats']] == [[0.61, 0.71], [0.62, 0.72], [0.63, 0.73]]
    # a repeat set aside takes the model's repeats file with it; the table row stays
    monkeypatch.setattr(zoo, '_jobs', lambda: {})
    assert zoo.cmd_supersede(SimpleNamespace(run='repeat.tim.r2', why='x')) == 0
    assert not (results / 'zoo_repeats.tim.json').exists() and (results / 'zoo_table.tim.json').exists()
    assert (results / 'zoo' / 'superseded' / 'repeat.tim.r2' / 'zoo_repeats.tim.json').exists()


def test_zoo_tables_show_validation_for_choices_and_test_accuracy_for_the_rest(tmp_path, monkeypatch):
    from tim_zoo.train import TrainConfig
    make_tables = benchmark_script('make_tables')
    monkeypatch.setattr(make_tables, 'ZOO', tmp_path)
    for k, (last, best) in enumerate([(0.5, 0.75), (0.25, 0.5)], start=1):
        folder = tmp_path / 'choice.timnet.o1_87' / f'fold{k}' / f'fold{k}'
        folder.mkdir(parents=True)
        folder.joinpath('result.json').write_text(json.dumps(dict(history=[dict(val_war=best), dict(val_war=last)])))
        folder = tmp_path / 'table.tim' / f'fold{k}' / f'fold{k}'
        folder.mkdir(parents=True)
        folder.joinpath('result.json').write_text(json.dumps(dict(war=0.5 + 0.1 * k, uar=0.5, history=[])))
        config = TrainConfig(model='tim', recipe='seed.emodb', lr=1e-4, scheduler='none', grad_clip=1.0, only_folds=[k])
        folder.parent.joinpath('config.json').write_text(config.to_json())
    assert '| `choice.timnet.o1_87` | 2 (folds 1-2) | 37.50 | - | 62.50 |' in make_tables.render_zoo('choice')
    assert ('| `table.tim` | `seed.emodb`, lr 0.0001, grad clip 1.0 | fp32 | 2 / 10 | 65.00 (5.00) | 50.00 (0.00) |'
            in make_tables.render_zoo('table'))
    findings = make_tables.render_zoo('finding')
    assert '(none yet)' in findings
    assert '| `finding.tim.mul` | for plain TIM the additive TAB residual was much better | `repeat.tim.r1` |' in findings


def test_zoo_plan_compares_and_repeats_runs_of_one_precision():
    """A finding differs from the run it is compared with in its model argument alone, a model's repeats and its
    leave-one-speaker-out run share one precision, and the seed models' fp32 repeat 1 is their table row's command
    in fp32: the pairs the docs compare measure what they name, not a precision change."""
    from tim_zoo.cli.train import _literal
    zoo = benchmark_script('zoo')
    runs = {r.name: r for r in zoo.RUNS_LIST}
    assert len(runs) == len(zoo.RUNS_LIST)

    def differences(run, other):
        mine, theirs = run.command('fold1', False), other.command('fold1', False)
        out = (str(zoo.RUNS / run.name / 'fold1'), str(zoo.RUNS / other.name / 'fold1'))
        return [pair for pair in zip(mine, theirs) if pair != out and pair[0] != pair[1]], mine[len(theirs):]
    for name, model, args, _ in zoo.FINDINGS:
        variant, base = runs[f'finding.{name}'], runs[zoo.finding_base(model)]
        assert differences(variant, base) == ([], variant.extra), name
        assert variant.extra[::2] == ['--model-arg'] * len(args) and base.extra == []
        given = dict(arg.split('=', 1) for arg in variant.extra[1::2])
        assert {key: _literal(value) for key, value in given.items()} == args, name    # what the CLI will read
    for model in zoo.TIER2_MODELS:
        parts = zoo.repeat_parts(model)
        assert [p.repeat for p in parts] == list(range(1, zoo.REPEATS + 1)), model
        assert {p.precision for p in parts} == {runs[f'loso.{model}'].precision}, model
    for model in zoo.SEED_TIER2:
        assert differences(runs[f'repeat.{model}.r1'], runs[f'table.{model}']) == ([('fp32', 'bf16')], []), model
    assert {runs[zoo.finding_base(m)].precision for _, m, _, _ in zoo.FINDINGS if m in zoo.SEED_TIER2} == {'fp32'}


def test_zoo_plan_matches_what_trained_and_what_the_tags_say():
    """Every tracked split trained in the precision its run now names (a run whose precision changed would count
    splits of the other as done), a larger model's tag names the command of its row's precision, and `start` takes
    the runs it names first before the missing rows, and those before the rest of tier 2."""
    from tim_zoo.models._zoo import BF16_ROWS, train_command
    zoo = benchmark_script('zoo')
    runs = {r.name: r for r in zoo.RUNS_LIST}
    checked = 0
    for run in zoo.RUNS_LIST:
        for split in run.splits():
            if zoo.tracked(run, split) is not None:
                config = json.loads((zoo.TRACKED / run.name / split / 'config.json').read_text())
                assert config['precision'] == run.precision, f'{run.name}/{split}'
                checked += 1
    if zoo.TRACKED.is_dir():
        assert checked > 100
    for model in zoo.TABLE_MODELS:
        assert f'--precision {runs[f"table.{model}"].precision} ' in train_command(model), model
    assert set(zoo.FIRST_RUNS) <= set(runs)                  # a name that is no run would change no order
    order = [r.name for r in sorted(zoo.RUNS_LIST, key=lambda r: r.order)]
    assert max(order.index(n) for n in zoo.FIRST_RUNS) < order.index('table.at_deltatim_v2') < order.index(
        'table.transformer_tim') < order.index('repeat.at_deltatim.r2')
    assert order.index('table.multitim') < order.index('table.cnn_transformer')
    # the bf16 rows' folds (unsupported without native bf16) go first on a machine that can run them
    assert max(order.index(f'table.{m}') for m in BF16_ROWS) < min(order.index(n) for n in zoo.FIRST_RUNS)


def test_zoo_driver_stops_restarting_a_split_that_makes_no_progress(tmp_path, monkeypatch, capsys):
    zoo = benchmark_script('zoo')
    monkeypatch.setattr(zoo, 'RUNS', tmp_path / 'runs')
    monkeypatch.setattr(zoo, 'TRACKED', tmp_path / 'tracked')
    run = zoo.RUNS_LIST[0]
    (tmp_path / 'runs' / run.name / 'fold1').mkdir(parents=True)
    (tmp_path / 'runs' / 'attempts.json').write_text(json.dumps({f'{run.name}/fold1': [0, 0]}))
    assert zoo.split_state(run, 'fold1', {}) == 'started'
    (tmp_path / 'runs' / 'attempts.json').write_text(json.dumps({f'{run.name}/fold1': [0, 0, 0]}))
    assert zoo.split_state(run, 'fold1', {}) == 'failed'
    (tmp_path / 'runs' / run.name / 'fold1.out').write_text('tim-zoo train: residual must be one of [...]\n')
    # a failure is said, with its words
    assert zoo.cmd_start(SimpleNamespace(jobs=0, stage=run.stage, runs=None, device='cpu')) == 0
    assert (f'failed, not restarted (1): {run.name}/fold1; {run.name}/fold1: tim-zoo train: residual must be'
            in capsys.readouterr().out)
    (tmp_path / 'runs' / run.name / 'fold1' / 'train.log').write_text('x fold1 epoch 1: train_loss 1.0\n')
    assert zoo.split_state(run, 'fold1', {}) == 'started'                 # it progressed since
    bf16 = zoo.Run('choice.x.bf16', 'at_deltatim_v2', 'default', 'o1_87', precision='bf16')
    monkeypatch.setattr(zoo, '_native_bf16', lambda: False)
    assert zoo.split_state(bf16, 'fold1', {}) == 'unsupported'


def test_benchmark_tables_are_narrow_and_mark_rows_of_an_earlier_definition():
    make_tables = benchmark_script('make_tables')
    row = dict(model='tim', frames=188, params=100, macs=2e6, infer_ms=1.0, train_step_ms=2.0, peak_mem_mb=3.0,
               batch=64, device='cpu', threads=2, torch_version='x')
    compared = dict(row, model='timnet', ref_infer_ms=2.0, ref_train_step_ms=4.0, ref_max_abs_diff=1e-7)
    text = make_tables.render([row, compared], current_params=lambda model, frames: 100 if model == 'tim' else 7)
    tables = [block for block in text.split('\n\n') if block.startswith('|')]
    assert len(tables) == 2 and all(block.splitlines()[0].count('|') <= 8 for block in tables)
    assert '| `tim` | 188 | 100 |' in text and '| `timnet` | 188 | 100 † |' in text
    assert 'parameters now: `timnet` 7' in text and '| `timnet` | 2.0 / 4.0 | 2.00x / 2.00x | 1.0e-07 |' in text


def test_the_packaged_zoo_table_takes_a_models_repeats_in_place_of_its_row_or_for_a_missing_one(tmp_path, monkeypatch):
    make_tables = benchmark_script('make_tables')
    results = tmp_path / 'docs' / 'results'
    results.mkdir(parents=True)
    bundled = f'{make_tables.BUNDLED_RECIPE_RUN}.json'
    (results / bundled).write_text((make_tables.TRAINING_RESULTS / bundled).read_text())
    monkeypatch.setattr(make_tables, 'TRAINING_RESULTS', results)
    monkeypatch.setattr(make_tables, 'ROOT', tmp_path)

    def write(name, model, precision, *repeats):
        folds = [[dict(war=w / 100, uar=w / 100) for w in wars] for wars in repeats]
        run = dict(config=dict(model=model, recipe='seed.emodb', precision=precision, epochs=100), folds=folds[0])
        if len(folds) > 1:
            run.update(repeats=[dict(repeat=r, folds=f) for r, f in enumerate(folds, start=1)],
                       repeat_summary=dict(war_std=0.01, uar_std=0.02))
        (results / f'{name}.json').write_text(json.dumps(run))
    write('zoo_table.tim', 'tim', 'bf16', [70, 80])
    write('zoo_table.at_tim', 'at_tim', 'bf16', [50, 60])
    write('zoo_repeats.tim', 'tim', 'fp32', [74, 78], [76, 80], [78, 82])
    write('zoo_repeats.multitim', 'multitim', 'fp32', [60, 64], [62, 66], [64, 68])
    write('zoo_loso.tim', 'tim', 'fp32', [40, 60])
    write('zoo_loso.set', 'set', 'fp32', [40, 60])                # no row of its own: left out
    models = json.loads(make_tables.packaged_zoo_table())['models']
    assert sorted(models) == ['at_tim', 'multitim', 'tim']
    assert models['tim']['loso'] == dict(splits=2, precision='fp32', results='docs/results/zoo_loso.tim.json',
                                         war_mean=50.0, war_std=10.0, uar_mean=50.0, uar_std=10.0)
    assert 'loso' not in models['at_tim']
    # what training its tag costs: the measured step at 87 frames in the tag's precision (the packaged at_tim's:
    # bf16, 2 s here), 9 steps of 64 over EMODB's 535 utterances, the row's 100 epochs: 0.5 single-thread hours
    cost = tmp_path / 'cost.json'
    cost.write_text(json.dumps(dict(batch=64, rows=[
        dict(model='at_tim', frames=frames, precision=precision, step_s=step_s)
        for frames, precision, step_s in ((87, 'bf16', 2.0), (87, 'fp32', 3.0), (188, 'bf16', 5.0))])))
    monkeypatch.setattr(benchmark_script('zoo_cost'), 'COST_FILE', cost)
    models = json.loads(make_tables.packaged_zoo_table())['models']
    assert models['at_tim']['tag_hours'] == 0.5 and 'tag_hours' not in models['tim']     # tim: no step measured
    assert models['at_tim']['results'] == 'docs/results/zoo_table.at_tim.json' and models['at_tim']['repeats'] == 1
    assert models['tim']['results'] == 'docs/results/zoo_repeats.tim.json' and models['tim']['war_mean'] == 78.0
    assert (models['multitim']['precision'], models['multitim']['war_mean'], models['multitim']['war_std'],
            models['multitim']['seed_war_std'], models['multitim']['repeats']) == ('fp32', 64.0, 2.0, 1.0, 3)



def test_zoo_cost_scales_the_nearest_measured_length_and_counts_batches_of_64():
    cost = benchmark_script('zoo_cost')
    rows = [dict(model='tim', frames=87, precision='fp32', step_s=0.87),
            dict(model='tim', frames=188, precision='fp32', step_s=5.0),
            dict(model='tim', frames=87, precision='bf16', step_s=0.3)]
    assert cost.step_seconds('tim', 'fp32', 100, rows) == pytest.approx(0.87 * 100 / 87)    # nearer 87 than 188
    assert cost.step_seconds('tim', 'fp32', 180, rows) == pytest.approx(5.0 * 180 / 188)
    assert cost.step_seconds('tim', 'bf16', 188, rows) is None         # bf16 not measured at 188
    assert cost.step_seconds('timnet', 'fp32', 87, rows) is None and cost.step_seconds('tim', 'fp32', 87, []) is None
    # 535 utterances: 9 batches of 64; 482: 8 (the default, a 10-fold split's training folds)
    assert cost.training_hours('tim', 'fp32', 100, 535, rows=rows) == pytest.approx(0.87 * 9 * 100 / 3600)
    assert cost.training_hours('tim', 'bf16', 50, splits=10, rows=rows) == pytest.approx(0.3 * 8 * 50 * 10 / 3600)

def test_zoo_epoch_times_reads_each_splits_log_by_machine(tmp_path, monkeypatch, capsys):
    times = benchmark_script('zoo_epoch_times')
    monkeypatch.setattr(times, 'RUNS', tmp_path)

    def split(run, name, machine, seconds):             # epoch lines at these seconds after 12:00:00
        folder = tmp_path / run / name
        folder.mkdir(parents=True)
        (folder / 'machine.txt').write_text(machine)
        (folder / 'train.log').write_text('2026-12-04 11:59:00,000 training x on 535 samples\n' + ''.join(
            f'2026-12-04 12:{int(s) // 60:02d}:{s % 60:06.3f}'.replace('.', ',') + f' {name} epoch {k}: train_loss 1\n'
            for k, s in enumerate(seconds, start=1)))
    split('table.a', 'fold1', 'GPU X\n', [0, 1, 2, 3, 4])                 # epochs of 1 s: 4 s first to last
    split('table.a', 'fold2', 'CPU Y\nGPU X\n', [0, 2, 4, 6, 8, 50])      # resumed on the GPU: the gap is no median
    split('table.a', 'fold3', 'CPU Y\n', [0, 10, 20, 30])
    assert times.rows('GPU') == [dict(run='table.a', machine='GPU X', splits=2, epochs=6, epoch_s=1.5, split_s=27.0)]
    out = tmp_path / 'rows.json'
    assert times.main(['--machine', 'CPU', '--json', str(out)]) == 0
    assert json.loads(out.read_text())['rows'][0]['epoch_s'] == 10.0
    assert '| `table.a` | CPU Y | 1 | 10.00 | 30 |' in capsys.readouterr().out
    assert times.main(['--machine', 'TPU']) == 1


def test_a_tie_averaged_over_seeds_is_counted_equal_not_better():
    """44, 45 and 46 of 54 right over three seeds average to 45 of 54 up to float rounding: a tie with a run that
    got 45, not the win a comparison of floats with 0 made of it."""
    make_tables = benchmark_script('make_tables')
    config = dict(protocol='kfold', folds=2, seed=46, precision='fp32')

    def fold(split, right):
        return dict(split=split, war=right / 54, n_test=54)
    seeds = [[fold('fold1', r), fold('fold2', 40)] for r in (44, 45, 46)]
    base = dict(config=config, folds=seeds[0], repeats=[dict(folds=f) for f in seeds])
    other = dict(config=config, folds=[fold('fold1', 45), fold('fold2', 41)])
    assert 100 * sum(f[0]['war'] for f in seeds) / 3 != 100 * (45 / 54)             # the rounding this is about
    row = make_tables.render_comparison(dict(base=base, other=other)).splitlines()[-1]
    assert row.endswith('| 1 / 1 / 0 |'), row
