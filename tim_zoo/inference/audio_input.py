"""What a user hands to `EmotionRecognizer`, as one mono waveform at its own rate with notes on what was done to it.

Accepted: a path; a waveform (numpy or torch, any float or integer dtype, `[N]`, `[2, N]` or `[N, 2]`) with its
rate; the bytes of an audio file or a binary file object; a datasets-style dict (`{"array", "sampling_rate"}`,
or `{"bytes"}` / `{"path"}` for undecoded audio). Everything else gets a one-line error naming what is accepted.
"""
import io
import math
import numbers
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterator, List, Optional, Union

import numpy as np
import torch

from .._validation import check_choice
from ..data.audio import (
    audio_info, pcm_to_float, peak_dbfs, peak_in_steps, read_audio_channels, read_blocks, resample_stream,
)
from ..exceptions import AudioError, ConfigurationError

#: how two channels become one: their mean, or one of them
CHANNEL_MODES = ('mix', 'left', 'right')
#: a recording peaking below this (dBFS) has its peak counted in steps of its sample format (`AudioInput.peak_steps`)
STEPS_BELOW_DB = -30.0
#: ... over at most this many samples per channel (the spacing of values shows in any stretch of a recording)
STEPS_SAMPLES = 1 << 20
#: the lowest sample rate taken (lower ones are kHz given for Hz)
MIN_SAMPLE_RATE = 1000
#: the highest (768 kHz: the highest rate audio interfaces record at)
MAX_SAMPLE_RATE = 768000
#: every recording's DC offset (its mean) is removed; above this share of full scale a note says so (recordings
#: carry up to about 0.6 %: EMODB's largest)
DC_NOTE = 0.01
#: float samples up to this peak (after the DC offset is removed) are taken as they are, above it they are scaled:
#: lossy codecs overshoot full scale a little (a peak-normalised EMODB file as Ogg Vorbis peaks at 1.06)
FULL_SCALE_TOLERANCE = 1.1
#: two channels correlated less than this are noted as different (two voices, one silent, inverted phase)
CHANNELS_ALIKE = 0.5
ACCEPTED = ('a path, a waveform with its sample_rate (numpy or torch, [N] or [2, N]), the bytes of an audio file, '
            'a binary file object, or a dict {"array", "sampling_rate"}')
_URL = re.compile(r'^[a-zA-Z][a-zA-Z0-9+.-]*://')


@dataclass
class AudioInput:
    """A recording as read: `signal` mono float32 `[N]` at `rate` Hz (its DC offset removed); `name` for the results
    (None for a waveform); `notes` on what was done to it; `clipping_known`: whether full-scale samples mean
    clipping (integer PCM, or float within [-1, 1])."""
    signal: np.ndarray
    rate: int
    name: Optional[str] = None
    notes: List[str] = field(default_factory=list)
    clipping_known: bool = True
    #: where the recording peaks below `STEPS_BELOW_DB`: its loudest channel's peak in steps of its sample format
    #: (`tim_zoo.data.audio.peak_in_steps`, counted before channels are mixed); else inf
    peak_steps: float = float('inf')


#: files longer than this (seconds) are read block by block, never whole (`StreamedInput`)
STREAM_SECONDS = 60.0
#: seconds of audio per block of a streamed file
BLOCK_SECONDS = 10.0
#: formats read whole however long: libsndfile decodes MPEG a little differently by read size (4e-6), so blocks
#: would not give the whole file's samples
WHOLE_FORMATS = ('MP3', 'MPEG')


