"""The command line as a user meets it: one line for every bad input or environment, never a traceback; exit
status 2 for usage errors, 1 for failures; nothing written by a run that cannot start."""
import os
import subprocess
import sys
import warnings
from pathlib import Path

import numpy as np
import pytest
import torch

from tim_zoo import __version__, cli
from tim_zoo.data import FeatureSet

SHARED = Path(__file__).resolve().parents[1] / '..' / 'shared'


def _tim_zoo(*args, cwd=None):
    exe = Path(sys.executable).with_name('tim-zoo')
    cmd = [str(exe)] if exe.exists() else [sys.executable, '-c', 'import sys; from tim_zoo.cli import main; '
                                                                  'sys.exit(main())']
    return subprocess.run(cmd + [str(a) for a in args], capture_output=True, text=True, timeout=300, cwd=cwd)


@pytest.fixture
def features(tmp_path):
    rng = np.random.default_rng(0)
    path = tmp_path / 'f.npz'
    FeatureSet(rng.standard_normal((12, 39, 20)).astype(np.float32), np.arange(12) % 2, ['a', 'b'],
               settings=dict(level='peak')).save(path)
    return path


@pytest.mark.slow
def test_bad_input_and_environment_give_one_line_and_the_right_status(tmp_path, features):
    out = tmp_path / 'run'
    train = ['train', '--features', features, '--out', out, '--epochs', '1', '--quiet']
    cases = [
        (train + ['--model', 'timnett'], 2, "unknown model 'timnett'; did you mean timnet"),
        (train + ['--protocol', 'kfold', '--folds', '1'], 2, 'k-fold needs at least 2 folds'),
        (train + ['--protocol', 'kfold', '--folds', '20'], 1, 'k-fold needs between 2 and 12 folds for 12 samples'),
        (train + ['--protocol', 'loso'], 1, 'leave-one-speaker-out needs a speaker for every sample; these have 0 of 12 '
                                           '(speakers come from a "speaker" column of a manifest'),
        (['list', '--frames', '1'], 2, '--frames must be at least 2'),
        (['predict', tmp_path / 'x.wav', '--mean-signal-length', '-5'], 2, 'mean_signal_length must be a positive'),
        (['predict', tmp_path], 1, 'no audio files in the folder'),
    ]
    if not torch.cuda.is_available():
        cases.append((train + ['--device', 'cuda'], 2, 'CUDA is not available on this machine'))
    keras = SHARED / 'weights' / 'timnet_official' / 'EMODB_46' / '10-fold_weights_best_1.hdf5'
    if keras.is_file():
        cases.append((['convert-keras', keras, tmp_path / 'missing' / 'x.safetensors'], 2,
                      f'the folder {tmp_path / "missing"} does not exist'))
    for args, status, message in cases:
        done = _tim_zoo(*args)
        assert 'Traceback' not in done.stderr, (args, done.stderr)
        assert done.returncode == status and message in done.stderr, (args, done.returncode, done.stderr)
        assert len(done.stderr.strip().splitlines()) == 1, (args, done.stderr)
        assert not out.exists(), f'{args} left {sorted(p.name for p in out.iterdir())} behind'


def test_version_and_a_description_on_every_command(capsys):
    with pytest.raises(SystemExit) as e:
        cli.main(['--version'])
    assert e.value.code == 0 and capsys.readouterr().out.strip() == f'tim-zoo {__version__}'
    import argparse
    parser = cli.build_parser()
    sub = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    for name, command in sub.choices.items():
        assert command.description and len(command.description) > 40, name
        json_flags = [a for a in command._actions if '--json' in a.option_strings]
        assert all(a.nargs == 0 for a in json_flags), f'--json takes no value in {name}'   # one meaning everywhere


def test_unexpected_errors_are_one_line_with_the_traceback_on_request(monkeypatch, capsys):
    from tim_zoo.cli import models

    monkeypatch.setattr(models, '_model_rows', lambda *a: 1 / 0)
    assert cli.main(['list']) == 1
    err = capsys.readouterr().err
    assert err.strip() == ('tim-zoo list: unexpected ZeroDivisionError: division by zero (a bug? TIM_ZOO_DEBUG=1 '
                           'shows the traceback)')
    monkeypatch.setenv('TIM_ZOO_DEBUG', '1')
    with pytest.raises(ZeroDivisionError):
        cli.main(['list'])


def _voice(seconds, f0, seed):
    sys.path.insert(0, str(Path(__file__).parent))
    from conftest import synthetic_speech
    return synthetic_speech(seconds, f0=f0, seed=seed)


