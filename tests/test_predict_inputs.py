"""What users hand to the recognizer: every input type, channels, DC offset, levels beyond full scale, truncated and
too-short files, and the machine-readable status of each row."""
import csv
import io

import numpy as np
import pytest
import torch

sf = pytest.importorskip('soundfile')
pytest.importorskip('soxr')

import tim_zoo  # noqa: E402
from tim_zoo.cli import main as cli_main  # noqa: E402
from tim_zoo.exceptions import AudioError, ConfigurationError  # noqa: E402
from tim_zoo.inference import EmotionRecognizer, to_csv  # noqa: E402

SR = 22050


@pytest.fixture(scope='module')
def rec(make_small_recognizer):
    return make_small_recognizer()


def _probs(result):
    return np.array(list(result.probabilities.values()))


def test_the_dc_offset_is_removed_and_noted_above_one_percent(rec, speech_like):
    voice = speech_like(1.2)
    clean = rec.predict(voice, sample_rate=SR)
    for offset in (0.005, -0.02, 0.05):
        shifted = rec.predict(voice + offset, sample_rate=SR)
        np.testing.assert_allclose(_probs(shifted), _probs(clean), atol=2e-6)
        noted = [n for n in shifted.notes if 'DC offset' in n]
        assert bool(noted) == (abs(offset) > 0.01), (offset, shifted.notes)
    assert 'a DC offset of +0.050 (5.0 % of full scale) was removed' in rec.predict(voice + 0.05, sample_rate=SR).notes


@pytest.mark.slow
def test_every_emodb_file_keeps_its_answer_under_a_dc_offset(shared_dir):
    """The bundled model's answer for each of the 535 EMODB recordings is the same at offsets up to 0.05."""
    files = sorted((shared_dir / 'data' / 'emodb' / 'wav').glob('*.wav'))
    bundled = EmotionRecognizer.from_pretrained()
    waves = [sf.read(str(f), dtype='float32')[0] for f in files]
    rate = sf.info(str(files[0])).samplerate
    results = bundled.predict_many(waves, sample_rate=rate)
    assert [r.status for r in results] == ['ok'] * len(files)         # no recording taken for a tone
    assert not [r.file for r in results if any('tone' in n for n in r.notes)]
    clean = [p.prediction for p in results]
    for offset in (0.01, 0.02, 0.05):
        shifted = [p.prediction for p in bundled.predict_many([w + offset for w in waves], sample_rate=rate)]
        assert shifted == clean, offset


