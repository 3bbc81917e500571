"""Where a recording holds speech: a small energy and periodicity detector, no model, no extra dependency.

A frame (46 ms, hop 23 ms at 22050 Hz: the MFCC hop) is *voiced speech* when

- its level is at least `min_level_db` dBFS (default -70: quieter is silence or a faint hiss),
- it stands `snr_db` (6 dB) above the recording's floor (the 5th percentile of frame levels): speech
  rises and falls with its syllables, so a steady hum, fan or hiss, however loud, is not speech, and
- it is periodic at a voice pitch (70-400 Hz): the normalised cross-correlation of the frame with itself
  has a peak of at least `voicing` (0.45) at a lag in that range, after a dip (low-frequency noise, whose
  correlation only decays, has no such peak; white noise has no high peak).

Some periodic frames are tones, not a voice (*tonal*; with `exclude_tonal`, the default, not voiced):

- a pitch that holds still: a voice's pitch moves from frame to frame, while beeps, dial and ringing tones,
  DTMF, music notes and chords hold theirs. Frames in a run of `steady_frames` (4, 92 ms) or more whose pitch
  changes by less than `steady_tolerance` (0.2 %) from frame to frame, and the periodic frames at the run's
  ends (the tone's onset and offset);
- a pure tone: more than `pure_tone` (99.5 %) of the frame's energy in one spectral peak (a siren's gliding
  sine). A voice spreads its energy over harmonics.

Measured on the 535 EMODB recordings: at most 14 % of a recording's periodic frames hold their pitch and at
most 12 % are pure tones; of beeps, busy and ringback tones, DTMF and plucked chords 87-100 % hold their pitch,
of a siren 94 % are pure tones.

A tone under speech hides from both tests (the frame's periodicity is the voice's), so the detector also lists
*spectral lines*: narrow peaks (300-4000 Hz) of frames four times as long (186 ms, every 93 ms), whose frequency
a tone keeps to within 1 Hz while a voice's harmonics move with its pitch (`SpeechActivity.steady_line`). In
EMODB's recordings one line frequency holds at most 20 % of the line frames (a 400 Hz mains-hum harmonic); a
1 kHz beep train 6 dB below the speech holds 30 % or more.

Voiced frames are widened by `hangover` seconds on each side, so the consonants and short pauses
around them count as speech too. Why not a trained VAD: the well-kept neural ones need torchaudio or
onnxruntime and their own weights; this detector is a few lines, deterministic, and decides exactly what
the pipeline needs: is there voiced sound to judge, or only silence, noise and tones. It does not tell
speech from singing, whose pitch moves too.
"""
import functools
from dataclasses import dataclass
from typing import Iterable, List, Optional, Sequence

import numpy as np
import torch

from .audio import DEFAULT_SAMPLE_RATE

