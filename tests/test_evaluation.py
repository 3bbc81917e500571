"""Metrics, folds, the release evaluation on real audio, and the audio CLI."""
import dataclasses
import json
from pathlib import Path

import numpy as np
import pytest

import tim_zoo
from tim_zoo import cli
from tim_zoo.evaluation import confusion_matrix, evaluate_keras_release, kfold_splits, predict_proba, uar, war

RELEASE_RESULTS = Path(__file__).resolve().parents[1] / 'docs' / 'results' / 'releases' / 'EMODB_46.json'


def test_metrics_on_a_hand_example():
    y_true = [0, 0, 0, 0, 1, 1, 2]
    y_pred = [0, 0, 0, 1, 1, 0, 1]
    assert war(y_true, y_pred) == pytest.approx(4 / 7)
    assert uar(y_true, y_pred, 3) == pytest.approx((3 / 4 + 1 / 2 + 0) / 3)
    assert confusion_matrix(y_true, y_pred, 3).tolist() == [[3, 1, 0], [1, 1, 0], [0, 1, 0]]


def test_kfold_splits_partition_the_samples():
    pytest.importorskip('sklearn')
    splits = kfold_splits(535, 10, 46)
    tests = [te for _, te in splits]
    assert len(splits) == 10 and sorted(np.concatenate(tests).tolist()) == list(range(535))
    assert [len(te) for te in tests] == [54] * 5 + [53] * 5
    assert all(len(set(tr) & set(te)) == 0 for tr, te in splits)
    assert all(np.array_equal(a[1], b[1]) for a, b in zip(splits, kfold_splits(535, 10, 46)))
    assert not np.array_equal(tests[0], kfold_splits(535, 10, 0)[0][1])


@pytest.fixture(scope='module')
def emodb_features(tmp_path_factory):
    from conftest import SHARED
    if not SHARED.is_dir():
        pytest.skip(f'reference folder {SHARED} is absent')
    pytest.importorskip('librosa')
    from tim_zoo.data import MFCCExtractor, extract_features, load_corpus
    corpus = load_corpus('emodb', SHARED / 'data' / 'emodb')
    return extract_features(corpus, MFCCExtractor(96000), show_progress=False)


def _release(shared):
    return shared / 'weights' / 'timnet_official' / 'EMODB_46'


@pytest.mark.slow
def test_emodb_release_evaluation_matches_the_docs(shared_dir, emodb_features):
    result = evaluate_keras_release(_release(shared_dir), emodb_features, show_progress=False)
    assert result['seed'] == 46 and sum(f['n'] for f in result['per_fold']) == 535
    assert np.array(result['confusion']).sum() == 535
    recorded = json.loads(RELEASE_RESULTS.read_text())     # docs/evaluation.md's table is written from it
    keys = ('war', 'war_std', 'uar', 'pooled_war', 'training_war')
    np.testing.assert_allclose([result[k] for k in keys], [recorded[k] for k in keys], atol=1e-4)
    np.testing.assert_allclose([[f['war'], f['uar']] for f in result['per_fold']],
                               [[f['war'], f['uar']] for f in recorded['per_fold']], atol=1e-4)
    assert result['confusion'] == recorded['confusion']


