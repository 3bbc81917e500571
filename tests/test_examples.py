"""The examples run end to end."""
import re
import runpy
from pathlib import Path

import pytest

EXAMPLES = sorted((Path(__file__).resolve().parents[1] / 'examples').glob('*.py'))


@pytest.mark.parametrize('path', EXAMPLES, ids=[p.stem for p in EXAMPLES])
def test_example_runs(path, capsys, monkeypatch):
    monkeypatch.setattr('sys.argv', [str(path)])          # each example's own defaults: its fast mode
    runpy.run_path(str(path), run_name='__main__')
    out = capsys.readouterr().out
    assert out.strip()
    if path.stem == 'finetune':                          # the fine-tune visibly learns: above chance (0.50)
        wars = [float(w) for w in re.findall(r': WAR (\d\.\d+)', out)]
        assert len(wars) == 2 and sum(wars) / 2 > 0.6, out


@pytest.mark.slow
def test_the_custom_model_project_trains_saves_reloads_in_another_process_and_predicts(tmp_path):
    """examples/custom_model: a model from blocks trained with the engine (made-up voices, 2 epochs), saved, then
    loaded by another script in a new process and used by EmotionRecognizer."""
    import subprocess
    import sys

    pytest.importorskip('safetensors')
    project = Path(__file__).resolve().parents[1] / 'examples' / 'custom_model'
    env = dict(__import__('os').environ, MPLBACKEND='Agg')
    done = subprocess.run([sys.executable, 'train.py', '--made-up', '--epochs', '2', '--out', str(tmp_path)],
                          cwd=project, capture_output=True, text=True, timeout=600, env=env)
    assert done.returncode == 0, done.stderr[-3000:]
    assert 'fold 1 of 5: test WAR' in done.stdout and (tmp_path / 'model.safetensors').is_file()
    again = subprocess.run([sys.executable, 'train.py', '--made-up', '--epochs', '2', '--out', str(tmp_path)],
                           cwd=project, capture_output=True, text=True, timeout=600, env=env)
    assert again.returncode == 0 and 'continuing the runs in' in again.stdout, again.stderr[-3000:]
    assert (tmp_path / 'features.npz').is_file()                       # what the README's command line reads
    done = subprocess.run([sys.executable, 'predict.py', '--model', str(tmp_path / 'model.safetensors')],
                          cwd=project, capture_output=True, text=True, timeout=600, env=env)
    assert done.returncode == 0, done.stderr[-3000:]
    assert 'classes: low, mid, high' in done.stdout and "'level': 'peak'" in done.stdout
    rows = [line.split() for line in done.stdout.splitlines() if line.startswith('<waveform') and ':' not in line]
    assert len(rows) == 2 and all(row[2] in ('low', 'mid', 'high') for row in rows)
