"""Features, corpus readers, feature files and frame selection."""
import warnings

import numpy as np
import pytest

librosa = pytest.importorskip('librosa')
sf = pytest.importorskip('soundfile')

from tim_zoo.data import (  # noqa: E402
    FeatureSet, GMMFrameSelection, MFCCExtractor, cached_features, centre_fit, extract_features, gmm_frame_selection,
    load_corpus, load_timnet_npy, natural_key, save_timnet_npy,
)
from tim_zoo.exceptions import AudioError, ConfigurationError, DatasetError, UnsafeFileError  # noqa: E402


def _write_wav(path, seconds=1.0, sr=22050, freq=220.0, channels=1, seed=0):
    rng = np.random.default_rng(seed)
    t = np.arange(int(seconds * sr)) / sr
    mono = 0.3 * np.sin(2 * np.pi * freq * t) + 0.01 * rng.standard_normal(t.size)
    data = mono if channels == 1 else np.stack([mono, 0.5 * mono], axis=1)
    path.parent.mkdir(parents=True, exist_ok=True)
    sf.write(str(path), data.astype(np.float32), sr)
    return path


# --- features ----------------------------------------------------------------------------------------

def test_centre_fit_pads_and_crops_like_tim_net():
    x = np.arange(1, 6, dtype=np.float32)                          # 5 samples
    np.testing.assert_array_equal(centre_fit(x, 8), [0, 1, 2, 3, 4, 5, 0, 0])   # pad 3 -> 1 left, 2 right
    np.testing.assert_array_equal(centre_fit(x, 3), [2, 3, 4])                   # crop from (5 - 3) // 2 = 1
    np.testing.assert_array_equal(centre_fit(x, 5), x)


@pytest.mark.parametrize('seconds', [1.0, 6.0])
@pytest.mark.slow
def test_mfcc_matches_librosa_pipeline(tmp_path, seconds):
    path = _write_wav(tmp_path / 'a.wav', seconds=seconds, sr=16000)        # other rate: librosa resamples to 22050
    length = 96000
    ours = MFCCExtractor(length)(path)
    signal, sr = librosa.load(str(path))
    assert sr == 22050
    if len(signal) < length:
        left = (length - len(signal)) // 2
        signal = np.concatenate([np.zeros(left), signal, np.zeros(length - len(signal) - left)]).astype(np.float32)
    else:
        start = (len(signal) - length) // 2
        signal = signal[start:start + length]
    expected = librosa.feature.mfcc(y=signal, sr=sr, n_mfcc=39)
    assert ours.shape == (39, 188) and ours.dtype == np.float32
    # the torch MFCC agrees within float32 rounding (documented tolerance: 1e-4 of the largest coefficient)
    np.testing.assert_allclose(ours, expected, rtol=0, atol=1e-4 * np.abs(expected).max())
    np.testing.assert_array_equal(MFCCExtractor(length, backend='librosa')(path), expected.astype(np.float32))


def test_frames_follow_release_lengths():
    for length, frames in [(88000, 172), (96000, 188), (310000, 606), (110000, 215), (130000, 254)]:
        ex = MFCCExtractor(length)
        assert ex.frames == frames
        assert ex(np.zeros(1000, np.float32) + 0.01).shape == (39, frames)



def test_each_corpus_defaults_to_its_releases_input_length():
    from tim_zoo.data import release_signal_length
    # the authors' releases (MODELS.md): CASIA 88000 samples, EMODB 96000, IEMOCAP 310000; no release: 96000
    assert [release_signal_length(c) for c in ('emodb', 'CASIA', 'iemocap', 'folders')] == [96000, 88000, 310000,
                                                                                             96000]
    assert release_signal_length('manifest', default=44100) == 44100


def test_corpus_extractor_is_what_extract_and_train_use():
    from tim_zoo.data import corpus_extractor
    assert MFCCExtractor().level == 'none'                     # the class alone: the TIM-Net authors' features
    ex = corpus_extractor('CASIA')
    assert (ex.level, ex.mean_signal_length, ex.n_mfcc, ex.order) == ('peak', 88000, 39, 1)
    ex = corpus_extractor('folders', 44100, n_mfcc=30, order=3, level='none')
    assert (ex.level, ex.mean_signal_length, ex.n_mfcc, ex.order) == ('none', 44100, 30, 3)
    with pytest.raises(ConfigurationError, match='level'):
        corpus_extractor('emodb', level='loud')