@pytest.mark.slow
def test_release_folds_are_the_held_out_sets(shared_dir, emodb_features):
    models = [tim_zoo.create_model('timnet', pretrained=True, pretrained_cfg_overlay=dict(
        file=str(_release(shared_dir) / f'10-fold_weights_best_{i}.hdf5'))) for i in range(1, 11)]
    preds = [predict_proba(m, emodb_features.x).argmax(1) for m in models]
    y = emodb_features.y

    def held_out_and_training_accuracy(seed):
        test_acc, train_acc = [], []
        for pred, (train, test) in zip(preds, kfold_splits(len(y), 10, seed)):
            test_acc.append((pred[test] == y[test]).mean())
            train_acc.append((pred[train] == y[train]).mean())
        return np.mean(test_acc), np.mean(train_acc)

    test_46, train_46 = held_out_and_training_accuracy(46)
    test_0, _ = held_out_and_training_accuracy(0)
    assert train_46 - test_46 > 0.08, 'seed-46 test folds should be unseen by their fold models'
    assert test_0 - test_46 > 0.08, 'with a wrong seed the "test" folds are mostly training data'
    # the figures docs/evaluation.md gives of both
    import re
    doc = (Path(__file__).resolve().parent.parent / 'docs' / 'evaluation.md').read_text()
    said = re.search(r'scores ([\d.]+)% on its test fold\s+and ([\d.]+)% on its nine training folds; with a wrong '
                     r'seed \(0\) the "test" folds are mostly training\s+data and the same models score ([\d.]+)%', doc)
    assert said, 'docs/evaluation.md no longer states the seed check'
    assert [float(v) for v in said.groups()] == [round(100 * v, 1) for v in (test_46, train_46, test_0)]


def test_cli_extract_and_predict_with_a_checkpoint(tmp_path, capsys, speech_like):
    sf = pytest.importorskip('soundfile')
    wavs = []
    for i, cls in enumerate(['low', 'low', 'high']):
        path = tmp_path / 'corpus' / cls / f'{i}.wav'
        path.parent.mkdir(parents=True, exist_ok=True)
        sf.write(str(path), speech_like(1.0, f0=120 + 60 * i, seed=i, gain=0.1 * (i + 1)), 22050)
        wavs.append(str(path))
    assert cli.main(['extract', '--corpus', 'folders', '--data-root', str(tmp_path / 'corpus'),
                     '-o', str(tmp_path / 'f.npz'), '--mean-signal-length', '32768', '--quiet']) == 0
    from tim_zoo.data import FeatureSet
    feats = FeatureSet.load(tmp_path / 'f.npz')
    assert feats.x.shape == (3, 39, 65) and feats.label_names == ['high', 'low']
    assert feats.settings['level'] == 'peak'                         # extract's default, recorded
    assert feats.durations == pytest.approx([1.0, 1.0, 1.0])         # as read
    # nothing padded (or cut) silently: 32768 samples at 22050 Hz are 1.49 s
    assert 'note: 3 of 3 shorter than 1.49 s were zero-padded around (the shortest 1.00 s)' in capsys.readouterr().out
    longer = FeatureSet(feats.x, feats.y, feats.label_names, settings=feats.settings, durations=[2.0, 32768 / 22050, 1.0])
    assert longer.fit_note() == ('1 of 3 recordings longer than 1.49 s were cut to their middle 1.49 s (the longest, '
                                 '2.00 s, lost 26 % of it); 1 of 3 shorter than 1.49 s were zero-padded around '
                                 '(the shortest 1.00 s)')
    assert FeatureSet(feats.x, feats.y, feats.label_names, settings=feats.settings).fit_note() == ''   # not known

    model = tim_zoo.create_model('tim', num_classes=2, depth=3)
    model.label_names = ['high', 'low']
    tim_zoo.save_checkpoint(model, tmp_path / 'm.safetensors', feature_settings=feats.settings)
    assert cli.main(['predict', *wavs, '--checkpoint', str(tmp_path / 'm.safetensors'), '--json']) == 0
    rows = json.loads(capsys.readouterr().out)
    assert [r['file'] for r in rows] == wavs
    for r in rows:
        assert set(r['probabilities']) == {'high', 'low'} and sum(r['probabilities'].values()) == pytest.approx(1, abs=1e-5)
    expected = predict_proba(tim_zoo.load_checkpoint(tmp_path / 'm.safetensors'), feats.x[[1, 2, 0]])
    got = np.array([[r['probabilities']['high'], r['probabilities']['low']] for r in rows])
    np.testing.assert_allclose(got, expected, atol=1e-6)
    assert cli.main(['predict', wavs[0], '--checkpoint', str(tmp_path / 'm.safetensors')]) == 0
    table = capsys.readouterr().out
    assert table.splitlines()[0].split()[:2] == ['file', 'prediction'] and wavs[0] in table


