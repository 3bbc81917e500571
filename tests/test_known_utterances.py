"""Recordings the weights trained on: the packaged EMODB table, the record checkpoints keep of their training
utterances, the note of a prediction on one of them, and training refused when its initial weights heard its test
utterances."""
import dataclasses
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

import tim_zoo
from tim_zoo.data.known_utterances import (
    audio_fingerprint, identify_utterance, known_utterances, names_digest, write_utterance_table,
)
from tim_zoo.exceptions import ConfigurationError
from tim_zoo.train import TrainConfig, make_splits, run_training
from tim_zoo.train.protocols import heard_by, seen_utterances, trained_on
from tim_zoo.train.run import _check_before_writing

from test_train import TINY, _features

EMODB = known_utterances('emodb')


def _emodb_wav(shared_dir, name):
    return shared_dir / 'data' / 'emodb' / 'wav' / f'{name}.wav'


def test_the_packaged_emodb_table_is_the_shared_copy_in_corpus_order(shared_dir, tmp_path):
    from tim_zoo.data import load_corpus
    from tim_zoo.inference.audio_input import open_input
    corpus = load_corpus('emodb', shared_dir / 'data' / 'emodb')
    write_utterance_table(corpus, tmp_path / 'emodb.tsv')
    assert (tmp_path / 'emodb.tsv').read_text() == \
        (tim_zoo.data.known_utterances.Path(tim_zoo.data.known_utterances.__file__).with_name(
            'emodb_utterances.tsv')).read_text()
    assert len(EMODB.names) == 535 and len(set(EMODB.fingerprints)) == 535
    assert list(EMODB.speakers) == corpus.speakers
    for i in (0, 101, 534):                                 # the recognizer's reading (DC offset removed) agrees
        audio = open_input(corpus[i].path)
        assert audio_fingerprint(audio.signal, audio.rate) == EMODB.fingerprints[i]


def test_a_fingerprint_ignores_dc_and_the_reading_but_not_the_content():
    rng = np.random.default_rng(0)
    pcm = rng.integers(-20000, 20000, size=4000).astype(np.int16)
    x = pcm / 32768.0
    key = audio_fingerprint(x, 16000)
    assert audio_fingerprint(x.astype(np.float32), 16000) == key
    assert audio_fingerprint((x - x.mean()).astype(np.float32), 16000) == key   # a DC offset removed
    assert audio_fingerprint(x, 22050) != key
    assert audio_fingerprint(0.5 * x, 16000) != key
    assert audio_fingerprint(x[:-1], 16000) != key
    assert audio_fingerprint(np.roll(x, 1), 16000) != key


def test_an_utterance_is_known_by_its_content_or_its_name():
    assert identify_utterance(EMODB, name='/my/copy/03a01Wa.flac') == ('03a01Wa', 'name')
    assert identify_utterance(EMODB, name='03a01Wa_copy.wav') is None
    assert identify_utterance(EMODB, name=None, signal=np.zeros(100, np.float32), rate=16000) is None
    assert known_utterances('EMODB') is EMODB and known_utterances('casia') is None


def test_seen_utterances_follow_the_record_of_the_split():
    assert seen_utterances({'corpus': 'emodb', 'protocol': 'all', 'split': 'all'}) == frozenset(EMODB.names)
    subset = trained_on('emodb', 'all', 'all', 10, 46, 0.0, None, EMODB.names[:60])
    assert seen_utterances(subset) is None                 # 60 of them: not the table's list, nor every utterance
    assert seen_utterances(subset, EMODB.names[:60]) == frozenset(EMODB.names[:60])   # the run's own list
    record = trained_on('emodb', 'kfold', 'fold3', 10, 46, 0.1, 'seed.emodb', EMODB.names)
    assert record['names_sha256'] == names_digest(EMODB.names) == EMODB.digest
    test = make_splits('kfold', 535, None, 10, 46, 0.1)[2].test
    seen = seen_utterances(record)
    assert seen == frozenset(EMODB.names) - {EMODB.names[i] for i in test} and len(seen) == 535 - len(test)
    speaker = seen_utterances(dict(record, protocol='loso', split='speaker_03'))
    assert speaker == frozenset(n for n, s in zip(EMODB.names, EMODB.speakers) if s != '03')
    assert seen_utterances(dict(record, protocol='loso', split='speaker_03', folds=None)) == speaker  # as runs write
    assert seen_utterances(dict(record, names_sha256='another list')) is None     # its indices name other files
    assert seen_utterances(dict(record, names_sha256=None, whole_corpus=True)) == seen    # the authors' folds
    assert seen_utterances(dict(record, split='fold11')) is None
    assert seen_utterances(dict(record, corpus='casia')) is None
    assert seen_utterances(None) is None
    other = trained_on('modma', 'all', 'all', 10, 46, 0.0, None, ['a', 'b'])     # trained from weights that heard
    assert seen_utterances(dict(other, earlier=[record])) == seen                # EMODB: they heard it still
    assert seen_utterances(dict(other, earlier=[record]), ['a', 'b']) == seen | {'a', 'b'}
    assert [r['corpus'] for r, _ in heard_by(dict(other, earlier=[record]), ['a', 'b'])] == ['modma', 'emodb']


