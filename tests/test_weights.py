"""Published Keras weights, native checkpoints, and every wrong file."""
import json
import os
from pathlib import Path

import numpy as np
import pytest
import torch
from timm.models import get_pretrained_cfg

import tim_zoo
from tim_zoo import cli
from tim_zoo.exceptions import CheckpointMismatchError, ConfigurationError, UnsafeFileError, WeightFileError
from tim_zoo.models.timnet_releases import TIMNET_RELEASES
from tim_zoo.weights import read_checkpoint

h5py = pytest.importorskip('h5py')
pytest.importorskip('safetensors')


def _release_file(shared, release, fold=1):
    return shared / 'weights' / 'timnet_official' / release / f'10-fold_weights_best_{fold}.hdf5'


def _keras_model(path, **kwargs):
    return tim_zoo.create_model('timnet', pretrained=True, pretrained_cfg_overlay=dict(file=str(path)), **kwargs)


# --- the authors' Keras release ---------------------------------------------------------------------

@pytest.mark.parametrize('release', ['CASIA_32', 'RAVDE_46'])
def test_golden_parity_with_the_authors_keras_code(shared_dir, release):
    golden = np.load(shared_dir / 'golden' / f'timnet_keras_{release}_fold1.npz')
    model = _keras_model(_release_file(shared_dir, release)).eval()
    x = torch.from_numpy(golden['x']).transpose(1, 2)                 # Keras [B, T, C] -> [B, C, T]
    with torch.no_grad():
        probs = model(x).softmax(dim=-1).numpy()
        feats = model.forward_head(model.forward_features(x), pre_logits=True).numpy()
    assert probs.shape == golden['probs'].shape and feats.shape == golden['features'].shape
    np.testing.assert_allclose(probs, golden['probs'], atol=1e-5, rtol=0)
    np.testing.assert_allclose(feats, golden['features'], atol=1e-5, rtol=0)
    assert model.label_names == list(TIMNET_RELEASES[release]['labels'])


def _all_shared_files():
    from conftest import SHARED
    root = SHARED / 'weights' / 'timnet_official'
    return sorted(root.glob('*/10-fold_weights_best_*.hdf5')) if root.is_dir() else []


@pytest.mark.slow
def test_every_shared_release_file_loads_exactly(shared_dir):
    files = _all_shared_files()
    assert len(files) == 40
    x = torch.randn(2, 39, 100)
    for path in files:
        release = path.parent.name
        model = _keras_model(path).eval()
        assert model.num_classes == len(TIMNET_RELEASES[release]['labels']), path
        assert len(model.tim.encoder.stack.blocks) == TIMNET_RELEASES[release]['depth']
        with h5py.File(path, 'r') as f:                                    # spot-check against the raw datasets
            names = [n.decode() for n in f.attrs['layer_names']]
            dense_name = next(n for n in names if n.startswith('dense'))
            fwd_name, bwd_name = [n for n in names if n.startswith('conv1d')][:2]   # forward stem, backward stem
            dense = np.asarray(f[dense_name][f[dense_name].attrs['weight_names'][0]])
            fwd_stem = np.asarray(f[fwd_name][f[fwd_name].attrs['weight_names'][0]])
            bwd_stem = np.asarray(f[bwd_name][f[bwd_name].attrs['weight_names'][0]])
        np.testing.assert_array_equal(model.head.fc.weight.detach().numpy(), dense.T)
        stem = model.tim.encoder.stem.conv.weight.detach().numpy()                 # groups: forward, backward
        filters = stem.shape[0] // 2
        np.testing.assert_array_equal(stem[:filters], fwd_stem.transpose(2, 1, 0))
        np.testing.assert_array_equal(stem[filters:], bwd_stem.transpose(2, 1, 0))
        with torch.no_grad():
            assert torch.isfinite(model(x)).all()


def test_release_pretrained_configs(tmp_path, monkeypatch):
    monkeypatch.setenv('TIM_ZOO_HOME', str(tmp_path))
    for release, info in TIMNET_RELEASES.items():
        cfg = get_pretrained_cfg(f'timnet.{release.lower()}')
        assert cfg.num_classes == len(info['labels']) and list(cfg.label_names) == list(info['labels'])
        assert cfg.custom_load and cfg.input_size is None and cfg.mean is None
    model = tim_zoo.create_model('timnet.iemocap_16')
    assert model.num_classes == 4 and len(model.tim.encoder.stack.blocks) == 10
    settings = model.pretrained_cfg['feature_settings']
    assert settings == dict(
        release='IEMOCAP_16', corpus='IEMOCAP', label_names=['angry', 'happy', 'neutral', 'sad'],
        mean_signal_length=310000, frames=606, depth=10, kfold_seed=16, sample_rate=22050, n_mfcc=39, hop_length=512,
        order=1, level='none')
    frames = {r: tim_zoo.create_model(f'timnet.{r.lower()}').pretrained_cfg['feature_settings']['frames']
              for r in TIMNET_RELEASES}
    assert frames == dict(CASIA_32=172, EMODB_46=188, EMOVO_1=188, IEMOCAP_16=606, RAVDE_46=215, SAVEE_44=254)
    with pytest.raises(tim_zoo.WeightsNotFoundError, match=r'no weights for timnet.emodb_46; .*pretrained_cfg_overlay'):
        tim_zoo.create_model('timnet.emodb_46', pretrained=True)


def test_tagged_release_with_file_and_timm(shared_dir):
    import timm
    path = _release_file(shared_dir, 'EMODB_46', 3)
    model = timm.create_model('timnet.emodb_46', pretrained=True, pretrained_cfg_overlay=dict(file=str(path)))
    assert model.label_names[0] == 'angry' and model.num_classes == 7
    assert model.pretrained_cfg['feature_settings']['kfold_seed'] == 46