#: the least voiced speech (seconds) that is something to judge or learn from (`EmotionRecognizer`'s `min_speech`)
MIN_SPEECH_SECONDS = 0.25


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
        tonal: `[frames]` bool, periodic frames (at least `min_level_db`, whatever the floor) of a tone rather than
            a voice (a pitch that holds still, or one pure tone): not in `voiced` unless the detector was built
            with `exclude_tonal=False`.
        lines: `[L, 2]` (line frame, Hz): the narrow spectral peaks of the long line frames (`line_frames` of them,
            `line_frame_seconds` every `line_hop_seconds`); a tone under speech keeps its line at one frequency
            while a voice's harmonics move (`steady_line`).
    """
    voiced: np.ndarray
    speech: np.ndarray
    level_db: np.ndarray
    hop_seconds: float
    frame_seconds: float
    noise_floor_db: float
    tonal: Optional[np.ndarray] = None
    lines: Optional[np.ndarray] = None
    line_hop_seconds: float = 0.0
    line_frame_seconds: float = 0.0
    line_frames: int = 0

    def tonal_seconds(self, start: float = 0.0, end: float = float('inf')) -> float:
        """Seconds of tonal frames whose centre lies in `[start, end)`."""
        if self.tonal is None:
            return 0.0
        return float(self.tonal[self.frame_range(start, end)].sum() * self.hop_seconds)

    def frame_range(self, start: float = 0.0, end: float = float('inf')) -> slice:
        """The frames whose centre lies in `[start, end)` seconds, as a slice (found by bisection: a long recording's
        windows each look at their own frames only)."""
        return _centred_in(self._centres, start, end)

    @functools.cached_property
    def _centres(self) -> np.ndarray:
        return np.arange(len(self.voiced)) * self.hop_seconds + self.frame_seconds / 2

    @functools.cached_property
    def _line_centres(self) -> np.ndarray:
        return np.arange(self.line_frames) * self.line_hop_seconds + self.line_frame_seconds / 2

    def voiced_seconds(self, start: float = 0.0, end: float = float('inf')) -> float:
        """Seconds of voiced frames whose centre lies in `[start, end)`."""
        return float(self.voiced[self.frame_range(start, end)].sum() * self.hop_seconds)

    def steady_line(self, start: float = 0.0, end: float = float('inf'), tolerance: float = 1.0):
        """`(Hz, share)`: the spectral line found in the most line frames whose centre lies in `[start, end)`
        (within `tolerance` Hz), and the share of those frames it is in; None without a line there."""
        if self.lines is None or not len(self.lines) or not self.line_frames:
            return None
        frames = _centred_in(self._line_centres, start, end)
        first, stop = frames.start, frames.stop
        if stop <= first:
            return None
        inside = _lines_within(self.lines, first, stop)     # lines are in frame order: found by bisection
        if not len(inside):
            return None
        freqs = np.sort(inside[:, 1])           # peaks are 2 bins apart at least: one per frame within tolerance
        counts = np.searchsorted(freqs, freqs + tolerance, 'right') - np.searchsorted(freqs, freqs - tolerance, 'left')
        best = int(counts.argmax())
        return float(freqs[best]), float(counts[best] / (stop - first))

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


class _Framer:
    """Frames of `length` samples every `hop` of a waveform given block by block: the frames `unfold` gives of the
    whole waveform (one zero-padded frame for a waveform shorter than a frame), holding less than a frame between
    blocks."""

    def __init__(self, length: int, hop: int):
        self.length, self.hop = length, hop
        self.held, self.made = np.zeros(0, dtype=np.float32), 0

    def push(self, block: np.ndarray) -> Optional[torch.Tensor]:
        self.held = np.concatenate([self.held, block]) if len(self.held) else block
        if len(self.held) < self.length:
            return None
        count = 1 + (len(self.held) - self.length) // self.hop
        frames = torch.from_numpy(np.ascontiguousarray(self.held)).unfold(0, self.length, self.hop)
        self.held, self.made = self.held[count * self.hop:], self.made + count
        return frames

    def finish(self) -> Optional[torch.Tensor]:
        if self.made:
            return None
        return torch.from_numpy(np.pad(self.held, (0, self.length - len(self.held)))).unsqueeze(0)

    def whole(self, signal: np.ndarray) -> torch.Tensor:
        frames = self.push(signal)
        return self.finish() if frames is None else frames


def _centred_in(centres: np.ndarray, start: float, end: float) -> slice:
    """The frames (of sorted `centres`, seconds) whose centre lies in `[start, end)`, by bisection."""
    return slice(int(np.searchsorted(centres, start, 'left')), int(np.searchsorted(centres, end, 'left')))


def _lines_within(lines: np.ndarray, first: int, stop: int) -> np.ndarray:
    """The lines (in frame order) of frames `[first, stop)`, their frames counted from `first`."""
    a, b = np.searchsorted(lines[:, 0], first, 'left'), np.searchsorted(lines[:, 0], stop, 'left')
    return lines[a:b] - [first, 0]


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
        steady_frames, steady_tolerance: a run of at least this many periodic frames whose pitch changes by less
            than this fraction from frame to frame is a tone, not a voice.
        pure_tone: a periodic frame with more than this share of its energy in one spectral peak is a tone.
        exclude_tonal: tonal frames are not voiced (False: they are, as before tones were told apart).
    """

    def __init__(self, sample_rate: int = DEFAULT_SAMPLE_RATE, frame_length: int = 1024, hop_length: int = 512,
                 min_level_db: float = -70.0, snr_db: float = 6.0, voicing: float = 0.45,
                 min_pitch: float = 70.0, max_pitch: float = 400.0, hangover: float = 0.2, steady_frames: int = 4,
                 steady_tolerance: float = 0.002, pure_tone: float = 0.995, exclude_tonal: bool = True):
        self.sample_rate, self.frame_length, self.hop_length = sample_rate, frame_length, hop_length
        self.min_level_db, self.snr_db, self.voicing = min_level_db, snr_db, voicing
        self.min_lag = max(1, int(sample_rate / max_pitch))
        self.max_lag = min(frame_length // 2, int(np.ceil(sample_rate / min_pitch)))
        self.hangover = hangover
        self.steady_frames, self.steady_tolerance, self.pure_tone = steady_frames, steady_tolerance, pure_tone
        self.exclude_tonal = exclude_tonal
        self.window = torch.hann_window(frame_length, periodic=True)
        self.line_frame_length, self.line_hop_length = 4 * frame_length, 4 * hop_length
        self.line_window = torch.hann_window(self.line_frame_length, periodic=True)

    #: frames measured per FFT call: bounds the detector's memory (about 60 MB) whatever the recording's length
    chunk_frames = 4096
    #: spectral lines (`_lines`) are looked for in frames 4 times as long (186 ms at 22050 Hz, 5.4 Hz a bin) every
    #: 4 hops (93 ms), between these frequencies (Hz), standing out this much, and this narrow
    line_band = (300.0, 4000.0)
    line_prominence = 10.0
    line_narrow = 0.02

    def __call__(self, signal: np.ndarray) -> SpeechActivity:
        """The speech activity of a mono waveform `[N]` at `sample_rate`."""
        return self.batch([signal])[0]

    @torch.no_grad()
    def batch(self, signals: Sequence[np.ndarray]) -> List[SpeechActivity]:
        """`__call__` for several waveforms of any lengths, computed together (same results)."""
        frames, lines = [], []
        for signal in signals:
            x = np.asarray(signal, dtype=np.float32)
            frames.append(_Framer(self.frame_length, self.hop_length).whole(x))
            lines.append(_Framer(self.line_frame_length, self.line_hop_length).whole(x))
        measures = self._measure(torch.cat(frames))
        found = self._lines(torch.cat(lines))
        bounds, line_bounds = np.cumsum([0] + [len(f) for f in frames]), np.cumsum([0] + [len(f) for f in lines])
        return [self._decide(*(m[a:b] for m in measures), _lines_within(found, c, d), d - c)
                for a, b, c, d in zip(bounds[:-1], bounds[1:], line_bounds[:-1], line_bounds[1:])]

    @torch.no_grad()
    def stream(self, blocks: Iterable[np.ndarray]) -> SpeechActivity:
        """`__call__` of the waveform the consecutive `blocks` (mono `[n]` each) make, holding only a block and a
        frame of it at a time: the same frames, so the same decisions, as the whole waveform."""
        framer, line_framer = _Framer(self.frame_length, self.hop_length), _Framer(self.line_frame_length,
                                                                                     self.line_hop_length)
        parts, line_parts, line_count = [], [], 0

        def add(frames, line_frames):
            nonlocal line_count
            if frames is not None:
                parts.append(self._measure(frames))
            if line_frames is not None:
                found = self._lines(line_frames)
                line_parts.append(found + [line_count, 0])
                line_count += len(line_frames)
        for block in blocks:
            block = np.asarray(block, dtype=np.float32)
            add(framer.push(block), line_framer.push(block))
        add(framer.finish(), line_framer.finish())
        return self._decide(*(np.concatenate(m) for m in zip(*parts)), np.concatenate(line_parts), line_count)

    def _lines(self, frames: torch.Tensor) -> np.ndarray:
        """`[L, 2]` (frame, Hz) of the narrow spectral peaks of `[F, line_frame_length]` line frames between
        `line_band` Hz (as far as the rate allows): a local maximum at least `line_prominence` times the mean power 5
        to 25 bins either side, 4 bins off it below `line_narrow` of it (a sine's main lobe ends at 2), and within
        40 dB of the power of a frame of at least `min_level_db` (what resampling makes of digital silence has
        lines too); its frequency refined by a parabola through the log power of the peak and its neighbours."""
        n, rate = self.line_frame_length, self.sample_rate
        first = max(25, int(self.line_band[0] * n / rate))                # 25 bins either side stay in the spectrum
        last = min(n // 2 + 1 - 26, int(self.line_band[1] * n / rate))
        found = []
        width = last - first
        if width <= 0:
            return np.zeros((0, 2))
        for a in range(0, len(frames), self.chunk_frames // 4):
            part = frames[a:a + self.chunk_frames // 4]
            part = part - part.mean(dim=1, keepdim=True)
            audible = 10.0 * torch.log10(part.square().mean(dim=1) + 1e-12) >= self.min_level_db
            power = torch.view_as_real(torch.fft.rfft(part * self.line_window)).square().sum(-1)
            band = power[:, first - 25:last + 26]                                # the band and 25 bins either side
            cum = torch.nn.functional.pad(band.cumsum(dim=1), (1, 0))             # cum[:, i] = sum band[:, :i]
            around = (cum[:, 51:51 + width] - cum[:, 30:30 + width] + cum[:, 21:21 + width] - cum[:, :width]) / 42
            peak = band[:, 25:25 + width]
            side = torch.maximum(band[:, 21:21 + width], band[:, 29:29 + width])
            line = ((peak > band[:, 24:24 + width]) & (peak >= band[:, 26:26 + width])
                    & (side < self.line_narrow * peak) & (peak > self.line_prominence * around)
                    & (peak > 1e-4 * power.sum(dim=1, keepdim=True)) & audible[:, None])
            frame, at = torch.nonzero(line, as_tuple=True)
            lo, mid, hi = (torch.log(band[frame, at + 25 + d] + 1e-30) for d in (-1, 0, 1))
            hz = (at + first + 0.5 * (lo - hi) / (lo - 2 * mid + hi).clamp(max=-1e-9)) * rate / n
            found.append(np.stack([(frame + a).numpy().astype(np.float64), hz.double().numpy()], axis=1))
        return np.concatenate(found) if found else np.zeros((0, 2))

    def _measure(self, frames: torch.Tensor) -> tuple:
        """Per frame of `[F, frame_length]` (a view: computed `chunk_frames` at a time): `(level dBFS, periodic,
        pitch lag, pure tone)`."""
        parts = []
        for a in range(0, len(frames), self.chunk_frames):
            part = frames[a:a + self.chunk_frames]
            part = part - part.mean(dim=1, keepdim=True)
            level_db = (10.0 * torch.log10(part.square().mean(dim=1).double() + 1e-12)).numpy()
            periodic, lag = np.zeros(len(part), dtype=bool), np.zeros(len(part))
            pure = np.zeros(len(part), dtype=bool)
            audible = level_db >= self.min_level_db    # the pitch test only where there is sound; tones are told
            if audible.any():                          # apart even without pauses (a continuous siren)
                chosen = part[torch.from_numpy(audible)]
                is_periodic, at = self._periodic(chosen)
                periodic[audible], lag[audible], pure[audible] = is_periodic.numpy(), at.numpy(), self._pure(chosen).numpy()
            parts.append((level_db, periodic, lag, pure))
        return tuple(np.concatenate(m) for m in zip(*parts))

    def _decide(self, level: np.ndarray, periodic: np.ndarray, lag: np.ndarray, pure: np.ndarray, lines: np.ndarray,
                line_frames: int) -> SpeechActivity:
        """The activity of one recording from its frames' measures (its floor: their 5th level percentile)."""
        noise_floor = float(np.quantile(level, 0.05))
        loud = (level >= self.min_level_db) & (level >= noise_floor + self.snr_db)
        tonal = self._steady(periodic, lag) | (periodic & pure)
        voiced = periodic & loud
        if self.exclude_tonal:
            voiced &= ~tonal
        speech = voiced.copy()
        spread = int(round(self.hangover * self.sample_rate / self.hop_length))
        if spread and voiced.any():
            speech = np.convolve(voiced.astype(np.int32), np.ones(2 * spread + 1, dtype=np.int32), mode='same') > 0
        return SpeechActivity(
            voiced=voiced, speech=speech, level_db=level.astype(np.float32), hop_seconds=self.hop_length / self.sample_rate,
            frame_seconds=self.frame_length / self.sample_rate, noise_floor_db=noise_floor, tonal=tonal, lines=lines,
            line_hop_seconds=self.line_hop_length / self.sample_rate,
            line_frame_seconds=self.line_frame_length / self.sample_rate, line_frames=line_frames)

    def _steady(self, periodic: np.ndarray, lag: np.ndarray) -> np.ndarray:
        """`[frames]` bool: periodic frames in runs of `steady_frames` or more whose pitch lag changes by less than
        `steady_tolerance` from frame to frame."""
        ratio = np.divide(lag[1:], lag[:-1], out=np.zeros(len(lag) - 1), where=lag[:-1] > 0)
        still = periodic[1:] & periodic[:-1] & (np.abs(ratio - 1) < self.steady_tolerance)   # frame i+1 as frame i
        steady = np.zeros(len(periodic), dtype=bool)
        need = self.steady_frames - 1                      # consecutive still steps in a run of steady_frames
        run = 0
        for i, ok in enumerate(still):
            run = run + 1 if ok else 0
            if run >= need:
                steady[i + 1 - run:i + 2] = True
        # the periodic frames at a run's ends straddle the tone's onset or offset: part of the same sound
        grown = steady.copy()
        grown[1:] |= steady[:-1] & periodic[1:]
        grown[:-1] |= steady[1:] & periodic[:-1]
        return grown

    def _pure(self, frames: torch.Tensor) -> torch.Tensor:
        """`[F]` bool: more than `pure_tone` of the (Hann-windowed) frame's energy within 3 bins of its strongest."""
        spectrum = torch.fft.rfft(frames * self.window)
        power = spectrum.real.square() + spectrum.imag.square()
        top = power.argmax(dim=1, keepdim=True)
        near = torch.arange(-3, 4)[None, :] + top
        inside = power.gather(1, near.clamp(0, power.shape[1] - 1)) * ((near >= 0) & (near < power.shape[1]))
        return inside.sum(dim=1) > self.pure_tone * (power.sum(dim=1) + 1e-20)

    def _periodic(self, frames: torch.Tensor):
        """`([F] bool, [F] lag)`: a normalised cross-correlation peak >= `voicing` at a pitch lag, after a dip; and
        the peak's lag in samples, refined between samples by a parabola through the peak and its neighbours."""
        n = frames.shape[1]
        size = _fast_size(n + self.max_lag + 2)                                          # no circular wrap up to max_lag
        spectrum = torch.fft.rfft(frames, n=size)
        corr = torch.fft.irfft(spectrum.real.square() + spectrum.imag.square(), n=size)[:, :self.max_lag + 2]
        cum = torch.nn.functional.pad(frames.square().cumsum(dim=1), (1, 0))              # cum[:, k] = sum x[:k]^2
        lags = torch.arange(self.max_lag + 2)
        head = cum[:, n - lags]                                                          # sum x[0 : n - lag]^2
        tail = cum[:, -1:] - cum[:, lags]                                                # sum x[lag : n]^2
        nccf = corr / torch.sqrt(head * tail + 1e-12)
        window = nccf[:, self.min_lag:self.max_lag + 1]
        peak, at = window.max(dim=1)
        dip = torch.cummin(nccf, dim=1).values.gather(1, (at + self.min_lag).unsqueeze(1)).squeeze(1)
        at = at + self.min_lag
        before, after = nccf.gather(1, (at - 1)[:, None])[:, 0], nccf.gather(1, (at + 1)[:, None])[:, 0]
        curve = before - 2 * peak + after
        shift = torch.where(curve < 0, 0.5 * (before - after) / curve.clamp(max=-1e-9), torch.zeros_like(curve))
        return (peak >= self.voicing) & (at > self.min_lag) & (peak - dip >= 0.2), at.double() + shift.double()


#: a recording without speech whose mains hum holds more than this share of the energy is said to be hidden by it
HUM_SHARE = 0.3


#: seconds from the start of a recording `mains_hum` looks at
HUM_SECONDS = 30.0


#: one harmonic above the mains frequency holding more than this share of the lines' energy (the others 30 dB
#: below it or further) is a tone at 100, 150 or 200 Hz, not mains hum, whose harmonics come together (a phone
#: microphone's hum, its third harmonic 14 dB above the others, is still hum)
HUM_ONE_LINE = 0.999


def mains_hum(signal: np.ndarray, rate: int, seconds: float = HUM_SECONDS) -> Optional[tuple]:
    """`(50 or 60, share)` when more than `HUM_SHARE` of the first `seconds` of `signal`'s energy lies within 2 Hz
    of a mains frequency or its first four harmonics, else None. A single line at a harmonic above the mains
    frequency (`HUM_ONE_LINE`: a pure 200 Hz tone) is a tone, not hum."""
    x = signal[:int(seconds * rate)].astype(np.float64)
    if len(x) < rate // 2:
        return None
    power = np.abs(np.fft.rfft((x - x.mean()) * np.hanning(len(x)))) ** 2
    freqs = np.fft.rfftfreq(len(x), 1.0 / rate)
    total = power.sum()
    if total <= 0:
        return None
    found = []
    for base in (50, 60):
        lines = np.array([power[np.abs(freqs - k * base) <= 2.0].sum() for k in range(1, 5)])
        if lines.sum() > 0 and lines[1:].max() <= HUM_ONE_LINE * lines.sum():
            found.append((base, float(lines.sum() / total)))
    best = max(found, key=lambda b: b[1], default=None)
    return best if best and best[1] > HUM_SHARE else None
