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
