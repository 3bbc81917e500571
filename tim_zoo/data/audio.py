"""Reading audio and fitting it to a model's input: the same samples ``librosa.load`` gives, without librosa.

``load_audio`` reads with soundfile, mixes to mono by averaging the channels and resamples with soxr's
high-quality filter (``soxr_hq``), then fixes the length to ``ceil(n * target / source)`` samples: the
steps and defaults of ``librosa.load(path, sr=rate, mono=True)``. Formats soundfile cannot read
(for example some compressed ones) fall back to librosa itself.
"""
import warnings
from pathlib import Path
from typing import Optional

import numpy as np

from ..exceptions import AudioError, ConfigurationError
from ._optional import require

DEFAULT_SAMPLE_RATE = 22050

#: how the input level is normalised before features: ``"none"`` keeps the samples as read (the TIM-Net
#: authors' features); ``"peak"`` scales each analysed signal so its largest sample is at full scale, as every
#: utterance of a peak-normalised corpus (the shared EMODB copy) is.
LEVEL_MODES = ('none', 'peak')


def resample(signal: np.ndarray, orig_sr: int, target_sr: int) -> np.ndarray:
    """``signal`` ``[N]`` from ``orig_sr`` to ``target_sr`` Hz as ``librosa.resample(res_type="soxr_hq")``."""
    if orig_sr == target_sr:
        return signal
    soxr = require('soxr', 'resampling audio')
    n_out = int(np.ceil(len(signal) * (float(target_sr) / orig_sr)))    # librosa computes the ratio first
    out = soxr.resample(signal, orig_sr, target_sr, quality='soxr_hq')
    if len(out) < n_out:
        out = np.pad(out, (0, n_out - len(out)))
    return np.asarray(out[:n_out], dtype=np.float32)


def to_mono(signal: np.ndarray) -> np.ndarray:
    """``[channels, N]`` -> ``[N]`` by averaging the channels; ``[N]`` is returned as is."""
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


def load_audio(path, sample_rate: int = DEFAULT_SAMPLE_RATE) -> np.ndarray:
    """Read ``path`` as mono float32 ``[N]`` at ``sample_rate`` (resampling as needed), like ``librosa.load``.

    Raises:
        AudioError: the file is missing, a folder, unreadable, or has no samples.
    """
    path = Path(path)
    if path.is_dir():
        raise AudioError(f'{path} is a folder, not an audio file')
    if not path.is_file():
        raise AudioError(f'no audio file at {path}')
    try:
        signal, rate = _read(path)
    except ImportError:
        raise
    except Exception as e:  # soundfile / audioread raise many types
        raise AudioError(f'cannot read {path} as audio ({type(e).__name__}: {e})') from e
    signal = to_mono(np.asarray(signal, dtype=np.float32))
    if signal.size == 0:
        raise AudioError(f'{path} holds no samples')
    return resample(signal, rate, sample_rate)


def centre_fit(signal: np.ndarray, length: int) -> np.ndarray:
    """Centre zero-pad or centre-crop ``signal`` to ``length`` samples (the TIM-Net convention:
    padding ``(p // 2, p // 2 + p % 2)``, crop from ``(n - length) // 2``)."""
    n = len(signal)
    if n < length:
        pad = length - n
        return np.pad(signal, (pad // 2, pad // 2 + pad % 2), mode='constant')
    start = (n - length) // 2
    return signal[start:start + length]


def peak_dbfs(signal: np.ndarray) -> float:
    """The largest absolute sample in dB relative to full scale (``-inf`` for digital silence)."""
    peak = float(np.max(np.abs(signal))) if signal.size else 0.0
    return 20.0 * np.log10(peak) if peak > 0 else float('-inf')


def normalize_level(signal: np.ndarray, level: str = 'peak') -> np.ndarray:
    """``signal`` with its level normalised by ``level`` (see :data:`LEVEL_MODES`); digital silence stays silent."""
    if level not in LEVEL_MODES:
        raise ConfigurationError(f'level must be one of {list(LEVEL_MODES)}, got {level!r}')
    if level == 'none':
        return signal
    peak = float(np.max(np.abs(signal))) if signal.size else 0.0
    return signal if peak == 0.0 else (signal / peak).astype(np.float32)


def as_waveform(audio, sample_rate: Optional[int], target_rate: int) -> np.ndarray:
    """A waveform ``[N]`` or ``[channels, N]`` (numpy or torch) as mono float32 at ``target_rate``."""
    signal = np.asarray(audio.detach().cpu() if hasattr(audio, 'detach') else audio, dtype=np.float32)
    signal = to_mono(signal)
    if signal.ndim != 1 or signal.size == 0:
        raise AudioError(f'expected a waveform [N] or [channels, N] with samples, got shape {np.shape(audio)}')
    if not np.isfinite(signal).all():
        raise AudioError(f'the waveform holds {int((~np.isfinite(signal)).sum())} NaN or Inf samples')
    return resample(signal, sample_rate or target_rate, target_rate)
