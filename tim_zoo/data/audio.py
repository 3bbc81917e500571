"""Reading audio and fitting it to a model's input: the same samples `librosa.load` gives, without librosa.

`load_audio` reads with soundfile, mixes to mono by averaging the channels and resamples with soxr's
high-quality filter (`soxr_hq`), then fixes the length to `ceil(n * target / source)` samples: the
steps and defaults of `librosa.load(path, sr=rate, mono=True)`. Formats soundfile cannot read
(for example some compressed ones) fall back to librosa itself.
"""
import math
import warnings
from pathlib import Path
from typing import Optional

import numpy as np

from .._validation import check_choice
from ..exceptions import AudioError
from .._utils import require

DEFAULT_SAMPLE_RATE = 22050

#: how the input level is normalised before features: `"none"` keeps the samples as read (the TIM-Net
#: authors' features); `"peak"` scales each analysed signal so its largest sample is at full scale, as every
#: utterance of a peak-normalised corpus (the shared EMODB copy) is.
LEVEL_MODES = ('none', 'peak')


def resample(signal: np.ndarray, orig_sr: int, target_sr: int) -> np.ndarray:
    """`signal` `[N]` from `orig_sr` to `target_sr` Hz as `librosa.resample(res_type="soxr_hq")`."""
    if orig_sr == target_sr:
        return signal
    soxr = require('soxr', 'resampling audio')
    n_out = int(np.ceil(len(signal) * (float(target_sr) / orig_sr)))    # librosa computes the ratio first
    out = soxr.resample(signal, orig_sr, target_sr, quality='soxr_hq')
    if len(out) < n_out:
        out = np.pad(out, (0, n_out - len(out)))
    return np.asarray(out[:n_out], dtype=np.float32)


def resample_stream(blocks, orig_sr: int, target_sr: int, length: int):
    """`resample` of the signal the consecutive float32 `[n]` `blocks` make, block by block: the same samples bit
    for bit (soxr's stream), `length` of them in all (`ceil(N * target_sr / orig_sr)`, zero-padded at the end as
    `resample` pads)."""
    stream = None
    if orig_sr != target_sr:
        soxr = require('soxr', 'resampling audio')
        stream = soxr.ResampleStream(orig_sr, target_sr, 1, dtype='float32', quality='soxr_hq')
    left, pending = length, None
    for block in blocks:
        if pending is not None:                          # one block behind, so the last one is flagged as last
            out = pending if stream is None else stream.resample_chunk(pending, last=False)
            yield np.asarray(out[:left], dtype=np.float32)
            left -= min(left, len(out))
        pending = np.ascontiguousarray(block, dtype=np.float32)
    if pending is not None:
        out = pending if stream is None else stream.resample_chunk(pending, last=True)
        out = np.asarray(out[:left], dtype=np.float32)
        left -= len(out)
        yield np.pad(out, (0, left)) if left > 0 else out


def to_mono(signal: np.ndarray) -> np.ndarray:
    """`[channels, N]` -> `[N]` by averaging the channels; `[N]` is returned as is."""
    return signal.mean(axis=0) if signal.ndim == 2 else signal


#: soundfile subtypes that hold integer PCM (full-scale samples then mean clipping)
_INTEGER_SUBTYPES = ('PCM_S8', 'PCM_U8', 'PCM_16', 'PCM_24', 'PCM_32', 'ULAW', 'ALAW')
#: bytes per sample of the WAV subtypes whose truncation is measured
_SAMPLE_BYTES = {'PCM_U8': 1, 'PCM_16': 2, 'PCM_24': 3, 'PCM_32': 4, 'FLOAT': 4, 'DOUBLE': 8}


def wav_data_chunk(head: bytes) -> Optional[tuple]:
    """`(where its samples start, the size it announces)` of the `data` chunk of a RIFF/WAVE file, from its first
    bytes; None for another format or a size written as unknown."""
    if len(head) < 12 or head[:4] != b'RIFF' or head[8:12] != b'WAVE':
        return None
    pos = 12
    while pos + 8 <= len(head):
        chunk, size = head[pos:pos + 4], int.from_bytes(head[pos + 4:pos + 8], 'little')
        if chunk == b'data':
            return (pos + 8, size) if size not in (0, 0xFFFFFFFF) else None     # 0 / -1: written while streaming
        pos += 8 + size + size % 2
    return None