def test_waveform_input_rate_and_channels(tmp_path):
    path = _write_wav(tmp_path / 's.wav', sr=16000, channels=2)
    ex = MFCCExtractor(48000)
    from_file = ex(path)
    data, sr = sf.read(str(path), always_2d=True)
    from_wave = ex(data.T.astype(np.float32), sample_rate=sr)                   # [channels, N] at 16 kHz
    np.testing.assert_allclose(from_wave, from_file, atol=1e-3, rtol=1e-4)
    assert ex(np.zeros((2, 100)), sample_rate=22050).shape == (39, 94)
    with pytest.raises(AudioError, match=r'expected a waveform \[N\] or \[channels, N\] with samples, got shape \(2, 2, 5\)'):
        ex(np.zeros((2, 2, 5), np.float32))


def test_order_three_is_static_plus_deltas(tmp_path):
    path = _write_wav(tmp_path / 'a.wav')
    ex = MFCCExtractor(22050, order=3)
    feats = ex(path)
    assert feats.shape == (39, 44)
    static = MFCCExtractor(22050, n_mfcc=13)(path)
    np.testing.assert_array_equal(feats[:13], static)
    np.testing.assert_allclose(feats[13:26], librosa.feature.delta(static), rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(feats[26:], librosa.feature.delta(static, order=2), rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(feats[26:], librosa.feature.delta(static, order=2), rtol=1e-5, atol=1e-5)


def test_bad_audio_files(tmp_path):
    ex = MFCCExtractor()
    with pytest.raises(AudioError, match='no audio file at'):
        ex(tmp_path / 'missing.wav')
    (tmp_path / 'text.wav').write_text('not audio')
    with pytest.raises(AudioError, match='cannot read .*text.wav as audio'):
        ex(tmp_path / 'text.wav')
    sf.write(str(tmp_path / 'empty.wav'), np.zeros(0, np.float32), 22050)
    with pytest.raises(AudioError, match='holds no samples'):
        ex(tmp_path / 'empty.wav')
    silent = _write_wav(tmp_path / 'silent.wav', seconds=0.5)
    sf.write(str(silent), np.zeros(11025, np.float32), 22050)
    assert np.isfinite(ex(silent)).all()
    short = _write_wav(tmp_path / 'short.wav', seconds=0.01)
    assert ex(short).shape == (39, 188)


# --- corpora -------------------------------------------------------------------------------------------

def _touch(root, rel):
    p = root / rel
    p.parent.mkdir(parents=True, exist_ok=True)
    p.write_bytes(b'')
    return p


def test_emodb_reader_order_and_fields(tmp_path):
    for name in ['03a01Wa', '16b10Td', '03a10Wb', '03a02Wc', '08a01Na', '11b03Lc', 'readme']:
        _touch(tmp_path / 'wav', f'{name}.wav')
    c = load_corpus('emodb', tmp_path)
    assert [p.split('/')[-1] for p in c.paths] == ['03a01Wa.wav', '03a02Wc.wav', '03a10Wb.wav', '11b03Lc.wav',
                                                   '08a01Na.wav', '16b10Td.wav']
    assert c.label_names == ['angry', 'boredom', 'disgust', 'fear', 'happy', 'neutral', 'sad']
    assert c.labels.tolist() == [0, 0, 0, 1, 5, 6] and c.speakers == ['03', '03', '03', '11', '08', '16']


def test_natural_key_orders_numbers_by_value():
    assert sorted(['a10', 'a2', 'b1', 'a1'], key=natural_key) == ['a1', 'a2', 'a10', 'b1']


def test_casia_reader(tmp_path):
    for spk in ('wangzhe', 'liuchanhg'):
        for emo in ('surprise', 'angry'):
            for n in (210, 21):
                _touch(tmp_path, f'{spk}/{emo}/{n}.wav')
    c = load_corpus('casia', tmp_path)
    assert c.counts() == dict(angry=4, fear=0, happy=0, neutral=0, sad=0, surprise=4)
    assert [p.split(str(tmp_path) + '/')[1] for p in c.paths[:4]] == [
        'liuchanhg/angry/21.wav', 'liuchanhg/angry/210.wav', 'wangzhe/angry/21.wav', 'wangzhe/angry/210.wav']
    assert c[0].speaker == 'liuchanhg'


def test_ravdess_reader_skips_song(tmp_path):
    _touch(tmp_path, 'Actor_01/03-01-05-01-01-01-01.wav')      # speech, angry
    _touch(tmp_path, 'Actor_02/03-01-02-02-01-02-02.wav')      # speech, calm
    _touch(tmp_path, 'Actor_01/03-02-05-01-01-01-01.wav')      # song: skipped
    _touch(tmp_path, 'Actor_12/03-01-08-01-02-01-12.wav')      # surprised
    c = load_corpus('ravdess', tmp_path)
    assert [it.label_name for it in c] == ['angry', 'calm', 'surprise']
    assert c.speakers == ['01', '02', '12'] and len(c.label_names) == 8


def test_savee_reader_both_layouts(tmp_path):
    _touch(tmp_path, 'AudioData/DC/sa01.wav')
    _touch(tmp_path, 'AudioData/JE/su10.wav')
    _touch(tmp_path, 'AudioData/JE/a2.wav')
    _touch(tmp_path, 'flat/KL_h03.wav')
    c = load_corpus('savee', tmp_path)
    assert [(it.label_name, it.speaker) for it in c] == [('angry', 'JE'), ('happy', 'KL'), ('sad', 'DC'), ('surprise', 'JE')]


def test_emovo_reader(tmp_path):
    _touch(tmp_path, 'f1/rab-f1-b1.wav')
    _touch(tmp_path, 'm3/gio-m3-n5.wav')
    _touch(tmp_path, 'm3/xxx-m3-n5.wav')
    c = load_corpus('emovo', tmp_path)
    assert [(it.label_name, it.speaker) for it in c] == [('angry', 'f1'), ('happy', 'm3')]


def test_iemocap_reader_with_label_files(tmp_path):
    evals = tmp_path / 'Session1' / 'dialog' / 'EmoEvaluation' / 'Ses01F_impro01.txt'
    evals.parent.mkdir(parents=True)
    evals.write_text(
        '% header\n'
        '[6.2901 - 8.2357]\tSes01F_impro01_F000\tneu\t[2.5000, 2.5000, 2.5000]\n'
        'C-E1:\tNeutral;\t()\n'
        '[10.0100 - 11.3925]\tSes01F_impro01_M001\texc\t[3.0, 3.0, 3.0]\n'
        '[12.0 - 13.0]\tSes01F_impro01_F002\tfru\t[2.0, 3.5, 3.0]\n'
        '[14.0 - 15.0]\tSes01F_impro01_M003\tang\t[2.0, 3.5, 3.0]\n'
        '[16.0 - 17.0]\tSes01F_impro01_M004\tsad\t[2.0, 3.5, 3.0]\n')
    for utt in ('F000', 'M001', 'F002', 'M003'):
        _touch(tmp_path, f'Session1/sentences/wav/Ses01F_impro01/Ses01F_impro01_{utt}.wav')
    with pytest.warns(UserWarning, match='1 labelled utterances have no wav'):
        c = load_corpus('iemocap', tmp_path)
    assert [(it.label_name, it.speaker) for it in c] == [('angry', 'Ses01M'), ('happy', 'Ses01M'), ('neutral', 'Ses01F')]
    with warnings.catch_warnings():
        warnings.simplefilter('ignore')
        strict = load_corpus('iemocap', tmp_path, merge_excited=False)
    assert [it.label_name for it in strict] == ['angry', 'neutral']


def test_folder_per_class_reader_and_errors(tmp_path):
    _touch(tmp_path, 'sad/x/2.wav')
    _touch(tmp_path, 'happy/10.wav')
    _touch(tmp_path, 'happy/9.wav')
    with pytest.warns(UserWarning, match='2 of 3 files lie directly in a class folder and have no speaker'):
        c = load_corpus('folders', tmp_path)          # a mixed layout: some files with, some without a speaker
    assert c.speakers == ['', '', 'x']
    assert c.label_names == ['happy', 'sad'] and [p.split('/')[-1] for p in c.paths] == ['9.wav', '10.wav', '2.wav']
    with pytest.warns(UserWarning, match='have no speaker'):
        assert load_corpus('folders', tmp_path, label_names=['sad', 'happy']).labels.tolist() == [0, 1, 1]
    (tmp_path / 'labels.csv').write_text('path,label\n')
    with pytest.raises(DatasetError, match='labels.csv is not a folder'):
        load_corpus('folders', tmp_path / 'labels.csv')
    with pytest.raises(DatasetError, match='is a .npy array, not a tim_zoo feature file'):
        np.save(tmp_path / 'x.npy', np.zeros(3))
        FeatureSet.load(tmp_path / 'x.npy')
    with pytest.raises(DatasetError, match='not a tim_zoo feature file .not an .npz archive.; make one with tim-zoo'):
        FeatureSet.load(tmp_path / 'labels.csv')
    with pytest.raises(DatasetError, match='it holds pickled objects, which tim_zoo does not load'):
        np.savez(tmp_path / 'obj.npz', x=np.array([{'x': 1}], dtype=object))
        FeatureSet.load(tmp_path / 'obj.npz')
    (tmp_path / 'cut.npz').write_bytes((tmp_path / 'obj.npz').read_bytes()[:40])
    with pytest.raises(DatasetError, match='BadZipFile'):
        FeatureSet.load(tmp_path / 'cut.npz')
    with pytest.raises(ConfigurationError, match="unknown corpus 'timit'; known: emodb"):
        load_corpus('timit', tmp_path)
    with pytest.raises(ConfigurationError, match=r"unknown corpus 'manifets' \(did you mean manifest\?\)"):
        load_corpus('manifets', tmp_path)
    with pytest.raises(DatasetError, match='no emodb utterances found'):
        load_corpus('emodb', tmp_path)
    with pytest.raises(DatasetError, match='does not exist'):
        load_corpus('casia', tmp_path / 'absent')


def test_folders_leave_out_no_class_and_hidden_files_and_say_so(tmp_path):
    """What a folder tree holds besides classes (an empty folder, a notebook's checkpoints, a stray file at the top)
    is not made a class, a speaker or an utterance without a warning naming it; labels differing only in case are
    two classes, and a warning says so."""
    _touch(tmp_path, 'angry/s1/a.wav')
    _touch(tmp_path, 'angry/.ipynb_checkpoints/a-checkpoint.wav')
    _touch(tmp_path, 'angry/s1/.hidden.wav')
    _touch(tmp_path, 'sad/s2/b.wav')
    _touch(tmp_path, '.ipynb_checkpoints/c.wav')
    _touch(tmp_path, 'top.wav')
    _touch(tmp_path, 'sad/s2/e.flac')
    (tmp_path / 'empty_class').mkdir()
    with pytest.warns(UserWarning) as caught:
        c = load_corpus('folders', tmp_path)
    said = ' '.join(str(w.message) for w in caught)
    assert c.label_names == ['angry', 'sad'] and c.speakers == ['s1', 's2']
    assert [p.split('/')[-1] for p in c.paths] == ['a.wav', 'b.wav']
    for part in ('the hidden folder .ipynb_checkpoints/', 'empty_class/ (no .wav file: no class)',
                 '2 .wav files in hidden folders or with hidden names', '1 .wav files directly in', '(top.wav)',
                 '1 audio files that are not .wav (sad/s2/e.flac): the folders reader takes .wav only'):
        assert part in said, part
    with pytest.raises(DatasetError, match='empty_class holds no .wav file'):
        load_corpus('folders', tmp_path, label_names=['angry', 'empty_class'])
    _touch(tmp_path, 'calm/s4/f.flac')                      # a class in another format: no class, and said why
    with pytest.warns(UserWarning, match=r'calm/ \(no .wav file: no class; 1 audio files of other formats, such as '
                                         r'f.flac: the folders reader takes .wav only, convert them\)'):
        load_corpus('folders', tmp_path)
    (tmp_path / 'calm' / 's4' / 'f.flac').unlink()
    _touch(tmp_path, 'Angry/s3/d.wav')
    with pytest.warns(UserWarning) as caught:
        assert load_corpus('folders', tmp_path).label_names == ['Angry', 'angry', 'sad']
    assert "the labels 'Angry' and 'angry' differ only in case" in ' '.join(str(w.message) for w in caught)


def test_manifest_rows_repeating_a_file_are_left_out_or_refused(tmp_path):
    for name in ('a', 'b', 'c'):
        _touch(tmp_path, f'{name}.wav')
    manifest = tmp_path / 'labels.csv'
    manifest.write_text('path,label,speaker\na.wav,happy,s1\nb.wav,Happy,s1\n./a.wav,happy,s1\nc.wav,sad,s2\n')
    with pytest.warns(UserWarning) as caught:
        c = load_corpus('manifest', manifest)
    said = ' '.join(str(w.message) for w in caught)
    assert 'left out 1 rows that repeat an earlier row (the same file, label and speaker): line 4 (= line 2)' in said
    assert "the labels 'Happy' and 'happy' differ only in case" in said
    assert len(c) == 3 and c.label_names == ['Happy', 'happy', 'sad']
    manifest.write_text('path,label,speaker\na.wav,happy,s1\n\nb.wav,sad,\nc.wav,sad,s2\n')   # a blank line too
    with pytest.warns(UserWarning, match=r'1 of 3 rows name no speaker \(line 4\); leave-one-speaker-out'):
        assert load_corpus('manifest', manifest).speakers == ['s1', '', 's2']
    manifest.write_text('path,label\na.wav,happy\nb.wav,sad\na.wav,sad\n')
    with pytest.raises(DatasetError, match=r"line 4 names a.wav again, as line 2 does, with another label or speaker "
                                           r"\('sad', '' against 'happy', ''\)"):
        load_corpus('manifest', manifest)


def test_extraction_names_recordings_without_speech(tmp_path, speech_like, monkeypatch):
    rng = np.random.default_rng(0)
    sr = 22050
    for name, wave in [('talk/voice.wav', speech_like(1.0)), ('talk/silence.wav', np.zeros(sr, np.float32)),
                       ('quiet/noise.wav', 0.1 * rng.standard_normal(sr).astype(np.float32))]:
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        sf.write(str(tmp_path / name), wave, sr)
    corpus = load_corpus('folders', tmp_path)
    with pytest.warns(UserWarning, match='finds no speech') as caught:
        features = extract_features(corpus, MFCCExtractor(mean_signal_length=sr), show_progress=False)
    said = ' '.join(str(w.message) for w in caught)
    assert '2 of 3 recordings' in said and 'silence.wav' in said and 'noise.wav' in said and 'voice.wav' not in said
    assert len(features.x) == 3                           # extracted all the same: the warning says it, nothing drops
    import tim_zoo.data.feature_set as feature_set
    monkeypatch.setattr(feature_set, 'EXTRACT_SAMPLES', sr)       # long recordings: one at a time, the same features
    with pytest.warns(UserWarning, match='2 of 3 recordings'):
        one_by_one = extract_features(corpus, MFCCExtractor(mean_signal_length=sr), show_progress=False)
    np.testing.assert_array_equal(one_by_one.x, features.x)


def test_shared_emodb_corpus(shared_dir):
    c = load_corpus('emodb', shared_dir / 'data' / 'emodb')
    assert len(c) == 535 and len(set(c.speakers)) == 10
    assert c.counts() == dict(angry=127, boredom=81, disgust=46, fear=69, happy=71, neutral=79, sad=62)


# --- feature files --------------------------------------------------------------------------------------

def _small_corpus(tmp_path):
    for i, cls in enumerate(['calm', 'calm', 'loud']):
        _write_wav(tmp_path / 'corpus' / cls / f'{i}.wav', seconds=0.3, freq=200 + 100 * i, seed=i)
    return load_corpus('folders', tmp_path / 'corpus')


def test_feature_set_round_trips_and_cache(tmp_path, monkeypatch):
    corpus = _small_corpus(tmp_path)
    ex = MFCCExtractor(8192)
    feats = extract_features(corpus, ex, show_progress=False)
    assert feats.x.shape == (3, 39, 17) and feats.y.tolist() == [0, 0, 1]
    assert repr(feats) == 'FeatureSet(3 utterances, x [3, 39, 17] float32, 2 classes [calm, loud], corpus folders)'
    feats.save(tmp_path / 'f.npz')
    back = FeatureSet.load(tmp_path / 'f.npz')
    assert np.array_equal(back.x, feats.x) and back.label_names == feats.label_names and back.settings == feats.settings
    calls = []
    original = MFCCExtractor.signal
    monkeypatch.setattr(MFCCExtractor, 'signal', lambda self, *a, **k: calls.append(1) or original(self, *a, **k))
    cached_features(corpus, ex, tmp_path / 'f.npz', show_progress=False)
    assert calls == []
    cached_features(corpus, MFCCExtractor(4096), tmp_path / 'f.npz', show_progress=False)   # settings changed
    assert len(calls) == 3


def test_timnet_npy_format_needs_explicit_pickle_consent(tmp_path):
    feats = FeatureSet(x=np.random.rand(4, 39, 10).astype(np.float32), y=np.array([0, 2, 1, 2]), label_names=['a', 'b', 'c'])
    path = save_timnet_npy(feats, tmp_path / 'x.npy')
    raw = np.load(path, allow_pickle=True).item()
    assert raw['x'].shape == (4, 10, 39) and raw['y'].tolist()[1] == [0, 0, 1]
    with pytest.raises(UnsafeFileError, match='allow_pickle=True'):
        load_timnet_npy(path)
    back = load_timnet_npy(path, label_names=['a', 'b', 'c'], allow_pickle=True)
    assert np.array_equal(back.x, feats.x) and back.y.tolist() == [0, 2, 1, 2]


# --- GMM frame selection ---------------------------------------------------------------------------------

def test_gmm_frame_selection_is_deterministic_subset_in_time_order():
    pytest.importorskip('sklearn')
    rng = np.random.default_rng(0)
    frames = rng.standard_normal((6, 60)).astype(np.float32)
    sel = gmm_frame_selection(frames, n_select=10, n_fits=3, seed=1)
    assert sel.shape == (6, 10)
    idx = [int(np.where((frames.T == col).all(axis=1))[0][0]) for col in sel.T]
    assert idx == sorted(idx) and len(set(idx)) == 10
    np.testing.assert_array_equal(sel, GMMFrameSelection(10, 3, 1)(frames))


def test_gmm_frame_selection_short_and_repetitive_utterances():
    pytest.importorskip('sklearn')
    short = np.arange(12, dtype=np.float32).reshape(2, 6)
    out = gmm_frame_selection(short, n_select=8)
    np.testing.assert_array_equal(out[:, :6], short)
    assert (out[:, 6:] == 0).all()
    repetitive = np.tile(np.array([[1.0], [2.0]], np.float32), (1, 30))
    np.testing.assert_array_equal(gmm_frame_selection(repetitive, n_select=5), repetitive[:, :5])
    # a short recording centred in padding: its first frames are the speech, not the padding before it
    speech = np.arange(1, 21, dtype=np.float32).reshape(2, 10)
    pad = np.full((2, 6), -50.0, np.float32)                  # the frames of zero padding, all alike
    padded = np.concatenate([pad, speech, pad], axis=1)
    out = gmm_frame_selection(padded, n_select=14)
    np.testing.assert_array_equal(out[:, :10], speech)
    np.testing.assert_array_equal(out[:, 10:], pad[:, :4])    # then the trailing padding, as the recording goes on
    lone = np.concatenate([pad[:, :1], speech], axis=1)      # one first frame alike: a frame, not padding
    np.testing.assert_array_equal(gmm_frame_selection(lone, n_select=14)[:, :11], lone)
