"""The prediction pipeline: from recordings (any level, silence, long audio, many files) to answers."""
import csv
import json
from pathlib import Path

import numpy as np
import pytest
import torch

sf = pytest.importorskip('soundfile')

import tim_zoo  # noqa: E402
from tim_zoo import cli  # noqa: E402
from tim_zoo.data import MFCCExtractor  # noqa: E402
from tim_zoo.layers.mfcc import mfcc  # noqa: E402
from tim_zoo.data.speech import SpeechDetector  # noqa: E402
from tim_zoo.exceptions import AudioError, ConfigurationError  # noqa: E402
from tim_zoo.inference import EmotionRecognizer, expand_inputs, to_csv  # noqa: E402

SR = 22050
EMOTIONS = ['angry', 'boredom', 'disgust', 'fear', 'happy', 'neutral', 'sad']
LETTERS = dict(W='angry', L='boredom', E='disgust', A='fear', F='happy', T='sad', N='neutral')


@pytest.fixture(scope='module')
def bundled():
    return EmotionRecognizer.from_pretrained()


def _small_recognizer(**kwargs):
    """A small random ``tim`` with 1.5 s windows, standing in for a trained one: fast, and its outputs are
    deterministic."""
    from conftest import as_trained
    torch.manual_seed(0)
    model = as_trained(tim_zoo.create_model('tim', num_classes=3, depth=2))
    model.label_names = ['a', 'b', 'c']
    return EmotionRecognizer(model, feature_settings=dict(mean_signal_length=32768, level='peak'), **kwargs)


def _emodb(shared_dir, name):
    return shared_dir / 'data' / 'emodb' / 'wav' / f'{name}.wav'


# --- MFCC and speech detection ------------------------------------------------------------------------

def test_batched_mfcc_does_not_depend_on_the_other_rows(speech_like):
    """Each row's 80 dB floor is its own, and the frames skipped for all-zero padding are exactly zero power."""
    rows = np.zeros((3, 32768), np.float32)
    rows[0, 10000:20000] = speech_like(10000 / SR)[:10000]
    rows[1] = speech_like(32768 / SR, f0=200, seed=1)[:32768] * 0.01
    rows[2, :500] = speech_like(0.1, seed=2)[:500]
    together = mfcc(torch.from_numpy(rows), SR).numpy()
    for i, row in enumerate(rows):
        alone = mfcc(torch.from_numpy(row), SR).numpy()
        np.testing.assert_allclose(together[i], alone, rtol=0, atol=1e-4 * np.abs(alone).max())
    assert mfcc(torch.zeros(2, 4096), SR).shape == (2, 39, 9)


def test_speech_detector_finds_voiced_speech_and_rejects_silence_noise_and_steady_sounds(speech_like):
    detector = SpeechDetector()
    rng = np.random.default_rng(0)
    n = 3 * SR
    t = np.arange(n) / SR
    brown = np.cumsum(rng.standard_normal(n))
    rejected = dict(
        silence=np.zeros(n), dither=1e-4 * rng.standard_normal(n), white_noise=0.1 * rng.standard_normal(n),
        brown_noise=0.5 * brown / np.abs(brown).max(), hum=0.3 * np.sin(2 * np.pi * 100 * t),
        hum_with_harmonic=0.3 * np.sin(2 * np.pi * 120 * t) + 0.1 * np.sin(2 * np.pi * 240 * t))
    for name, signal in rejected.items():
        assert detector(signal.astype(np.float32)).voiced_seconds() == 0, name
    voice = speech_like(2.0)
    for gain in (1.0, 0.1, 0.01):
        assert detector(gain * voice).voiced_seconds() > 1.0, gain
    with_pause = np.concatenate([voice, np.zeros(2 * SR, np.float32), voice])
    activity = detector(with_pause)
    assert activity.voiced_seconds(2.3, 3.7) == 0 and activity.voiced_seconds(0, 2) > 1.0
    regions = activity.speech_regions()
    assert regions[0][0] < 0.3 and regions[-1][1] > 5.7
    assert all(not (2.4 < (a + b) / 2 < 3.6) for a, b in regions)


# --- the recognizer --------------------------------------------------------------------------------------

def test_silence_and_noise_get_no_emotion_and_a_note(bundled):
    rng = np.random.default_rng(1)
    for name, signal in [('digital silence', np.zeros(2 * SR)), ('loudest frame', 0.05 * rng.standard_normal(2 * SR))]:
        result = bundled.predict(signal.astype(np.float32), sample_rate=SR)
        assert result.prediction is None and result.probabilities is None and result.score is None
        assert result.segments[0].prediction is None and result.error is None
        assert len(result.notes) == 1 and result.notes[0].startswith('no prediction: no speech to judge') \
            and name in result.notes[0]
        assert result.to_dict()['prediction'] is None