def test_published_weights_record_what_they_trained_on(shared_dir):
    tag = tim_zoo.create_model('at_tim.tim_zoo_emodb', pretrained=True)
    assert seen_utterances(tag.pretrained_cfg['trained_on']) == frozenset(EMODB.names)
    keras = shared_dir / 'weights' / 'timnet_official' / 'EMODB_46' / '10-fold_weights_best_3.hdf5'
    fold3 = tim_zoo.create_model('timnet.emodb_46', pretrained=True, pretrained_cfg_overlay=dict(file=str(keras)))
    record = fold3.pretrained_cfg['trained_on']
    assert (record['split'], record['split_seed']) == ('fold3', 46)  # by the file's hash, not the tag's fold 1
    assert len(seen_utterances(record)) == 481
    fresh = tim_zoo.create_model('at_tim')
    assert 'trained_on' not in fresh.pretrained_cfg


def test_a_prediction_on_a_training_utterance_says_so(shared_dir, tmp_path, speech_like):
    rec = tim_zoo.EmotionRecognizer.from_pretrained('tim.tim_zoo_emodb')
    path = _emodb_wav(shared_dir, '14a02Tb')
    one_of = 'one of the 535 utterances these weights trained on (all of EMODB)'
    note = f"EMODB's 14a02Tb (by its content), {one_of}"
    # under its own name the note need not name it again (and so reads the same for every such file of a listing)
    assert any(f'this recording is the EMODB utterance of its name (by its content), {one_of}' in n
               for n in rec.predict(path).notes)
    signal, rate = sf.read(path, dtype='float32')
    assert any(note in n for n in rec.predict(signal, sample_rate=rate).notes)          # a waveform
    renamed = tmp_path / 'mine.wav'
    renamed.write_bytes(path.read_bytes())
    assert any(note in n for n in rec.predict(renamed).notes)
    named = tmp_path / '03a01Wa.wav'                       # another recording under an EMODB name
    sf.write(named, speech_like(2.0, rate), rate)
    assert any(n.startswith(f'this file is named as {one_of}: if it is that recording')
               for n in rec.predict(named).notes)
    other = rec.predict(speech_like(2.0, rate), sample_rate=rate)
    assert other.prediction and not any('trained on' in n for n in other.notes)
    with pytest.warns(UserWarning, match='loaded the body'):      # an untrained head: its own note says enough
        fresh = tim_zoo.EmotionRecognizer(tim_zoo.create_model('tim.tim_zoo_emodb', pretrained=True, num_classes=4))
    assert not any('trained on' in n for n in fresh.predict(path).notes)
    tuned = tim_zoo.create_model('tim.tim_zoo_emodb', pretrained=True)     # as if fine-tuned on another corpus
    tuned.pretrained_cfg['trained_on'] = dict(corpus='manifest', protocol='all', split='all',
                                              earlier=[tuned.pretrained_cfg['trained_on']])
    said = ' '.join(tim_zoo.EmotionRecognizer(tuned).predict(path).notes)
    assert 'the weights these were trained from trained on (all of EMODB): the weights the model was trained from ' \
           'learned an answer to it' in said and 'the model learned this answer' not in said


def test_a_release_fold_model_notes_its_training_folds_only(shared_dir):
    """The notes follow the authors' folds: none on fold 3's 54 test utterances, one on each of the others."""
    keras = shared_dir / 'weights' / 'timnet_official' / 'EMODB_46' / '10-fold_weights_best_3.hdf5'
    rec = tim_zoo.EmotionRecognizer.from_keras(keras)
    test = set(make_splits('kfold', 535, None, 10, 46, 0.0)[2].test.tolist())
    names = [n for i, n in enumerate(EMODB.names) if i in test] + [EMODB.names[i] for i in range(0, 535, 50)
                                                                    if i not in test]
    results = rec.predict_many([_emodb_wav(shared_dir, n) for n in names])
    noted = [any("one of the 481 utterances these weights trained on (every EMODB utterance but fold 3's test set)"
                 in n for n in r.notes) for r in results]
    assert noted == [False] * len(test) + [True] * (len(names) - len(test))