def test_cli_predict_with_a_speaker_normalised_model_needs_recordings_of_one_speaker(tmp_path, capsys, speech_like):
    sf = pytest.importorskip('soundfile')
    from tim_zoo.data import MFCCExtractor, normalize_by_speaker

    wavs = []
    for i in range(3):
        wavs.append(str(tmp_path / f'{i}.wav'))
        sf.write(wavs[-1], speech_like(0.8, f0=110 + 70 * i, seed=i, gain=0.2 * (i + 1)), 22050)
    model = tim_zoo.create_model('tim', num_classes=2, depth=3)
    model.label_names = ['high', 'low']
    settings = dict(mean_signal_length=24576, normalize='speaker_mean')
    tim_zoo.save_checkpoint(model, tmp_path / 'm.safetensors', feature_settings=settings)
    assert cli.main(['predict', *wavs, '--checkpoint', str(tmp_path / 'm.safetensors')]) == 2   # usage: --same-speaker missing
    assert "normalised per speaker (normalize='speaker_mean')" in capsys.readouterr().err
    assert cli.main(['predict', *wavs, '--checkpoint', str(tmp_path / 'm.safetensors'), '--same-speaker', '--json']) == 0
    got = np.array([[r['probabilities']['high'], r['probabilities']['low']] for r in json.loads(capsys.readouterr().out)])
    signals = [sf.read(w, dtype='float32')[0] for w in wavs]
    raw = np.stack([MFCCExtractor(24576)(x - x.mean(), 22050) for x in signals])    # the pipeline removes DC
    expected = predict_proba(tim_zoo.load_checkpoint(tmp_path / 'm.safetensors'),
                             normalize_by_speaker(raw, ['one'] * 3, 'speaker_mean'))
    np.testing.assert_allclose(got, expected, atol=1e-6)
    assert np.abs(predict_proba(tim_zoo.load_checkpoint(tmp_path / 'm.safetensors'), raw) - expected).max() > 1e-4


def test_cli_predict_with_a_model_without_weights_says_what_to_pass(capsys, monkeypatch):
    from tim_zoo.models._base import DEFAULT_TAGS
    monkeypatch.delitem(DEFAULT_TAGS, 'at_tim')         # an architecture whose default is not a tag
    assert cli.main(['predict', 'x.wav', '--model', 'at_tim']) == 2
    assert '--checkpoint PATH' in capsys.readouterr().err
    for flags in ([], ['--builder', 'my_models:build']):      # a weight file given as --model: where it goes
        assert cli.main(['predict', 'x.wav', '--model', 'runs/a/fold1/last.safetensors'] + flags) == 2
        assert 'is a weight file: pass it as --checkpoint runs/a/fold1/last.safetensors' in capsys.readouterr().err


def test_cli_predict_with_a_large_zoo_tag_not_trained_here_names_the_command(capsys, monkeypatch, tmp_path):
    monkeypatch.setenv('TIM_ZOO_HOME', str(tmp_path))
    assert cli.main(['predict', 'x.wav', '--model', 'set_official']) != 0
    err = capsys.readouterr().err
    assert 'tim-zoo train --corpus emodb' in err and '--model set_official' in err