def test_short_input_is_centre_padded_as_in_training(tmp_path, speech_like):
    rec = _small_recognizer()
    path = tmp_path / 'v.wav'
    sf.write(str(path), speech_like(1.0), SR)
    result = rec.predict(path)
    signal = sf.read(str(path), dtype='float32')[0]
    features = MFCCExtractor(32768, level='peak')(signal - signal.mean(), SR)    # the pipeline removes the DC offset
    with torch.no_grad():
        expected = rec.model(torch.from_numpy(features)[None]).softmax(-1)[0].numpy()
    np.testing.assert_allclose(list(result.probabilities.values()), expected, atol=1e-6)
    assert [(s.start, s.end) for s in result.segments] == [(0.0, 1.0)] and result.notes == []
    assert result.duration == 1.0 and result.label == result.prediction == ['a', 'b', 'c'][int(expected.argmax())]


def test_long_recording_is_cut_into_windows_and_aggregated_over_voiced_ones(speech_like):
    rec = _small_recognizer()
    window = 32768 / SR
    voice = speech_like(1.2)
    signal = np.concatenate([voice, np.zeros(5 * SR, np.float32), 0.5 * speech_like(1.2, f0=220, seed=4),
                             np.zeros(SR // 3, np.float32)])
    result = rec.predict(signal, sample_rate=SR)
    duration = len(signal) / SR
    starts = [s.start for s in result.segments]
    ends = [s.end for s in result.segments]
    assert starts[0] == 0 and ends[-1] == pytest.approx(duration, abs=1e-3)         # nothing dropped
    np.testing.assert_allclose(np.diff(starts[:-1]), window / 2, atol=1e-3)          # hop: half a window
    assert all(e - s == pytest.approx(window, abs=1e-3) for s, e in zip(starts, ends))
    skipped = [s for s in result.segments if s.prediction is None]
    judged = [s for s in result.segments if s.prediction is not None]
    assert skipped and judged and all(s.voiced < 0.25 for s in skipped) and all(s.voiced >= 0.25 for s in judged)
    # each window's probabilities are what the window alone gives (level-normalised, no centre padding needed)
    first = judged[0]
    alone = rec.predict(signal[int(round(first.start * SR)):int(round(first.start * SR)) + 32768], sample_rate=SR)
    np.testing.assert_allclose(list(first.probabilities.values()), list(alone.probabilities.values()), atol=1e-5)
    # the answer: mean of the judged windows weighted by their voiced seconds (which segments report rounded to the
    # millisecond, hence the tolerance: the windows' probabilities differ by up to about 0.5)
    weights = np.array([s.voiced for s in judged])
    mean = (np.array([list(s.probabilities.values()) for s in judged]) * weights[:, None]).sum(0) / weights.sum()
    np.testing.assert_allclose(list(result.probabilities.values()), mean, atol=5e-4)
    assert result.prediction == ['a', 'b', 'c'][int(mean.argmax())]
    assert len(result.notes) == 1 and f'cut into {len(starts)} windows' in result.notes[0] \
        and f'{len(skipped)} without enough speech skipped' in result.notes[0]
    assert rec.predict(np.zeros(4 * SR, np.float32), sample_rate=SR).notes[-1].startswith('no prediction')


def test_hop_and_min_speech_are_honoured(speech_like):
    signal = np.concatenate([speech_like(1.0)] * 4)
    result = _small_recognizer(hop_seconds=0.5).predict(signal, sample_rate=SR)
    assert [s.start for s in result.segments[:3]] == [0.0, 0.5, 1.0]
    strict = _small_recognizer(min_speech=1.4).predict(signal, sample_rate=SR)
    assert strict.prediction is None and '1.40 s needed' in strict.notes[-1]
    with pytest.raises(ConfigurationError, match='hop_seconds'):
        _small_recognizer(hop_seconds=0)


def test_many_inputs_give_the_answers_of_one_at_a_time(tmp_path, speech_like):
    rec = _small_recognizer()
    paths = []
    for i, seconds in enumerate([0.8, 1.4, 3.5, 0.6, 5.0]):
        paths.append(tmp_path / f'{i}.wav')
        sf.write(str(paths[-1]), speech_like(seconds, f0=100 + 30 * i, seed=i, gain=0.05 * (i + 1)), SR)
    together = rec.predict_many(paths, batch_size=3)
    for path, result in zip(paths, together):
        alone = rec.predict(path)
        assert result.file == str(path) and len(result.segments) == len(alone.segments)
        np.testing.assert_allclose(list(result.probabilities.values()), list(alone.probabilities.values()), atol=1e-5)


def test_waveform_input_at_another_rate_equals_the_file(tmp_path, speech_like):
    rec = _small_recognizer()
    voice16 = speech_like(1.2, sr=16000)
    path = tmp_path / 'v16.wav'
    sf.write(str(path), voice16, 16000, subtype='FLOAT')
    from_file = rec.predict(path)
    from_wave = rec.predict(torch.from_numpy(np.stack([voice16, voice16])), sample_rate=16000)   # stereo tensor
    np.testing.assert_allclose(list(from_wave.probabilities.values()), list(from_file.probabilities.values()), atol=1e-5)
    assert from_wave.file is None
    with pytest.raises(AudioError, match='NaN or Inf'):
        rec.predict(np.full(1000, np.nan, np.float32), sample_rate=SR)
    with pytest.raises(AudioError, match='no audio file at'):
        rec.predict(tmp_path / 'missing.wav')


def test_quiet_input_to_a_level_dependent_model_gets_a_note(speech_like):
    from conftest import as_trained
    torch.manual_seed(0)
    model = as_trained(tim_zoo.create_model('tim', num_classes=2, depth=2))
    rec = EmotionRecognizer(model, feature_settings=dict(mean_signal_length=32768, level='none'))
    assert rec.predict(speech_like(1.0, gain=0.5), sample_rate=SR).notes == []
    quiet = rec.predict(speech_like(1.0, gain=0.01), sample_rate=SR)
    assert quiet.prediction is not None and 'peaks at -40.0 dBFS' in quiet.notes[0] and 'level="none"' in quiet.notes[0]
    clipped = rec.predict(np.clip(speech_like(1.0, gain=1.0) * 4, -1, 1), sample_rate=SR)
    assert any('clipped' in n for n in clipped.notes)


def test_recognizer_needs_feature_settings_and_matching_channels():
    with pytest.raises(ConfigurationError, match='records no feature settings.*feature_settings=dict'):
        EmotionRecognizer(tim_zoo.create_model('timnet', num_classes=2))
    with pytest.raises(ConfigurationError, match='takes 39 channels but the feature settings give n_mfcc=13'):
        EmotionRecognizer(tim_zoo.create_model('timnet', num_classes=2), feature_settings=dict(n_mfcc=13))
    with pytest.raises(ConfigurationError, match='level must be one of'):
        EmotionRecognizer(tim_zoo.create_model('timnet', num_classes=2), feature_settings=dict(level='rms'))
    # a head of fixed size takes one length: another window is refused before any recording is read
    fixed = tim_zoo.create_model('at_tim', num_classes=2, seq_len=87)
    with pytest.raises(ConfigurationError, match=r'at_tim takes exactly 87 frames .* mean_signal_length=96000 '
                                                 r'\(--mean-signal-length\) gives 188'):
        EmotionRecognizer(fixed, feature_settings=dict(mean_signal_length=96000))
    assert EmotionRecognizer(fixed, feature_settings=dict(mean_signal_length=44100)).window == 44100
    if not torch.cuda.is_available():
        with pytest.raises(ConfigurationError, match='CUDA is not available on this machine'):
            _small_recognizer(device='cuda')


def test_recognizer_from_a_checkpoint_keeps_its_settings(tmp_path, speech_like):
    rec = _small_recognizer()
    tim_zoo.save_checkpoint(rec.model, tmp_path / 'm.safetensors', feature_settings=rec.feature_settings)
    again = EmotionRecognizer.from_checkpoint(tmp_path / 'm.safetensors')
    assert again.feature_settings == rec.feature_settings and again.label_names == ['a', 'b', 'c']
    voice = speech_like(1.0)
    assert again.predict(voice, sample_rate=SR).probabilities == rec.predict(voice, sample_rate=SR).probabilities
    assert EmotionRecognizer.from_pretrained(str(tmp_path / 'm.safetensors')).label_names == ['a', 'b', 'c']


def test_speaker_normalised_models_normalise_the_inputs_together(tmp_path, speech_like):
    from tim_zoo.data import normalize_by_speaker

    torch.manual_seed(0)
    model = tim_zoo.create_model('tim', num_classes=2, depth=2)
    settings = dict(mean_signal_length=32768, level='peak', normalize='speaker_mean')
    rec = EmotionRecognizer(model, feature_settings=settings)
    voices = [speech_like(1.0, f0=100 + 50 * i, seed=i) for i in range(3)]
    with pytest.raises(ConfigurationError, match='same_speaker=True'):
        rec.predict_many(voices, sample_rate=SR)
    got = rec.predict_many(voices, same_speaker=True, sample_rate=SR)
    x = normalize_by_speaker(np.stack([MFCCExtractor(32768, level='peak')(v - v.mean(), SR) for v in voices]),
                             ['s'] * 3)
    with torch.no_grad():
        expected = model(torch.from_numpy(x)).softmax(-1).numpy()
    np.testing.assert_allclose([list(r.probabilities.values()) for r in got], expected, atol=1e-5)


def test_inputs_from_folders_globs_and_failures(tmp_path, speech_like):
    (tmp_path / 'calls' / 'day2').mkdir(parents=True)
    for name in ['calls/b10.wav', 'calls/b2.wav', 'calls/day2/c.flac']:
        sf.write(str(tmp_path / name), speech_like(0.7), SR)
    (tmp_path / 'calls' / 'notes.txt').write_text('not audio')
    (tmp_path / 'broken.wav').write_text('not audio either')
    (tmp_path / 'empty').mkdir()
    expanded = expand_inputs([tmp_path / 'calls', str(tmp_path / 'calls' / '*.wav'), tmp_path / 'empty',
                              str(tmp_path / 'none*.wav')])
    skipped = expanded.pop(2)                       # the folder's subfolder audio is left out, and the output says so
    assert skipped.file == str(tmp_path / 'calls') and skipped.error is None and skipped.prediction is None
    assert 'subfolders' in skipped.notes[0] and 'c.flac' in skipped.notes[0] and 'recursive' in skipped.notes[0]
    names = [Path(x).relative_to(tmp_path).as_posix() if isinstance(x, str) else x.error for x in expanded]
    assert names[:4] == ['calls/b2.wav', 'calls/b10.wav', 'calls/b2.wav', 'calls/b10.wav']     # natural order
    assert names[4] == f'no audio files in the folder {tmp_path / "empty"}'
    (tmp_path / 'deep' / 'inner').mkdir(parents=True)
    sf.write(str(tmp_path / 'deep' / 'inner' / 'x.wav'), speech_like(0.7), SR)
    only_deeper = expand_inputs([tmp_path / 'deep'])[0].error                # no audio of its own, some below it
    assert only_deeper == (f'no audio files in the folder {tmp_path / "deep"}; its subfolders hold some (such as '
                           f'{tmp_path / "deep" / "inner" / "x.wav"}): --recursive / recursive=True reads them')
    assert names[5] == f'no file matches {tmp_path / "none*.wav"}'
    recursive = expand_inputs([tmp_path / 'calls'], recursive=True)
    assert [Path(p).name for p in recursive] == ['b2.wav', 'b10.wav', 'c.flac']

    rec = _small_recognizer()
    results = rec.predict_many([tmp_path / 'calls', tmp_path / 'missing.wav', tmp_path / 'broken.wav',
                                tmp_path / 'calls'], recursive=True)
    assert [r.error is None for r in results] == [True, True, True, False, False, True, True, True]
    assert results[3].error == f'no audio file at {tmp_path / "missing.wav"}'
    assert results[4].error.startswith(f'cannot read {tmp_path / "broken.wav"} as audio')
    np.testing.assert_allclose(list(results[0].probabilities.values()), list(results[5].probabilities.values()),
                               atol=1e-5)
    flat = rec.predict_many([tmp_path / 'calls'])                     # not recursive: the output says what it left
    assert [r.prediction is not None for r in flat] == [True, True, False] and flat[2].error is None
    assert 'c.flac' in flat[2].notes[0]


# --- the command line -----------------------------------------------------------------------------------

def test_cli_predict_many_files_to_csv_json_segments_and_plots(tmp_path, capsys, speech_like):
    short, long_ = tmp_path / 'short.wav', tmp_path / 'long.wav'
    sf.write(str(short), speech_like(1.0), SR)
    sf.write(str(long_), np.concatenate([speech_like(2.0), np.zeros(6 * SR, np.float32), speech_like(2.0)]), SR)
    args = ['predict', str(short), str(long_), str(tmp_path / 'missing.wav'), '--quiet']
    assert cli.main(args + ['--segments', '--output', str(tmp_path / 'out.csv'), '--plot', str(tmp_path / 'p.png')]) == 1
    captured = capsys.readouterr()
    lines = captured.out.splitlines()
    assert lines[0].split()[:2] == ['file', 'prediction'] and lines[1].startswith(str(short))
    assert lines[2].startswith(str(long_)) and lines[3].strip().startswith('00:00.0-00:04.4')
    assert any(line.strip().startswith('00:02.2-00:06.5') and line.split()[1] == '-' for line in lines)   # silence
    assert f'{long_}: 10.00 s is longer than the model\'s input (4.35 s): cut into 4 windows' in captured.out
    assert f'{tmp_path / "missing.wav"}: error: no audio file at' in captured.out
    assert '1 of 3 inputs failed' in captured.err and 'Traceback' not in captured.err
    for name in ['p-short.png', 'p-long.png']:
        assert (tmp_path / name).read_bytes()[:8] == b'\x89PNG\r\n\x1a\n'
    assert not (tmp_path / 'p-missing.png').exists()

    rows = list(csv.DictReader((tmp_path / 'out.csv').open()))
    assert [r['file'] for r in rows] == [str(short)] + [str(long_)] * 5 + [str(tmp_path / 'missing.wav')]
    assert rows[1]['start'] == '0.000' and rows[1]['end'] == '10.000' and set(EMOTIONS) < set(rows[0])
    assert rows[3]['prediction'] == '' and rows[3]['angry'] == '' and rows[-1]['error'].startswith('no audio file')
    assert rows[1]['notes'].startswith('10.00 s is longer')
    assert [r['kind'] for r in rows] == ['recording', 'recording'] + ['window'] * 4 + ['recording']
    assert [r['status'] for r in rows][:2] + [rows[3]['status'], rows[-1]['status']] == ['ok', 'ok', 'no_speech', 'error']

    assert cli.main(args + ['--json', '--output', str(tmp_path / 'out.json')]) == 1
    printed = json.loads(capsys.readouterr().out)
    assert printed == json.loads((tmp_path / 'out.json').read_text())
    for row in printed:
        assert {'kind', 'file', 'status', 'prediction', 'probabilities', 'segments', 'error', 'notes', 'duration',
                'voiced'} == set(row)
    assert printed[2]['error'] and printed[2]['prediction'] is None and printed[2]['segments'] == []
    assert printed[2]['duration'] is None and printed[2]['voiced'] is None and printed[0]['voiced'] > 0.5
    assert [(s['start'], s['end']) for s in printed[1]['segments']][-1] == (5.646, 10.0)
    assert {'start', 'end', 'prediction', 'probabilities', 'voiced'} == set(printed[1]['segments'][0])

    assert cli.main(['predict', str(short), '--quiet']) == 0


def test_cli_predict_usage_errors_are_one_line(tmp_path, capsys):
    cases = [(['--output', str(tmp_path / 'x.txt')], 'expected a .csv or .json file name'),
             (['--plot', str(tmp_path / 'nowhere' / 'p.png')], 'does not exist'),
             (['--batch-size', '0'], 'batch_size must be >= 1'), (['--device', 'gpu'], "unknown device 'gpu'"),
             (['--hop', '100'], 'at most the window'), (['--min-speech', 'nan'], 'min_speech'),
             (['--output', str(tmp_path / 'nowhere' / 'x.csv')], 'does not exist'),
             (['--same-speaker'], 'would change nothing'), (['--model', 'timnett'], "unknown model 'timnett'; did you mean"),
             (['--keras-weights', str(tmp_path / 'x.hdf5'), '--release', 'EMODB'], 'unknown release'),
             (['--release', 'EMODB_46'], '--release names the release of a Keras weight file')]
    if not torch.cuda.is_available():
        cases.append((['--device', 'cuda'], 'CUDA is not available on this machine'))
    for extra, message in cases:
        assert cli.main(['predict', str(tmp_path / 'x.wav')] + extra) == 2                  # usage error
        err = capsys.readouterr().err
        assert message in err and 'Traceback' not in err, extra


def test_to_csv_without_segments_has_one_row_per_file(speech_like):
    rec = _small_recognizer()
    results = rec.predict_many([speech_like(1.0), np.concatenate([speech_like(1.0)] * 4)], sample_rate=SR)
    rows = list(csv.DictReader(to_csv(results).splitlines()))
    assert len(rows) == 2 and rows[0]['file'] == '' and float(rows[0]['voiced']) > 0.5
    assert [float(r['voiced']) for r in rows] == [r.voiced for r in results] and results[1].voiced > 3 * results[0].voiced


# --- real audio (../shared) -----------------------------------------------------------------------------

def test_bundled_model_gives_the_same_answer_at_any_gain(shared_dir, tmp_path, bundled):
    """The bundled model learned from peak-normalised audio and predicts with level="peak"."""
    signal, rate = sf.read(str(_emodb(shared_dir, '03a01Fa')), dtype='float32')
    files = {}
    for gain in (1.0, 0.3, 0.1, 0.03):
        files[gain] = tmp_path / f'gain{gain}.wav'
        sf.write(str(files[gain]), signal * gain, rate, subtype='PCM_16')     # quantised as a quiet recording is
    results = {gain: bundled.predict(path) for gain, path in files.items()}
    assert {r.prediction for r in results.values()} == {'happy'}
    for gain, r in results.items():              # the file itself (gain 1) is one the model trained on, and says so
        seen = ["this recording is EMODB's 03a01Fa (by its content), "] if gain == 1.0 else []
        assert [n[:52] for n in r.notes] == seen
        np.testing.assert_allclose(list(r.probabilities.values()), list(results[1.0].probabilities.values()), atol=0.02)
    # the same model taking the level as it is (the old behaviour) changes its answer: the test can fail
    as_is = EmotionRecognizer(bundled.model, feature_settings=dict(level='none'))
    answers = {gain: as_is.predict(path) for gain, path in files.items()}
    # EMODB's files peak at full scale, so at gain 1.0 both ways see the same input
    np.testing.assert_allclose(list(answers[1.0].probabilities.values()), list(results[1.0].probabilities.values()),
                               atol=0.02)
    assert answers[1.0].prediction == 'happy' and answers[0.03].prediction != 'happy'
    assert answers[0.1].probabilities['happy'] < results[0.1].probabilities['happy'] - 0.2


def test_emodb_utterances_mixed_into_a_long_recording(shared_dir, bundled):
    """Two utterances of different emotions with silence between: the windows over each utterance give its
    emotion, the windows of silence none."""
    angry, _ = sf.read(str(_emodb(shared_dir, '03a01Wa')), dtype='float32')
    sad, _ = sf.read(str(_emodb(shared_dir, '03a02Ta')), dtype='float32')
    gap = np.zeros(6 * SR, np.float32)
    mix = np.concatenate([gap[:SR], angry, gap, 0.2 * sad, gap[:SR]])                 # the second 14 dB quieter
    result = bundled.predict(mix, sample_rate=SR)
    by_time = {(s.start, s.end): s.prediction for s in result.segments}
    assert by_time[(0.0, 4.354)] == 'angry'
    assert [p for (a, b), p in by_time.items() if a > 3.0 and b < 9.0] == [None]      # 4.35-8.71 s: only silence
    last = result.segments[-1]
    assert last.end == pytest.approx(len(mix) / SR, abs=1e-3) and last.prediction == 'sad'
    assert result.prediction in ('angry', 'sad') and 'cut into' in result.notes[0]


@pytest.mark.slow
def test_every_emodb_file_is_speech_and_the_bundled_model_recognises_it(shared_dir, bundled):
    wavs = sorted((shared_dir / 'data' / 'emodb' / 'wav').glob('*.wav'))
    detector = SpeechDetector()
    from tim_zoo.data import load_audio
    voiced = [detector(load_audio(w)).voiced_seconds() for w in wavs[::5]]
    assert min(voiced) > 0.5                                                          # twice min_speech
    results = bundled.predict_many(wavs)
    assert all(r.prediction is not None for r in results)
    assert all([n for n in r.notes if 'utterances these weights trained on (all of EMODB)' not in n] == [] and
               len(r.notes) == 1 for r in results)                           # it has seen every file, and says so
    correct = np.mean([r.prediction == LETTERS[Path(r.file).stem[5]] for r in results])
    assert correct > 0.95                                                             # it has seen every file


@pytest.mark.slow
def test_recognizer_from_a_keras_release_file(shared_dir, tmp_path, capsys):
    h5py = pytest.importorskip('h5py')
    release = shared_dir / 'weights' / 'timnet_official' / 'EMODB_46'
    rec = EmotionRecognizer.from_keras(release / '10-fold_weights_best_1.hdf5')
    assert rec.feature_settings['level'] == 'none' and rec.label_names == EMOTIONS
    wav = _emodb(shared_dir, '03a01Wa')
    result = rec.predict(wav)
    signal, rate = sf.read(str(wav), dtype='float32')
    # the authors' features (librosa), of the recording without its DC offset, which the pipeline removes
    features = MFCCExtractor(96000, backend='librosa')(signal - signal.mean(), rate)
    with torch.no_grad():
        expected = rec.model(torch.from_numpy(features)[None]).softmax(-1)[0].numpy()
    np.testing.assert_allclose(list(result.probabilities.values()), expected, atol=1e-4)
    # a release file outside its folder: name the release
    (tmp_path / 'w.hdf5').write_bytes((release / '10-fold_weights_best_1.hdf5').read_bytes())
    named = EmotionRecognizer.from_keras(tmp_path / 'w.hdf5', release='EMODB_46')
    assert named.label_names == EMOTIONS and named.predict(wav).probabilities == result.probabilities
    with pytest.raises(ConfigurationError, match='unknown release'):
        EmotionRecognizer.from_keras(tmp_path / 'w.hdf5', release='EMODB')
    assert EmotionRecognizer.from_keras(tmp_path / 'w.hdf5').label_names == EMOTIONS    # a published file's hash
    (tmp_path / 'm.hdf5').write_bytes((release / '10-fold_weights_best_1.hdf5').read_bytes())
    with h5py.File(tmp_path / 'm.hdf5', 'r+') as f:                         # another file: its release unknown
        f.attrs['modified'] = 'yes'
    with pytest.raises(ConfigurationError, match='not inside a release folder .*--release EMODB_46'):
        EmotionRecognizer.from_keras(tmp_path / 'm.hdf5')
    assert cli.main(['predict', str(wav), '--checkpoint', str(tmp_path / 'w.hdf5'), '--release', 'EMODB_46',
                     '--quiet', '--json']) == 0                                 # a Keras file where a checkpoint goes
    assert json.loads(capsys.readouterr().out)[0]['probabilities'] == result.probabilities
    with pytest.raises(ConfigurationError, match='holds num_classes=7, but timnet.casia_32 has num_classes=6'):
        EmotionRecognizer.from_keras(tmp_path / 'w.hdf5', release='CASIA_32')


def test_folder_as_audio_file_and_level_flag_mismatch(tmp_path, capsys, speech_like):
    from tim_zoo.data import load_audio

    with pytest.raises(AudioError, match=f'{tmp_path} is a folder, not an audio file'):
        load_audio(tmp_path)
    corpus = tmp_path / 'corpus'
    for i, cls in enumerate(['a', 'b']):
        (corpus / cls).mkdir(parents=True)
        sf.write(str(corpus / cls / f'{i}.wav'), speech_like(0.5, seed=i), SR)
    assert cli.main(['extract', '--corpus', 'folders', '--data-root', str(corpus), '-o', str(tmp_path / 'f.npz'),
                     '--mean-signal-length', '8192', '--quiet']) == 0
    capsys.readouterr()
    args = ['train', '--features', str(tmp_path / 'f.npz'), '--out', str(tmp_path / 'run'), '--epochs', '1', '--quiet']
    assert cli.main(args + ['--level', 'none']) == 2
    err = capsys.readouterr().err
    assert "(--level none): the features in" in err and "were extracted with level='peak'" in err
    assert not (tmp_path / 'run').exists()


def test_predict_imports_no_librosa_numba_or_training_libraries(tmp_path, speech_like):
    """A cold ``tim-zoo predict`` reads audio and computes MFCC without librosa (no numba compilation)."""
    import subprocess
    import sys

    path = tmp_path / 'v.wav'
    sf.write(str(path), speech_like(1.0), SR)
    code = ('import sys; from tim_zoo.cli import main; code = main(["predict", sys.argv[1], "--quiet", "--json"]); '
            'heavy = ("librosa", "numba", "sklearn", "matplotlib", "h5py", "scipy"); '
            'print("LOADED", sorted(m for m in heavy if m in sys.modules)); sys.exit(code)')
    done = subprocess.run([sys.executable, '-c', code, str(path)], capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip().splitlines()[-1] == 'LOADED []'


@pytest.mark.slow
def test_torch_mfcc_equals_librosa_on_real_emodb_files(shared_dir):
    pytest.importorskip('librosa')
    wavs = sorted((shared_dir / 'data' / 'emodb' / 'wav').glob('*.wav'))[::27]
    for level in ('none', 'peak'):
        ours, theirs = MFCCExtractor(96000, level=level), MFCCExtractor(96000, level=level, backend='librosa')
        signals = [ours.signal(w) for w in wavs]
        batch = ours.batch(signals)
        for wav, row in zip(wavs, batch):
            expected = theirs(wav)
            np.testing.assert_allclose(row, expected, rtol=0, atol=1e-4 * np.abs(expected).max(), err_msg=str(wav))


def test_odd_inputs_are_refused_or_noted_never_guessed(tmp_path, speech_like):
    rec = _small_recognizer()
    voice = speech_like(1.2)
    reference = rec.predict(voice, sample_rate=SR).probabilities
    # soundfile's [N, channels] layout and integer PCM are understood
    stereo = np.stack([voice, voice], axis=1)
    np.testing.assert_allclose(list(rec.predict(stereo, sample_rate=SR).probabilities.values()),
                               list(reference.values()), atol=1e-5)
    pcm = np.round(voice * 32767).astype(np.int16)
    np.testing.assert_allclose(list(rec.predict(pcm, sample_rate=SR).probabilities.values()),
                               list(reference.values()), atol=1e-3)
    with pytest.raises(ConfigurationError, match='a waveform needs its sample rate'):
        rec.predict(voice)
    with pytest.raises(ConfigurationError, match='takes a list of inputs'):
        rec.predict_many(voice, sample_rate=SR)
    with pytest.raises(ConfigurationError, match='is a folder or pattern: use predict_many'):
        rec.predict(tmp_path)
    sf.write(str(tmp_path / 'a.wav'), voice, SR)
    assert [r.file for r in rec.predict_many(str(tmp_path))] == [str(tmp_path / 'a.wav')]    # a path, not its letters
    assert rec.predict_many([''])[0].error == 'an empty path is not an audio file'
    sf.write(str(tmp_path / 'nan.wav'), np.full(4000, np.nan, np.float32), SR, subtype='FLOAT')
    assert rec.predict_many([tmp_path / 'nan.wav'])[0].error == f'{tmp_path / "nan.wav"} holds 4000 NaN or Inf samples'
    # settings that would skip audio or never answer
    for kwargs, message in [(dict(hop_seconds=2.0), 'at most the window'), (dict(hop_seconds=float('nan')), 'hop'),
                            (dict(min_speech=float('nan')), 'min_speech'), (dict(min_speech=2.0), 'min_speech'),
                            (dict(device='gpu'), "unknown device 'gpu'")]:
        with pytest.raises(ConfigurationError, match=message):
            _small_recognizer(**kwargs)
    with pytest.raises(ConfigurationError, match='same_speaker .* would change nothing'):
        rec.predict_many([voice], same_speaker=True, sample_rate=SR)


def test_narrow_band_recordings_get_a_note(tmp_path, speech_like):
    rec = _small_recognizer()
    for rate, noted in [(8000, True), (11025, True), (16000, False), (44100, False)]:
        path = tmp_path / f'{rate}.wav'
        sf.write(str(path), speech_like(1.0, sr=rate), rate)
        notes = rec.predict(path).notes
        assert any(f'recorded at {rate} Hz: nothing above {rate // 2} Hz' in n for n in notes) == noted, rate


def test_a_click_in_a_pause_does_not_set_the_level(shared_dir, bundled):
    """Peak normalisation takes the peak of the speech, so a click in a pause leaves quiet speech as loud as
    in training; a click inside the speech is noted."""
    speech, _ = sf.read(str(_emodb(shared_dir, '03a01Fa')), dtype='float32')
    pause = np.zeros(SR // 2, np.float32)
    quiet = np.concatenate([pause, 0.05 * speech])
    clean = bundled.predict(quiet, sample_rate=SR)
    clicked = quiet.copy()
    clicked[SR // 4] = 0.99                                                  # in the pause
    result = bundled.predict(clicked, sample_rate=SR)
    assert clean.prediction == result.prediction == 'happy' and result.notes == []
    inside = quiet.copy()
    loudest = int(np.argmax(np.abs(quiet)))
    inside[loudest] = 0.99                                                   # among the speech
    noted = bundled.predict(inside, sample_rate=SR)
    assert any('below the loudest sample among it (a click' in n for n in noted.notes)


@pytest.mark.parametrize('name', ['tim', 'at_tim', 'transformer'])     # a bare classifier, and heads with more
def test_a_model_whose_classifier_was_left_untrained_says_so_until_it_is_trained(tmp_path, speech_like, name):
    import warnings

    from conftest import small_model_args
    args = small_model_args(name, 65, **({} if name == 'transformer' else dict(depth=2)))    # 32768 samples: 65 frames
    from conftest import as_trained
    source = as_trained(tim_zoo.create_model(name, **dict(args, num_classes=7)))
    tim_zoo.save_checkpoint(source, tmp_path / 'seven.safetensors', label_names=list('abcdefg'))
    with warnings.catch_warnings():
        warnings.simplefilter('ignore')                        # the load warns about the classifier once
        model = tim_zoo.create_model(name, **dict(args, num_classes=3), checkpoint_path=tmp_path / 'seven.safetensors')
    recognizer = tim_zoo.EmotionRecognizer(model, feature_settings=dict(mean_signal_length=32768, level='peak'))
    wave = speech_like(1.4)
    said = 'the model\'s classifier is untrained: loading'
    assert said in recognizer.model_notes[0] and 'seven.safetensors' in recognizer.model_notes[0]
    assert any(said in note for note in recognizer.predict(wave, sample_rate=SR).notes)
    with torch.no_grad():                                      # any training of the head ends the note
        model.head.fc.bias.add_(0.1)
    assert not any(said in note for note in recognizer.predict(wave, sample_rate=SR).notes)
    whole = tim_zoo.create_model(name, **dict(args, num_classes=7), checkpoint_path=tmp_path / 'seven.safetensors')
    assert tim_zoo.EmotionRecognizer(whole, feature_settings=dict(mean_signal_length=32768)).model_notes == []


def test_a_new_classifier_or_a_model_built_without_weights_says_so_saved_and_loaded_again(tmp_path, speech_like):
    """reset_classifier, a model built fresh, and a checkpoint saved from either: every answer says its classifier is
    untrained until the head changes (before, reset_classifier kept the tag's figures and a saved head lost the note)."""
    from conftest import small_model_args
    args = small_model_args('tim', 65, depth=2)
    settings = dict(mean_signal_length=32768, level='peak')
    wave = speech_like(1.4)
    built = tim_zoo.create_model('tim', **args)
    fresh = 'the model was built without weights (no pretrained=True, checkpoint or training)'
    assert EmotionRecognizer(built, feature_settings=settings).model_notes == [
        f"the model's classifier is untrained: {fresh}, so these probabilities mean nothing until it is trained"]
    import copy

    from tim_zoo.weights.fresh_head import untrained_head_reason
    assert untrained_head_reason(copy.deepcopy(built).to(torch.bfloat16)) == fresh     # another dtype: still untrained
    tim_zoo.save_checkpoint(built, tmp_path / 'built.safetensors')
    again = EmotionRecognizer.from_checkpoint(tmp_path / 'built.safetensors', feature_settings=settings)
    assert any(fresh in n for n in again.predict(wave, sample_rate=SR).notes)
    tagged = tim_zoo.create_model('tim', pretrained=True)
    assert 'untrained' not in ' '.join(EmotionRecognizer(tagged).model_notes)
    tagged.reset_classifier(4)
    reset = EmotionRecognizer(tagged, feature_settings=settings)
    assert reset.model_notes == ["the model's classifier is untrained: reset_classifier() gave it a new classifier, so "
                                 "these probabilities mean nothing until it is trained"]      # not the tag's figures
    tim_zoo.save_checkpoint(tagged, tmp_path / 'reset.safetensors', label_names=list('abcd'))
    loaded = EmotionRecognizer.from_checkpoint(tmp_path / 'reset.safetensors')
    assert loaded.model_notes == reset.model_notes
    with torch.no_grad():                                      # any training of the head ends the note
        loaded.model.head.fc.bias.add_(0.1)
    assert not any('untrained' in n for n in loaded.predict(wave, sample_rate=SR).notes)
    short = reset.predict(speech_like(0.1), sample_rate=SR)   # no answer: nothing of the classifier to say
    assert short.prediction is None and not any('untrained' in n for n in short.notes)