def test_other_num_classes_keeps_body_and_says_so(shared_dir):
    path = _release_file(shared_dir, 'CASIA_32')
    reference = _keras_model(path).eval()
    with pytest.warns(UserWarning, match='classifier has 6 classes, the model 2; loaded the body'):
        model = _keras_model(path, num_classes=2).eval()
    assert model.num_classes == 2 and model.label_names is None
    x = torch.randn(2, 39, 172)
    with torch.no_grad():
        torch.testing.assert_close(model.forward_features(x), reference.forward_features(x), rtol=0, atol=0)


# --- native checkpoints -----------------------------------------------------------------------------

@pytest.mark.parametrize('name', tim_zoo.list_models())
def test_native_round_trip_is_bit_exact(tmp_path, name):
    model = tim_zoo.create_model(name, num_classes=3, seq_len=50) if tim_zoo.create_model(name).fixed_len \
        else tim_zoo.create_model(name, num_classes=3, depth=4) if name in ('timnet', 'tim') else tim_zoo.create_model(name, num_classes=3)
    with torch.no_grad():                               # make running statistics and every weight non-default
        for t in model.state_dict().values():
            if t.is_floating_point():
                t.add_(torch.randn_like(t) * 0.01)
    model.eval()
    path = tim_zoo.save_checkpoint(model, tmp_path / f'{name}.safetensors', label_names=['a', 'b', 'c'])
    assert not [p for p in tmp_path.iterdir() if p.name.startswith('.')], 'temporary file left behind'
    loaded = tim_zoo.load_checkpoint(path).eval()
    assert type(loaded) is type(model) and loaded.init_args == model.init_args
    assert loaded.label_names == ['a', 'b', 'c']
    a, b = model.state_dict(), loaded.state_dict()
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)
    x = torch.randn(2, 39, model.fixed_len or 50)
    with torch.no_grad():
        assert torch.equal(model(x), loaded(x))
    fresh = tim_zoo.create_model(name, checkpoint_path=path, **{k: v for k, v in model.init_args.items()}).eval()
    with torch.no_grad():
        assert torch.equal(fresh(x), model(x))


def test_convert_keras_cli_round_trip(shared_dir, tmp_path, capsys):
    src = _release_file(shared_dir, 'RAVDE_46', 2)
    out = tmp_path / 'ravde.safetensors'
    assert cli.main(['convert-keras', str(src), str(out)]) == 0
    assert 'release RAVDE_46' in capsys.readouterr().out
    converted = tim_zoo.load_checkpoint(out).eval()
    keras = _keras_model(src).eval()
    assert converted.label_names == keras.label_names
    assert converted.pretrained_cfg['feature_settings']['frames'] == 215
    _, meta = read_checkpoint(out)
    assert meta['extra']['converted_from'] == str(src) and meta['architecture'] == 'timnet'
    x = torch.randn(3, 39, 215)
    with torch.no_grad():
        assert torch.equal(converted(x), keras(x))



def test_convert_keras_knows_a_renamed_release_file_by_its_hash_and_says_when_a_file_is_none(shared_dir, tmp_path,
                                                                                            capsys):
    renamed = tmp_path / 'mine.hdf5'                           # the EMODB_46 fold-3 file, out of its release folder
    renamed.write_bytes(_release_file(shared_dir, 'EMODB_46', 3).read_bytes())
    done = tim_zoo.convert_keras(renamed, tmp_path / 'a.safetensors')
    assert (done['release'], done['depth'], done['num_classes']) == ('EMODB_46', 8, 7)
    converted = tim_zoo.load_checkpoint(done['path'])
    assert converted.label_names == done['label_names'] == ['angry', 'boredom', 'disgust', 'fear', 'happy',
                                                             'neutral', 'sad']
    assert converted.pretrained_cfg['feature_settings']['frames'] == 188
    with pytest.raises(tim_zoo.ConfigurationError, match="unknown release 'EMODB'; known: CASIA_32"):
        tim_zoo.convert_keras(renamed, tmp_path / 'b.safetensors', release='EMODB')
    casia = tmp_path / 'casia.hdf5'                            # 6 classes, named as EMODB's: refused, as from_keras does
    casia.write_bytes(_release_file(shared_dir, 'CASIA_32', 1).read_bytes())
    assert cli.main(['convert-keras', str(casia), str(tmp_path / 'd.safetensors'), '--release', 'EMODB_46']) == 2
    assert ("not converted as EMODB_46's: " + f'{casia} holds num_classes=6, but timnet.emodb_46 has num_classes=7') \
        in capsys.readouterr().err and not (tmp_path / 'd.safetensors').exists()
    with h5py.File(renamed, 'r+') as f:                        # another file: one weight changed
        kernels = []
        f.visititems(lambda name, obj: kernels.append(obj) if isinstance(obj, h5py.Dataset) and 'kernel' in name
                     else None)
        kernels[0][...] = kernels[0][...] + 1.0
    assert cli.main(['convert-keras', str(renamed), str(tmp_path / 'c.safetensors')]) == 0
    captured = capsys.readouterr()
    assert 'release' not in captured.out and 'is not inside a release folder, nor one of the authors\' files' in \
        captured.err
    assert 'no feature settings or label names' in captured.err
    assert tim_zoo.load_checkpoint(tmp_path / 'c.safetensors').label_names is None
    from tim_zoo.models.timnet_releases import releases_known_by_hash
    known = releases_known_by_hash()
    assert ', '.join(known) in captured.err and 'EMODB_46' in known
    # weights.md names the releases known by hash and those not
    text = ' '.join((Path(__file__).resolve().parents[1] / 'docs' / 'weights.md').read_text().split())
    assert (f'knows the hashes of {", ".join(known[:-1])} and {known[-1]}, not yet those of '
            f'{" and ".join(r for r in TIMNET_RELEASES if r not in known)}') in text

