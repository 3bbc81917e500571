"""Published weights are discoverable and load with `pretrained=True` alone: the package's own model, the weights
directory ($TIM_ZOO_HOME/weights), the Hugging Face hub cache; each file is read once. No network is used."""
import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import timm
import torch

import tim_zoo
from tim_zoo.models.timnet_releases import BUNDLED_CHECKPOINT, TIMNET_RELEASES

RELEASE_TAGS = [r.lower() for r in TIMNET_RELEASES]


@pytest.fixture
def home(tmp_path, monkeypatch):
    monkeypatch.setenv('TIM_ZOO_HOME', str(tmp_path / 'home'))
    monkeypatch.setenv('HF_HUB_OFFLINE', '1')
    monkeypatch.chdir(tmp_path)
    return tmp_path / 'home'


def test_every_published_tag_is_listed_by_tim_zoo_and_timm():
    listed = tim_zoo.list_models(pretrained=True)
    expected = {f'timnet.{t}' for t in RELEASE_TAGS} | {f'timnet.{t}_fold{k}' for t in RELEASE_TAGS for k in range(1, 11)}
    zoo = {f'{name}.tim_zoo_emodb' for name in tim_zoo.list_models() if name in tim_zoo.models._base.DEFAULT_TAGS}
    assert len(zoo) == 14 and 'timnet.tim_zoo_emodb' in zoo       # the zoo's tags: every architecture's
    expected |= zoo
    assert set(listed) == expected
    assert set(timm.list_pretrained('timnet*')) == {t for t in expected if t.startswith('timnet')}
    assert 'timnet' not in listed and tim_zoo.create_model('timnet').num_classes == 7   # untagged: no weights, default


def test_bundled_model_loads_with_pretrained_alone():
    model = tim_zoo.create_model('timnet.tim_zoo_emodb', pretrained=True)
    assert model.label_names == list(TIMNET_RELEASES['EMODB_46']['labels'])
    assert model.pretrained_cfg['feature_settings']['level'] == 'peak'
    again = tim_zoo.load_checkpoint(BUNDLED_CHECKPOINT)
    assert all(torch.equal(a, b) for a, b in zip(model.state_dict().values(), again.state_dict().values()))


def test_pretrained_reads_the_file_once(monkeypatch):
    import tim_zoo.weights.load as load
    calls = []
    real = load.read_checkpoint
    monkeypatch.setattr(load, 'read_checkpoint', lambda *a, **k: calls.append(a) or real(*a, **k))
    tim_zoo.create_model('timnet.tim_zoo_emodb', pretrained=True)
    assert len(calls) == 1


def test_missing_release_file_names_where_it_was_looked_for(home):
    with pytest.raises(tim_zoo.WeightsNotFoundError) as err:
        tim_zoo.create_model('timnet.savee_44_fold7', pretrained=True)
    message = str(err.value)
    assert str(home / 'weights' / 'SAVEE_44' / '10-fold_weights_best_7.hdf5') in message
    assert 'github.com/Jiaxin-Ye/TIM-Net_SER' in message and 'Code/Test_Models/SAVEE_44' in message
    assert isinstance(err.value, FileNotFoundError)


def test_tag_without_weights_is_refused(tmp_path, monkeypatch):
    from tim_zoo.exceptions import WeightsNotFoundError
    monkeypatch.setenv('TIM_ZOO_HOME', str(tmp_path))       # a larger zoo model's folder is absent: the command
    with pytest.raises(WeightsNotFoundError, match=r'no weights for transformer_tim.tim_zoo_emodb.*tim-zoo train'):
        tim_zoo.create_model('transformer_tim', pretrained=True)
    assert tim_zoo.create_model('at_tim', pretrained=True).pretrained_cfg['tag'] == 'tim_zoo_emodb'   # packaged


def _hub_cache(root: Path, repo: str, files: dict) -> Path:
    """A Hugging Face hub cache as huggingface_hub lays it out: refs/main -> snapshots/<commit>/<file>."""
    commit = '0123456789abcdef0123456789abcdef01234567'
    repo_dir = root / ('models--' + repo.replace('/', '--'))
    (repo_dir / 'refs').mkdir(parents=True)
    (repo_dir / 'refs' / 'main').write_text(commit)
    for name, source in files.items():
        target = repo_dir / 'snapshots' / commit / name
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(source, target)
    return root


