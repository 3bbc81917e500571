"""The zoo's published EMODB tags (`<model>.tim_zoo_emodb`): each shipped file loads, predicts a real EMODB file
and carries the metadata of its tracked all-data run (docs/results/zoo/tag.<model>/)."""
import hashlib
import json
from pathlib import Path

import pytest

import tim_zoo
from tim_zoo.exceptions import WeightsNotFoundError
from tim_zoo.models._zoo import PACKAGED, ZOO_TAG, packaged_file

ROOT = Path(__file__).resolve().parents[1]
TRACKED = ROOT / 'docs' / 'results' / 'zoo'
EMODB = ROOT.parent / 'shared' / 'data' / 'emodb' / 'wav'
ZOO_MODELS = sorted({name.split('.')[0] for name in tim_zoo.list_models(f'*.{ZOO_TAG}', pretrained=True)})


def test_every_model_has_a_zoo_tag_that_pretrained_true_resolves_to():
    assert len(ZOO_MODELS) == 14 and set(PACKAGED) < set(ZOO_MODELS)


@pytest.mark.parametrize('model', PACKAGED)
def test_packaged_tag_matches_its_tracked_run(model):
    record = TRACKED / f'tag.{model}' / 'fold1'
    if not record.is_dir():
        pytest.skip(f'tag.{model} has not been trained yet (benchmarks/zoo.py)')
    result = json.loads((record / 'all' / 'result.json').read_text())
    data = packaged_file(model).read_bytes()
    assert hashlib.sha256(data).hexdigest() == result['checkpoint']['sha256']
    net = tim_zoo.create_model(model, pretrained=True)
    assert net.pretrained_cfg['tag'] == ZOO_TAG
    config = json.loads((record / 'config.json').read_text())
    with __import__('safetensors').safe_open(str(packaged_file(model)), 'pt') as f:
        meta = json.loads(f.metadata()['tim_zoo'])
    trained = meta['extra']['train_config']
    assert {k: trained[k] for k in ('model', 'recipe', 'seed', 'protocol', 'precision', 'epochs', 'lr')} == \
        {k: config[k] for k in ('model', 'recipe', 'seed', 'protocol', 'precision', 'epochs', 'lr')}
    assert meta['feature_settings']['frames'] == 87 and meta['feature_settings']['order'] == 1
    assert net.label_names == list(tim_zoo.models._zoo.EMODB_LABELS)


@pytest.mark.parametrize('model', PACKAGED)
def test_packaged_tag_predicts_a_real_emodb_file(model):
    if not packaged_file(model).exists():
        pytest.skip(f'{model}: not trained yet')
    if not EMODB.is_dir():
        pytest.skip('../shared EMODB copy absent')
    pytest.importorskip('librosa')
    wav = sorted(EMODB.glob('*.wav'))[0]
    recognizer = tim_zoo.EmotionRecognizer.from_pretrained(f'{model}.{ZOO_TAG}')
    result = recognizer.predict(str(wav))
    assert set(result.probabilities) == set(tim_zoo.models._zoo.EMODB_LABELS)


def test_a_large_tag_without_its_folder_names_the_command_and_the_place(tmp_path, monkeypatch):
    monkeypatch.setenv('TIM_ZOO_HOME', str(tmp_path))
    with pytest.raises(WeightsNotFoundError, match=r'tim-zoo train --corpus emodb .*--model set_official '
                                                     r'--recipe transformer.emodb --protocol all'):
        tim_zoo.create_model('set_official', pretrained=True)


def _row_figures(model):
    """WAR and UAR mean and population std (%) over the splits of the model's tracked results file, or None."""
    path = ROOT / 'docs' / 'results' / f'zoo_table.{model}.json'
    if not path.exists():
        return None
    folds = json.loads(path.read_text())['folds']
    out = {}
    for key in ('war', 'uar'):
        values = [100 * f[key] for f in folds]
        mean = sum(values) / len(values)
        out[key] = (mean, (sum((v - mean) ** 2 for v in values) / len(values)) ** 0.5)
    return out


@pytest.mark.parametrize('model', ZOO_MODELS)
def test_a_zoo_tag_says_what_its_recipe_scored_on_held_out_folds(model):
    from tim_zoo.models._zoo import accuracy_note, zoo_accuracy, zoo_cfg
    figures, row = _row_figures(model), zoo_accuracy(model)
    if (ROOT / 'docs' / 'results' / f'zoo_repeats.{model}.json').exists():
        pytest.skip(f'{model}: its figure is over repeats (make_tables --check keeps the packaged file current)')
    if figures is None:
        assert row is None and 'not been measured on held-out data yet' in accuracy_note(model)
        assert 'not measured yet' in zoo_cfg(model)['description']
        return
    (war, war_std), (uar, _) = figures['war'], figures['uar']
    assert row['war_mean'] == pytest.approx(war, abs=0.006) and row['war_std'] == pytest.approx(war_std, abs=0.006)
    assert row['uar_mean'] == pytest.approx(uar, abs=0.006) and row['splits'] == 10
    assert f'WAR {war:.1f} ± {war_std:.1f} %' in accuracy_note(model)
    assert f'WAR {war:.1f} ± {war_std:.1f} %' in zoo_cfg(model)['description']


def test_a_recognizer_over_a_zoo_tag_carries_its_accuracy_and_the_cli_prints_it(capsys):
    from tim_zoo import cli
    from tim_zoo.models._zoo import accuracy_note
    tim = tim_zoo.EmotionRecognizer.from_pretrained(f'tim.{ZOO_TAG}')
    assert tim.model_notes == [accuracy_note('tim')] and 'timnet\'s row' in tim.model_notes[0]
    assert tim_zoo.EmotionRecognizer.from_pretrained().model_notes == []       # the bundled timnet: its card says
    untrained = tim_zoo.create_model('tim', num_classes=3)
    assert tim_zoo.EmotionRecognizer(untrained, feature_settings=dict(mean_signal_length=32768)).model_notes == []
    if not EMODB.is_dir():
        pytest.skip('../shared EMODB copy absent')
    pytest.importorskip('librosa')
    wav = str(sorted(EMODB.glob('*.wav'))[0])
    assert cli.main(['predict', wav, '--model', 'tim']) == 0
    assert f'note on the model: {accuracy_note("tim")}' in capsys.readouterr().out
    assert cli.main(['predict', wav, '--model', 'tim', '--json']) == 0
    captured = capsys.readouterr()
    assert json.loads(captured.out)[0]['prediction'] and 'note on the model: tim.' in captured.err