def test_own_data_from_a_manifest_or_speaker_folders_trains_under_every_protocol(tmp_path, capsys):
    sf = pytest.importorskip('soundfile')
    from tim_zoo.data import load_corpus

    rows = ['path,label,speaker,comment']
    for s in range(3):
        for i, label in enumerate(['calm', 'tense'] * 2):
            rel = Path(f'spk{s}') / f'{label}{i}.flac'
            (tmp_path / 'data' / rel).parent.mkdir(parents=True, exist_ok=True)
            sf.write(str(tmp_path / 'data' / rel), _voice(0.6, 120 + 40 * i + 10 * s, seed=s * 10 + i), 22050)
            rows.append(f'{rel},{label},spk{s},take {i}')
            folder = tmp_path / 'folders' / label / f'spk{s}'
            folder.mkdir(parents=True, exist_ok=True)
            sf.write(str(folder / f'{i}.wav'), _voice(0.6, 120 + 40 * i, seed=i), 22050)
    manifest = tmp_path / 'data' / 'labels.csv'
    manifest.write_text('\n'.join(rows) + '\n')

    corpus = load_corpus('manifest', manifest)
    assert corpus.label_names == ['calm', 'tense'] and len(corpus) == 12
    assert sorted(set(corpus.speakers)) == ['spk0', 'spk1', 'spk2'] and all(Path(p).is_file() for p in corpus.paths)
    folders = load_corpus('folders', tmp_path / 'folders')
    assert sorted(set(folders.speakers)) == ['spk0', 'spk1', 'spk2'] and folders.label_names == ['calm', 'tense']

    common = ['--corpus', 'manifest', '--data-root', manifest]
    assert cli.main(['extract', *map(str, common), '-o', str(tmp_path / 'f.npz'), '--mean-signal-length', '16384',
                     '--quiet']) == 0
    assert FeatureSet.load(tmp_path / 'f.npz').settings['level'] == 'peak'      # corpus_extractor's default
    for protocol, extra in [('loso', ['--normalize', 'speaker_mean']), ('kfold', ['--folds', '3']), ('holdout', [])]:
        out = tmp_path / f'run_{protocol}'
        assert cli.main(['train', '--features', str(tmp_path / 'f.npz'), '--model', 'tim', '--model-arg', 'depth=2',
                         '--protocol', protocol, *extra, '--epochs', '1', '--batch-size', '4', '--val-fraction', '0.3',
                         '--out', str(out), '--quiet']) == 0, protocol
        assert (out / 'metrics.json').is_file()
    capsys.readouterr()
    # a feature file named with --corpus that holds other features (another length) is left as it is, not replaced
    before = (tmp_path / 'f.npz').read_bytes()
    assert cli.main(['train', *map(str, common), '--features', str(tmp_path / 'f.npz'), '--model', 'tim',
                     '--epochs', '1', '--out', str(tmp_path / 'run_cache'), '--quiet']) == 2
    err = capsys.readouterr().err
    assert 'holds other features than manifest gives now (settings differ in frames, mean_signal_length)' in err
    assert (tmp_path / 'f.npz').read_bytes() == before
    # with the length it was extracted with, the same file is the cache: read, not extracted again
    assert cli.main(['train', *map(str, common), '--features', str(tmp_path / 'f.npz'), '--mean-signal-length', '16384',
                     '--model', 'tim', '--model-arg', 'depth=2', '--epochs', '1', '--batch-size', '4',
                     '--out', str(tmp_path / 'run_cache'), '--quiet']) == 0
    assert (tmp_path / 'f.npz').read_bytes() == before
    assert 'were zero-padded around' in capsys.readouterr().err                      # 0.6 s recordings, 0.74 s input
    # a new start in a folder that holds a run is refused before anything is extracted into it
    run_dir = tmp_path / 'run_kfold'
    (run_dir / 'features.npz').write_bytes(before)
    assert cli.main(['train', *map(str, common), '--model', 'tim', '--out', str(run_dir), '--quiet']) == 2
    assert 'already holds a run' in capsys.readouterr().err and (run_dir / 'features.npz').read_bytes() == before
    assert cli.main(['train', '--features', str(tmp_path / 'f.npz'), '--mean-signal-length', '8000', '--model', 'tim',
                     '--out', str(tmp_path / 'run_len'), '--quiet']) == 2
    assert '(--mean-signal-length 8000): the features in' in capsys.readouterr().err

    (tmp_path / 'bad.csv').write_text('file,emotion\na.wav,x\n')
    (tmp_path / 'gone.csv').write_text('path,label\nmissing.wav,x\n,y\n')
    with pytest.raises(Exception, match='must name the columns path,label'):
        load_corpus('manifest', tmp_path / 'bad.csv')
    with pytest.raises(Exception, match='line 3: a path and a label are needed'):
        load_corpus('manifest', tmp_path / 'gone.csv')
    (tmp_path / 'gone.csv').write_text('path,label\nmissing.wav,x\n')
    with pytest.raises(Exception, match=r'1 files do not exist: missing.wav \(line 2\)'):
        load_corpus('manifest', tmp_path / 'gone.csv')