def test_loads_from_the_hugging_face_hub_cache_offline(home, tmp_path):
    pytest.importorskip('huggingface_hub')
    cache = _hub_cache(tmp_path / 'hub', 'someone/timnet-emodb', {'model.safetensors': BUNDLED_CHECKPOINT})
    model = tim_zoo.create_model('timnet', pretrained=True, cache_dir=cache,
                                 pretrained_cfg_overlay=dict(hf_hub_id='someone/timnet-emodb'))
    reference = tim_zoo.load_checkpoint(BUNDLED_CHECKPOINT)
    assert all(torch.equal(a, b) for a, b in zip(model.state_dict().values(), reference.state_dict().values()))
    assert model.label_names == reference.label_names
    with pytest.raises(tim_zoo.WeightsNotFoundError, match='someone/other'):
        tim_zoo.create_model('timnet', pretrained=True, cache_dir=cache,
                             pretrained_cfg_overlay=dict(hf_hub_id='someone/other'))


def test_release_from_the_weights_directory_and_the_hub_cache(home, tmp_path, shared_dir):
    pytest.importorskip('h5py')
    source = shared_dir / 'weights' / 'timnet_official' / 'EMODB_46' / '10-fold_weights_best_3.hdf5'
    if not source.is_file():
        pytest.skip('EMODB_46 release not in ../shared')
    reference = tim_zoo.create_model('timnet.emodb_46', pretrained=True,
                                     pretrained_cfg_overlay=dict(file=str(source))).eval()
    (home / 'weights' / 'EMODB_46').mkdir(parents=True)
    shutil.copy(source, home / 'weights' / 'EMODB_46')
    from_dir = tim_zoo.create_model('timnet.emodb_46_fold3', pretrained=True).eval()
    cache = _hub_cache(tmp_path / 'hub', 'someone/tim-net-releases', {'EMODB_46/10-fold_weights_best_3.hdf5': source})
    from_hub = tim_zoo.create_model('timnet.emodb_46_fold3', pretrained=True, cache_dir=cache, pretrained_cfg_overlay=dict(
        file='not/here.hdf5', hf_hub_id='someone/tim-net-releases', hf_hub_filename='EMODB_46/10-fold_weights_best_3.hdf5')).eval()
    x = torch.randn(2, 39, 188)
    with torch.no_grad():
        for model in (from_dir, from_hub):
            assert torch.equal(model(x), reference(x))
            assert model.label_names == reference.label_names
            assert model.pretrained_cfg['feature_settings']['release'] == 'EMODB_46'
    with pytest.raises(tim_zoo.WeightsNotFoundError):
        tim_zoo.create_model('timnet.emodb_46_fold4', pretrained=True)


def test_keras_file_is_read_once(shared_dir, monkeypatch):
    pytest.importorskip('h5py')
    source = shared_dir / 'weights' / 'timnet_official' / 'EMODB_46' / '10-fold_weights_best_1.hdf5'
    if not source.is_file():
        pytest.skip('EMODB_46 release not in ../shared')
    import pathlib
    import tim_zoo.models.timnet as timnet
    calls, reads = [], []
    real, real_read = timnet.read_keras_weights, pathlib.Path.read_bytes
    monkeypatch.setattr(timnet, 'read_keras_weights', lambda *a: calls.append(a) or real(*a))
    monkeypatch.setattr(pathlib.Path, 'read_bytes', lambda self: reads.append(self) or real_read(self))
    tim_zoo.create_model('timnet.emodb_46', pretrained=True, pretrained_cfg_overlay=dict(file=str(source)))
    assert len(calls) == 1 and reads == [source]          # hashed (the release check) and parsed from one read


def test_weights_command_lists_where_files_belong(home):
    (home / 'weights' / 'CASIA_32').mkdir(parents=True)
    stray = home / 'weights' / 'CASIA_32' / 'renamed.hdf5'
    stray.write_bytes(b'')
    out = subprocess.run([sys.executable, '-m', 'tim_zoo', 'weights', 'timnet.casia_32_fold*', '--json'],
                         capture_output=True, text=True, check=True).stdout
    listing = json.loads(out)
    assert listing['weights_dir'] == str(home / 'weights')
    assert len(listing['weights']) == 10 and all(w['found'] is None for w in listing['weights'])
    assert listing['weights'][0]['file'] == 'CASIA_32/10-fold_weights_best_1.hdf5'
    assert listing['unknown_files'] == [str(stray)]
    table = subprocess.run([sys.executable, '-m', 'tim_zoo', 'weights', 'timnet.tim_zoo_emodb'],
                           capture_output=True, text=True, check=True).stdout
    assert 'found' in table and str(BUNDLED_CHECKPOINT) in table