@dataclass
class StreamedInput:
    """A long file read block by block: its analysed mono signal (as `AudioInput.signal` would hold it) comes from
    `blocks(target_rate)`, resampled as it is read, so memory holds a block whatever the file's length. Each call
    reads the file again (it was read once to decide the conversion: `_plan` needs the whole file's DC offset and
    peak)."""
    source: object
    rate: int
    frames: int
    plan: '_Conversion'
    name: Optional[str] = None
    notes: List[str] = field(default_factory=list)
    clipping_known: bool = True

    def length(self, target_rate: int) -> int:
        """Samples of the signal at `target_rate` (as `data.audio.resample` gives)."""
        return self.frames if target_rate == self.rate else int(math.ceil(self.frames * (float(target_rate) / self.rate)))

    def blocks(self, target_rate: int) -> Iterator[np.ndarray]:
        """Consecutive float32 `[n]` blocks of the signal at `target_rate`: together exactly `resample` of the whole
        signal (soxr's stream gives its samples bit for bit)."""
        step = int(BLOCK_SECONDS * self.rate)
        yield from resample_stream((self.plan(block) for block in read_blocks(self.source, step)), self.rate,
                                   target_rate, self.length(target_rate))


def check_sample_rate(sample_rate, what: str = 'sample_rate') -> int:
    """`sample_rate` as an int of Hz, or ConfigurationError naming the fix (a string, a non-integer, kHz for Hz)."""
    if isinstance(sample_rate, bool) or not isinstance(sample_rate, numbers.Real):
        raise ConfigurationError(f'{what} must be a number of Hz such as 16000, got {sample_rate!r} '
                                 f'({type(sample_rate).__name__})')
    if not float(sample_rate).is_integer() or not MIN_SAMPLE_RATE <= sample_rate <= MAX_SAMPLE_RATE:
        hint = (f'; rates are in Hz: {sample_rate} kHz is {int(sample_rate * 1000)}' if 0 < sample_rate < 200 else '')
        raise ConfigurationError(f'{what} must be a whole number of Hz from {MIN_SAMPLE_RATE} to {MAX_SAMPLE_RATE}, '
                                 f'got {sample_rate}{hint}')
    return int(sample_rate)


def open_input(source, sample_rate=None, channels: str = 'mix',
               stream_seconds: Optional[float] = None) -> Union[AudioInput, StreamedInput]:
    """Read one input (see the module) as an `AudioInput`; with `stream_seconds`, a file soundfile reads that is
    longer than that is a `StreamedInput` instead (its samples are read when its blocks are asked for).

    Raises:
        AudioError: unreadable or empty audio, NaN or Inf samples, more than two channels.
        ConfigurationError: an input of another kind, a waveform without a usable rate, a URL.
    """
    check_choice('channels', channels, CHANNEL_MODES)
    notes: List[str] = []
    given_name = None
    if isinstance(source, dict):
        given_name = source.get('path') or None
        source, sample_rate = _from_dict(source, sample_rate)
    if isinstance(source, (str, Path, bytes, bytearray, memoryview)) or hasattr(source, 'read'):
        streamed = _open_stream(source, given_name, channels, stream_seconds)
        if streamed is not None:
            streamed.notes += _unused_rate(sample_rate, streamed.rate)
            return streamed
        data, rate, integer, notes, name = _read_file(source, given_name)
        notes += _unused_rate(sample_rate, rate)
    else:
        data, integer, notes = _waveform(source)
        if sample_rate is None:
            raise ConfigurationError('a waveform needs its sample rate: sample_rate=16000, for example')
        rate, name = check_sample_rate(sample_rate), given_name
    signal, more, clipping_known = _prepare(data, integer, channels, name or 'the waveform')
    return AudioInput(signal, int(rate), name, notes + more, clipping_known=clipping_known,
                      peak_steps=_peak_steps(data))


def _unused_rate(sample_rate, rate: int) -> List[str]:
    """The note for a rate given with a file that records another one."""
    if sample_rate is not None and check_sample_rate(sample_rate) != rate:
        return [f'sample_rate={sample_rate} was not used: the file records its own rate ({rate} Hz)']
    return []


