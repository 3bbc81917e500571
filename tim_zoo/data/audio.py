"""Reading audio and fitting it to a model's input: the same samples `librosa.load` gives, without librosa.

`load_audio` reads with soundfile, mixes to mono by averaging the channels and resamples with soxr's
high-quality filter (`soxr_hq`), then fixes the length to `ceil(n * target / source)` samples: the
steps and defaults of `librosa.load(path, sr=rate, mono=True)`. Formats soundfile cannot read
(for example some compressed ones) fall back to librosa itself.
"""
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


def to_mono(signal: np.ndarray) -> np.ndarray:
    """`[channels, N]` -> `[N]` by averaging the channels; `[N]` is returned as is."""
    return signal.mean(axis=0) if signal.ndim == 2 else signal


def _read(path: Path):
    soundfile = require('soundfile', 'reading audio')
    try:
        signal, rate = soundfile.read(str(path), dtype='float32', always_2d=False)
        return signal.T, rate
    except soundfile.LibsndfileError:
        pass
    librosa = require('librosa', f'reading {path.suffix or "this"} audio (soundfile cannot)')
    with warnings.catch_warnings():     # librosa warns when it falls back to audioread
        warnings.simplefilter('ignore', UserWarning)
        warnings.simplefilter('ignore', FutureWarning)
        signal, rate = librosa.load(str(path), sr=None, mono=False)
    return signal, rate


def read_audio(path):
    """`(signal, rate)`: `path` as mono float32 `[N]` at its own sample rate.

    Raises:
        AudioError: the file is missing, a folder, unreadable, has no samples, or holds NaN or Inf.
    """
    path = Path(path)
    if not str(path).strip() or path.is_dir():
        raise AudioError(f'{path} is a folder, not an audio file' if str(path).strip() else
                         'an empty path is not an audio file')
    if not path.is_file():
        raise AudioError(f'no audio file at {path}')
    try:
        signal, rate = _read(path)
    except ImportError:
        raise
    except Exception as e:  # soundfile / audioread raise many types
        why = str(e).strip() or 'not a format soundfile or audioread can decode'
        raise AudioError(f'cannot read {path} as audio ({type(e).__name__}: {why})') from e
    signal = to_mono(np.asarray(signal, dtype=np.float32))
    if signal.size == 0:
        raise AudioError(f'{path} holds no samples')
    bad = int((~np.isfinite(signal)).sum())
    if bad:
        raise AudioError(f'{path} holds {bad} NaN or Inf samples')
    return signal, int(rate)


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
    peak = float(np.max(np.abs(signal))) if signal.size else 0.0
    return 20.0 * np.log10(peak) if peak > 0 else float('-inf')


def normalize_level(signal: np.ndarray, level: str = 'peak', peak: Optional[float] = None) -> np.ndarray:
    """`signal` with its level normalised by `level` (see `LEVEL_MODES`); digital silence stays silent.
    `peak`: the value scaled to full scale (default: the signal's largest absolute sample)."""
    check_choice('level', level, LEVEL_MODES)
    if level == 'none':
        return signal
    if peak is None:
        peak = float(np.max(np.abs(signal))) if signal.size else 0.0
    return signal if peak == 0.0 else (signal / peak).astype(np.float32)


def as_waveform(audio, sample_rate: Optional[int], target_rate: int) -> np.ndarray:
    """A waveform `[N]`, `[channels, N]` or `[N, channels]` (soundfile's layout; the shorter axis is taken
    as the channels), numpy or torch, float or integer PCM (scaled to [-1, 1)), as mono float32 at `target_rate`."""
    signal = np.asarray(audio.detach().cpu() if hasattr(audio, 'detach') else audio)
    if np.issubdtype(signal.dtype, np.integer):
        info = np.iinfo(signal.dtype)
        signal = (signal.astype(np.float64) - (info.max + 1 + info.min) / 2) / ((info.max - info.min + 1) / 2)
    signal = signal.astype(np.float32)
    if signal.ndim == 2 and signal.shape[0] > signal.shape[1]:
        signal = signal.T
    signal = to_mono(signal)
    if signal.ndim != 1 or signal.size == 0:
        raise AudioError(f'expected a waveform [N] or [channels, N] with samples, got shape {np.shape(audio)}')
    if not np.isfinite(signal).all():
        raise AudioError(f'the waveform holds {int((~np.isfinite(signal)).sum())} NaN or Inf samples')
    return resample(signal, sample_rate or target_rate, target_rate)