def test_features_only_model_takes_a_checkpoint_path(tmp_path):
    source = tim_zoo.create_model('timnet', depth=3, num_classes=4)
    tim_zoo.save_checkpoint(source, tmp_path / 'm.safetensors')
    feats = tim_zoo.create_model('timnet', depth=3, num_classes=4, features_only=True,
                                 checkpoint_path=tmp_path / 'm.safetensors').eval()
    x = torch.randn(1, 39, 30)
    with torch.no_grad():
        assert all(torch.equal(a, b) for a, b in zip(feats(x), source.eval().forward_intermediates(x, intermediates_only=True)))
    with pytest.raises(tim_zoo.ConfigurationError, match='features_only'):
        tim_zoo.create_model('timnet', out_indices=(1,))


def test_hub_offline_setting_and_relative_home(tmp_path, monkeypatch):
    from tim_zoo.weights.hub import _hub_offline
    for value, offline in (('1', True), ('TRUE', True), ('on', True), ('0', False), ('false', False), ('', False)):
        monkeypatch.setenv('HF_HUB_OFFLINE', value)
        assert _hub_offline() is offline, value
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv('TIM_ZOO_HOME', 'relhome')
    assert tim_zoo.weights_dir() == tmp_path / 'relhome' / 'weights'


def test_recognizer_and_predict_take_a_pretrained_tag(tmp_path):
    rec = tim_zoo.EmotionRecognizer.from_pretrained('timnet.tim_zoo_emodb')
    assert rec.model.label_names == list(TIMNET_RELEASES['EMODB_46']['labels'])
    from tim_zoo.cli import build_parser
    from tim_zoo.cli.audio import build_recognizer
    args = build_parser().parse_args(['predict', 'x.wav', '--model', 'timnet.tim_zoo_emodb'])
    assert build_recognizer(args).model.label_names == rec.model.label_names
    args = build_parser().parse_args(['predict', 'x.wav', '--model', 'at_tim'])     # its zoo tag
    assert build_recognizer(args).model.label_names == rec.model.label_names


def test_a_timnet_built_directly_loads_a_keras_release_and_tim_does_not(shared_dir):
    pytest.importorskip('h5py')
    source = shared_dir / 'weights' / 'timnet_official' / 'EMODB_46' / '10-fold_weights_best_1.hdf5'
    if not source.is_file():
        pytest.skip('EMODB_46 release not in ../shared')
    from tim_zoo.models import TIMNet
    model = TIMNet()
    tim_zoo.load_weights(model, source)
    assert model.label_names[0] == 'angry'
    with pytest.raises(tim_zoo.CheckpointMismatchError, match='loads only into timnet, not tim'):
        tim_zoo.load_weights(tim_zoo.create_model('tim'), source)


def _release(shared_dir, release, fold):
    pytest.importorskip('h5py')
    path = shared_dir / 'weights' / 'timnet_official' / release / f'10-fold_weights_best_{fold}.hdf5'
    if not path.is_file():
        pytest.skip(f'{release} not in ../shared')
    return path


def test_a_release_tag_refuses_another_files_of_the_same_shape(home, shared_dir):
    emovo, emodb3 = _release(shared_dir, 'EMOVO_1', 4), _release(shared_dir, 'EMODB_46', 3)
    folder = home / 'weights' / 'EMODB_46'
    folder.mkdir(parents=True)
    shutil.copy(emovo, folder / '10-fold_weights_best_4.hdf5')        # EMOVO: 7 classes, same shape as EMODB
    with pytest.raises(tim_zoo.ConfigurationError, match='not the published EMODB_46 fold 4 file'):
        tim_zoo.create_model('timnet.emodb_46_fold4', pretrained=True)
    shutil.copy(emodb3, folder / '10-fold_weights_best_4.hdf5')       # EMODB's fold 3 under fold 4's name
    with pytest.raises(tim_zoo.ConfigurationError, match='fold 4 file'):
        tim_zoo.create_model('timnet.emodb_46_fold4', pretrained=True)
    with warnings_none():                      # a published EMODB_46 file, loaded without a tag: no complaint
        tim_zoo.create_model('timnet', pretrained=True,
                             pretrained_cfg_overlay=dict(file=str(folder / '10-fold_weights_best_4.hdf5')))
    shutil.copy(emovo, folder / '10-fold_weights_best_4.hdf5')
    with pytest.warns(UserWarning, match='none of that release.s published files'):
        model = tim_zoo.create_model('timnet', pretrained=True,
                                     pretrained_cfg_overlay=dict(file=str(folder / '10-fold_weights_best_4.hdf5')))
    assert model.num_classes == 7