def _open_stream(source, name: Optional[str], channels: str, stream_seconds: Optional[float]):
    """A `StreamedInput` of a file longer than `stream_seconds` that soundfile reads and can seek in (after one
    pass over its blocks for `_plan`), else None (the file is then read whole)."""
    if stream_seconds is None or isinstance(source, (bytes, bytearray, memoryview)):
        return None                                      # bytes are in memory already
    if hasattr(source, 'read') and (not _seekable(source) or 'b' not in getattr(source, 'mode', 'b')):
        return None
    info = audio_info(source)                            # None for a URL, a folder, a missing file
    if info is None or info[0] <= stream_seconds * info[1] or info[5] in WHOLE_FORMATS:
        return None
    frames, rate, num_channels, integer, notes, _ = info
    label = _label(source, name)
    _check_channels(num_channels, (num_channels, frames), label)
    levels = _Levels()
    for block in read_blocks(source, int(BLOCK_SECONDS * rate)):
        levels.add(block, channels)
    if levels.count == 0:
        return None                                      # the whole-file reader names what is wrong
    plan, more, clipping_known = _plan(levels, num_channels, integer, channels, label)
    return StreamedInput(source, rate, levels.count, plan, label, notes + more, clipping_known)


def _read_file(source, name: Optional[str]):
    """`(samples, rate, integer PCM?, notes, name)` of a path, the bytes of a file or a binary file object."""
    label = _label(source, name)
    if isinstance(source, (str, Path)):
        if _URL.match(str(source)):
            raise ConfigurationError(f'{source} is a URL: tim_zoo reads local files only (download it first)')
        return (*read_audio_channels(source), label)
    if isinstance(source, (bytes, bytearray, memoryview)):
        return (*read_audio_channels(io.BytesIO(bytes(source)), label=label), label)
    if isinstance(source, io.TextIOBase) or 'b' not in getattr(source, 'mode', 'b'):
        raise ConfigurationError(f'{label} is open in text mode: open audio files in binary mode, open(path, "rb")')
    if _seekable(source):
        source.seek(0)                                   # the whole file, wherever it was read up to
    return (*read_audio_channels(source, label=label), label)


def _label(source, name: Optional[str]) -> str:
    """What the results call a file input: the name given, else its path, `<bytes>` or the file object's name."""
    if name:
        return name
    if isinstance(source, (bytes, bytearray, memoryview)):
        return '<bytes>'
    if hasattr(source, 'read'):
        return str(getattr(source, 'name', None) or '<file object>')
    return str(source)


def _seekable(source) -> bool:
    return hasattr(source, 'seek') and (not hasattr(source, 'seekable') or source.seekable())


def _from_dict(row: dict, sample_rate):
    """A datasets-style row: `{"array", "sampling_rate"}` (decoded), `{"bytes"}` or `{"path"}` (not decoded)."""
    if 'array' in row:
        if 'sampling_rate' not in row and sample_rate is None:
            raise ConfigurationError('a dict with "array" needs "sampling_rate" (as datasets gives it)')
        given = row.get('sampling_rate', sample_rate)
        if sample_rate is not None and given is not None and check_sample_rate(sample_rate) != check_sample_rate(given):
            raise ConfigurationError(f'sample_rate={sample_rate} disagrees with the dict\'s sampling_rate={given}')
        return np.asarray(row['array']), given
    if row.get('bytes') is not None:
        return row['bytes'], sample_rate
    if row.get('path'):
        return row['path'], sample_rate
    raise ConfigurationError(f'a dict input needs "array" and "sampling_rate" (or "bytes" or "path"); got keys '
                             f'{sorted(row)}')