def test_bundled_model_is_an_emodb_timnet_trained_by_the_engine():
    from tim_zoo.pretrained import DEFAULT_CHECKPOINT, load_default_model
    from tim_zoo.weights.checkpoint import read_checkpoint

    model = load_default_model()
    assert model.label_names == ['angry', 'boredom', 'disgust', 'fear', 'happy', 'neutral', 'sad']
    assert model.pretrained_cfg['feature_settings']['mean_signal_length'] == 96000
    _, meta = read_checkpoint(DEFAULT_CHECKPOINT)
    assert meta['architecture'] == 'timnet'
    train_config = meta['extra']['train_config']
    assert train_config['protocol'] == 'all' and meta['extra']['epoch'] == train_config['epochs']
    assert meta['model_args']['weight_init'] == 'keras' and meta['feature_settings']['level'] == 'peak'
    # the held-out figure quoted for it (the packaged zoo table, the docs) is of its recipe's 10-fold runs: the same
    # training in every setting but the protocol and seed, at the same input length
    from tim_zoo.models._zoo import _zoo_table
    bundled = _zoo_table()['bundled']['timnet']
    run = json.loads((Path(__file__).resolve().parents[1] / bundled['results']).read_text())['config']
    same = ('model', 'model_args', 'recipe', 'optimizer', 'lr', 'weight_decay', 'betas', 'scheduler', 'epochs',
            'batch_size', 'dropout', 'label_smoothing', 'frame_mask', 'grad_clip', 'select', 'val_fraction', 'init',
            'normalize', 'compile')
    assert {k: train_config[k] for k in same} == {k: run[k] for k in same}
    assert run['protocol'] == 'kfold' and bundled['frames'] == meta['feature_settings']['frames'] == 188
    assert bundled['recipe'] == train_config['recipe'] == 'timnet.paper'


def test_cli_predict_defaults_to_the_bundled_model(tmp_path, capsys, speech_like):
    sf = pytest.importorskip('soundfile')
    path = tmp_path / 'voice.wav'
    sf.write(str(path), speech_like(1.5), 22050)
    tone = tmp_path / 'tone.wav'
    sf.write(str(tone), (0.3 * np.sin(2 * np.pi * 220 * np.arange(30000) / 22050)).astype(np.float32), 22050)
    assert cli.main(['predict', str(path), str(tone), '--json']) == 0
    row, steady = json.loads(capsys.readouterr().out)
    assert set(row['probabilities']) == {'angry', 'boredom', 'disgust', 'fear', 'happy', 'neutral', 'sad'}
    assert sum(row['probabilities'].values()) == pytest.approx(1, abs=1e-5)
    assert row['error'] is None and row['notes'] == [] and len(row['segments']) == 1
    # a steady tone is no speech: no class, and a note naming it
    assert steady['prediction'] is None and steady['probabilities'] is None and steady['error'] is None
    assert steady['status'] == 'non_speech'
    assert steady['notes'] and steady['notes'][0].startswith('no prediction: the periodic sound here is a tone')


@pytest.mark.slow
def test_bundled_model_recognises_emodb_recordings(shared_dir, capsys):
    """The bundled model has seen every EMODB file, so this checks the shipped pipeline, not generalisation."""
    wavs = sorted((shared_dir / 'data' / 'emodb' / 'wav').glob('*.wav'))[:40]
    assert cli.main(['predict', *map(str, wavs), '--json']) == 0
    rows = json.loads(capsys.readouterr().out)
    letters = dict(W='angry', L='boredom', E='disgust', A='fear', F='happy', T='sad', N='neutral')
    correct = sum(r['prediction'] == letters[Path(r['file']).stem[5]] for r in rows)
    assert correct / len(rows) > 0.8


@pytest.mark.slow
def test_cli_predict_and_evaluate_with_the_keras_release(shared_dir, tmp_path, capsys):
    wav = shared_dir / 'data' / 'emodb' / 'wav' / '03a01Wa.wav'
    weights = _release(shared_dir) / '10-fold_weights_best_1.hdf5'
    assert cli.main(['predict', str(wav), '--keras-weights', str(weights), '--json']) == 0
    row = json.loads(capsys.readouterr().out)[0]
    assert list(row['probabilities']) == ['angry', 'boredom', 'disgust', 'fear', 'happy', 'neutral', 'sad']
    out = tmp_path / 'eval.json'
    assert cli.main(['evaluate', '--keras-release', str(_release(shared_dir)), '--corpus', 'emodb',
                     '--data-root', str(shared_dir / 'data' / 'emodb'), '--quiet', '--output', str(out),
                     '--features', str(tmp_path / 'cache.npz')]) == 0
    printed = capsys.readouterr().out
    result = json.loads(out.read_text())
    assert f'mean WAR {100 * result["war"]:.2f}%' in printed and len(result['per_fold']) == 10
    assert (tmp_path / 'cache.npz').is_file()
    assert cli.main(['evaluate', '--keras-release', str(_release(shared_dir)), '--corpus', 'emodb', '--fold', '1', '3',
                     '--data-root', str(shared_dir / 'data' / 'emodb'), '--quiet', '--json',
                     '--features', str(tmp_path / 'cache.npz')]) == 0
    subset = json.loads(capsys.readouterr().out)                    # --json: the result on stdout
    assert [f['fold'] for f in subset['per_fold']] == [1, 3] and subset['per_fold'] == [result['per_fold'][i] for i in (0, 2)]