def _truncation(source, frames: int, rate: int, channels: int, bytes_per_sample: int) -> Optional[str]:
    """A note when a WAV file holds fewer sample bytes than its header announces."""
    if hasattr(source, 'seek'):
        start = source.tell()
        source.seek(0)
        head = source.read(1 << 16)
        total = source.seek(0, 2)
        source.seek(start)
    else:
        with open(source, 'rb') as f:
            head = f.read(1 << 16)
        total = Path(source).stat().st_size
    chunk = wav_data_chunk(head)
    if chunk is None or total - chunk[0] >= chunk[1]:
        return None
    announced = chunk[1] // (bytes_per_sample * channels)
    return (f'truncated file: its header announces {announced / rate:.2f} s, {frames / rate:.2f} s could be read; '
            f'the rest is missing')


def _truncation_note(source, info) -> Optional[str]:
    """`_truncation`'s note for a file soundfile described as `info` (WAV of a known sample width only)."""
    width = _SAMPLE_BYTES.get(info.subtype, 0)
    return _truncation(source, info.frames, info.samplerate, info.channels, width) \
        if info.format == 'WAV' and width else None


def _read(source, label: str):
    """`(samples [N] or [channels, N], rate, integer PCM?, a note when the file is truncated or None)`."""
    soundfile = require('soundfile', 'reading audio')
    try:
        info = soundfile.info(source)
        if hasattr(source, 'seek'):
            source.seek(0)
        signal, rate = soundfile.read(source if hasattr(source, 'read') else str(source), dtype='float32',
                                      always_2d=False)
        return signal.T, rate, info.subtype in _INTEGER_SUBTYPES, _truncation_note(source, info)
    except soundfile.LibsndfileError:
        if hasattr(source, 'read'):
            raise
    librosa = require('librosa', f'reading {Path(label).suffix or "this"} audio (soundfile cannot)')
    with warnings.catch_warnings():     # librosa warns when it falls back to audioread
        warnings.simplefilter('ignore', UserWarning)
        warnings.simplefilter('ignore', FutureWarning)
        signal, rate = librosa.load(str(source), sr=None, mono=False)
    return signal, rate, False, None


def read_audio_channels(source, label: Optional[str] = None):
    """`(signal, rate, integer PCM?, notes)`: a file (path or binary file object) as float32 `[N]` or
    `[channels, N]` at its own rate; `notes` names a file shorter than its header says (truncated).

    Raises:
        AudioError: the file is missing, a folder, empty, unreadable, or has no samples.
    """
    label = label or str(source)
    if not hasattr(source, 'read'):
        path = Path(source)
        if not str(path).strip() or path.is_dir():
            raise AudioError(f'{path} is a folder, not an audio file' if str(path).strip() else
                             'an empty path is not an audio file')
        if not path.is_file():
            raise AudioError(f'no audio file at {path}')
        if path.stat().st_size == 0:
            raise AudioError(f'{path} is empty (0 bytes)')
    try:
        signal, rate, integer, truncated = _read(source, label)
    except ImportError:
        raise
    except Exception as e:  # soundfile / audioread raise many types
        why = str(e).strip() or 'not a format soundfile or audioread can decode'
        raise AudioError(f'cannot read {label} as audio ({type(e).__name__}: {why})') from e
    signal = np.asarray(signal, dtype=np.float32)
    if signal.size == 0:
        raise AudioError(f'{label} holds no samples' + (f' ({truncated})' if truncated else ''))
    return signal, int(rate), integer, [truncated] if truncated else []


def audio_info(source) -> Optional[tuple]:
    """`(frames, rate, channels, integer PCM?, notes, format)` of a file soundfile reads (a path or a seekable
    binary file object), without reading its samples; None for anything else (a folder, a missing file, another
    format)."""
    soundfile = require('soundfile', 'reading audio')
    try:
        if hasattr(source, 'read'):
            source.seek(0)
        elif not Path(source).is_file():
            return None
        info = soundfile.info(source if hasattr(source, 'read') else str(source))
    except Exception:                                    # soundfile raises many types for what it cannot read
        return None
    note = _truncation_note(source, info)
    return (info.frames, int(info.samplerate), info.channels, info.subtype in _INTEGER_SUBTYPES, [note] if note else [],
            info.format)


def read_blocks(source, frames: int):
    """The samples of a file soundfile reads, `frames` at a time: float32 `[n]` (mono) or `[channels, n]` blocks."""
    soundfile = require('soundfile', 'reading audio')
    if hasattr(source, 'read'):
        source.seek(0)
    with soundfile.SoundFile(source if hasattr(source, 'read') else str(source)) as f:
        for block in f.blocks(blocksize=frames, dtype='float32', always_2d=True):
            yield block[:, 0] if block.shape[1] == 1 else block.T