def test_hub_folder_command_writes_what_predict_and_create_model_load(tmp_path, capsys, speech_like):
    import json
    import soundfile
    import tim_zoo
    model = tim_zoo.create_model('tim', num_classes=2, depth=3)
    model.label_names = ['high', 'low']
    settings = dict(mean_signal_length=32768, n_mfcc=39, sample_rate=22050, order=1, level='peak')
    tim_zoo.save_checkpoint(model, tmp_path / 'm.safetensors', feature_settings=settings)
    assert cli.main(['hub-folder', str(tmp_path / 'm.safetensors'), str(tmp_path / 'hub')]) == 0
    assert 'wrote' in capsys.readouterr().out
    assert sorted(p.name for p in (tmp_path / 'hub').iterdir()) == ['README.md', 'config.json', 'model.safetensors']
    wav = tmp_path / 'a.wav'
    soundfile.write(wav, speech_like(seconds=1.5), 22050)
    answers = []
    for weights in (['--checkpoint', str(tmp_path / 'm.safetensors')], ['--model', f'local-dir:{tmp_path / "hub"}']):
        assert cli.main(['predict', str(wav), *weights, '--json']) == 0
        answers.append(json.loads(capsys.readouterr().out))
    assert answers[0] == answers[1] and set(answers[0][0]['probabilities']) == {'high', 'low'}


def test_model_arg_values_read_json_and_pythons_spelling_of_true_false_none():
    from tim_zoo.cli.train import _literal
    assert [_literal(v) for v in ('true', 'True', 'False', 'None', 'null', '0.5', '4', '[1, 2]', 'mul', "'mul'")] == [
        True, True, False, None, None, 0.5, 4, [1, 2], 'mul', "'mul'"]


def _documented_commands():
    """Every `tim-zoo ...` line of the shell blocks of README.md and docs/*.md, continuation lines joined and
    comments dropped."""
    import re
    import shlex
    root = Path(__file__).resolve().parents[1]
    for page in [root / 'README.md'] + sorted((root / 'docs').glob('*.md')):
        for block in re.findall(r'^```(?:bash|sh|shell)\n(.*?)^```', page.read_text(), re.S | re.M):
            for line in re.sub(r'\\\n\s*', ' ', block).splitlines():
                line = line.split(' #')[0].strip()
                if line.startswith('tim-zoo '):
                    yield page.name, line, shlex.split(line)[1:]


def test_every_documented_command_line_parses(capsys):
    """A flag renamed or dropped in the CLI fails here, not in a reader's shell."""
    commands = list(_documented_commands())
    assert len(commands) > 30 and any(argv[:2] == ['evaluate', '--model'] for _, _, argv in commands)
    failed = []
    for page, line, argv in commands:
        try:
            cli.build_parser().parse_args(argv)
        except SystemExit as e:
            if e.code:
                failed.append(f'{page}: {line}: {capsys.readouterr().err.strip().splitlines()[-1]}')
    assert not failed, '\n'.join(failed)


def test_the_cli_runs_as_a_module_of_either_name():
    """`python -m tim_zoo` and `python -m tim_zoo.cli`, as the entry point does."""
    for module in ('tim_zoo', 'tim_zoo.cli'):
        done = subprocess.run([sys.executable, '-m', module, '--version'], capture_output=True, text=True, timeout=300)
        assert done.returncode == 0 and done.stdout.strip() == f'tim-zoo {__version__}', (module, done.stderr)


def test_a_cli_warning_is_one_line_naming_the_command_not_a_source_line(tmp_path):
    rng = np.random.default_rng(0)
    FeatureSet(rng.normal(size=(12, 39, 87)).astype(np.float32), np.arange(12) % 2, ['x', 'y'],
               [f'u{i}.wav' for i in range(12)], [f's{i % 3}' for i in range(12)],
               dict(mean_signal_length=44100)).save(tmp_path / 'f.npz')
    done = subprocess.run([sys.executable, '-m', 'tim_zoo.cli', 'train', '--features', str(tmp_path / 'f.npz'),
                           '--init', 'tim.tim_zoo_emodb', '--epochs', '1', '--protocol', 'all', '--out',
                           str(tmp_path / 'run'), '--quiet'], capture_output=True, text=True, timeout=300,
                          env={**os.environ, 'PYTHONWARNINGS': 'default'})
    assert done.returncode == 0, done.stderr
    warned = [line for line in done.stderr.splitlines() if 'freshly initialised classifier' in line]
    assert len(warned) == 1 and warned[0].startswith('tim-zoo train: warning: ') and 'Warning:' not in warned[0]
    assert 'sys.exit' not in done.stderr
    before = warnings.formatwarning
    cli.main(['list', '--json'])
    assert warnings.formatwarning is before         # in-process callers keep their own formatting