def _emodb_named(features, offset=0):
    """`features` with EMODB's corpus and utterance names (the first of the table's), as a feature file of it."""
    features.paths = [f'wav/{n}.wav' for n in EMODB.names[offset:offset + len(features.y)]]
    features.settings = dict(features.settings, corpus='emodb')
    return features


def test_training_records_its_utterances_and_refuses_initial_weights_that_heard_its_test_set(tmp_path):
    cfg = TrainConfig.from_recipe(None, model='timnet', model_args=dict(TINY), epochs=1, protocol='kfold', folds=3,
                                  batch_size=16, only_folds=[2])
    run_training(cfg, _emodb_named(_features()), tmp_path / 'run', show_progress=False)
    weights = tmp_path / 'run' / 'fold2' / 'last.safetensors'
    record = tim_zoo.load_checkpoint(weights).pretrained_cfg['trained_on']
    assert (record['split'], record['utterances'], record['corpus']) == ('fold2', 60, 'emodb')
    assert record['names_sha256'] == names_digest(EMODB.names[:60]) and 'earlier' not in record
    assert seen_utterances(record) is None                 # 60 utterances: not the table's list
    names = EMODB.names[:60]
    assert seen_utterances(record, names) == frozenset(names) - {names[i] for i in make_splits(
        'kfold', 60, None, 3, cfg.seed, cfg.val_fraction)[1].test}          # the run's own list: its training part

    everything = tim_zoo.create_model('timnet', num_classes=3, **TINY)
    tim_zoo.save_checkpoint(everything, tmp_path / 'all.safetensors', feature_settings=dict(corpus='emodb'),
                            extra=dict(trained_on=dict(corpus='emodb', protocol='all', split='all')))
    tuned = dataclasses.replace(cfg, init=str(tmp_path / "all.safetensors"))
    with pytest.raises(ConfigurationError, match=r'trained on test utterances of this run \(20 of 20 in fold2\), so '
                       r"this run's test accuracy would not be held out: they trained on all 535 EMODB utterances, "
                       r'so no split of it is held out from them'):
        run_training(tuned, _emodb_named(_features()), tmp_path / 'leak', show_progress=False)
    assert not (tmp_path / 'leak').exists()
    other = _features()                                    # another corpus' names: nothing heard
    run_training(tuned, other, tmp_path / 'other', show_progress=False)
    tuned_record = tim_zoo.load_checkpoint(tmp_path / 'other' / 'fold2' / 'last.safetensors').pretrained_cfg[
        'trained_on']                                      # fine-tuned: it heard what its initial weights heard
    assert seen_utterances(tuned_record) == frozenset(EMODB.names)
    again = dataclasses.replace(cfg, init=str(tmp_path / 'other' / 'fold2' / 'last.safetensors'))
    with pytest.raises(ConfigurationError, match='trained on test utterances of this run'):
        run_training(again, _emodb_named(_features()), tmp_path / 'leak2', show_progress=False)
    own = dataclasses.replace(cfg, init=str(weights), only_folds=[1])     # fold 2's weights: only its test is clean
    with pytest.raises(ConfigurationError, match=r'the splits whose test utterances they did not hear: --fold 2; '):
        run_training(own, _emodb_named(_features()), tmp_path / 'leak3', show_progress=False)
    from tim_zoo.train.initial_weights import _held_out_from
    assert _held_out_from(dict(corpus='manifest', protocol='all'), 48, here=(48, 64)).startswith(
        "they trained on all 48 utterances of their MANIFEST list, 48 of this run's 64")