@pytest.mark.slow
def test_a_manifest_of_emodb_evaluates_like_the_corpus(shared_dir, tmp_path, emodb_features):
    """The manifest corpus keeps the canonical order (class, then natural file order), so the authors' folds and
    the released models' result are the same as through the EMODB reader."""
    from tim_zoo.data import MFCCExtractor, extract_features, load_corpus

    corpus = load_corpus('emodb', shared_dir / 'data' / 'emodb')
    lines = ['path,label,speaker'] + [f'{it.path},{it.label_name},{it.speaker}' for it in reversed(corpus.items)]
    (tmp_path / 'emodb.csv').write_text('\n'.join(lines) + '\n')
    manifest = load_corpus('manifest', tmp_path / 'emodb.csv')
    assert manifest.paths == corpus.paths and manifest.speakers == corpus.speakers
    features = extract_features(manifest, MFCCExtractor(96000), show_progress=False)
    result = evaluate_keras_release(_release(shared_dir), features, show_progress=False, folds=[1, 2])
    expected = evaluate_keras_release(_release(shared_dir), emodb_features, show_progress=False, folds=[1, 2])
    assert result['per_fold'] == expected['per_fold']
    with pytest.raises(tim_zoo.ConfigurationError, match='folds are numbered 1 to 10, got \\[0, 11\\]'):
        evaluate_keras_release(_release(shared_dir), features, show_progress=False, folds=[0, 11])


def test_the_training_folds_note_says_when_the_folds_are_not_the_releases():
    from tim_zoo.evaluation import training_folds_note
    assert '11.5 points above the test folds, as held-out folds should be' in training_folds_note(
        dict(war=0.8092, training_war=0.9244))
    assert 'these are not the folds they trained on' in training_folds_note(dict(war=0.927, training_war=0.9244))


def _scored_setup(n=12, frames=32):
    """A small timnet with classes a, b, c and features of two of them, c and a, in another order."""
    from tim_zoo.data import FeatureSet
    from conftest import as_trained
    model = as_trained(tim_zoo.create_model('timnet', num_classes=3, depth=2, filters=8).eval())
    model.label_names = ['a', 'b', 'c']
    rng = np.random.default_rng(0)
    x = rng.normal(size=(n, 39, frames)).astype(np.float32)
    features = FeatureSet(x=x, y=np.arange(n) % 2, label_names=['c', 'a'], paths=[f'u{i}.wav' for i in range(n)],
                          speakers=[f's{i % 3}' for i in range(n)])
    return model, features