def test_pt_state_dict_loads_with_weights_only(tmp_path):
    model = tim_zoo.create_model('tim', depth=3).eval()
    torch.save({'state_dict': model.state_dict()}, tmp_path / 'w.pt')
    loaded = tim_zoo.create_model('tim', depth=3, checkpoint_path=tmp_path / 'w.pt').eval()
    x = torch.randn(1, 39, 20)
    with torch.no_grad():
        assert torch.equal(loaded(x), model(x))


# --- wrong files ------------------------------------------------------------------------------------

def test_checkpoint_of_another_architecture_lists_keys(tmp_path):
    path = tim_zoo.save_checkpoint(tim_zoo.create_model('at_tim'), tmp_path / 'at.safetensors')
    with pytest.raises(CheckpointMismatchError, match=r'holds an at_tim model, not timnet: choose at_tim '
                                                      r"\(create_model\('at_tim'\), --model at_tim\), or let "
                                                      r'tim_zoo.load_checkpoint\(path\) rebuild it as saved. .*'
                                                      r'saved from at_tim\) does not fit timnet.*missing in the file: tim\.weight_layer\.weight.*'
                       r'shape mismatches: tim\.encoder\.stem\.conv\.weight file \(39, 39, 1\) vs model \(78, 39, 1\)'):
        tim_zoo.create_model('timnet', checkpoint_path=path)
    path = tim_zoo.save_checkpoint(tim_zoo.create_model('timnet', depth=6), tmp_path / 'd6.safetensors')
    with pytest.raises(CheckpointMismatchError, match=r'missing in the file: .*blocks\.6.*weight_layer.weight file \(6,\) vs model \(8,\)'):
        tim_zoo.create_model('timnet', checkpoint_path=path)


def test_keras_file_only_into_timnet(shared_dir):
    path = _release_file(shared_dir, 'EMOVO_1')
    with pytest.raises(CheckpointMismatchError, match='loads only into timnet, not tim'):
        tim_zoo.create_model('tim', checkpoint_path=path)


def test_hdf5_that_is_not_tim_net(tmp_path):
    path = tmp_path / 'other.hdf5'
    with h5py.File(path, 'w') as f:
        f.attrs['layer_names'] = [b'dense']
        g = f.create_group('dense')
        g.attrs['weight_names'] = [b'dense/kernel:0']
        g.create_dataset('dense/kernel:0', data=np.zeros((4, 2), np.float32))
    with pytest.raises(WeightFileError, match=r'not a TIM-Net Keras release: it has 0 batch_normalization.*0 weight_layer'):
        tim_zoo.create_model('timnet', checkpoint_path=path)
    with h5py.File(tmp_path / 'plain.h5', 'w') as f:
        f.create_dataset('x', data=np.zeros(3))
    with pytest.raises(WeightFileError, match='no layer_names attribute'):
        tim_zoo.create_model('timnet', pretrained=True, pretrained_cfg_overlay=dict(file=str(tmp_path / 'plain.h5')))


