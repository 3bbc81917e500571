"""Where a recording holds speech: a small energy and periodicity detector, no model, no extra dependency.

A frame (46 ms, hop 23 ms at 22050 Hz: the MFCC hop) is *voiced speech* when

- its level is at least `min_level_db` dBFS (default -70: quieter is silence or a faint hiss),
- it stands `snr_db` (6 dB) above the recording's floor (the 5th percentile of frame levels): speech
  rises and falls with its syllables, so a steady hum, fan or hiss, however loud, is not speech, and
- it is periodic at a voice pitch (70-400 Hz): the normalised cross-correlation of the frame with itself
  has a peak of at least `voicing` (0.45) at a lag in that range, after a dip (low-frequency noise, whose
  correlation only decays, has no such peak; white noise has no high peak).

Voiced frames are widened by `hangover` seconds on each side, so the consonants and short pauses
around them count as speech too. Why not a trained VAD: the well-kept neural ones need torchaudio or
onnxruntime and their own weights; this detector is a few lines, deterministic, and decides exactly what
the pipeline needs: is there voiced sound to judge, or only silence and noise. It does not tell
speech from singing or a periodic machine sound (a beeping alarm counts as voiced).
"""
from dataclasses import dataclass
from typing import List, Sequence

import numpy as np
import torch

from .audio import DEFAULT_SAMPLE_RATE


@dataclass
class SpeechActivity:
    """Frame decisions of `SpeechDetector` for one recording.

    Attributes:
        voiced: `[frames]` bool, the frames that passed level, noise-floor and pitch tests.
        speech: `[frames]` bool, `voiced` widened by the hangover.
        level_db: `[frames]` frame level in dBFS (RMS; a full-scale sine is -3 dB).
        hop_seconds: time between frame starts; frame `i` covers `[i * hop, i * hop + frame)`.
        frame_seconds: frame duration.
        noise_floor_db: the 5th percentile of `level_db`.
    """
    voiced: np.ndarray
    speech: np.ndarray
    level_db: np.ndarray
    hop_seconds: float
    frame_seconds: float
    noise_floor_db: float

    def frames_within(self, start: float = 0.0, end: float = float('inf')) -> np.ndarray:
        """`[frames]` bool: the frames whose centre lies in `[start, end)` seconds."""
        centres = np.arange(len(self.voiced)) * self.hop_seconds + self.frame_seconds / 2
        return (centres >= start) & (centres < end)

    def voiced_seconds(self, start: float = 0.0, end: float = float('inf')) -> float:
        """Seconds of voiced frames whose centre lies in `[start, end)`."""
        return float(self.voiced[self.frames_within(start, end)].sum() * self.hop_seconds)

    def speech_regions(self):
        """`[(start s, end s), ...]` of consecutive speech frames."""
        edges = np.flatnonzero(np.diff(np.concatenate([[0], self.speech.astype(np.int8), [0]])))
        return [(float(a * self.hop_seconds), float((b - 1) * self.hop_seconds + self.frame_seconds))
                for a, b in zip(edges[::2], edges[1::2])]


def _fast_size(n: int) -> int:
    """The smallest `2^a 3^b 5^c >= n` (sizes FFTs are fast at)."""
    best = 1 << (n - 1).bit_length()
    p3 = 1
    while p3 < best:
        p5 = p3
        while p5 < best:
            p2 = p5
            while p2 < n:
                p2 *= 2
            best = min(best, p2)
            p5 *= 5
        p3 *= 3
    return best