def test_evaluate_model_matches_classes_by_name_and_counts_as_by_hand():
    import torch
    from tim_zoo.train import evaluate_model
    model, features = _scored_setup()
    with torch.no_grad():
        pred = model(torch.as_tensor(features.x)).argmax(-1).numpy()
    true = np.array([2, 0])[features.y]                     # c -> the model's output 2, a -> 0
    result = evaluate_model(model, features)
    assert result['war'] == pytest.approx(np.mean(pred == true)) and result['n'] == 12
    recall = {c: np.mean(pred[true == k] == k) for c, k in (('c', 2), ('a', 0))}
    assert {c: r['recall'] for c, r in result['per_class'].items()} == pytest.approx(recall)
    assert result['uar'] == pytest.approx(np.mean(list(recall.values())))
    assert result['confusion'] == [[int(((true == t) & (pred == p)).sum()) for p in range(3)] for t in (2, 0)]
    assert [u['predicted'] for u in result['utterances']] == [['a', 'b', 'c'][k] for k in pred]
    assert result['heard'] is None and any('keep no record of what they trained on' in n for n in result['notes'])
    assert any("1 classes the features lack (b)" in n for n in result['notes'])
    features.label_names = ['c', 'd']
    with pytest.raises(tim_zoo.DatasetError, match="the features have classes the model does not: d"):
        evaluate_model(model, features)
    model.label_names = None
    with pytest.raises(tim_zoo.DatasetError, match='the model has 3 outputs and names no classes; the features have 2'):
        evaluate_model(model, features)


def test_evaluate_model_can_leave_out_the_classes_the_model_lacks(tmp_path, capsys):
    """A fine-tuning corpus adds a label: the starting weights are scored on the classes they have, with a note."""
    import torch
    from tim_zoo.train import evaluate_model
    model, features = _scored_setup(n=12)
    features.label_names = ['c', 'new']                    # utterances 1, 3, 5 ... are of a class the model lacks
    features.y = np.arange(12) % 2
    with pytest.raises(tim_zoo.DatasetError, match=r'leave out the others: known_classes_only=True'):
        evaluate_model(model, features)
    result = evaluate_model(model, features, known_classes_only=True)
    kept = np.arange(0, 12, 2)
    with torch.no_grad():
        pred = model(torch.as_tensor(features.x[kept])).argmax(-1).numpy()
    assert result['n'] == 6 and result['label_names'] == ['c'] and result['war'] == pytest.approx(np.mean(pred == 2))
    assert [u['path'] for u in result['utterances']] == [f'u{i}.wav' for i in kept]
    assert 'scored on the 6 utterances of the classes the model has; left out the 6 of new, which it lacks' in \
        ' '.join(result['notes'])
    from tim_zoo.data import normalize_features
    model.pretrained_cfg = dict(feature_settings=dict(normalize='speaker_mean'))   # trained on normalised features
    tilt = np.linspace(-5, 5, 39, dtype=np.float32)[None, :, None]       # the left-out class moves the speaker means
    shifted = dataclasses.replace(features, x=features.x + tilt * (features.y == 1)[:, None, None])
    normalised = evaluate_model(model, shifted, known_classes_only=True)
    answers = []
    for each in (normalize_features(shifted, 'speaker_mean').x[kept],          # over all of a speaker's recordings
                 normalize_features(shifted.of_classes(['c']), 'speaker_mean').x):   # over the kept ones only
        with torch.no_grad():
            answers.append([['a', 'b', 'c'][k] for k in model(torch.as_tensor(each)).argmax(-1).numpy()])
    assert [u['predicted'] for u in normalised['utterances']] == answers[0] != answers[1]
    model.pretrained_cfg = {}
    features.label_names = ['x', 'y']                      # none it has: nothing to score
    with pytest.raises(tim_zoo.DatasetError, match='the features have classes the model does not: x, y'):
        evaluate_model(model, features, known_classes_only=True)
    sub = dataclasses.replace(features, voiced=[1.0] * 12, durations=[2.0] * 12).of_classes(['y'])
    assert sub.label_names == ['y'] and list(sub.y) == [0] * 6 and len(sub.voiced) == len(sub.durations) == 6
    with pytest.raises(tim_zoo.DatasetError, match="classes \\['z'\\] are not among"):
        features.of_classes(['z'])
    assert cli.main(['evaluate', '--keras-release', str(tmp_path), '--corpus', 'emodb', '--data-root', str(tmp_path),
                     '--known-classes-only']) == 2
    assert '--known-classes-only is for --model' in capsys.readouterr().err