def test_truncated_hdf5(shared_dir, tmp_path):
    data = _release_file(shared_dir, 'EMODB_46').read_bytes()
    path = tmp_path / 'cut.hdf5'
    path.write_bytes(data[: len(data) // 2])
    with pytest.raises(WeightFileError, match='cut.hdf5'):
        tim_zoo.create_model('timnet', checkpoint_path=path)


def test_truncated_and_corrupted_safetensors(tmp_path):
    path = tim_zoo.save_checkpoint(tim_zoo.create_model('tim', depth=2), tmp_path / 'ok.safetensors')
    data = bytearray(path.read_bytes())
    cut = tmp_path / 'cut.safetensors'
    cut.write_bytes(bytes(data[: len(data) - 100]))
    with pytest.raises(WeightFileError, match='truncated or corrupted'):
        tim_zoo.load_checkpoint(cut)
    data[-5] ^= 0xFF                                   # a byte inside the last tensor
    bad = tmp_path / 'bad.safetensors'
    bad.write_bytes(bytes(data))
    with pytest.raises(WeightFileError, match='is corrupted: its tensors hash to'):
        tim_zoo.load_checkpoint(bad)
    with pytest.raises(WeightFileError, match='is corrupted'):
        tim_zoo.create_model('tim', depth=2, checkpoint_path=bad)


class _RunsCode:
    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return (Path.touch, (Path(self.marker),))


def test_pickle_needing_code_execution_is_refused(tmp_path):
    marker = tmp_path / 'code_ran'
    torch.save({'state_dict': _RunsCode(str(marker))}, tmp_path / 'evil.pt')
    with pytest.raises(UnsafeFileError, match='arbitrary code execution'):
        tim_zoo.create_model('tim', checkpoint_path=tmp_path / 'evil.pt')
    assert not marker.exists()


def test_unknown_format_and_missing_file(tmp_path):
    with pytest.raises(WeightFileError, match="unknown weight format '.npz'"):
        tim_zoo.create_model('tim', checkpoint_path=tmp_path / 'w.npz')
    with pytest.raises(WeightFileError, match='no checkpoint at'):
        tim_zoo.load_checkpoint(tmp_path / 'absent.safetensors')
    plain = tmp_path / 'plain.safetensors'
    import safetensors.torch
    safetensors.torch.save_file(tim_zoo.create_model('tim', depth=2).state_dict(), str(plain))
    with pytest.raises(WeightFileError, match='no tim_zoo metadata'):
        tim_zoo.load_checkpoint(plain)
    assert tim_zoo.create_model('tim', depth=2, checkpoint_path=plain).num_classes == 7


def test_checkpoints_get_ordinary_file_permissions(tmp_path):
    umask = os.umask(0)
    os.umask(umask)
    path = tim_zoo.save_checkpoint(tim_zoo.create_model('tim', depth=1), tmp_path / 'm.safetensors')
    assert os.stat(path).st_mode & 0o777 == 0o666 & ~umask


def test_release_tags_files_and_labels_must_agree(shared_dir, tmp_path):
    """A tag's weights must be the tag's; a Keras file outside its release folder says what is unknown; a Keras
    file given to load_checkpoint is loaded as timnet."""
    emodb = shared_dir / 'weights' / 'timnet_official' / 'EMODB_46' / '10-fold_weights_best_1.hdf5'
    with pytest.raises(ConfigurationError, match=r'from the release EMODB_46, but the tag timnet.casia_32 is '
                                                 r'CASIA_32.s: use timnet.emodb_46'):
        tim_zoo.create_model('timnet.casia_32', pretrained=True, pretrained_cfg_overlay=dict(file=str(emodb)))
    renamed = tmp_path / 'w.hdf5'
    renamed.write_bytes(emodb.read_bytes())
    with pytest.raises(ConfigurationError, match=r'holds num_classes=7, but timnet.casia_32 has num_classes=6.*'
                                                 r'load it without a tag'):
        tim_zoo.create_model('timnet.casia_32', pretrained=True, pretrained_cfg_overlay=dict(file=str(renamed)))
    with pytest.raises(ConfigurationError, match='not the published CASIA_32 files'):   # its SHA-256 is EMODB's
        tim_zoo.create_model('timnet.casia_32', pretrained=True, num_classes=6,
                             pretrained_cfg_overlay=dict(file=str(renamed)))
    with pytest.warns(UserWarning, match='its classifier has 7 classes, the model 6'):        # asked for: a new head
        tim_zoo.create_model('timnet.emodb_46', pretrained=True, num_classes=6,
                             pretrained_cfg_overlay=dict(file=str(renamed)))
    named = tim_zoo.create_model('timnet.emodb_46', pretrained=True, pretrained_cfg_overlay=dict(file=str(renamed)))
    assert named.label_names[0] == 'angry' and named.pretrained_cfg['feature_settings']['release'] == 'EMODB_46'
    known = tim_zoo.create_model('timnet', pretrained=True, pretrained_cfg_overlay=dict(file=str(renamed)))
    assert known.label_names == named.label_names and known.pretrained_cfg['trained_on']['split'] == 'fold1'  # hash
    modified = tmp_path / 'm.hdf5'                                         # another file: nothing known of it
    modified.write_bytes(emodb.read_bytes())
    with h5py.File(modified, 'r+') as f:
        f.attrs['modified'] = 'yes'
    with pytest.warns(UserWarning, match=r'not inside a release folder .*labels are class_0..class_6.*timnet.emodb_46'):
        bare = tim_zoo.create_model('timnet', pretrained=True, pretrained_cfg_overlay=dict(file=str(modified)))
    assert bare.label_names is None and 'trained_on' not in bare.pretrained_cfg
    loaded = tim_zoo.load_checkpoint(emodb)                                # a Keras file where a checkpoint goes
    assert loaded.label_names == named.label_names
    torch.testing.assert_close(loaded.state_dict(), named.state_dict())


class _SmallSER(torch.nn.Module):
    """A model composed of blocks, not registered: a bidirectional TAB encoder and a linear classifier."""

    def __init__(self, num_classes: int = 2, channels: int = 8):
        super().__init__()
        from tim_zoo.layers import BiTemporalEncoder

        self.encoder = BiTemporalEncoder(in_chans=39, filters=channels, depth=2, share_weights=True, merge='fuse')
        self.head = torch.nn.Linear(channels, num_classes)
        self.num_classes = num_classes

    def forward(self, x):
        return self.head(self.encoder(x)[-1].mean(-1))


def small_ser(num_classes: int = 2, channels: int = 8) -> torch.nn.Module:
    return _SmallSER(num_classes, channels)


def test_models_built_from_blocks_save_and_load_by_their_builder(tmp_path):
    pytest.importorskip('safetensors')
    model = small_ser(num_classes=3, channels=8).eval()
    path = tim_zoo.save_checkpoint(model, tmp_path / 'small.safetensors', label_names=['a', 'b', 'c'],
                                   builder=small_ser, builder_args=dict(num_classes=3, channels=8))
    x = torch.randn(2, 39, 30)
    back = tim_zoo.load_checkpoint(path, builder=small_ser).eval()
    with torch.no_grad():
        assert torch.equal(back(x), model(x))                                     # bit-exact
    assert back.label_names == ['a', 'b', 'c']
    with pytest.raises(UnsafeFileError, match=r'built by test_weights:small_ser\(\*\*\{.num_classes.: 3, .channels.: 8\}\); '
                                              r'pass that function .* trust_builder=True'):
        tim_zoo.load_checkpoint(path)                                             # naming a function is not trust
    trusted = tim_zoo.load_checkpoint(path, trust_builder=True).eval()
    with torch.no_grad():
        assert torch.equal(trusted(x), model(x))
    with pytest.raises(WeightFileError, match=r'builds another model than the one saved: .*shape|builds another'):
        tim_zoo.save_checkpoint(model, tmp_path / 'x.safetensors', builder=small_ser, builder_args=dict(channels=4))
    with pytest.raises(WeightFileError, match='cannot be imported again'):
        tim_zoo.save_checkpoint(model, tmp_path / 'y.safetensors', builder=lambda **k: small_ser(**k))
    with pytest.raises(WeightFileError, match='or, for a model composed of blocks, the function that builds it'):
        tim_zoo.save_checkpoint(model, tmp_path / 'z.safetensors')


def test_models_built_from_blocks_keep_their_feature_settings_and_predict(tmp_path):
    """The feature settings saved with a model composed of blocks come back with it (they were dropped), and
    EmotionRecognizer.from_checkpoint takes its builder."""
    pytest.importorskip('safetensors')
    settings = dict(mean_signal_length=32768, level='peak')
    model = small_ser(num_classes=3, channels=8).eval()
    path = tim_zoo.save_checkpoint(model, tmp_path / 'small.safetensors', label_names=['a', 'b', 'c'],
                                   feature_settings=settings, builder=small_ser,
                                   builder_args=dict(num_classes=3, channels=8))
    back = tim_zoo.load_checkpoint(path, builder=small_ser)
    assert back.pretrained_cfg['feature_settings'] == settings
    again = tim_zoo.load_checkpoint(tim_zoo.save_checkpoint(back, tmp_path / 'again.safetensors', builder=small_ser,
                                                            builder_args=dict(num_classes=3, channels=8)),
                                    builder=small_ser)
    assert again.pretrained_cfg['feature_settings'] == settings                   # saved again with the model
    recognizer = tim_zoo.EmotionRecognizer.from_checkpoint(path, builder=small_ser)
    assert recognizer.model.label_names == ['a', 'b', 'c']
    assert (recognizer.extractor.mean_signal_length, recognizer.extractor.level) == (32768, 'peak')
    with pytest.raises(tim_zoo.ConfigurationError, match="model_name='tim' builds the model, so builder and "
                                                         "trust_builder would not be used"):
        tim_zoo.EmotionRecognizer.from_checkpoint(path, model_name='tim', builder=small_ser)
    with pytest.raises(tim_zoo.ConfigurationError, match='is a TIM-Net Keras file, always built as timnet; model_name, '
                                                         'builder and trust_builder are not used with it'):
        tim_zoo.EmotionRecognizer.from_checkpoint(tmp_path / 'w.hdf5', trust_builder=True)


def test_weights_of_another_input_length_say_the_length_their_features_had(tmp_path):
    """A fixed-length head saved at 12 frames and loaded into a 20-frame model: the classifier is new, and the
    warning says the samples per input of the file's features, the setting the command line takes."""
    import warnings

    from tim_zoo.weights.load import warn_other_arguments
    source = tim_zoo.create_model('at_tim', num_classes=3, seq_len=12, filters=8, depth=2)
    source.pretrained_cfg = dict(source.pretrained_cfg, feature_settings=dict(mean_signal_length=5632,
                                                                             sample_rate=22050, frames=12))
    path = tim_zoo.save_checkpoint(source, tmp_path / 'short.safetensors')
    model = tim_zoo.create_model('at_tim', num_classes=3, seq_len=20, filters=8, depth=2)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter('always')
        tim_zoo.weights.load_weights(model, path, allow_head_reset=True)
    said = [str(w.message) for w in caught if 'was trained at seq_len' in str(w.message)]
    assert len(said) == 1 and not [w for w in caught if 'another function' in str(w.message)]
    assert 'trained at seq_len=12, this model takes 20 frames: its body loaded and its classifier stays untrained' \
        in said[0]
    assert said[0].endswith('(seq_len=12: inputs of 5632 samples at 22050 Hz, as its features were; '
                            '--mean-signal-length 5632 on the command line)')
    # loaded whole (no head reset: load_checkpoint's way), another length is another function
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter('always')
        saved = dict(model_args=dict(source.init_args), architecture='at_tim')
        warn_other_arguments(model, saved, 'short.safetensors')
    assert [w for w in caught if 'another function' in str(w.message)]


def test_weights_load_into_a_model_with_another_kind_of_head(tmp_path):
    """Fine-tuning a saved model with another head (head="gmm"): the body loads, the head stays new, with a
    warning; load_checkpoint (no head reset) still refuses the mismatch."""
    import torch
    source = tim_zoo.create_model('tim', num_classes=4, filters=8, depth=2)
    path = tim_zoo.save_checkpoint(source, tmp_path / 'src.safetensors')
    import warnings
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter('always')
        model = tim_zoo.create_model('tim', num_classes=4, filters=8, depth=2, head='gmm', checkpoint_path=path)
    assert [str(w.message) for w in caught if 'head differs' in str(w.message)]
    assert not [w for w in caught if 'another function' in str(w.message)]     # the new head was asked for
    body = {k: v for k, v in source.state_dict().items() if not k.startswith('head.')}
    assert all(torch.equal(model.state_dict()[k], v) for k, v in body.items())
    with pytest.raises(tim_zoo.CheckpointMismatchError):
        tim_zoo.weights.apply_state_dict(model, source.state_dict(), 'src', allow_head_reset=False)


def test_hub_card_says_what_the_weights_trained_on_and_a_new_timnet_claims_no_release_licence(tmp_path):
    """A fine-tuned model's card names each training of its record, its initial weights' first; a `timnet` built
    fresh carries this implementation's licence, not that of the authors' release."""
    from tim_zoo.pretrained import DEFAULT_CHECKPOINT
    bundled = tim_zoo.load_checkpoint(DEFAULT_CHECKPOINT)
    first = bundled.pretrained_cfg['trained_on']
    bundled.pretrained_cfg['trained_on'] = dict(corpus='manifest', protocol='kfold', split='fold1', utterances=40,
                                                earlier=[first])
    tim_zoo.save_for_hub(bundled, tmp_path / 'tuned')
    card = (tmp_path / 'tuned' / 'README.md').read_text()
    assert ('trained on: EMODB (protocol all, recipe timnet.paper); then MANIFEST (protocol kfold, split fold1, 40 '
            'utterances). The terms of use of these corpora apply to the weights.') in card
    fresh = tim_zoo.create_model('timnet', num_classes=3)
    tim_zoo.save_for_hub(fresh, tmp_path / 'fresh')
    assert 'trained on: not recorded' in (tmp_path / 'fresh' / 'README.md').read_text()
    assert json.loads((tmp_path / 'fresh' / 'config.json').read_text())['pretrained_cfg']['license'] == 'apache-2.0'


def _small_tim(num_classes, seed, trained=True):
    """A small random `tim`, standing in for a trained one unless `trained=False` (then its head is marked untrained,
    as a model built without weights is)."""
    from conftest import as_trained
    torch.manual_seed(seed)
    model = tim_zoo.create_model('tim', num_classes=num_classes, filters=8, depth=2).eval()
    return as_trained(model) if trained else model


def _load_for_labels(model, path, labels):
    import warnings

    from tim_zoo.weights.label_rows import LabelRowsWarning
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter('always')
        tim_zoo.load_weights(model, path, label_names=labels)
    return [str(w.message) for w in caught if issubclass(w.category, LabelRowsWarning)]


def test_labels_in_another_order_reorder_the_classifier_rows(tmp_path):
    source = _small_tim(3, 0)
    path = tim_zoo.save_checkpoint(source, tmp_path / 'abc.safetensors', label_names=['a', 'b', 'c'])
    model = _small_tim(3, 1)
    said = _load_for_labels(model, path, ['c', 'a', 'b'])
    assert said == [f'{path}: its classifier was trained on the same labels in another order ([\'a\', \'b\', \'c\']); '
                    f'its rows were reordered to [\'c\', \'a\', \'b\']']
    x = torch.randn(2, 39, 30)
    assert torch.equal(model(x), source(x)[:, [2, 0, 1]]) and model.label_names == ['c', 'a', 'b']
    assert not tim_zoo.weights.fresh_head.untrained_head(model)
    same = _small_tim(3, 2)
    assert _load_for_labels(same, path, ['a', 'b', 'c']) == [] and torch.equal(same(x), source(x))


def test_labels_the_weights_partly_know_keep_their_rows_and_start_the_others_fresh(tmp_path):
    source = _small_tim(3, 0)
    path = tim_zoo.save_checkpoint(source, tmp_path / 'abc.safetensors', label_names=['a', 'b', 'c'])
    model = _small_tim(2, 1)
    fresh_row = model.head.fc.weight[1].detach().clone()
    said = _load_for_labels(model, path, ['b', 'd'])
    assert said == [f'{path}: its classifier was trained on [\'a\', \'b\', \'c\']; kept the rows of b, matched by name, '
                    f'and started d fresh (fine-tune them); left out a, c, which these labels lack']
    assert torch.equal(model.head.fc.weight[0], source.head.fc.weight[1])
    assert torch.equal(model.head.fc.bias[0], source.head.fc.bias[1])
    assert torch.equal(model.head.fc.weight[1], fresh_row) and model.label_names == ['b', 'd']
    body = [k for k in source.state_dict() if not k.startswith('head.')]
    assert all(torch.equal(model.state_dict()[k], source.state_dict()[k]) for k in body)
    from tim_zoo.weights.fresh_head import untrained_rows
    assert untrained_rows(model) == (str(path), ['d']) and not tim_zoo.weights.fresh_head.untrained_head(model)
    notes = tim_zoo.EmotionRecognizer(model, feature_settings=dict(mean_signal_length=32768)).model_notes
    assert notes == [f"the classifier's rows of d are untrained: {path} did not know that label, so their "
                     f"probabilities, and every answer beside them, mean nothing until the model is fine-tuned",
                     f"the classifier answers 1 of the 3 labels its weights ({path}) trained on, leaving out a, c: a "
                     f"recording of those labels is answered with one of the others, and what was measured of the "
                     f"weights (their held-out accuracy) is not this classifier's"]
    with torch.no_grad():                            # a training step later: the rows are the model's own
        model.head.fc.bias += 0.1
    assert untrained_rows(model) == ('', [])


def test_a_classifier_cut_to_some_of_the_weights_labels_says_so_in_every_answer(tmp_path):
    """A 2-class model cut from a 7-class tag answered "sad 0.77" for neutral speech with the 7-class accuracy in its
    notes and "the model learned this answer" of a recording it learned as neutral."""
    from tim_zoo.weights.fresh_head import labels_left_out
    source = _small_tim(4, 0)
    path = tim_zoo.save_checkpoint(source, tmp_path / 'abcd.safetensors', label_names=list('abcd'))
    cut = _small_tim(2, 1)
    _load_for_labels(cut, path, ['d', 'b'])
    assert labels_left_out(cut) == dict(source=str(path), trained=list('abcd'), left_out=['a', 'c'])

    def notes(model):
        return tim_zoo.EmotionRecognizer(model, feature_settings=dict(mean_signal_length=32768)).model_notes
    expected = [f'the classifier answers 2 of the 4 labels its weights ({path}) trained on, leaving out a, c: a '
                f'recording of those labels is answered with one of the others, and what was measured of the weights '
                f'(their held-out accuracy) is not this classifier\'s']
    assert notes(cut) == expected
    saved = tim_zoo.save_checkpoint(cut, tmp_path / 'db.safetensors')      # kept by a checkpoint of it, and cut again
    assert notes(tim_zoo.load_checkpoint(saved).eval()) == expected
    again = _small_tim(1, 2)
    _load_for_labels(again, saved, ['b'])
    assert labels_left_out(again)['left_out'] == ['a', 'c', 'd']
    reordered = _small_tim(4, 3)                                 # every label kept: nothing left out
    _load_for_labels(reordered, path, list('dcba'))
    assert labels_left_out(reordered) is None and notes(reordered) == []
    with torch.no_grad():                                        # fine-tuned: the two labels are its own
        cut.head.fc.bias += 0.1
    assert labels_left_out(cut) is None and notes(cut) == []
    odd = tim_zoo.save_checkpoint(_small_tim(2, 4), tmp_path / 'odd.safetensors',      # a record without its keys
                                  extra=dict(labels_left_out=dict(left_out=['c'])))
    assert labels_left_out(tim_zoo.load_checkpoint(odd)) is None
    with pytest.raises(ConfigurationError, match='features_only=True has no classifier'):
        tim_zoo.create_model('tim', filters=8, depth=2, checkpoint_path=path, features_only=True,
                             pretrained_cfg_overlay=dict(label_names=['a']))


def test_labels_the_weights_do_not_know_get_a_fresh_classifier_even_at_the_same_count(tmp_path):
    """Three other labels at the same class count: the rows of the file's a, b, c would answer x, y, z unseen."""
    source = _small_tim(3, 0)
    path = tim_zoo.save_checkpoint(source, tmp_path / 'abc.safetensors', label_names=['a', 'b', 'c'])
    model = _small_tim(3, 1)
    fresh = model.head.fc.weight.detach().clone()
    said = _load_for_labels(model, path, ['x', 'y', 'z'])
    assert said == [f'{path}: its classifier was trained on [\'a\', \'b\', \'c\'], none of these labels '
                    f'[\'x\', \'y\', \'z\']; loaded the body and kept a freshly initialised classifier (fine-tune it)']
    assert torch.equal(model.head.fc.weight, fresh) and model.label_names == ['x', 'y', 'z']
    assert tim_zoo.weights.fresh_head.untrained_head(model) == str(path)


def test_a_classifier_without_label_names_is_taken_in_the_given_order_with_a_warning(tmp_path):
    source = _small_tim(3, 0)
    torch.save(source.state_dict(), tmp_path / 'w.pt')
    model = _small_tim(3, 1)
    said = _load_for_labels(model, tmp_path / 'w.pt', ['x', 'y', 'z'])
    assert said == [f'{tmp_path / "w.pt"} does not name the labels of its classifier: its rows are taken as '
                    f'[\'x\', \'y\', \'z\'], in that order']
    assert torch.equal(model.head.fc.weight, source.head.fc.weight) and model.label_names == ['x', 'y', 'z']


def test_checkpoint_path_takes_the_files_class_count_unless_one_is_given(tmp_path):
    """The default 7 classes threw away a 4-class file's trained classifier with a warning."""
    import warnings
    source = _small_tim(4, 0)
    path = tim_zoo.save_checkpoint(source, tmp_path / 'four.safetensors', label_names=list('abcd'))
    with warnings.catch_warnings():
        warnings.simplefilter('error')
        model = tim_zoo.create_model('tim', filters=8, depth=2, checkpoint_path=path).eval()
    x = torch.randn(2, 39, 30)
    assert model.num_classes == 4 and model.label_names == list('abcd') and torch.equal(model(x), source(x))
    with pytest.warns(UserWarning, match='its classifier has 4 classes, the model 3'):
        chosen = tim_zoo.create_model('tim', filters=8, depth=2, num_classes=3, checkpoint_path=path)
    assert chosen.num_classes == 3 and chosen.label_names is None


def test_checkpoint_path_with_overlay_label_names_matches_rows_by_name(tmp_path):
    """Names for fewer classes than the default 7 failed: "2 names for a model of 7 classes". As many names the file
    does not know rename its outputs, as with pretrained=True; the warnings point at the caller's line."""
    from tim_zoo.weights.fresh_head import untrained_head, untrained_rows
    source = _small_tim(4, 0)
    path = tim_zoo.save_checkpoint(source, tmp_path / 'abcd.safetensors', label_names=list('abcd'))
    with pytest.warns(UserWarning, match=r"kept the rows of d, b, matched by name; left out a, c"):
        model = tim_zoo.create_model('tim', filters=8, depth=2, checkpoint_path=path,
                                     pretrained_cfg_overlay=dict(label_names=['d', 'b']))
    assert model.num_classes == 2 and model.label_names == ['d', 'b'] and not untrained_head(model)
    assert torch.equal(model.head.fc.weight, source.head.fc.weight[[3, 1]])
    with pytest.warns(UserWarning, match='started e fresh'):
        partly = tim_zoo.create_model('tim', filters=8, depth=2, checkpoint_path=path,
                                      pretrained_cfg_overlay=dict(label_names=['a', 'e']))
    assert partly.label_names == ['a', 'e'] and torch.equal(partly.head.fc.weight[0], source.head.fc.weight[0])
    assert untrained_rows(partly) == (str(path), ['e'])
    with pytest.raises(ConfigurationError, match='2 label names for a model of 3 classes'):
        tim_zoo.create_model('tim', filters=8, depth=2, num_classes=3, checkpoint_path=path,
                             pretrained_cfg_overlay=dict(label_names=['a', 'b']))
    with pytest.warns(UserWarning, match='so they rename its outputs in order: a -> w, b -> x') as said:
        renamed = tim_zoo.create_model('tim', filters=8, depth=2, checkpoint_path=path,
                                       pretrained_cfg_overlay=dict(label_names=list('wxyz')))
    assert renamed.label_names == list('wxyz') and torch.equal(renamed.head.fc.weight, source.head.fc.weight)
    assert [w.filename for w in said] == [__file__]
    import threading
    import warnings
    with warnings.catch_warnings(record=True) as caught:            # called by Python itself: the package's frame
        warnings.simplefilter('always')
        thread = threading.Thread(target=tim_zoo.load_weights, args=(_small_tim(3, 7), path))
        thread.start()
        thread.join()
    assert [Path(w.filename).parent.name for w in caught] == ['weights']
    with pytest.raises(ConfigurationError, match='label_names is empty'):
        tim_zoo.create_model('tim', filters=8, depth=2, checkpoint_path=path, pretrained_cfg_overlay=dict(label_names=[]))


def test_a_training_only_argument_is_not_called_another_function():
    """drop_rate acts only in training: the same weights compute the same eval function, so no warning."""
    import warnings
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter('always')
        model = tim_zoo.create_model('timnet', pretrained=True, drop_rate=0.5).eval()
    assert not [w for w in caught if 'another function' in str(w.message)] and model.init_args['drop_rate'] == 0.5
    x = torch.randn(1, 39, 188)
    assert torch.equal(model(x), tim_zoo.create_model('timnet', pretrained=True).eval()(x))


def test_label_matching_edge_cases(tmp_path):
    import warnings

    from tim_zoo.weights.fresh_head import fresh_head_record, untrained_head, untrained_head_reason, untrained_rows
    source = _small_tim(3, 0)
    path = tim_zoo.save_checkpoint(source, tmp_path / 'abc.safetensors', label_names=['a', 'b', 'c'])
    with pytest.raises(ConfigurationError, match='name a label twice'):
        tim_zoo.load_weights(_small_tim(3, 1), path, label_names=['a', 'a', 'b'])
    with pytest.raises(ConfigurationError, match='2 label names for a model of 3 classes'):
        tim_zoo.load_weights(_small_tim(3, 1), path, label_names=['a', 'b'])
    with pytest.raises(CheckpointMismatchError, match='refused: rows would start fresh, and allow_head_reset=False'):
        tim_zoo.load_weights(_small_tim(3, 1), path, allow_head_reset=False, label_names=['a', 'b', 'd'])
    kept = _small_tim(3, 1)                                     # reordering needs no reset
    tim_zoo.load_weights(kept, path, allow_head_reset=False, label_names=['c', 'b', 'a'])
    assert torch.equal(kept.head.fc.weight, source.head.fc.weight.flip(0))
    subset = _small_tim(2, 1)                                   # labels all known: nothing fresh, nothing recorded
    _load_for_labels(subset, path, ['c', 'a'])
    assert fresh_head_record(subset) is None
    # the head differs beyond the classifier (another length for a head over time): the whole head starts fresh,
    # and no "kept the rows" is said
    from conftest import small_model_args
    other = tim_zoo.create_model('cnn_transformer', **small_model_args('cnn_transformer', 40, num_classes=3))
    long_path = tim_zoo.save_checkpoint(other, tmp_path / 'long.safetensors', label_names=['a', 'b', 'c'])
    model = tim_zoo.create_model('cnn_transformer', **small_model_args('cnn_transformer', 56, num_classes=2))
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter('always')
        tim_zoo.load_weights(model, long_path, label_names=['b', 'd'])
    assert not [w for w in caught if 'kept the rows' in str(w.message)] and untrained_head(model) == str(long_path)
    # rows of a file saved untrained stay untrained when matched to other labels (the mark was lost on reorder)
    fresh_path = tim_zoo.save_checkpoint(_small_tim(3, 1, trained=False), tmp_path / 'fresh.safetensors', label_names=['a', 'b', 'c'])
    reordered = _small_tim(3, 2)
    _load_for_labels(reordered, fresh_path, ['c', 'b', 'a'])
    assert 'built without weights' in untrained_head_reason(reordered)
    partly = _small_tim(3, 2)
    _load_for_labels(partly, path, ['a', 'b', 'x'])                 # x fresh beside trained a, b
    partly_path = tim_zoo.save_checkpoint(partly, tmp_path / 'partly.safetensors')
    again = _small_tim(3, 3)
    _load_for_labels(again, partly_path, ['y', 'x', 'a'])           # x still untrained, y new
    assert untrained_rows(again) == (str(partly_path), ['y', 'x']) and not untrained_head_reason(again)
    assert _load_for_labels(_small_tim(2, 5), path, ['B', 'c'])[0].endswith(
        "labels are matched exactly (case and punctuation count): did you mean 'b' for 'B'?")
    trained_rows = _small_tim(2, 4)                                # only the trained rows: nothing is untrained
    _load_for_labels(trained_rows, partly_path, ['b', 'a'])
    assert fresh_head_record(trained_rows) is None
    features = _small_tim(0, 2)                                 # no classifier: nothing to call untrained
    features.reset_classifier(0)
    assert fresh_head_record(features) is None


def test_feature_indices_take_numpy_integers():
    import timm
    net = timm.create_model('timnet', features_only=True, out_indices=(np.int64(0), np.int64(-1)))
    assert len(net.feature_info.channels()) == 2