class SpeechDetector:
    """Finds voiced speech in a mono waveform (see the module docstring for the tests a frame passes).

    Args:
        sample_rate: rate of the waveforms given to `__call__`.
        frame_length, hop_length: frame size and step in samples (1024 and 512 at 22050 Hz: 46 and 23 ms).
        min_level_db: frames quieter than this (dBFS RMS) are never speech.
        snr_db: how far above the recording's floor (5th percentile of frame levels) a voiced frame must be.
        voicing: the lowest normalised autocorrelation peak of a voiced frame.
        min_pitch, max_pitch: the pitch range searched, Hz.
        hangover: seconds of speech kept around voiced frames.
    """

    def __init__(self, sample_rate: int = DEFAULT_SAMPLE_RATE, frame_length: int = 1024, hop_length: int = 512,
                 min_level_db: float = -70.0, snr_db: float = 6.0, voicing: float = 0.45,
                 min_pitch: float = 70.0, max_pitch: float = 400.0, hangover: float = 0.2):
        self.sample_rate, self.frame_length, self.hop_length = sample_rate, frame_length, hop_length
        self.min_level_db, self.snr_db, self.voicing = min_level_db, snr_db, voicing
        self.min_lag = max(1, int(sample_rate / max_pitch))
        self.max_lag = min(frame_length // 2, int(np.ceil(sample_rate / min_pitch)))
        self.hangover = hangover

    def __call__(self, signal: np.ndarray) -> SpeechActivity:
        """The speech activity of a mono waveform `[N]` at `sample_rate`."""
        return self.batch([signal])[0]

    @torch.no_grad()
    def batch(self, signals: Sequence[np.ndarray]) -> List[SpeechActivity]:
        """`__call__` for several waveforms of any lengths, computed together (same results)."""
        frames = []
        for signal in signals:
            x = torch.as_tensor(np.asarray(signal, dtype=np.float32))
            if len(x) < self.frame_length:
                x = torch.nn.functional.pad(x, (0, self.frame_length - len(x)))
            frames.append(x.unfold(0, self.frame_length, self.hop_length))                # [F, N]
        counts = [len(f) for f in frames]
        frames = torch.cat(frames)
        frames = frames - frames.mean(dim=1, keepdim=True)
        level_db = (10.0 * torch.log10(frames.square().mean(dim=1).double() + 1e-12)).numpy()
        floors = np.repeat([np.quantile(level_db[a:a + n], 0.05) for a, n in zip(np.cumsum([0] + counts), counts)],
                           counts)
        loud = (level_db >= self.min_level_db) & (level_db >= floors + self.snr_db)
        voiced_all = np.zeros(len(level_db), dtype=bool)
        if loud.any():                                     # the pitch test only where the level tests passed
            voiced_all[loud] = self._periodic(frames[torch.from_numpy(loud)]).numpy()
        spread = int(round(self.hangover * self.sample_rate / self.hop_length))
        out, start = [], 0
        for count in counts:
            level, voiced = level_db[start:start + count], voiced_all[start:start + count]
            noise_floor = float(floors[start])
            start += count
            speech = voiced.copy()
            if spread and voiced.any():
                speech = np.convolve(voiced.astype(np.int32), np.ones(2 * spread + 1, dtype=np.int32), mode='same') > 0
            out.append(SpeechActivity(
                voiced=voiced, speech=speech, level_db=level.astype(np.float32), hop_seconds=self.hop_length / self.sample_rate,
                frame_seconds=self.frame_length / self.sample_rate, noise_floor_db=noise_floor))
        return out

    def _periodic(self, frames: torch.Tensor) -> torch.Tensor:
        """`[F]` bool: a normalised cross-correlation peak >= `voicing` at a pitch lag, after a dip."""
        n = frames.shape[1]
        size = _fast_size(n + self.max_lag + 1)                                          # no circular wrap up to max_lag
        spectrum = torch.fft.rfft(frames, n=size)
        corr = torch.fft.irfft(spectrum.real.square() + spectrum.imag.square(), n=size)[:, :self.max_lag + 1]
        cum = torch.nn.functional.pad(frames.square().cumsum(dim=1), (1, 0))              # cum[:, k] = sum x[:k]^2
        lags = torch.arange(self.max_lag + 1)
        head = cum[:, n - lags]                                                          # sum x[0 : n - lag]^2
        tail = cum[:, -1:] - cum[:, lags]                                                # sum x[lag : n]^2
        nccf = corr / torch.sqrt(head * tail + 1e-12)
        window = nccf[:, self.min_lag:]
        peak, at = window.max(dim=1)
        dip = torch.cummin(nccf, dim=1).values.gather(1, (at + self.min_lag).unsqueeze(1)).squeeze(1)
        return (peak >= self.voicing) & (at > 0) & (peak - dip >= 0.2)