def test_evaluate_model_says_when_the_classifier_is_untrained_or_cut(tmp_path):
    """evaluate scored a model with an untrained row ("calm 100.00%"), a fresh head or no weights at all without a
    word, and said of the last "the weights keep no record of what they trained on"."""
    from tim_zoo.train import evaluate_model
    model, features = _scored_setup()
    untrained = tim_zoo.create_model('timnet', num_classes=3, depth=2, filters=8).eval()
    untrained.label_names = ['a', 'b', 'c']
    fresh = evaluate_model(untrained, features)['notes']
    assert fresh[0].startswith("the model's classifier is untrained: the model was built without weights")
    assert not any('keep no record' in n for n in fresh)
    path = tim_zoo.save_checkpoint(model, tmp_path / 'abc.safetensors', label_names=['a', 'b', 'c'])
    cut = tim_zoo.create_model('timnet', depth=2, filters=8, checkpoint_path=path,
                               pretrained_cfg_overlay=dict(label_names=['c', 'a', 'x'])).eval()
    notes = evaluate_model(cut, features)['notes']
    assert notes[0].startswith("the classifier's rows of x are untrained")
    assert notes[1].startswith('the classifier answers 2 of the 3 labels its weights')


def test_evaluate_model_notes_recordings_without_speech(tmp_path):
    """Silence, noise and a tone in a manifest were scored and counted in WAR without a word in the result."""
    from tim_zoo.data import FeatureSet
    from tim_zoo.train import evaluate_model
    model, features = _scored_setup()
    assert all(u['voiced'] is None for u in evaluate_model(model, features)['utterances'])
    features.voiced = [1.2] * 10 + [0.0, 0.1]
    features = FeatureSet.load(features.save(tmp_path / 'f.npz'))          # kept by the feature file
    result = evaluate_model(model, features)
    assert [u['voiced'] for u in result['utterances']][-3:] == [1.2, 0.0, 0.1]
    assert any(n.startswith('the speech detector finds no speech (under 0.25 s voiced) in 2 of these 12 recordings '
                            '(u10.wav, u11.wav; "voiced" per utterance)') for n in result['notes'])


def test_evaluate_model_counts_the_utterances_the_weights_trained_on_by_their_record():
    from tim_zoo.train import evaluate_model, make_splits
    from tim_zoo.train.protocols import trained_on
    model, features = _scored_setup()
    names = [Path(p).stem for p in features.paths]
    model.pretrained_cfg = dict(model.pretrained_cfg, trained_on=trained_on('manifest', 'all', 'all', 10, 0, 0.0,
                                                                            None, names))
    result = evaluate_model(model, features)
    assert result['heard'] == 12 and 'the weights trained on 12 of these 12 utterances' in result['notes'][0]
    model.pretrained_cfg['trained_on'] = trained_on('manifest', 'kfold', 'fold2', 3, 5, 0.0, None, names)
    test = set(make_splits('kfold', 12, None, 3, 5, 0.0)[1].test.tolist())
    result = evaluate_model(model, features)
    assert [u['heard'] for u in result['utterances']] == [i not in test for i in range(12)]
    features.paths = [f'other{i}.wav' for i in range(12)]   # another list: not known
    result = evaluate_model(model, features)
    assert result['heard'] is None and 'whether they heard these is not known' in result['notes'][0]