def test_a_tags_file_is_not_taken_from_the_working_directory(home, tmp_path, shared_dir):
    emodb = _release(shared_dir, 'EMODB_46', 2)
    stray = tmp_path / 'EMODB_46'                                         # the working directory is tmp_path
    stray.mkdir()
    shutil.copy(emodb, stray / '10-fold_weights_best_2.hdf5')
    with pytest.raises(tim_zoo.WeightsNotFoundError) as err:
        tim_zoo.create_model('timnet.emodb_46_fold2', pretrained=True)
    assert str(stray) not in str(err.value)
    model = tim_zoo.create_model('timnet.emodb_46', pretrained=True,        # a file you name: relative to the cwd
                                 pretrained_cfg_overlay=dict(file='EMODB_46/10-fold_weights_best_2.hdf5'))
    assert model.label_names[0] == 'angry'


def test_another_input_length_resets_the_head_and_its_labels(tmp_path):
    source = tim_zoo.create_model('at_deltatim_v2', num_classes=2, depth=2, seq_len=60)
    tim_zoo.save_checkpoint(source, tmp_path / 'at.safetensors', label_names=['calm', 'tense'])
    with pytest.warns(UserWarning, match=r'shape \(2, 60\), the model.s \(2, 40\).*seq_len'):
        model = tim_zoo.create_model('at_deltatim_v2', pretrained=True, seq_len=40,
                                     pretrained_cfg_overlay=dict(file=str(tmp_path / 'at.safetensors')))
    assert model.label_names is None


def test_pretrained_with_another_architectures_checkpoint(tmp_path):
    tim_zoo.save_checkpoint(tim_zoo.create_model('timnet', depth=2), tmp_path / 't.safetensors')
    with pytest.raises(tim_zoo.CheckpointMismatchError, match='saved from timnet, not at_tim; load it as what it is'):
        tim_zoo.create_model('at_tim', pretrained=True, pretrained_cfg_overlay=dict(file=str(tmp_path / 't.safetensors')))
    with pytest.raises(tim_zoo.ConfigurationError, match=r'cnn_transformer has no published weights'):
        tim_zoo.create_model('cnn_transformer', pretrained=True, pretrained_cfg=dict(file=None))
    with pytest.raises(tim_zoo.UnknownArgumentError, match='pretrained_cfg_overlay'):
        tim_zoo.create_model('timnet', pretrained=True, pretrained_cfg_overlay=dict(fiel='x'))


def test_no_classifier_and_a_new_classifier_drop_the_label_names():
    with warnings_none():
        model = tim_zoo.create_model('timnet.tim_zoo_emodb', pretrained=True, num_classes=0)
    assert model.label_names is None and 'label_names' not in model.pretrained_cfg['feature_settings']
    model = tim_zoo.create_model('timnet.tim_zoo_emodb', pretrained=True)
    model.pretrained_cfg['feature_settings'] = dict(model.pretrained_cfg['feature_settings'], label_names=['a'] * 7)
    model.reset_classifier(3)
    assert model.label_names is None and 'label_names' not in model.pretrained_cfg['feature_settings']


def warnings_none():
    import warnings
    ctx = warnings.catch_warnings()
    ctx.__enter__()
    warnings.simplefilter('error')
    class _Ctx:
        def __enter__(self):
            return self
        def __exit__(self, *exc):
            ctx.__exit__(*exc)
    return _Ctx()


def test_weights_command_flags_a_file_that_is_not_the_published_one(home, shared_dir):
    emovo = _release(shared_dir, 'EMOVO_1', 4)
    (home / 'weights' / 'EMODB_46').mkdir(parents=True)
    shutil.copy(emovo, home / 'weights' / 'EMODB_46' / '10-fold_weights_best_4.hdf5')
    shutil.copy(_release(shared_dir, 'EMODB_46', 5), home / 'weights' / 'EMODB_46' / '10-fold_weights_best_5.hdf5')
    rows = {r['name']: r for r in tim_zoo.list_pretrained_weights('timnet.emodb_46_fold[45]')}
    assert 'not the published EMODB_46 fold 4 file' in rows['timnet.emodb_46_fold4']['problem']
    assert rows['timnet.emodb_46_fold5']['found'] and not rows['timnet.emodb_46_fold5']['problem']
    out = subprocess.run([sys.executable, '-m', 'tim_zoo', 'weights', 'timnet.emodb_46_fold[45]'],
                         capture_output=True, text=True, check=True).stdout
    assert 'WRONG FILE' in out and '1 of 2 found' in out


