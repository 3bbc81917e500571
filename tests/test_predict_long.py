"""Long recordings stream: files over `STREAM_SECONDS` are read block by block, never whole, and get exactly the
answers whole-file processing gives (the thresholds are lowered here so short files exercise the streamed path)."""
import io

import numpy as np
import pytest

sf = pytest.importorskip('soundfile')
pytest.importorskip('soxr')

import tim_zoo  # noqa: E402
from tim_zoo.data.audio import resample, resample_stream  # noqa: E402
from tim_zoo.data.speech import SpeechDetector  # noqa: E402
from tim_zoo.inference import EmotionRecognizer, audio_input, reading  # noqa: E402
from tim_zoo.inference.audio_input import StreamedInput, open_input  # noqa: E402

SR = 22050


@pytest.fixture(scope='module')
def rec(make_small_recognizer):
    return make_small_recognizer(hop_seconds=0.6)


@pytest.fixture
def short_blocks(monkeypatch):
    """Stream files over 3 s, in blocks of 0.37 s (blocks that split frames and windows anywhere)."""
    monkeypatch.setattr(audio_input, 'BLOCK_SECONDS', 0.37)
    monkeypatch.setattr(reading, 'STREAM_SECONDS', 3.0)


def _recording(speech_like, rate=16000, stereo=False, offset=0.0, tone=True):
    """About 14 s: speech, a pause, a 3 s 1 kHz tone, speech of another pitch (integer PCM after a DC offset)."""
    parts = [speech_like(3.0, SR, f0=130, seed=1), np.zeros(SR // 2, np.float32)]
    if tone:
        t = np.arange(3 * SR) / SR
        parts.append((0.3 * np.sin(2 * np.pi * 1000 * t)).astype(np.float32))
    parts += [speech_like(4.0, SR, f0=210, seed=2), np.zeros(SR, np.float32), speech_like(2.5, SR, f0=160, seed=3)]
    x = resample(np.concatenate(parts), SR, rate) + offset
    if stereo:
        x = np.stack([x, 0.6 * x], axis=1)
    return x


def _same(a, b):
    assert (a.prediction, a.status, a.notes, a.duration, a.voiced) == (b.prediction, b.status, b.notes, b.duration,
                                                                       b.voiced)
    assert a.probabilities == b.probabilities
    assert [(s.start, s.end, s.prediction, s.probabilities, s.voiced) for s in a.segments] == \
        [(s.start, s.end, s.prediction, s.probabilities, s.voiced) for s in b.segments]


@pytest.mark.parametrize('rate, stereo, channels', [(16000, False, 'mix'), (48000, True, 'mix'), (22050, True, 'right')])
def test_a_streamed_file_gets_the_whole_file_answer(rec, speech_like, short_blocks, monkeypatch, tmp_path, rate, stereo,
                                                    channels):
    path = tmp_path / 'long.wav'
    sf.write(str(path), _recording(speech_like, rate, stereo, offset=0.02), rate, subtype='PCM_16')
    streamed = rec.predict(path, channels=channels)
    monkeypatch.setattr(reading, 'STREAM_SECONDS', float('inf'))
    whole = rec.predict(path, channels=channels)
    _same(streamed, whole)
    assert len(whole.segments) > 10 and whole.status == 'ok'
    assert any('DC offset' in n for n in whole.notes) and any('tone' in n for n in whole.notes), whole.notes
    if stereo and channels == 'mix':
        assert not any('channels differ' in n for n in whole.notes)


def test_streamed_files_are_never_held_whole(rec, speech_like, short_blocks, monkeypatch, tmp_path):
    """Nothing resamples, detects or reads the whole signal; no block is longer than BLOCK_SECONDS (at the native
    rate: at the model's, a block and soxr's few samples of delay)."""
    path = tmp_path / 'long.wav'
    sf.write(str(path), _recording(speech_like, 16000), 16000, subtype='PCM_16')
    expected = rec.predict(open(path, 'rb'))

    def refuse(*args, **kwargs):
        raise AssertionError('the whole recording was read')
    monkeypatch.setattr(reading, 'resample', refuse)
    monkeypatch.setattr(audio_input, 'read_audio_channels', refuse)
    monkeypatch.setattr(SpeechDetector, 'batch', refuse)
    sizes = []
    real = audio_input.read_blocks

    def recording_blocks(source, frames):
        for block in real(source, frames):
            sizes.append(block.shape[-1])
            yield block
    monkeypatch.setattr(audio_input, 'read_blocks', recording_blocks)
    with open(path, 'rb') as f:                          # a file object streams as a path does
        got = rec.predict(f)
    _same(got, expected)
    assert got.file == str(path)
    assert max(sizes) == int(0.37 * 16000) and sum(sizes) == 3 * sf.info(str(path)).frames   # read three times


def test_what_stays_whole_and_what_a_streamed_file_is_told(speech_like, short_blocks, tmp_path):
    x = _recording(speech_like, 16000)
    path = tmp_path / 'long.wav'
    sf.write(str(path), x, 16000, subtype='PCM_16')
    assert isinstance(open_input(path, stream_seconds=3.0), StreamedInput)
    assert not isinstance(open_input(path, stream_seconds=60.0), StreamedInput)
    assert not isinstance(open_input(path.read_bytes(), stream_seconds=3.0), StreamedInput)   # in memory already
    assert not isinstance(open_input(x, 16000, stream_seconds=3.0), StreamedInput)
    streamed = open_input(path, 22050, stream_seconds=3.0)
    assert 'sample_rate=22050 was not used: the file records its own rate (16000 Hz)' in streamed.notes
    # a float file beyond full scale and with NaN: the same notes and errors as whole
    loud = tmp_path / 'loud.wav'
    sf.write(str(loud), 2.5 * x, 16000, subtype='FLOAT')
    assert open_input(loud, stream_seconds=3.0).notes == open_input(loud).notes
    bad = x.copy()
    bad[5000] = np.nan
    sf.write(str(tmp_path / 'nan.wav'), bad, 16000, subtype='FLOAT')
    with pytest.raises(tim_zoo.AudioError, match='holds 1 NaN or Inf samples'):
        open_input(tmp_path / 'nan.wav', stream_seconds=3.0)
    sf.write(str(tmp_path / 'four.wav'), np.stack([x] * 4, axis=1), 16000, subtype='PCM_16')
    with pytest.raises(tim_zoo.AudioError, match='has 4 channels'):
        open_input(tmp_path / 'four.wav', stream_seconds=3.0)


def test_a_truncated_long_file_streams_with_its_note(rec, speech_like, short_blocks, tmp_path):
    path = tmp_path / 'cut.wav'
    sf.write(str(path), _recording(speech_like, 16000), 16000, subtype='PCM_16')
    data = path.read_bytes()
    path.write_bytes(data[:len(data) * 2 // 3])
    result = rec.predict(path)
    assert any(n.startswith('truncated file: its header announces') for n in result.notes), result.notes


def test_a_long_file_shows_its_progress(rec, speech_like, short_blocks, tmp_path, capsys):
    pytest.importorskip('tqdm')
    path = tmp_path / 'long.wav'
    sf.write(str(path), _recording(speech_like, 16000), 16000, subtype='PCM_16')
    rec.predict_many([path], show_progress=True)
    err = capsys.readouterr().err
    assert 'long.wav: finding speech: 100%' in err and 'long.wav: judging: 100%' in err


def test_what_is_read_whole_however_long(speech_like, short_blocks, tmp_path, monkeypatch):
    """MP3 (libsndfile decodes it a little differently by read size), and every file for a model without a window
    (it needs the whole signal) or with a detector of the user's that cannot stream."""
    x = _recording(speech_like, 16000)
    try:
        sf.write(str(tmp_path / 'long.mp3'), x, 16000, format='MP3')
    except Exception:                                    # a libsndfile without MPEG support
        pass
    else:
        assert not isinstance(open_input(tmp_path / 'long.mp3', stream_seconds=3.0), StreamedInput)
    path = tmp_path / 'long.wav'
    sf.write(str(path), x, 16000, subtype='PCM_16')
    seen = []
    monkeypatch.setattr(reading, 'open_input', lambda *a, **k: seen.append(k['stream_seconds']) or open_input(*a, **k))
    model = tim_zoo.create_model('tim', num_classes=3, depth=2)
    EmotionRecognizer(model, feature_settings=dict(mean_signal_length=None, level='peak')).predict(path)

    class MyDetector:
        def __init__(self):
            self.inner = SpeechDetector(SR)

        def batch(self, signals):
            return self.inner.batch(signals)
    EmotionRecognizer(model, feature_settings=dict(mean_signal_length=32768), detector=MyDetector()).predict(path)
    EmotionRecognizer(model, feature_settings=dict(mean_signal_length=32768)).predict(path)
    assert seen == [None, None, 3.0]


def test_the_detector_streamed_equals_the_detector_whole(speech_like):
    x = _recording(speech_like, SR)
    detector = SpeechDetector(SR)
    whole = detector(x)
    for size in (777, 4096, 100000):
        streamed = detector.stream(x[i:i + size] for i in range(0, len(x), size))
        for key in ('voiced', 'speech', 'tonal', 'level_db'):
            np.testing.assert_array_equal(getattr(streamed, key), getattr(whole, key), err_msg=key)
        assert streamed.noise_floor_db == whole.noise_floor_db
        np.testing.assert_array_equal(streamed.lines, whole.lines)
        assert streamed.line_frames == whole.line_frames
    assert whole.tonal.sum() > 30 and whole.voiced.sum() > 100
    short = x[:700]
    assert detector.stream([short[:300], short[300:]]).level_db.tolist() == detector(short).level_db.tolist()


@pytest.mark.parametrize('orig, target', [(16000, 22050), (48000, 22050), (22050, 22050), (8000, 22050)])
def test_resampling_as_a_stream_equals_resampling_whole(orig, target):
    x = np.random.default_rng(0).standard_normal(orig * 3 + 17).astype(np.float32) * 0.1
    whole = resample(x, orig, target)
    n = len(whole)
    for size in (1000, 4097, len(x)):
        got = np.concatenate(list(resample_stream((x[i:i + size] for i in range(0, len(x), size)), orig, target, n)))
        np.testing.assert_array_equal(got, whole)


def test_a_stream_reads_a_seekable_binary_object_only(speech_like, tmp_path):
    x = _recording(speech_like, 16000, tone=False)
    buffer = io.BytesIO()
    sf.write(buffer, x, 16000, format='WAV', subtype='PCM_16')
    buffer.seek(5)
    assert isinstance(open_input(buffer, stream_seconds=3.0), StreamedInput)

    class NoSeek(io.RawIOBase):
        mode = 'rb'

        def readable(self):
            return True

        def seekable(self):
            return False

        def readinto(self, b):
            return 0
    assert audio_input._open_stream(NoSeek(), None, 'mix', 3.0) is None


def test_emodb_speech_streamed_as_a_long_recording(shared_dir, short_blocks, monkeypatch, tmp_path):
    """Real speech: 24 EMODB utterances with pauses, resampled to 16 kHz stereo (the second channel quieter and
    shifted by a DC offset), streamed and read whole by the bundled model: the same answer, windows and notes."""
    import soxr
    files = sorted((shared_dir / 'data' / 'emodb' / 'wav').glob('*.wav'))[::22]
    parts = []
    for f in files:
        wave, rate = sf.read(str(f), dtype='float32')
        parts += [soxr.resample(wave, rate, 16000).astype(np.float32), np.zeros(8000, np.float32)]
    x = np.concatenate(parts)
    path = tmp_path / 'emodb_long.wav'
    sf.write(str(path), np.stack([x, 0.5 * x + 0.03], axis=1), 16000, subtype='PCM_24')
    bundled = EmotionRecognizer.from_pretrained()
    streamed = bundled.predict(path)
    monkeypatch.setattr(reading, 'STREAM_SECONDS', float('inf'))
    whole = bundled.predict(path)
    _same(streamed, whole)
    assert streamed.status == 'ok' and len(streamed.segments) > 10