def test_cli_evaluate_scores_a_checkpoint_on_a_labelled_folder(tmp_path, capsys, speech_like):
    import soundfile as sf
    from tim_zoo.data import MFCCExtractor
    for k, label in enumerate(['calm', 'calm', 'loud']):
        (tmp_path / 'data' / label).mkdir(parents=True, exist_ok=True)
        sf.write(tmp_path / 'data' / label / f'{k}.wav', speech_like(seconds=1.0, seed=k, gain=0.2 * (1 + k)), 22050)
    from conftest import as_trained
    model = as_trained(tim_zoo.create_model('tim', num_classes=2))    # standing in for a trained one
    settings = MFCCExtractor(22050).settings
    tim_zoo.save_checkpoint(model, tmp_path / 'm.safetensors', label_names=['calm', 'loud'], feature_settings=settings)
    common = ['evaluate', '--model', str(tmp_path / 'm.safetensors'), '--corpus', 'folders',
              '--data-root', str(tmp_path / 'data'), '--quiet']
    assert cli.main(common + ['-o', str(tmp_path / 'r.json')]) == 0
    printed = capsys.readouterr().out
    result = json.loads((tmp_path / 'r.json').read_text())
    assert result['n'] == 3 and f'WAR {100 * result["war"]:.2f}%, UAR {100 * result["uar"]:.2f}%' in printed
    assert 'note: the weights keep no record of what they trained on' in printed
    assert cli.main(common + ['--seed', '3']) == 2
    assert '--seed and --fold choose folds of a Keras release' in capsys.readouterr().err
    tim_zoo.save_checkpoint(model, tmp_path / 'bare.safetensors', label_names=['calm', 'loud'])   # no settings
    assert cli.main(['evaluate', '--model', str(tmp_path / 'bare.safetensors'), '--corpus', 'folders',
                     '--data-root', str(tmp_path / 'data'), '--quiet']) == 0
    assert 'note: the model keeps no feature settings' in capsys.readouterr().out


def test_evaluate_model_takes_the_steps_training_took_after_extraction():
    """A model trained on GMM-selected, speaker-normalised features is scored on features made the same way (each
    step noted), not on the raw MFCCs; without a speaker per utterance, normalisation is refused."""
    import torch
    pytest.importorskip('sklearn')
    from tim_zoo.data.frame_selection import select_frames
    from tim_zoo.data.normalize import normalize_features
    from tim_zoo.train import evaluate_model
    model, features = _scored_setup()
    model.pretrained_cfg = dict(model.pretrained_cfg, feature_settings=dict(gmm_select=20, gmm_fits=2, gmm_seed=3,
                                                                            normalize='speaker_mean'))
    prepared = normalize_features(select_frames(features, 20, 2, 3), 'speaker_mean')     # the training run's seed
    with torch.no_grad():
        expected = model(torch.as_tensor(prepared.x)).argmax(-1).numpy()
    result = evaluate_model(model, features)
    assert [u['predicted'] for u in result['utterances']] == [['a', 'b', 'c'][k] for k in expected]
    said = ' '.join(result['notes'])
    assert 'shortened to 20 frames by GMM frame selection' in said and 'normalised per speaker (speaker_mean)' in said
    assert '(gmm_fits=2; seed 3)' in said
    del model.pretrained_cfg['feature_settings']['gmm_seed']              # weights from before the seed was kept
    assert 'the weights do not record' in ' '.join(evaluate_model(model, features)['notes'])
    features.speakers = []
    with pytest.raises(tim_zoo.DatasetError, match='per-speaker normalisation needs a speaker'):
        evaluate_model(model, features)


def test_speaker_votes_answer_each_speaker_by_most_of_their_utterances():
    from tim_zoo.evaluation import speaker_votes
    votes = speaker_votes(['a', 'a', 'a', 'b', 'b', 'c', 'c'], ['x', 'x', 'x', 'y', 'y', 'y', 'y'],
                          ['x', 'y', 'x', 'y', 'x', 'x', 'x'])
    assert votes['per_speaker'] == {'a': dict(label='x', n=3, answer='x', share=2 / 3),
                                    'b': dict(label='y', n=2, answer=None, share=0.5),      # a tie: wrong
                                    'c': dict(label='y', n=2, answer='x', share=1.0)}
    assert (votes['speakers'], votes['war'], votes['ties']) == (3, 1 / 3, 1)
    assert speaker_votes(['a', 'a'], ['x', 'y'], ['x', 'x']) is None          # a speaker of two labels
    assert speaker_votes(['a', ''], ['x', 'x'], ['x', 'x']) is None           # an unnamed speaker
