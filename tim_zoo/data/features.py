"""MFCC features exactly as the TIM-Net releases expect them."""
import warnings
from pathlib import Path
from typing import Optional, Union

import numpy as np

from ..exceptions import AudioError, ConfigurationError
from ._optional import require

DEFAULT_SAMPLE_RATE = 22050
HOP_LENGTH = 512


def load_audio(path, sample_rate: int = DEFAULT_SAMPLE_RATE) -> np.ndarray:
    """Read ``path`` as mono float32 at ``sample_rate`` (resampling as needed), like ``librosa.load``.

    Raises:
        AudioError: the file is missing, unreadable, or has no samples.
    """
    librosa = require('librosa', 'reading audio')
    path = Path(path)
    if not path.is_file():
        raise AudioError(f'no audio file at {path}')
    try:
        with warnings.catch_warnings():     # librosa warns when it falls back from soundfile to audioread
            warnings.simplefilter('ignore', UserWarning)
            warnings.simplefilter('ignore', FutureWarning)
            signal, _ = librosa.load(str(path), sr=sample_rate, mono=True)
    except Exception as e:  # soundfile / audioread raise many types
        raise AudioError(f'cannot read {path} as audio ({type(e).__name__}: {e})') from e
    if signal.size == 0:
        raise AudioError(f'{path} holds no samples')
    return signal


def centre_fit(signal: np.ndarray, length: int) -> np.ndarray:
    """Centre zero-pad or centre-crop ``signal`` to ``length`` samples (the TIM-Net convention:
    padding ``(p // 2, p // 2 + p % 2)``, crop from ``(n - length) // 2``)."""
    n = len(signal)
    if n < length:
        pad = length - n
        return np.pad(signal, (pad // 2, pad // 2 + pad % 2), mode='constant')
    start = (n - length) // 2
    return signal[start:start + length]


class MFCCExtractor:
    """MFCC frames ``[n_mfcc, frames]`` (float32) from a path or a waveform.

    For the released weights (default, ``order=1``): ``librosa.load`` at 22050 Hz mono, centre pad or
    crop to ``mean_signal_length`` samples, ``librosa.feature.mfcc(n_mfcc=39)`` with librosa's defaults
    (n_fft 2048, hop 512, centred frames), so ``frames = 1 + mean_signal_length // 512``.

    ``order=3`` gives the seed's features: ``n_mfcc // 3`` static coefficients followed by their deltas
    and delta-deltas (13 + 13 + 13 for ``n_mfcc=39``).

    Args:
        mean_signal_length: samples after centre pad/crop; None keeps each utterance's own length.
        n_mfcc: output channels.
        sample_rate: rate the audio is read (or resampled) at.
        order: 1 (static MFCC) or 3 (static, delta, delta-delta).
    """

    def __init__(
            self,
            mean_signal_length: Optional[int] = 96000,
            n_mfcc: int = 39,
            sample_rate: int = DEFAULT_SAMPLE_RATE,
            order: int = 1,
    ):
        if order not in (1, 3):
            raise ConfigurationError(f'order must be 1 (static MFCC) or 3 (with deltas), got {order}')
        if order == 3 and n_mfcc % 3:
            raise ConfigurationError(f'order=3 needs n_mfcc divisible by 3, got {n_mfcc}')
        self.mean_signal_length = mean_signal_length
        self.n_mfcc = n_mfcc
        self.sample_rate = sample_rate
        self.order = order

    @property
    def frames(self) -> Optional[int]:
        """Frames per utterance (None when lengths are kept)."""
        return None if self.mean_signal_length is None else 1 + self.mean_signal_length // HOP_LENGTH

    @property
    def settings(self) -> dict:
        """What a checkpoint or a feature file records to reproduce these features."""
        return dict(
            mean_signal_length=self.mean_signal_length, n_mfcc=self.n_mfcc, sample_rate=self.sample_rate,
            order=self.order, hop_length=HOP_LENGTH, frames=self.frames)

    @classmethod
    def from_settings(cls, settings: dict) -> 'MFCCExtractor':
        """Rebuild the extractor a model's ``feature_settings`` describe."""
        return cls(
            mean_signal_length=settings.get('mean_signal_length', 96000), n_mfcc=settings.get('n_mfcc', 39),
            sample_rate=settings.get('sample_rate', DEFAULT_SAMPLE_RATE), order=settings.get('order', 1))

    def __call__(self, audio: Union[str, Path, np.ndarray], sample_rate: Optional[int] = None) -> np.ndarray:
        """``audio``: a path, or a waveform ``[N]`` or ``[channels, N]`` at ``sample_rate``
        (default: the extractor's rate; other rates are resampled)."""
        librosa = require('librosa', 'MFCC extraction')
        if isinstance(audio, (str, Path)):
            signal = load_audio(audio, self.sample_rate)
        else:
            signal = np.asarray(audio, dtype=np.float32)
            if signal.ndim == 2:
                signal = librosa.to_mono(signal)
            if signal.ndim != 1 or signal.size == 0:
                raise AudioError(f'expected a waveform [N] or [channels, N] with samples, got shape {signal.shape}')
            if sample_rate is not None and sample_rate != self.sample_rate:
                signal = librosa.resample(signal, orig_sr=sample_rate, target_sr=self.sample_rate)
        if self.mean_signal_length is not None:
            signal = centre_fit(signal, self.mean_signal_length)
        if self.order == 1:
            feats = librosa.feature.mfcc(y=signal, sr=self.sample_rate, n_mfcc=self.n_mfcc)
        else:
            static = librosa.feature.mfcc(y=signal, sr=self.sample_rate, n_mfcc=self.n_mfcc // 3)
            width = min(9, static.shape[1] - (1 - static.shape[1] % 2))    # librosa's delta needs an odd width <= frames
            if width < 3:
                raise AudioError(f'order=3 needs at least 3 frames, got {static.shape[1]}')
            feats = np.concatenate([
                static, librosa.feature.delta(static, width=width, order=1),
                librosa.feature.delta(static, width=width, order=2)])
        return feats.astype(np.float32)

    def __repr__(self) -> str:
        return (f'MFCCExtractor(mean_signal_length={self.mean_signal_length}, n_mfcc={self.n_mfcc}, '
                f'sample_rate={self.sample_rate}, order={self.order})')
