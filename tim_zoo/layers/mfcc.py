"""MFCC in PyTorch, batched, on CPU or CUDA: `librosa.feature.mfcc` with librosa's defaults, without librosa; and
`MFCC`, the front-end module a model can put in front of itself.

The same steps as librosa 0.10/0.11: a centred STFT (`n_fft` 2048, hop 512, periodic Hann window,
zero padding), the power spectrum through 128 Slaney-style mel filters (Slaney area normalisation,
0 Hz to `sample_rate / 2`), `10 log10(max(1e-10, S))` clipped to 80 dB below each signal's maximum,
and an orthonormal DCT-II. Equal to librosa within float32 rounding: `tests/test_predict.py` checks
real EMODB files to `1e-4` of each file's largest coefficient (observed: about `2e-6`).
"""
import functools
import math
from typing import Optional

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from .._validation import check_choice
from ..exceptions import ConfigurationError, InputShapeError

N_FFT = 2048
HOP_LENGTH = 512
N_MELS = 128
TOP_DB = 80.0
AMIN = 1e-10
#: the keys of `feature_settings` (`MFCCExtractor.settings`, checkpoints, feature files, the Keras releases) that
#: `MFCC.from_settings` knows: how the features are computed, and what only describes them (corpus, release, ...)
SETTINGS_KEYS = {'mean_signal_length', 'n_mfcc', 'sample_rate', 'order', 'hop_length', 'frames', 'level',
                 'normalize', 'gmm_select', 'gmm_fits', 'gmm_seed', 'label_names', 'corpus', 'release', 'depth', 'kfold_seed'}
#: frames of the Savitzky-Golay window of the deltas (`librosa.feature.delta`'s default)
DELTA_WIDTH = 9


def _hz_to_mel(freq: np.ndarray) -> np.ndarray:
    """Slaney's mel scale (librosa `htk=False`): linear below 1 kHz, logarithmic above."""
    freq = np.asarray(freq, dtype=np.float64)
    f_sp, min_log_hz = 200.0 / 3, 1000.0
    min_log_mel, logstep = min_log_hz / f_sp, math.log(6.4) / 27.0
    mels = freq / f_sp
    above = freq >= min_log_hz
    mels[above] = min_log_mel + np.log(freq[above] / min_log_hz) / logstep
    return mels


def _mel_to_hz(mels: np.ndarray) -> np.ndarray:
    mels = np.asarray(mels, dtype=np.float64)
    f_sp, min_log_hz = 200.0 / 3, 1000.0
    min_log_mel, logstep = min_log_hz / f_sp, math.log(6.4) / 27.0
    freqs = f_sp * mels
    above = mels >= min_log_mel
    freqs[above] = min_log_hz * np.exp(logstep * (mels[above] - min_log_mel))
    return freqs