def test_a_release_fold_file_initialises_its_own_fold_only(shared_dir, tmp_path):
    """The documented case: EMODB_46's fold 3 file starts fold 3 of seed 46 and is refused for fold 2, in its release
    folder or renamed elsewhere."""
    from tim_zoo.data import MFCCExtractor, extract_features, load_corpus
    keras = shared_dir / 'weights' / 'timnet_official' / 'EMODB_46' / '10-fold_weights_best_3.hdf5'
    features = extract_features(load_corpus('emodb', shared_dir / 'data' / 'emodb'),
                                MFCCExtractor(96000, 39, level='peak'), show_progress=False)
    renamed = tmp_path / 'w.hdf5'                          # out of its release folder: known by its hash
    renamed.write_bytes(keras.read_bytes())
    for init in (keras, renamed):
        cfg = TrainConfig.from_recipe('timnet.paper', init=str(init), only_folds=[3], epochs=1, seed=46)
        _check_before_writing(cfg, features)
        with pytest.raises(ConfigurationError, match=r'\(54 of 54 in fold2\), .*they trained on 481 EMODB utterances, '
                           r'all but the test set of their split fold3, which only that split of --protocol kfold '
                           r'--folds 10 --seed 46 holds out'):
            _check_before_writing(dataclasses.replace(cfg, only_folds=[2]), features)
    assert tim_zoo.EmotionRecognizer.from_keras(renamed).trained_on['split'] == 'fold3'


def test_renamed_copies_of_emodb_are_known_by_their_content_in_training_and_scoring(shared_dir, tmp_path):
    """A manifest of EMODB recordings under other names, and of recordings of the user's own: initial weights that
    trained on them are refused for a run that tests on them, and `evaluate_model` counts them as heard. An EMODB
    training goes by each file's content (an edited copy is another recording), a training on this very list by
    the files' names."""
    from tim_zoo.data import MFCCExtractor, extract_features, load_corpus
    from tim_zoo.pretrained import DEFAULT_CHECKPOINT
    from tim_zoo.train import evaluate_model
    from tim_zoo.train.protocols import heard_files
    corpus = load_corpus('emodb', shared_dir / 'data' / 'emodb')
    picked = [corpus[i] for i in (0, 130, 215, 300, 380, 450)]
    rows = ['path,label']
    for k, item in enumerate(picked):
        signal, rate = sf.read(item.path)
        sf.write(tmp_path / f'clip{k}.wav', signal * (0.5 if k == 5 else 1.0), rate, subtype='PCM_16')
        rows.append(f'clip{k}.wav,{item.label_name}')
    rng = np.random.default_rng(0)
    for k in range(3):                                      # the user's own recordings
        sf.write(tmp_path / f'own{k}.wav', rng.normal(0, 0.1, 44100), 22050, subtype='PCM_16')
        rows.append(f'own{k}.wav,{picked[k].label_name}')
    (tmp_path / 'labels.csv').write_text('\n'.join(rows) + '\n')
    features = extract_features(load_corpus('manifest', tmp_path / 'labels.csv'),
                                MFCCExtractor(96000, 39, level='peak'), show_progress=False)
    stems = [Path(p).stem for p in features.paths]
    copies = np.array([s.startswith('clip') and s != 'clip5' for s in stems])
    bundled = tim_zoo.load_checkpoint(DEFAULT_CHECKPOINT)
    record = bundled.pretrained_cfg['trained_on']
    (emodb,), unknown = heard_files(record, features.paths)
    assert not unknown and emodb.trained == 535 and emodb.mask.tolist() == copies.tolist()
    cfg = TrainConfig.from_recipe('timnet.paper', init=str(DEFAULT_CHECKPOINT), folds=2, epochs=1)
    with pytest.raises(ConfigurationError, match=r'trained on test utterances of this run \(\d of \d in fold1'):
        _check_before_writing(cfg, features)
    result = evaluate_model(bundled, features)
    assert result['heard'] == 5 and [u['heard'] for u in result['utterances']] == copies.tolist()
    assert 'the weights trained on 5 of these 9 utterances' in result['notes'][0]
    # fine-tuned on all of this list: its own training by the files' names, the earlier one by content
    bundled.pretrained_cfg['trained_on'] = dict(trained_on('manifest', 'all', 'all', 10, 0, 0.0, None, stems),
                                                earlier=[record])
    (own, earlier), unknown = heard_files(bundled.pretrained_cfg['trained_on'], features.paths)
    assert own.mask.all() and earlier.mask.tolist() == copies.tolist() and not unknown
    assert evaluate_model(bundled, features)['heard'] == 9
    # fine-tuned on another list: that training cannot tell, and the note says so beside the count it can give
    bundled.pretrained_cfg['trained_on'] = dict(trained_on('manifest', 'all', 'all', 10, 0, 0.0, None, ['x', 'y']),
                                                earlier=[record])
    result = evaluate_model(bundled, features)
    assert result['heard'] == 5
    assert any('the weights trained on manifest (all, split all), a list of utterances tim_zoo cannot draw again '
               'here: whether they heard these is not known, so more of them may be heard' in n for n in result['notes'])