def _tones(seconds=3.0):
    """The machine sounds recordings are full of, made here: beeps, busy and ringback tones, DTMF, a siren (gliding
    sine, continuous and with gaps), a sawtooth melody and plucked chords."""
    t = np.arange(int(seconds * SR)) / SR
    sine = lambda f: np.sin(2 * np.pi * f * t)                         # noqa: E731
    siren = np.sin(2 * np.pi * np.cumsum(550 + 250 * np.sin(2 * np.pi * 0.8 * t)) / SR)
    notes = np.repeat([220, 262, 330, 392, 440, 392], SR // 2 + 1)[:len(t)]
    chord = np.zeros_like(t)
    for i, f0s in enumerate([(196, 247, 294), (220, 277, 330), (175, 220, 262)]):
        part = np.arange(SR) / SR
        for f0 in f0s:
            chord[i * SR:(i + 1) * SR] += sum(np.sin(2 * np.pi * k * f0 * part) / k for k in range(1, 8)) \
                * np.exp(-3 * part)
    signals = dict(
        beeps=0.5 * sine(1000) * ((t % 0.5) < 0.25), busy=0.3 * (sine(480) + sine(620)) * ((t % 1.0) < 0.5),
        ringback=0.3 * (sine(440) + sine(480)) * ((t % 3) < 2), dtmf=0.3 * (sine(697) + sine(1209)) * ((t % 0.2) < 0.1),
        siren=0.5 * siren, siren_with_gaps=0.5 * siren * ((t % 1.25) < 1.0),
        sawtooth_melody=0.3 * (2 * ((t * notes) % 1) - 1), plucked_chords=0.3 * chord / np.abs(chord).max())
    return {k: v.astype(np.float32) for k, v in signals.items()}


def test_tones_are_not_speech_and_are_named(rec, speech_like):
    for name, signal in _tones().items():
        result = rec.predict(signal, sample_rate=SR)
        assert result.status == 'non_speech' and result.prediction is None, name
        assert result.notes[-1].startswith('no prediction: the periodic sound here is a tone, not a voice ('), name
    for f0 in (110, 180, 300):                              # voices whose pitch moves: speech, no tone
        result = rec.predict(speech_like(3.0, f0=f0), sample_rate=SR)
        assert result.status == 'ok' and not any('tone' in n for n in result.notes)
    judging = EmotionRecognizer(rec.model, feature_settings=rec.feature_settings, judge_tones=True)
    busy = judging.predict(_tones()['busy'], sample_rate=SR)
    assert busy.status == 'ok' and busy.prediction is not None
    assert any(n.startswith('the sound judged includes a tone, not a voice') for n in busy.notes)


def _beep_train(wave, rate, hz=1000, below_db=6.0):
    """`wave` with beeps (0.25 s on, 0.25 s off) `below_db` under its level (RMS over the recording)."""
    t = np.arange(len(wave)) / rate
    beeps = np.sin(2 * np.pi * hz * t) * ((t % 0.5) < 0.25)
    return (wave + beeps * np.sqrt(np.mean(wave ** 2) / np.mean(beeps ** 2)) * 10 ** (-below_db / 20)).astype(np.float32)


def test_speech_with_a_beep_train_below_it_is_judged_and_noted(rec, shared_dir):
    """Every 7th EMODB file (77) with a 1 kHz beep train 6 dB below it: judged, and a note names the tone (the
    voice hides the beeps from the pitch tests, so a steady spectral line finds them); the clean files get none."""
    files = sorted((shared_dir / 'data' / 'emodb' / 'wav').glob('*.wav'))[::7]
    waves = [sf.read(str(f), dtype='float32')[0] for f in files]
    rate = sf.info(str(files[0])).samplerate
    clean = rec.predict_many(waves, sample_rate=rate)
    assert not [r.notes for r in clean if any('tone' in n for n in r.notes)]
    mixed = rec.predict_many([_beep_train(w, rate) for w in waves], sample_rate=rate)
    assert [r.status for r in mixed] == ['ok'] * len(files)
    assert all(any('tone' in n for n in r.notes) for r in mixed), [r.notes for r in mixed if
                                                                    not any('tone' in n for n in r.notes)]
    under = [r for r in mixed if any('sounds under the speech' in n for n in r.notes)]
    assert len(under) > len(files) // 2
    assert any(n.startswith('a steady tone at about 1000 Hz sounds under the speech in ') for n in under[0].notes)


def test_a_steady_line_is_a_tone_and_a_moving_voice_is_not(speech_like):
    from tim_zoo.data.speech import SpeechDetector
    detector = SpeechDetector(SR)
    voice = speech_like(3.0, SR, f0=150)
    assert (detector(voice).steady_line() or (0, 0.0))[1] < 0.2         # the note needs 0.28
    hz, share = detector(_beep_train(voice, SR, hz=1234.5)).steady_line()
    assert abs(hz - 1234.5) < 1.0 and share > 0.4
    hz, share = detector(_beep_train(voice, SR, hz=1234.5)).steady_line(0.0, 0.2)   # the first beep's frames
    assert abs(hz - 1234.5) < 1.0
    assert detector(np.zeros(SR, np.float32)).steady_line() is None


def _sung_melody(seconds=4.0, rate=SR):
    """Notes of a scale held 0.4 s each (8 harmonics, a 5.5 Hz vibrato of +-1 %, 50 ms between notes)."""
    t = np.arange(int(0.35 * rate)) / rate
    notes = []
    for k in range(int(seconds / 0.4)):
        f0 = 220 * 2 ** ([0, 2, 4, 5, 7, 9, 11, 12][k % 8] / 12)
        phase = 2 * np.pi * np.cumsum(f0 * (1 + 0.01 * np.sin(2 * np.pi * 5.5 * t))) / rate
        note = sum(np.sin(h * phase) / h for h in range(1, 9)) * np.hanning(len(t)) ** 0.25
        notes += [0.2 * note, np.zeros(int(0.05 * rate))]
    return np.concatenate(notes).astype(np.float32)


def test_no_tone_in_silence_that_resampling_made_periodic(shared_dir):
    """Digital silence after speech, at rates resampled to the model's (its DC removal leaves a constant, resampling
    a ripple near -197 dBFS with lines): no tone note; and a model at 8 kHz, whose spectrum ends below the line
    band, predicts."""
    import soxr
    bundled = EmotionRecognizer.from_pretrained()
    wave, rate = sf.read(str(shared_dir / 'data' / 'emodb' / 'wav' / '03a01Fa.wav'), dtype='float32')
    for target in (16000, 8000, 48000):
        x = np.concatenate([soxr.resample(wave, rate, target).astype(np.float32), np.zeros(int(1.5 * target), np.float32)])
        assert not [n for n in bundled.predict(x, sample_rate=target).notes if 'tone' in n], target
    model = tim_zoo.create_model('tim', num_classes=3, depth=2)
    low = EmotionRecognizer(model, feature_settings=dict(mean_signal_length=16000, level='peak', sample_rate=8000))
    assert low.predict(wave, sample_rate=rate).status == 'ok'


def test_singing_is_judged_as_speech_a_documented_miss(rec):
    """docs/predict.md: the detector misses singing (its pitch moves as a voice's does)."""
    result = rec.predict(_sung_melody(), sample_rate=SR)
    assert result.status == 'ok' and not any('tone' in n for n in result.notes), result.notes


def test_channels_are_never_averaged_silently(rec, speech_like):
    a, b = speech_like(1.2, f0=120, seed=1), speech_like(1.2, f0=230, seed=2)
    with pytest.raises(AudioError, match=r'has 8 channels .*predict_many\(\[w1, w2, \.\.\.\]'):
        rec.predict(np.stack([a] * 8), sample_rate=SR)
    two_voices = rec.predict(np.stack([a, b]), sample_rate=SR)
    assert any('the two channels differ' in n and 'channels="left"' in n for n in two_voices.notes)
    inverted = rec.predict(np.stack([a, -a]), sample_rate=SR)
    assert any('phase-inverted' in n for n in inverted.notes) and inverted.status == 'no_speech'
    left = rec.predict(np.stack([a, b]), sample_rate=SR, channels='left')
    np.testing.assert_allclose(_probs(left), _probs(rec.predict(a, sample_rate=SR)), atol=1e-6)
    assert not any('channel' in n for n in left.notes)
    right = rec.predict(np.stack([a, b]).T, sample_rate=SR, channels='right')        # [N, 2]: soundfile's layout
    np.testing.assert_allclose(_probs(right), _probs(rec.predict(b, sample_rate=SR)), atol=1e-6)
    same = rec.predict(np.stack([a, a]), sample_rate=SR)
    assert not any('channel' in n for n in same.notes)
    assert 'has nothing to choose in a mono recording' in ' '.join(rec.predict(a, sample_rate=SR, channels='left').notes)
    with pytest.raises(ConfigurationError, match='channels'):
        rec.predict(a, sample_rate=SR, channels='both')


def test_every_input_type_gets_an_answer_or_a_one_line_error(rec, speech_like, tmp_path):
    voice = speech_like(1.2)
    path = tmp_path / 'v.wav'
    sf.write(str(path), voice, SR, subtype='PCM_16')
    expected = _probs(rec.predict(path))
    data = path.read_bytes()
    int16 = sf.read(str(path), dtype='int16')[0]
    for given in (data, bytearray(data), io.BytesIO(data), {'bytes': data, 'path': None}, {'path': str(path)},
                  {'array': int16, 'sampling_rate': SR}):
        np.testing.assert_allclose(_probs(rec.predict(given)), expected, atol=1e-5)
    assert rec.predict(data).file == '<bytes>'
    as_float = int16.astype(np.float32) / 32768
    assert rec.predict({'array': as_float, 'sampling_rate': SR, 'path': 'x.wav'}).file == 'x.wav'   # datasets rows
    assert rec.predict({'bytes': data, 'path': 'x.wav'}).file == 'x.wav'
    started = open(path, 'rb')
    started.read(10)                                    # a file object already read from: read from its start
    np.testing.assert_allclose(_probs(rec.predict(started)), expected, atol=1e-5)
    assert 'sample_rate=8000 was not used: the file records its own rate (22050 Hz)' in rec.predict(
        path, sample_rate=8000).notes
    as_python_ints = rec.predict(torch.tensor(int16.tolist()), sample_rate=SR)     # int64: 16-bit values
    np.testing.assert_allclose(_probs(as_python_ints), expected, atol=1e-5)
    assert '64-bit integer samples: read as 16-bit PCM (their values fit it)' in as_python_ints.notes
    for waveform in (torch.tensor(as_float).bfloat16(), torch.tensor(as_float).half(), as_float.astype(np.float64),
                     int16, torch.tensor(int16)):
        result = rec.predict(waveform, sample_rate=SR)
        np.testing.assert_allclose(_probs(result), expected, atol=0.02)
    errors = [
        (dict(audio=as_float, sample_rate='22050'), r"must be a number of Hz such as 16000, got '22050' \(str\)"),
        (dict(audio=as_float, sample_rate=22), r'from 1000 to 768000, got 22; rates are in Hz: 22 kHz is 22000'),
        (dict(audio=as_float, sample_rate=-16000), 'from 1000 to 768000, got -16000'),
        (dict(audio=as_float, sample_rate=1e12), 'from 1000 to 768000'),
        (dict(audio=[[0.1, 0.2], [0.3]], sample_rate=SR), 'cannot read this list as a waveform'),
        (dict(audio=open(path)), r'is open in text mode: open audio files in binary mode, open\(path, "rb"\)'),
        (dict(audio=as_float, sample_rate=22050.5), 'whole number of Hz'),
        (dict(audio=as_float), 'needs its sample rate'),
        (dict(audio={'array': as_float, 'sampling_rate': SR}, sample_rate=16000), 'disagrees'),
        (dict(audio=object()), r'cannot read a object as audio: give a path, a waveform'),
    ]
    for kwargs, message in errors:
        with pytest.raises(ConfigurationError, match=message):
            rec.predict(**kwargs)
    with pytest.raises(ConfigurationError, match=r'https://example.com/a.wav is a URL: tim_zoo reads local files only'):
        rec.predict('https://example.com/a.wav')
    with pytest.raises(AudioError, match=r'<bytes>'):
        rec.predict(b'not audio at all')
    # a bad waveform among good ones is its own error row
    rows = rec.predict_many([as_float, np.zeros(0), np.full(50, np.nan), {'array': as_float}, as_float],
                            sample_rate=SR)
    assert [r.status for r in rows] == ['ok', 'error', 'error', 'ok', 'ok']
    assert rows[2].error == 'the waveform holds 50 NaN or Inf samples'


def test_levels_beyond_full_scale_are_scaled_and_noted_not_called_clipping(rec, speech_like):
    voice = speech_like(1.2)
    clean = rec.predict(voice, sample_rate=SR)
    loud = rec.predict(voice * 2.5 / np.abs(voice).max(), sample_rate=SR)
    assert any('float samples beyond full scale (peak 2.50' in n for n in loud.notes)
    assert not any('clipped' in n for n in loud.notes)
    pcm_values = np.round(voice * 32767).astype(np.float32)
    as_float = rec.predict(pcm_values, sample_rate=SR)
    assert any('float samples holding integer PCM values' in n and 'divided by 32768' in n for n in as_float.notes)
    assert not any('clipped' in n for n in as_float.notes)
    np.testing.assert_allclose(_probs(as_float), _probs(clean), atol=1e-3)
    clipped = np.clip(voice * 8, -1, 1)
    assert any('clipped' in n for n in rec.predict(clipped, sample_rate=SR).notes)    # a [-1, 1] source: judged


def test_truncated_empty_and_too_short_files_are_named(rec, speech_like, tmp_path):
    whole = tmp_path / 'whole.wav'
    sf.write(str(whole), speech_like(3.0), SR, subtype='PCM_16')
    cut = tmp_path / 'cut.wav'
    cut.write_bytes(whole.read_bytes()[:44 + 2 * SR])                 # the header still announces 3.00 s
    result = rec.predict(cut)
    assert 'truncated file: its header announces 3.00 s, 1.00 s could be read; the rest is missing' in result.notes
    (tmp_path / 'header.wav').write_bytes(whole.read_bytes()[:44])
    assert 'header announces 3.00 s, 0.00 s could be read' in rec.predict_many([tmp_path / 'header.wav'])[0].error
    (tmp_path / 'empty.wav').write_bytes(b'')
    assert rec.predict_many([tmp_path / 'empty.wav'])[0].error == f'{tmp_path / "empty.wav"} is empty (0 bytes)'
    short = rec.predict(speech_like(0.1), sample_rate=SR)
    assert short.status == 'too_short' and short.prediction is None
    assert short.notes == ['no prediction: too short to judge (0.10 s of audio; a judgement needs 0.25 s of voiced '
                           'speech)']


def test_every_row_has_a_kind_and_a_status(rec, speech_like, tmp_path):
    (tmp_path / 'calls' / 'old').mkdir(parents=True)
    sf.write(str(tmp_path / 'calls' / 'a.wav'), speech_like(4.0), SR)
    sf.write(str(tmp_path / 'calls' / 'old' / 'b.wav'), speech_like(1.0), SR)
    sf.write(str(tmp_path / 'calls' / 'quiet.wav'), np.zeros(SR, np.float32), SR)
    results = rec.predict_many([tmp_path / 'calls', tmp_path / 'missing.wav'])
    assert [(r.kind, r.status) for r in results] == [('recording', 'ok'), ('recording', 'no_speech'), ('note', ''),
                                                     ('recording', 'error')]
    rows = list(csv.DictReader(to_csv(results, segments=True).splitlines()))
    assert [r['kind'] for r in rows] == ['recording'] + ['window'] * len(results[0].segments) + \
        ['recording', 'note', 'recording']
    assert sum(r['kind'] == 'recording' for r in rows) == 3


def test_cli_channels_and_plot_problems_before_any_work(speech_like, tmp_path, capsys):
    a, b = speech_like(1.2, f0=120, seed=1), speech_like(1.2, f0=230, seed=2)
    sf.write(str(tmp_path / 'stereo.wav'), np.stack([a, b], axis=1), SR)
    assert cli_main(['predict', str(tmp_path / 'stereo.wav'), '--quiet']) == 0
    assert 'the two channels differ' in capsys.readouterr().out
    assert cli_main(['predict', str(tmp_path / 'stereo.wav'), '--channels', 'left', '--quiet']) == 0
    assert 'channels differ' not in capsys.readouterr().out
    assert cli_main(['predict', str(tmp_path / 'stereo.wav'), '--plot', str(tmp_path / 'x.txt'), '--quiet']) == 2
    assert 'expected a .png, .svg, .pdf file name' in capsys.readouterr().err
    # a folder whose subfolder is left out gives a note row; plotting skips it and the run ends normally
    (tmp_path / 'calls' / 'old').mkdir(parents=True)
    sf.write(str(tmp_path / 'calls' / 'a.wav'), a, SR)
    sf.write(str(tmp_path / 'calls' / 'old' / 'b.wav'), b, SR)
    assert cli_main(['predict', str(tmp_path / 'calls'), '--plot', str(tmp_path / 'p.png'), '--quiet']) == 0
    captured = capsys.readouterr()
    assert 'were not read' in captured.out and 'Traceback' not in captured.err


def test_windows_start_at_least_a_quarter_window_apart_and_cover_the_recording(rec, speech_like):
    from tim_zoo.inference.windows import window_bounds
    w, hop = rec.window, rec.hop
    for n in (w + 1000, w + w // 4 + 10, 3 * hop + w - 500, 3 * hop + w + 2000, 5 * hop + w + hop - 1, 10 * w + 7):
        bounds = window_bounds(n, w, hop)
        starts = [a for a, _ in bounds]
        assert all(b - a >= w / 4 for a, b in zip(starts, starts[1:])), n
        assert all(b - a == w for a, b in bounds)
        covered = bounds[0][0] == 0 and bounds[-1][1] == n and all(b1 >= a2 for (_, b1), (a2, _) in
                                                                    zip(bounds, bounds[1:]))
        assert covered or (len(bounds) == 1 and n - w < w / 4), n
    result = rec.predict(speech_like((w + 2000) / SR), sample_rate=SR)
    assert len(result.segments) == 1 and result.segments[0].start == round(1000 / SR, 3)
    assert any('is a little longer than the model\'s input' in n and '0.05 s left out at each end' in n
               for n in result.notes)


def test_windows_cut_from_blocks_are_the_windows_of_the_whole_signal():
    from tim_zoo.inference.windows import cut_blocks, speech_peak, window_bounds
    rng = np.random.default_rng(0)
    signal = rng.normal(size=10_000).astype(np.float32)
    edges = np.sort(rng.choice(np.arange(1, len(signal)), size=30, replace=False))
    for window, hop in ((1000, 400), (3000, 2900), (None, 1)):
        bounds = window_bounds(len(signal), window, hop)
        read = []

        def blocks():
            for block in np.split(signal, edges):
                read.append(len(block))
                yield block
        parts = list(cut_blocks(blocks(), bounds[:-1] if len(bounds) > 1 else bounds))
        assert all(np.array_equal(p, signal[a:b]) for p, (a, b) in zip(parts, bounds))
        if len(bounds) > 1:                              # nothing after the last window asked for is read
            assert sum(read) < len(signal)
    quiet = np.zeros(1000, np.float32)
    quiet[10], quiet[600] = 0.9, 0.3                     # a click in a pause, the speech's peak
    assert speech_peak(quiet, [(0.5, 0.7)], 0, 1000, 1000) == pytest.approx(0.3)


def test_a_model_trained_on_gmm_selected_frames_predicts_on_frames_selected_as_in_training(speech_like):
    """Each window's frames are shortened as training shortened them: the fixed-length model takes 20 frames where
    the window gives 65, and the same selection of the same window gives the same answer."""
    pytest.importorskip('sklearn')
    from tim_zoo.data.frame_selection import gmm_frame_selection
    torch.manual_seed(0)
    model = tim_zoo.create_model('at_tim', num_classes=3, seq_len=20, depth=2, d_qkv=8, d_ff=16).eval()
    model.label_names = ['a', 'b', 'c']
    settings = dict(mean_signal_length=32768, level='none', gmm_select=20, gmm_fits=2, gmm_seed=3)
    rec = EmotionRecognizer(model, feature_settings=settings)
    assert any('shortened to 20 by GMM frame selection' in n and 'seed 3' in n for n in rec.model_notes)
    signal = speech_like(32768 / SR)
    result = rec.predict(signal, sample_rate=SR)
    assert result.status == 'ok' and len(result.segments) == 1
    window = rec.extractor.batch([rec.extractor.signal(signal, SR)])[0]
    with torch.no_grad():
        probs = model(torch.as_tensor(gmm_frame_selection(window, 20, 2, 3))[None]).softmax(-1)[0].numpy()
    # another seed's selection moves them by 0.02; the recognizer's own arithmetic by 2e-5
    np.testing.assert_allclose([result.probabilities[k] for k in 'abc'], probs, atol=1e-3)
    with pytest.raises(ConfigurationError, match=r'trained on 20 GMM-selected frames .* windows of 17 frames'):
        EmotionRecognizer(model, feature_settings=dict(settings, mean_signal_length=8192))   # fewer than it selects


def test_a_model_built_for_another_length_than_its_recorded_features_says_which_to_build():
    model = tim_zoo.create_model('at_tim', num_classes=3, seq_len=30, depth=2, d_qkv=8, d_ff=16)
    model.pretrained_cfg = dict(model.pretrained_cfg, feature_settings=dict(mean_signal_length=32768, level='none'))
    with pytest.raises(ConfigurationError, match=r'takes exactly 30 frames .* weights record give 65 .* '
                                                 r'build it with seq_len=65'):
        EmotionRecognizer(model)                         # nothing of the caller's: the length is the build's
    with pytest.raises(ConfigurationError, match=r'mean_signal_length=22050 \(--mean-signal-length\) gives 44'):
        EmotionRecognizer(model, feature_settings=dict(mean_signal_length=22050))


def test_an_answer_from_very_little_speech_says_so(rec, speech_like):
    short = rec.predict(speech_like(0.4), sample_rate=SR)
    assert short.status == 'ok' and any('rests on very little speech' in n for n in short.notes), short.notes
    longer = rec.predict(speech_like(1.4), sample_rate=SR)
    assert longer.voiced >= 0.5 and not any('very little speech' in n for n in longer.notes)
    # 0.4 s of speech where two windows overlap: both judge it, and it is counted once
    w = rec.window
    signal = np.zeros(int(1.5 * w), np.float32)
    start = int(0.75 * w) - int(0.2 * SR)
    signal[start:start + int(0.4 * SR)] = speech_like(0.4)[:int(0.4 * SR)]
    overlap = rec.predict(signal, sample_rate=SR)
    assert sum(s.prediction is not None for s in overlap.segments) == 2, overlap.segments
    assert any('rests on very little speech' in n for n in overlap.notes), overlap.notes


def test_weights_of_ones_own_run_say_where_their_held_out_figure_is(make_small_recognizer):
    from tim_zoo.train.protocols import trained_on
    model = make_small_recognizer().model
    record = trained_on('manifest', 'loso', 'speaker_s1', None, 34, 0.1, 'at_deltatim_v2.modma', ['a', 'b', 'c'])
    model.pretrained_cfg = dict(model.pretrained_cfg, trained_on=record)
    notes = EmotionRecognizer(model, feature_settings=dict(mean_signal_length=32768)).model_notes
    assert notes == ['these weights trained on split speaker_s1 (loso) of 3 utterances of manifest, recipe '
                     'at_deltatim_v2.modma: how far their answers can be trusted is that split\'s held-out accuracy, '
                     'in the result.json of speaker_s1 in its run, not the probabilities']
    model.pretrained_cfg['trained_on'] = dict(record, protocol='all', split='all', recipe=None)
    notes = EmotionRecognizer(model, feature_settings=dict(mean_signal_length=32768)).model_notes
    assert notes[0].startswith('these weights trained on all 3 utterances of manifest: none was held out')


def test_a_folder_given_as_a_model_names_the_hub_prefix(tmp_path, monkeypatch):
    with pytest.raises(ConfigurationError, match=f'a hub folder .* loads as "local-dir:{tmp_path}"'):
        EmotionRecognizer.from_pretrained(str(tmp_path))
    (tmp_path / 'tim').mkdir()                          # a run's folder named after a model: the name still wins
    monkeypatch.chdir(tmp_path)
    assert EmotionRecognizer.from_pretrained('tim').model.pretrained_cfg['tag'] == 'tim_zoo_emodb'


def test_the_clock_rounds_before_taking_minutes():
    from tim_zoo.inference import Prediction, Segment, format_table
    p = Prediction('x.wav', prediction='a', probabilities=dict(a=1.0), duration=60.0, voiced=50.0,
                   segments=[Segment(0.0, 30.0, 'a', dict(a=1.0), 20.0), Segment(29.96, 59.96, 'a', dict(a=1.0), 20.0)])
    table = format_table([p], segments=True)
    assert '00:30.0-01:00.0' in table and '00:60.0' not in table


def test_the_table_gives_a_note_many_files_share_once():
    from tim_zoo.inference import Prediction, format_table
    shared, own = 'the same cut', 'a note of its own'
    predictions = [Prediction(f'f{i}.wav', prediction='a', probabilities=dict(a=1.0), notes=[shared]) for i in range(6)]
    predictions[2].notes.append(own)
    predictions.append(Prediction('g.wav', prediction='a', probabilities=dict(a=1.0), notes=['elsewhere']))
    predictions[3].notes.append(shared)                                 # given twice in one answer: one file
    remarks = format_table(predictions).split('\n\n')[1].splitlines()
    assert remarks == ['f0.wav, f1.wav, f2.wav and 3 more files (each file\'s notes: --json or --output): the same cut',
                       'f2.wav: a note of its own',
                       'g.wav: elsewhere']
    assert format_table(predictions[:4]).endswith('f0.wav, f1.wav, f2.wav, f3.wav: the same cut\nf2.wav: a note of its own')


def test_windows_that_disagree_are_noted_with_each_share(speech_like):
    """Three voices in a row, judged by a model that answers by pitch: the recording's windows disagree."""
    class ByPitch(torch.nn.Module):                       # the nearest of three MFCC c2 means (the voices' own)
        num_classes, label_names = 3, ['a', 'b', 'c']

        def forward(self, x):
            c = x[:, 2].mean(-1, keepdim=True)
            return -torch.cat([(c - 86) ** 2, (c + 9) ** 2, (c + 73) ** 2], dim=1) / 10

    rec = EmotionRecognizer(ByPitch(), feature_settings=dict(mean_signal_length=32768, level='peak'))
    parts = [speech_like(3.0, f0=f0, seed=i) for i, f0 in enumerate((100, 180, 320))]
    result = rec.predict(np.concatenate(parts), sample_rate=SR)
    assert {s.prediction for s in result.segments} == {'a', 'b', 'c'}
    note = next(n for n in result.notes if n.startswith('the windows disagree'))
    assert all(f'{k} ' in note for k in 'abc') and note.count(' %') == 3
    one_voice = rec.predict(np.concatenate([parts[0]] * 3), sample_rate=SR)
    assert not any('disagree' in n for n in one_voice.notes)


def test_cli_errors_name_flags_and_unavailable_devices(speech_like, tmp_path, capsys):
    sf.write(str(tmp_path / 'v.wav'), speech_like(1.0), SR)
    assert cli_main(['predict', str(tmp_path / 'v.wav'), '--hop', '9']) == 2
    assert 'hop_seconds (--hop) must be above 0 and at most the window' in capsys.readouterr().err
    assert cli_main(['predict', str(tmp_path / 'v.wav'), '--device', 'mps']) == 2
    err = capsys.readouterr().err
    assert "device 'mps' asked for, but this torch build or machine has no mps backend" in err or \
        torch.backends.mps.is_available()
    assert 'unexpected' not in err


def test_cli_judge_tones(tmp_path, capsys):
    sf.write(str(tmp_path / 'busy.wav'), _tones()['busy'], SR)
    assert cli_main(['predict', str(tmp_path / 'busy.wav'), '--json', '--quiet']) == 0
    import json
    assert json.loads(capsys.readouterr().out)[0]['status'] == 'non_speech'
    assert cli_main(['predict', str(tmp_path / 'busy.wav'), '--judge-tones', '--json', '--quiet']) == 0
    row = json.loads(capsys.readouterr().out)[0]
    assert row['status'] == 'ok' and any('includes a tone' in n for n in row['notes'])


def test_plots_break_their_lines_where_there_is_no_speech(tmp_path):
    from tim_zoo.inference import Prediction, Segment, plot_prediction
    from tim_zoo.inference.plot import probability_series
    p = dict(a=0.7, b=0.3)
    pred = Prediction('x.wav', prediction='a', probabilities=p, duration=8.0, voiced=5.0, segments=[
        Segment(0.0, 2.0, 'a', p, 1.0), Segment(1.0, 3.0, 'a', p, 1.0), Segment(2.0, 4.0, None, None, 0.0),
        Segment(3.0, 5.0, None, None, 0.0), Segment(4.0, 6.0, 'b', dict(a=0.2, b=0.8), 1.0)])
    times, series = probability_series(pred)
    assert times[:2] == [1.0, 2.0] and np.isnan(times[2]) and times[3] == 5.0 and len(times) == 4
    assert series['b'][:2] == [0.3, 0.3] and np.isnan(series['b'][2]) and series['b'][3] == 0.8
    pytest.importorskip('matplotlib')
    assert plot_prediction(pred, tmp_path / 'p.png').read_bytes()[:4] == b'\x89PNG'


def test_a_hum_that_hides_speech_is_named(rec, speech_like):
    t = np.arange(3 * SR) / SR
    voice = speech_like(3.0)
    hum = sum(np.sin(2 * np.pi * 50 * k * t) / k for k in (1, 2, 3)).astype(np.float32)
    hum *= np.sqrt(np.mean(voice ** 2) / np.mean(hum ** 2)) * 3           # 10 dB above the voice
    result = rec.predict(voice + hum, sample_rate=SR)
    assert result.status == 'no_speech' and result.notes[-1].startswith('no prediction: a mains hum (50 Hz and its harmonics, ')
    assert rec.predict(voice, sample_rate=SR).status == 'ok'


def test_speech_too_quiet_for_the_detector_is_called_too_quiet(rec, speech_like):
    """Speech too quiet for the detector said only "no speech to judge (... loudest frame -69.5 dBFS)"."""
    voice = speech_like(2.0)
    quiet = voice * (10 ** (-72 / 20) / np.abs(voice).max())
    result = rec.predict(quiet.astype(np.float32), sample_rate=SR)
    assert result.status == 'no_speech'
    assert result.notes[-1].endswith('too quiet to tell speech from silence (the speech detector hears nothing below '
                                     '-70 dBFS); if there is speech, record it louder or raise its gain')
    assert 'too quiet' not in rec.predict(np.zeros(2 * SR, dtype=np.float32), sample_rate=SR).notes[-1]


def test_a_recording_spanning_few_steps_of_its_format_gets_a_note(rec, speech_like):
    """16-bit speech peaking at -55 dBFS (58 steps) got confident answers that changed with the level, unnoted."""
    voice = speech_like(2.0) / np.abs(speech_like(2.0)).max()
    for db, noted in ((-55, True), (-20, False)):
        pcm = np.round(voice * 10 ** (db / 20) * 32767).astype(np.int16)
        notes = rec.predict(pcm, sample_rate=SR).notes
        assert any(n.startswith(f'the recording peaks at {db}.0 dBFS, only ') and 'steps of its sample format' in n
                   for n in notes) == noted, notes
    assert not any('steps of its sample format' in n
                   for n in rec.predict((voice * 10 ** (-55 / 20)).astype(np.float32), sample_rate=SR).notes)
    pcm = np.round(voice * 10 ** (-55 / 20) * 32767).astype(np.int16)   # stereo: counted before the channels mix
    assert any('steps of its sample format' in n
               for n in rec.predict(np.stack([pcm, np.roll(pcm, 50)]), sample_rate=SR).notes)


def test_a_pure_tone_at_a_mains_harmonic_is_a_tone_not_hum(make_small_recognizer):
    """A 200 Hz tone was called "a mains hum (50 Hz and its harmonics)", with a notch filter as the fix; and the note
    offered judge_tones=True, which judges no tone that holds its level."""
    from tim_zoo.data.speech import mains_hum
    t = np.arange(3 * SR) / SR
    tone = (0.3 * np.sin(2 * np.pi * 200 * t)).astype(np.float32)
    assert mains_hum(tone, SR) is None and mains_hum(np.sin(2 * np.pi * 100 * t), SR) is None
    for amplitudes in ((0.1, 0.2, 1, 0.2), (0.2, 0.2, 1, 0.1)):   # a phone microphone's hum: still hum
        for base in (50, 60):
            hum = sum(a * np.sin(2 * np.pi * base * k * t) for k, a in enumerate(amplitudes, start=1))
            assert mains_hum(hum, SR)[0] == base
    for judge_tones in (False, True):
        result = make_small_recognizer(judge_tones=judge_tones).predict(tone, sample_rate=SR)
        assert result.status == 'non_speech' and result.prediction is None
        assert result.notes[-1].startswith('no prediction: the periodic sound here is a tone, not a voice')
        assert result.notes[-1].endswith('so even judge_tones=True judges none of it')