def _waveform(source):
    """`(float32 [channels, N] or [N], integer PCM?)` of an array-like, integer PCM scaled to [-1, 1)."""
    if isinstance(source, torch.Tensor):                 # any dtype (bfloat16 and float16 included)
        source = source.detach().cpu()
        integer = not (source.is_floating_point() or source.is_complex()) and source.dtype != torch.bool
        array = source.numpy() if integer else source.to(torch.float32).numpy()
    elif isinstance(source, (np.ndarray, list, tuple)):
        try:
            array = np.asarray(source)
        except ValueError as e:                          # a ragged nested list
            raise ConfigurationError(f'cannot read this {type(source).__name__} as a waveform ({e}): give {ACCEPTED}') \
                from None
        integer = np.issubdtype(array.dtype, np.integer)
    else:
        raise ConfigurationError(f'cannot read a {type(source).__name__} as audio: give {ACCEPTED}')
    if array.dtype == bool or not (integer or np.issubdtype(array.dtype, np.floating)):
        raise ConfigurationError(f'a waveform of {array.dtype} values: give float or integer PCM samples')
    notes = []
    if integer and array.dtype == np.int64 and array.size:
        # no audio format stores 64-bit samples: python ints (lists, torch.tensor of ints) become int64
        bits = 16 if np.abs(array).max() <= 32768 else 32
        notes.append(f'64-bit integer samples: read as {bits}-bit PCM (their values fit it)')
        array = array.astype(np.int16 if bits == 16 else np.int32)
    if integer:
        array = pcm_to_float(array)
    array = array.astype(np.float32)
    if array.ndim == 2 and array.shape[0] > array.shape[1]:
        array = array.T                                  # [N, channels], soundfile's layout
    if array.ndim not in (1, 2) or array.size == 0:
        raise AudioError(f'expected a waveform [N] or [2, N] with samples, got shape {tuple(array.shape)}')
    return array, integer, notes


@dataclass
class _Levels:
    """What deciding a recording's conversion to mono needs, accumulated block by block: its length, non-finite
    samples, the chosen (or mixed) channel's sum, extremes and whether every sample is a whole number, and for two
    channels the sums their correlation needs."""
    count: int = 0
    bad: int = 0
    total: float = 0.0
    high: float = -math.inf
    low: float = math.inf
    whole: bool = True
    pair: np.ndarray = field(default_factory=lambda: np.zeros(5))   # sum a, b, a^2, b^2, ab

    def add(self, data: np.ndarray, channels: str) -> None:
        """Count the block `data` (`[n]`, or `[2, n]` float32)."""
        self.count += data.shape[-1]
        self.bad += int((~np.isfinite(data)).sum())
        if self.bad:
            return
        if data.ndim == 2 and channels == 'mix':
            a, b = data[0].astype(np.float64), data[1].astype(np.float64)
            self.pair += [a.sum(), b.sum(), np.dot(a, a), np.dot(b, b), np.dot(a, b)]
        mono = _mono(data, channels)
        self.total += float(mono.sum(dtype=np.float64))
        self.high, self.low = max(self.high, float(mono.max())), min(self.low, float(mono.min()))
        self.whole = self.whole and bool(np.all(mono == np.round(mono)))

    def correlation(self) -> Optional[float]:
        """Pearson correlation of the two channels; 0 when one is silent and the other is not, None when both are."""
        sa, sb, saa, sbb, sab = self.pair
        n = self.count
        ea, eb = saa - sa * sa / n, sbb - sb * sb / n
        ea, eb = (0.0 if e <= 1e-9 * (raw + 1e-30) else e for e, raw in ((ea, saa), (eb, sbb)))
        if ea == 0.0 and eb == 0.0:
            return None
        if ea == 0.0 or eb == 0.0:
            return 0.0
        return float((sab - sa * sb / n) / math.sqrt(ea * eb))


@dataclass
class _Conversion:
    """How each block of a recording becomes the analysed mono signal: the channel taken (or their mean), integer
    PCM values held in floats divided by `divide`, the DC `offset` removed, samples beyond full scale divided by
    `rescale`."""
    channels: str = 'mix'
    divide: float = 1.0
    offset: float = 0.0
    rescale: float = 1.0

    def __call__(self, data: np.ndarray) -> np.ndarray:
        mono = _mono(data, self.channels)
        if self.divide != 1.0:
            mono = mono / np.float32(self.divide)
        mono = (mono - np.float32(self.offset)).astype(np.float32)
        return mono / np.float32(self.rescale) if self.rescale != 1.0 else mono


def _mono(data: np.ndarray, channels: str) -> np.ndarray:
    """`[n]` float32 of `[n]` or `[2, n]`: the mean of two channels, or the one chosen."""
    if data.ndim == 1:
        return data.astype(np.float32, copy=False)
    return data.mean(axis=0).astype(np.float32) if channels == 'mix' else data[0 if channels == 'left' else 1]