def read_audio(path):
    """`(signal, rate)`: `path` as mono float32 `[N]` at its own sample rate.

    Raises:
        AudioError: the file is missing, a folder, unreadable, has no samples, or holds NaN or Inf.
    """
    signal, rate, _, _ = read_audio_channels(path)
    signal = to_mono(signal)
    bad = int((~np.isfinite(signal)).sum())
    if bad:
        raise AudioError(f'{path} holds {bad} NaN or Inf samples')
    return signal, rate


def load_audio(path, sample_rate: int = DEFAULT_SAMPLE_RATE) -> np.ndarray:
    """Read `path` as mono float32 `[N]` at `sample_rate` (resampling as needed), like `librosa.load`.

    Raises:
        AudioError: the file is missing, a folder, unreadable, has no samples, or holds NaN or Inf.
    """
    signal, rate = read_audio(path)
    return resample(signal, rate, sample_rate)


def centre_fit(signal: np.ndarray, length: int) -> np.ndarray:
    """Centre zero-pad or centre-crop `signal` to `length` samples (the TIM-Net convention:
    padding `(p // 2, p // 2 + p % 2)`, crop from `(n - length) // 2`)."""
    n = len(signal)
    if n < length:
        pad = length - n
        return np.pad(signal, (pad // 2, pad // 2 + pad % 2), mode='constant')
    start = (n - length) // 2
    return signal[start:start + length]


def peak_dbfs(signal: np.ndarray) -> float:
    """The largest absolute sample in dB relative to full scale (`-inf` for digital silence)."""
    return amplitude_dbfs(float(np.max(np.abs(signal))) if signal.size else 0.0)


def peak_in_steps(signal: np.ndarray) -> float:
    """The largest absolute sample in steps of the signal's finest spacing between sample values: how many levels
    of its format the recording spans (16-bit PCM at full scale: 32768; `inf` where the spacing cannot be told, e.g.
    fewer than two values)."""
    values = np.unique(signal)
    if len(values) < 2:
        return float('inf')
    step = float(np.min(np.diff(values)))
    return float(np.max(np.abs(signal))) / step if step > 0 else float('inf')


def amplitude_dbfs(amplitude: float) -> float:
    """An amplitude in dB relative to full scale (`-inf` for 0)."""
    return 20.0 * math.log10(amplitude) if amplitude > 0 else float('-inf')


def normalize_level(signal: np.ndarray, level: str = 'peak', peak: Optional[float] = None) -> np.ndarray:
    """`signal` with its level normalised by `level` (see `LEVEL_MODES`); digital silence stays silent.
    `peak`: the value scaled to full scale (default: the signal's largest absolute sample)."""
    check_choice('level', level, LEVEL_MODES)
    if level == 'none':
        return signal
    if peak is None:
        peak = float(np.max(np.abs(signal))) if signal.size else 0.0
    return signal if peak == 0.0 else (signal / peak).astype(np.float32)


def pcm_to_float(samples: np.ndarray) -> np.ndarray:
    """Integer PCM samples scaled to [-1, 1) by their dtype's range (float64; unsigned types centred)."""
    info = np.iinfo(samples.dtype)
    return (samples.astype(np.float64) - (info.max + 1 + info.min) / 2) / ((info.max - info.min + 1) / 2)


def as_waveform(audio, sample_rate: Optional[int], target_rate: int) -> np.ndarray:
    """A waveform `[N]`, `[channels, N]` or `[N, channels]` (soundfile's layout; the shorter axis is taken
    as the channels), numpy or torch, float or integer PCM (scaled to [-1, 1)), as mono float32 at `target_rate`."""
    signal = np.asarray(audio.detach().cpu() if hasattr(audio, 'detach') else audio)
    if np.issubdtype(signal.dtype, np.integer):
        signal = pcm_to_float(signal)
    signal = signal.astype(np.float32)
    if signal.ndim == 2 and signal.shape[0] > signal.shape[1]:
        signal = signal.T
    signal = to_mono(signal)
    if signal.ndim != 1 or signal.size == 0:
        raise AudioError(f'expected a waveform [N] or [channels, N] with samples, got shape {np.shape(audio)}')
    if not np.isfinite(signal).all():
        raise AudioError(f'the waveform holds {int((~np.isfinite(signal)).sum())} NaN or Inf samples')
    return resample(signal, sample_rate or target_rate, target_rate)
