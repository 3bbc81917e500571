"""MFCC features exactly as the TIM-Net releases expect them."""
from pathlib import Path
from typing import Optional, Sequence, Union

import numpy as np
import torch

from .._utils import require
from .._validation import check_choice
from ..exceptions import AudioError, ConfigurationError
from .audio import DEFAULT_SAMPLE_RATE, LEVEL_MODES, as_waveform, centre_fit, load_audio, normalize_level
from ..layers.mfcc import HOP_LENGTH, mfcc


BACKENDS = ('torch', 'librosa')


class MFCCExtractor:
    """MFCC frames `[n_mfcc, frames]` (float32) from a path or a waveform.

    For the released weights (default, `order=1`): audio read at 22050 Hz mono as `librosa.load`
    reads it, centre pad or crop to `mean_signal_length` samples, `librosa.feature.mfcc(n_mfcc=39)`
    with librosa's defaults (n_fft 2048, hop 512, centred frames), so `frames = 1 + mean_signal_length // 512`.
    The default `backend="torch"` computes the MFCC with `tim_zoo.layers.mfcc.mfcc` (no librosa, no
    numba compilation, batched with `batch`); `backend="librosa"` calls librosa itself.

    `order=3` gives the seed's features: `n_mfcc // 3` static coefficients followed by their deltas
    and delta-deltas (13 + 13 + 13 for `n_mfcc=39`).

    Args:
        mean_signal_length: samples after centre pad/crop; None keeps each utterance's own length.
        n_mfcc: output channels.
        sample_rate: rate the audio is read (or resampled) at.
        order: 1 (static MFCC) or 3 (static, delta, delta-delta).
        level: `"none"` (the signal as read: the authors' features) or `"peak"` (scaled to a peak at full
            scale before padding: for models trained on peak-normalised audio); see
            `tim_zoo.data.audio.LEVEL_MODES`.
        backend: `"torch"` or `"librosa"`.
    """

    def __init__(
            self,
            mean_signal_length: Optional[int] = 96000,
            n_mfcc: int = 39,
            sample_rate: int = DEFAULT_SAMPLE_RATE,
            order: int = 1,
            level: str = 'none',
            backend: str = 'torch',
    ):
        if order not in (1, 3):
            raise ConfigurationError(f'order must be 1 (static MFCC) or 3 (with deltas), got {order}')
        if order == 3 and n_mfcc % 3:
            raise ConfigurationError(f'order=3 needs n_mfcc divisible by 3, got {n_mfcc}')
        check_choice('level', level, LEVEL_MODES)
        check_choice('backend', backend, BACKENDS)
        if mean_signal_length is not None and mean_signal_length < 1:
            raise ConfigurationError(f'mean_signal_length must be a positive number of samples, got {mean_signal_length}')
        self.mean_signal_length = mean_signal_length
        self.n_mfcc = n_mfcc
        self.sample_rate = sample_rate
        self.order = order
        self.level = level
        self.backend = backend

    @property
    def frames(self) -> Optional[int]:
        """Frames per utterance (None when lengths are kept)."""
        return None if self.mean_signal_length is None else 1 + self.mean_signal_length // HOP_LENGTH

    @property
    def settings(self) -> dict:
        """What a checkpoint or a feature file records to reproduce these features."""
        return dict(
            mean_signal_length=self.mean_signal_length, n_mfcc=self.n_mfcc, sample_rate=self.sample_rate,
            order=self.order, hop_length=HOP_LENGTH, frames=self.frames, level=self.level)

    @classmethod
    def from_settings(cls, settings: dict, backend: str = 'torch') -> 'MFCCExtractor':
        """Rebuild the extractor a model's `feature_settings` describe (no `level`: `"none"`, as
        checkpoints written before levels were recorded)."""
        hop = settings.get('hop_length', HOP_LENGTH)
        if hop != HOP_LENGTH:
            raise ConfigurationError(f'the feature settings ask for hop_length={hop}, but MFCCExtractor computes '
                                     f'frames every {HOP_LENGTH} samples (librosa\'s default, as the TIM-Net '
                                     f'releases); features of another hop would not be the ones the model learned')
        return cls(
            mean_signal_length=settings.get('mean_signal_length', 96000), n_mfcc=settings.get('n_mfcc', 39),
            sample_rate=settings.get('sample_rate', DEFAULT_SAMPLE_RATE), order=settings.get('order', 1),
            level=settings.get('level', 'none'), backend=backend)

    def signal(self, audio: Union[str, Path, np.ndarray], sample_rate: Optional[int] = None) -> np.ndarray:
        """The model-ready waveform `[mean_signal_length]`: read or resampled, level-normalised, centre pad/crop."""
        if isinstance(audio, (str, Path)):
            signal = load_audio(audio, self.sample_rate)
        else:
            signal = as_waveform(audio, sample_rate, self.sample_rate)
        signal = normalize_level(signal, self.level)
        return signal if self.mean_signal_length is None else centre_fit(signal, self.mean_signal_length)

    def __call__(self, audio: Union[str, Path, np.ndarray], sample_rate: Optional[int] = None) -> np.ndarray:
        """`audio`: a path, or a waveform `[N]` or `[channels, N]` at `sample_rate`
        (default: the extractor's rate; other rates are resampled)."""
        return self.batch([self.signal(audio, sample_rate)])[0]

    #: waveforms transformed per call in `batch` (as fast per waveform as 64, a quarter of the memory)
    signals_per_call = 16

    def batch(self, signals: Sequence[np.ndarray], device=None) -> np.ndarray:
        """Features `[B, n_mfcc, frames]` of model-ready waveforms of equal length (from `signal`),
        computed together (on `device` with the torch backend)."""
        if self.backend == 'librosa':
            return np.stack([self._librosa(s) for s in signals])


        n = self.n_mfcc if self.order == 1 else self.n_mfcc // 3
        static = np.concatenate([      # a few signals per call: the STFT of 64 takes 360 MB at 96000 samples
            mfcc(torch.as_tensor(np.stack(signals[a:a + self.signals_per_call]), dtype=torch.float32, device=device),
                 self.sample_rate, n).cpu().numpy() for a in range(0, len(signals), self.signals_per_call)])
        return static if self.order == 1 else np.stack([self._with_deltas(s) for s in static])

    def _librosa(self, signal: np.ndarray) -> np.ndarray:
        librosa = require('librosa', 'MFCC extraction with backend="librosa"')
        n = self.n_mfcc if self.order == 1 else self.n_mfcc // 3
        static = librosa.feature.mfcc(y=signal, sr=self.sample_rate, n_mfcc=n).astype(np.float32)
        return static if self.order == 1 else self._with_deltas(static)

    @staticmethod
    def _with_deltas(static: np.ndarray) -> np.ndarray:
        """Static coefficients `[c, T]` followed by deltas and delta-deltas as `librosa.feature.delta`
        (a Savitzky-Golay derivative, width 9 or the largest odd width the frames allow, `mode="interp"`)."""
        signal = require('scipy.signal', 'MFCC deltas')
        width = min(9, static.shape[1] - (1 - static.shape[1] % 2))
        if width < 3:
            raise AudioError(f'order=3 needs at least 3 frames, got {static.shape[1]}')
        deltas = [signal.savgol_filter(static, width, deriv=k, polyorder=k, axis=-1, mode='interp') for k in (1, 2)]
        return np.concatenate([static] + deltas).astype(np.float32)

    def __repr__(self) -> str:
        return (f'MFCCExtractor(mean_signal_length={self.mean_signal_length}, n_mfcc={self.n_mfcc}, '
                f'sample_rate={self.sample_rate}, order={self.order}, level={self.level!r}, backend={self.backend!r})')