def _plan(levels: _Levels, num_channels: int, integer: bool, channels: str, name: str):
    """`(_Conversion, notes, whether full-scale samples mean clipping)` of a recording whose blocks gave `levels`:
    channels chosen or mixed (noted where they differ), float samples holding integer PCM values scaled to [-1, 1)
    (noted), the DC offset removed (noted above `DC_NOTE`), then float samples beyond full scale scaled down
    (noted)."""
    if levels.bad:
        raise AudioError(f'{name} holds {levels.bad} NaN or Inf samples')
    notes = []
    if num_channels == 2 and channels == 'mix':
        corr = levels.correlation()
        if corr is not None and corr < -CHANNELS_ALIKE:
            notes.append(f'the two channels are phase-inverted copies (correlation {corr:.2f}): mixed, they cancel; '
                         f'channels="left" or "right" (--channels) judges one')
        elif corr is not None and corr < CHANNELS_ALIKE:
            notes.append(f'the two channels differ (correlation {corr:.2f}: two voices, or one silent?) and were '
                         f'mixed; channels="left" or "right" (--channels) judges one')
    elif num_channels == 1 and channels != 'mix':
        notes.append(f'channels="{channels}" has nothing to choose in a mono recording')
    plan = _Conversion(channels if num_channels == 2 else 'mix')
    peak = max(abs(levels.high), abs(levels.low))
    if not integer and peak >= 2.0 and levels.whole:
        plan.divide = 32768.0 if peak <= 32768 else 2.0 ** 31
        notes.append(f'float samples holding integer PCM values (peak {peak:.0f}): divided by {plan.divide:.0f}')
        integer = True
    plan.offset = levels.total / levels.count / plan.divide
    if abs(plan.offset) > DC_NOTE:
        notes.append(f'a DC offset of {plan.offset:+.3f} ({100 * abs(plan.offset):.1f} % of full scale) was removed')
    peak = max(levels.high / plan.divide - plan.offset, plan.offset - levels.low / plan.divide)
    if not integer and peak > FULL_SCALE_TOLERANCE:
        notes.append(f'float samples beyond full scale (peak {peak:.2f}, full scale 1.0): scaled down by {peak:.2f}; '
                     f'clipping cannot be judged')
        plan.rescale = peak
        return plan, notes, False
    return plan, notes, True


def _check_channels(num_channels: int, shape: tuple, name: str) -> None:
    if num_channels > 2:
        raise AudioError(f'{name} has {num_channels} channels (shape {shape}): give a mono or stereo '
                         f'recording; for several recordings use predict_many([w1, w2, ...], sample_rate=...)')


def _peak_steps(data: np.ndarray) -> float:
    """`AudioInput.peak_steps` of `data` (`[channels, N]` or `[N]`, scaled to full scale 1): the loudest channel's,
    over its first `STEPS_SAMPLES` samples (mixing channels halves the spacing of the values, not the rounding)."""
    rows = np.atleast_2d(data)[:, :STEPS_SAMPLES]
    peaks = np.abs(rows).max(axis=1) if rows.size else np.zeros(1)
    if peak_dbfs(peaks) >= STEPS_BELOW_DB:                 # scaled up little, if at all: the format's steps are fine
        return float('inf')
    return peak_in_steps(rows[int(np.argmax(peaks))])


def _prepare(data: np.ndarray, integer: bool, channels: str, name: str):
    """`(mono float32 [N], notes, whether full-scale samples mean clipping)` of a whole recording (`_plan`)."""
    num_channels = data.shape[0] if data.ndim == 2 else 1
    _check_channels(num_channels, tuple(data.shape), name)
    if num_channels == 1 and data.ndim == 2:
        data = data[0]
    levels = _Levels()
    levels.add(data, channels)
    plan, notes, clipping_known = _plan(levels, num_channels, integer, channels, name)
    return plan(data), notes, clipping_known