@functools.lru_cache(maxsize=8)
def mel_filterbank(sample_rate: int, n_fft: int = N_FFT, n_mels: int = N_MELS) -> np.ndarray:
    """`[n_mels, 1 + n_fft // 2]` float32 triangular filters, as `librosa.filters.mel` with its defaults."""
    fft_freqs = np.linspace(0, sample_rate / 2, 1 + n_fft // 2)
    mel_freqs = _mel_to_hz(np.linspace(_hz_to_mel(np.array([0.0]))[0], _hz_to_mel(np.array([sample_rate / 2]))[0],
                                       n_mels + 2))
    widths = np.diff(mel_freqs)
    ramps = mel_freqs[:, None] - fft_freqs[None, :]
    lower = -ramps[:-2] / widths[:-1, None]
    upper = ramps[2:] / widths[1:, None]
    weights = np.maximum(0, np.minimum(lower, upper)).astype(np.float32)
    weights *= (2.0 / (mel_freqs[2:] - mel_freqs[:-2]))[:, None]
    return weights


@functools.lru_cache(maxsize=8)
def _dct_matrix(n_mels: int, n_mfcc: int) -> np.ndarray:
    """`[n_mfcc, n_mels]` orthonormal DCT-II rows (`scipy.fft.dct(type=2, norm="ortho")`)."""
    n = np.arange(n_mels)
    k = np.arange(n_mfcc)[:, None]
    basis = np.cos(np.pi * k * (2 * n + 1) / (2 * n_mels)) * math.sqrt(2.0 / n_mels)
    basis[0] /= math.sqrt(2.0)
    return basis.astype(np.float32)


def mfcc(
        signals: torch.Tensor,
        sample_rate: int,
        n_mfcc: int = 39,
        n_fft: int = N_FFT,
        hop_length: int = HOP_LENGTH,
        n_mels: int = N_MELS,
        top_db: Optional[float] = TOP_DB,
) -> torch.Tensor:
    """MFCC `[B, n_mfcc, 1 + N // hop_length]` of waveforms `signals` `[B, N]` (or `[N]` -> `[n_mfcc, T]`).

    Each row is its own signal: the 80 dB floor follows that signal's loudest mel bin, as librosa does
    for one signal, so a row's features do not depend on the other rows.
    """
    single = signals.dim() == 1
    x = signals.unsqueeze(0) if single else signals
    x = x.to(torch.float32)
    power = _power_spectrogram(x, n_fft, hop_length)                                    # [B, F, T]
    mel = torch.as_tensor(mel_filterbank(sample_rate, n_fft, n_mels), device=x.device)
    db = 10.0 * torch.log10(torch.clamp(torch.matmul(mel, power), min=AMIN))        # [B, M, T]
    if top_db is not None:
        db = torch.maximum(db, db.amax(dim=(1, 2), keepdim=True) - top_db)
    out = torch.matmul(torch.as_tensor(_dct_matrix(n_mels, n_mfcc), device=x.device), db)
    return out[0] if single else out


def _power_spectrogram(x: torch.Tensor, n_fft: int, hop_length: int) -> torch.Tensor:
    """`|STFT|^2` `[B, 1 + n_fft // 2, 1 + N // hop]` (centred frames, zero padding). Frames that see only
    zeros in every row (the centre padding of short utterances) are exactly zero, so only the frames that
    overlap a non-zero sample are transformed."""
    batch, n = x.shape
    frames = 1 + n // hop_length
    nonzero = torch.nonzero(x.abs().amax(dim=0)).flatten()
    out = torch.zeros(batch, 1 + n_fft // 2, frames, dtype=x.dtype, device=x.device)
    if len(nonzero) == 0:
        return out
    first, last = int(nonzero[0]), int(nonzero[-1])
    t0 = max(0, (first - n_fft // 2) // hop_length)                   # frame t covers [t*hop - n_fft/2, t*hop + n_fft/2)
    t1 = min(frames, (last + n_fft // 2) // hop_length + 1)
    padded = torch.nn.functional.pad(x, (n_fft // 2, n_fft // 2))
    span = padded[:, t0 * hop_length:(t1 - 1) * hop_length + n_fft]
    window = torch.hann_window(n_fft, periodic=True, dtype=x.dtype, device=x.device)
    spec = torch.stft(span, n_fft, hop_length, window=window, center=False, return_complex=True)
    power = spec.real.square()
    out[:, :, t0:t1] = power.addcmul_(spec.imag, spec.imag)             # fewer temporaries than re^2 + im^2
    return out


def savgol_matrices(width: int, deriv: int) -> tuple:
    """Savitzky-Golay derivative of order `deriv` (polynomial order `deriv`, unit spacing), as
    `scipy.signal.savgol_filter(..., mode="interp")`: `(kernel [width], head [width // 2, width], tail [width // 2,
    width])`. Inside, output frame t is `kernel @ x[t - width // 2 : t + width // 2 + 1]`; the first and last
    `width // 2` frames evaluate the polynomial fitted to the first (last) `width` frames."""
    positions = np.arange(width, dtype=np.float64)
    design = positions[:, None] ** np.arange(deriv + 1)[None, :]            # [width, deriv + 1]
    fit = np.linalg.pinv(design)                                             # coefficients from frames

    def at(p: np.ndarray) -> np.ndarray:                                     # d^deriv/dx^deriv of x^j at p
        powers = np.arange(deriv + 1)
        factor = np.array([math.factorial(j) / math.factorial(j - deriv) if j >= deriv else 0.0 for j in powers])
        return factor[None, :] * np.where(powers >= deriv, p[:, None] ** np.maximum(powers - deriv, 0), 0.0)

    half = width // 2
    kernel = (at(np.array([float(half)])) @ fit)[0]
    head = at(np.arange(half, dtype=np.float64)) @ fit
    tail = at(np.arange(width - half, width, dtype=np.float64)) @ fit
    return kernel.astype(np.float32), head.astype(np.float32), tail.astype(np.float32)


class MFCC(nn.Module):
    """Waveforms `[B, N]` -> MFCC `[B, n_mfcc, 1 + N // hop_length]`: `MFCCExtractor` as a module, so that a model can
    take audio (`nn.Sequential(MFCC.from_settings(settings), model)`), train through it and be exported with it
    (`torch.export`, ONNX: the STFT becomes ONNX's DFT).

    The same steps as `tim_zoo.data.MFCCExtractor` after reading the audio: `level` (`"peak"` scales each waveform
    to a peak of 1; silence stays silent), centre pad or crop to `length` samples (None: each batch's own length),
    the MFCC of `mfcc`, and with `order=3` the static coefficients followed by their deltas and delta-deltas
    (`librosa.feature.delta`'s Savitzky-Golay derivative, width 9, `mode="interp"`). Equal to `MFCCExtractor` within
    float32 rounding: `1e-4` of each utterance's largest coefficient (tested on EMODB recordings and noise).
    Not done here: reading files, stereo to mono and resampling; the input must already be mono at
    `sample_rate` (`tim_zoo.data.load_audio` gives that). Integer PCM is scaled to [-1, 1) as the extractor does.
    `order=3` needs 9 frames or more.

    Args:
        sample_rate: the rate of the input (only the mel filters depend on it).
        n_mfcc: output channels (with `order=3`, `n_mfcc // 3` static coefficients and their two derivatives).
        order: 1 (static MFCC) or 3 (with deltas).
        level: `"none"` or `"peak"`.
        length: samples after centre pad/crop (`mean_signal_length`), or None.
        n_fft, hop_length, n_mels, top_db: the STFT, mel and dB floor settings (librosa's defaults).
    """

    def __init__(self, sample_rate: int = 22050, n_mfcc: int = 39, order: int = 1, level: str = 'none',
                 length: Optional[int] = None, n_fft: int = N_FFT, hop_length: int = HOP_LENGTH, n_mels: int = N_MELS,
                 top_db: Optional[float] = TOP_DB):
        super().__init__()
        check_choice('order', order, (1, 3))
        check_choice('level', level, ('none', 'peak'))
        if order == 3 and n_mfcc % 3:
            raise ConfigurationError(f'order=3 needs n_mfcc divisible by 3, got {n_mfcc}')
        if length is not None and length < 1:
            raise ConfigurationError(f'length must be a positive number of samples, got {length}')
        self.sample_rate, self.n_mfcc, self.order, self.level, self.length = sample_rate, n_mfcc, order, level, length
        self.n_fft, self.hop_length, self.top_db = n_fft, hop_length, top_db
        static = n_mfcc if order == 1 else n_mfcc // 3
        # constants, rebuilt from the arguments: not in the state dict, so a model with this front-end loads the
        # weights of the model without it under the same names
        self.register_buffer('window', torch.hann_window(n_fft, periodic=True), persistent=False)
        self.register_buffer('mel', torch.from_numpy(mel_filterbank(sample_rate, n_fft, n_mels)), persistent=False)
        self.register_buffer('dct', torch.from_numpy(_dct_matrix(n_mels, static)), persistent=False)
        for k in (1, 2):
            kernel, head, tail = (torch.from_numpy(m) for m in savgol_matrices(DELTA_WIDTH, k))
            self.register_buffer(f'delta{k}_kernel', kernel.view(1, 1, -1), persistent=False)
            self.register_buffer(f'delta{k}_head', head, persistent=False)
            self.register_buffer(f'delta{k}_tail', tail, persistent=False)

    @classmethod
    def from_settings(cls, settings: dict) -> 'MFCC':
        """The front-end of a checkpoint's or a feature file's `feature_settings` (`model.pretrained_cfg`,
        `FeatureSet.settings`), as `MFCCExtractor.from_settings` reads them. Settings the module cannot compute
        (GMM frame selection, per-speaker normalisation, another hop) and unknown keys are refused."""
        unknown = sorted(set(settings) - SETTINGS_KEYS)
        if unknown:
            raise ConfigurationError(f'feature settings {", ".join(unknown)} are not MFCC settings (known: '
                                     f'{", ".join(sorted(SETTINGS_KEYS))})')
        if settings.get('gmm_select'):
            raise ConfigurationError(f'these features keep {settings["gmm_select"]} GMM-selected frames per utterance '
                                     f'(gmm_select), which the MFCC module does not do: it gives every frame')
        if settings.get('normalize', 'none') != 'none':
            raise ConfigurationError(f'these features are normalised per speaker (normalize='
                                     f'{settings["normalize"]!r}), which needs several recordings of the speaker: '
                                     f'EmotionRecognizer.predict_many(..., same_speaker=True) does it')
        hop = settings.get('hop_length', HOP_LENGTH)
        length = settings.get('mean_signal_length', 96000)
        frames = settings.get('frames')
        if frames is not None and length is not None and frames != 1 + length // hop:
            raise ConfigurationError(f'feature settings give {frames} frames for {length} samples at hop {hop} '
                                     f'({1 + length // hop} expected)')
        return cls(sample_rate=settings.get('sample_rate', 22050), n_mfcc=settings.get('n_mfcc', 39),
                   order=settings.get('order', 1), level=settings.get('level', 'none'), length=length, hop_length=hop)

    def frames(self, samples: int) -> int:
        """Output frames for `samples` input samples."""
        return 1 + (self.length or samples) // self.hop_length

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not torch.compiler.is_compiling():
            self._check(x)
        if not x.is_floating_point():                    # integer PCM, scaled to [-1, 1) as MFCCExtractor does
            info = torch.iinfo(x.dtype)
            x = (x.to(torch.float64) - (info.max + 1 + info.min) / 2) / ((info.max - info.min + 1) / 2)
        x = x.to(self.window.dtype)
        if self.level == 'peak':
            peak = x.abs().amax(dim=1, keepdim=True)
            x = x / torch.where(peak > 0, peak, torch.ones_like(peak))
        if self.length is not None:
            x = _centre_fit(x, self.length)
        padded = F.pad(x, (self.n_fft // 2, self.n_fft // 2))
        spec = torch.stft(padded, self.n_fft, self.hop_length, window=self.window, center=False, return_complex=True)
        power = spec.real.square() + spec.imag.square()                                 # [B, F, T]
        db = 10.0 * torch.log10(torch.clamp(torch.matmul(self.mel, power), min=AMIN))    # [B, M, T]
        if self.top_db is not None:
            db = torch.maximum(db, db.amax(dim=(1, 2), keepdim=True) - self.top_db)
        static = torch.matmul(self.dct, db)                                             # [B, c, T]
        if self.order == 1:
            return static
        if not torch.compiler.is_compiling() and static.shape[-1] < DELTA_WIDTH:
            raise InputShapeError(f'MFCC(order=3) needs at least {DELTA_WIDTH} frames ({(DELTA_WIDTH - 1) * self.hop_length} '
                                  f'samples), got {static.shape[-1]}')
        return torch.cat([static, self._delta(static, 1), self._delta(static, 2)], dim=1)

    def _check(self, x: torch.Tensor) -> None:
        if x.ndim != 2:
            raise InputShapeError(f'MFCC expects a 2-D input [B, N]: mono waveforms at {self.sample_rate} Hz, got shape '
                                  f'{tuple(x.shape)}' + ('; for [B, 1, N] use x.squeeze(1)' if x.ndim == 3 else ''))
        if x.shape[1] < self.hop_length:
            looks = ('; this looks like [N, channels] (soundfile\'s layout): give x.T, one channel per row'
                     if x.shape[0] > x.shape[1] else '')
            raise InputShapeError(f'MFCC expects waveforms [B, N] of at least {self.hop_length} samples, got shape '
                                  f'{tuple(x.shape)}{looks}')
        if x.dtype == torch.bool or x.is_complex():
            raise InputShapeError(f'MFCC expects float or integer PCM samples, got {x.dtype}')

    def _delta(self, x: torch.Tensor, k: int) -> torch.Tensor:
        """Savitzky-Golay derivative `k` over time of `[B, c, T]` (`mode="interp"` at the edges)."""
        kernel, head, tail = (getattr(self, f'delta{k}_{part}') for part in ('kernel', 'head', 'tail'))
        t = x.shape[-1]
        # a weighted sum of shifted views: no reshape on T, so an export keeps T dynamic
        inside = sum(kernel[0, 0, j] * x[..., j:t - DELTA_WIDTH + 1 + j] for j in range(DELTA_WIDTH))
        first = torch.matmul(x[..., :DELTA_WIDTH], head.t())
        last = torch.matmul(x[..., t - DELTA_WIDTH:], tail.t())
        return torch.cat([first, inside, last], dim=-1)

    def extra_repr(self) -> str:
        return (f'sample_rate={self.sample_rate}, n_mfcc={self.n_mfcc}, order={self.order}, level={self.level!r}, '
                f'length={self.length}')


def _centre_fit(x: torch.Tensor, length: int) -> torch.Tensor:
    """Centre zero-pad or centre-crop `[B, N]` to `length` samples (`tim_zoo.data.audio.centre_fit`: padding
    `(p // 2, p // 2 + p % 2)`, crop from `(N - length) // 2`). Computed by indexing, without a branch or a slice
    on `N`, so that an export with a dynamic length computes both: output sample `i` is input sample
    `i + trunc((N - length) / 2)`, zero outside the input."""
    n = torch.ones_like(x[0], dtype=torch.long).sum()                     # N as a tensor: no guard on it
    start = torch.div(n - length, 2, rounding_mode='trunc')             # the crop's floor, the padding's ceiling
    index = torch.arange(length, device=x.device) + start
    inside = (index >= 0) & (index < n)
    return x.index_select(1, index.clamp(min=0).minimum(n - 1)) * inside.to(x.dtype)