def test_an_architecture_loads_its_default_tag(caplog):
    """As timm: `pretrained=True` without a tag loads the architecture's default tag and says which; without
    `pretrained` the architecture stays untrained and unlabelled."""
    import logging
    import timm
    reference = tim_zoo.create_model('timnet.tim_zoo_emodb', pretrained=True)
    with caplog.at_level(logging.INFO, logger='tim_zoo'):
        model = tim_zoo.create_model('timnet', pretrained=True)
    assert 'loading its default tag timnet.tim_zoo_emodb' in caplog.text
    assert model.pretrained_cfg['tag'] == 'tim_zoo_emodb' and model.label_names == reference.label_names
    assert all(torch.equal(a, b) for a, b in zip(model.state_dict().values(), reference.state_dict().values()))
    via_timm = timm.create_model('timnet', pretrained=True)
    assert all(torch.equal(a, b) for a, b in zip(via_timm.state_dict().values(), reference.state_dict().values()))
    untrained = tim_zoo.create_model('timnet')
    assert untrained.pretrained_cfg.get('tag', '') == '' and untrained.label_names is None


def test_label_names_given_in_the_overlay_name_the_outputs_and_a_renaming_is_said():
    """They were kept in pretrained_cfg while model.label_names stayed the file's: the two disagreed, silently.
    Names the classifier knows choose its rows by name (a subset of EMODB's labels failed: "2 names for a model of 7
    classes"); as many names it does not know rename its outputs in order."""
    import warnings

    from tim_zoo.weights.fresh_head import untrained_head
    emodb = ['angry', 'boredom', 'disgust', 'fear', 'happy', 'neutral', 'sad']
    with pytest.warns(UserWarning, match=r"share no name with the labels the classifier was trained on \(\['angry', "
                                         r".*so they rename its outputs in order: angry -> a, "):
        model = tim_zoo.create_model('timnet', pretrained=True, pretrained_cfg_overlay=dict(label_names=list('abcdefg')))
    assert model.label_names == model.pretrained_cfg['label_names'] == list('abcdefg')
    reference = tim_zoo.create_model('timnet', pretrained=True)
    assert torch.equal(model.head.fc.weight, reference.head.fc.weight)
    with warnings.catch_warnings():
        warnings.simplefilter('error')                             # the same names: nothing to say
        assert tim_zoo.create_model('timnet', pretrained=True,
                                    pretrained_cfg_overlay=dict(label_names=emodb)).label_names == emodb
    with pytest.warns(UserWarning, match=r'kept the rows of sad, angry, matched by name; left out boredom'):
        two = tim_zoo.create_model('timnet', pretrained=True, pretrained_cfg_overlay=dict(label_names=['sad', 'angry']))
    assert two.num_classes == 2 and two.label_names == two.pretrained_cfg['label_names'] == ['sad', 'angry']
    assert torch.equal(two.head.fc.weight, reference.head.fc.weight[[6, 0]]) and not untrained_head(two)
    for classes in ({}, dict(num_classes=3)):                  # three names it does not know: a fresh classifier
        with pytest.warns(UserWarning, match=r'none of these labels \[.a., .b., .c.\]; loaded the body'):
            fresh = tim_zoo.create_model('timnet', pretrained=True, pretrained_cfg_overlay=dict(label_names=list('abc')),
                                         **classes)
        assert fresh.num_classes == 3 and fresh.label_names == list('abc') and untrained_head(fresh)
    assert tim_zoo.create_model('timnet', pretrained_cfg_overlay=dict(label_names=list('xyz'))).num_classes == 3
    with pytest.raises(tim_zoo.ConfigurationError, match='label_names is empty'):
        tim_zoo.create_model('timnet', pretrained=True, pretrained_cfg_overlay=dict(label_names=[]))
    with pytest.raises(tim_zoo.ConfigurationError, match='features_only=True has no classifier'):
        tim_zoo.create_model('timnet', pretrained=True, features_only=True,
                             pretrained_cfg_overlay=dict(label_names=['sad']))
