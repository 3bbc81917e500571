"""Reading a recording for `EmotionRecognizer` (through `RecordingReader`): its audio, what its weights heard of it,
its speech, and the model-ready waveforms of its judged windows."""
import math
from dataclasses import dataclass
from typing import Iterator, List, Optional

import numpy as np

from .._utils import progress
from ..data.audio import amplitude_dbfs, centre_fit, normalize_level, peak_dbfs, resample
from ..data.known_utterances import audio_fingerprint, identify_utterance, known_utterances
from ..data.speech import HUM_SECONDS, SpeechActivity, mains_hum
from ..exceptions import AudioError, ConfigurationError
from .audio_input import STREAM_SECONDS, StreamedInput, open_input
from .notes import _Item
from .results import Prediction
from .windows import cut_blocks, speech_peak, window_bounds


#: samples at least this far from zero count as clipped (where full scale means clipping: `clipping_known`)
CLIPPED_LEVEL = 0.999


@dataclass
class _Given:
    """An input other than a path (a waveform, bytes, a file object, a dict), as the user gave it."""
    value: object


class RecordingReader:
    """The reading steps of `EmotionRecognizer`, from its settings (`extractor`, `detector`, `window`, `hop`,
    `min_speech`) and what its weights heard (`_heard`, `_heard_content`)."""

    def _load(self, source, sample_rate: Optional[int], channels: str) -> '_Item':
        if isinstance(source, Prediction):                 # from expand_inputs: nothing to read
            return _Item(source)
        given = source.value if isinstance(source, _Given) else source
        item = _Item(Prediction(None if isinstance(source, _Given) else str(source)))
        try:
            # a whole-file model (no window) needs the whole signal at once; a detector of the user's may not stream
            streams = self.window is not None and hasattr(self.detector, 'stream')
            audio = open_input(given, sample_rate, channels, stream_seconds=STREAM_SECONDS if streams else None)
        except (AudioError, ConfigurationError) as e:
            item.result.error, item.result.status, item.error_type = str(e), 'error', type(e)
            return item
        if isinstance(source, _Given) and audio.name:      # bytes or a file object: its name, or <bytes>
            item.result.file = audio.name
        item.result.notes += audio.notes
        item.native_rate = audio.rate
        for record, seen in self._heard:
            found = identify_utterance(known_utterances(record['corpus']), item.result.file,
                                       getattr(audio, 'signal', None), audio.rate)
            if found and found[0] in seen:
                item.seen = (record, len(seen), *found)
                break
        if item.seen is None and self._heard_content and getattr(audio, 'signal', None) is not None:
            content = audio_fingerprint(audio.signal, audio.rate)
            item.seen = next(((record, len(seen), None, 'content') for record, seen in self._heard_content
                              if content in seen), None)
        item.clipping_known = audio.clipping_known
        if isinstance(audio, StreamedInput):               # its level and clipping are measured as it is read
            item.stream = audio
            item.result.duration = round(audio.length(self.extractor.sample_rate) / self.extractor.sample_rate, 3)
            return item
        item.peak_steps = audio.peak_steps
        signal = resample(audio.signal, audio.rate, self.extractor.sample_rate)
        item.result.duration = round(len(signal) / self.extractor.sample_rate, 3)
        item.signal, item.peak_db = signal, peak_dbfs(signal)
        item.clipped = float(np.mean(np.abs(signal) >= CLIPPED_LEVEL)) if audio.clipping_known else 0.0
        return item

    def _find_speech(self, items: List['_Item'], show_progress: bool = False) -> None:
        """Speech activity and windows (with their voiced seconds and whether they are judged) of the items."""
        readable = [it for it in items if it.signal is not None]
        for item, activity in zip(readable, self.detector.batch([it.signal for it in readable]) if readable else []):
            self._set_activity(item, activity, item.signal[:int(HUM_SECONDS * self.extractor.sample_rate)],
                               len(item.signal))
        for item in items:
            if item.stream is not None:
                self._stream_speech(item, show_progress)

    def _stream_speech(self, item: '_Item', show_progress: bool) -> None:
        """`_find_speech` of a streamed file: one pass over its blocks (the detector's frames, level, clipping)."""
        rate = self.extractor.sample_rate
        head, peak, clipped, total = [], 0.0, 0, 0

        def measured(blocks):
            nonlocal peak, clipped, total
            for block in blocks:
                if total < HUM_SECONDS * rate:
                    head.append(block[:int(HUM_SECONDS * rate) - total])
                peak = max(peak, float(np.max(np.abs(block))) if len(block) else 0.0)
                clipped += int(np.count_nonzero(np.abs(block) >= CLIPPED_LEVEL))
                total += len(block)
                yield block

        activity = self.detector.stream(measured(self._blocks(item, show_progress, 'finding speech')))
        item.peak_db = amplitude_dbfs(peak)
        item.clipped = clipped / total if item.clipping_known and total else 0.0
        self._set_activity(item, activity, np.concatenate(head), total)

    def _blocks(self, item: '_Item', show_progress: bool, what: str) -> Iterator[np.ndarray]:
        """The blocks of a streamed item at the model's rate, with a progress bar in seconds of audio."""
        rate = self.extractor.sample_rate
        blocks = item.stream.blocks(rate)
        if not show_progress:
            yield from blocks
            return
        bar = progress(None, enabled=True, desc=f'{item.result.file or "recording"}: {what}', unit='s',
                       total=round(item.stream.length(rate) / rate))
        try:
            for block in blocks:
                yield block
                if hasattr(bar, 'update'):
                    bar.update(round(len(block) / rate))
        finally:                                     # also when the last judged window ends before the file does
            if hasattr(bar, 'close'):
                bar.update(bar.total - bar.n)
                bar.close()

    def _set_activity(self, item: '_Item', activity: SpeechActivity, head: np.ndarray, length: int) -> None:
        """Record the item's speech activity and its windows; `head`: its first `HUM_SECONDS` (for `mains_hum`)."""
        rate = self.extractor.sample_rate
        item.activity = activity
        item.result.voiced = round(activity.voiced_seconds(), 3)
        if activity.voiced_seconds() < self.min_speech:               # what hides the speech, if it is a hum
            item.hum = mains_hum(head, rate)
        for start, end in window_bounds(length, self.window, self.hop):
            voiced = activity.voiced_seconds(start / rate, end / rate)
            item.windows.append((start, end, voiced, voiced >= self.min_speech and voiced > 0))

    def _window_signals(self, item: '_Item', show_progress: bool = False) -> Iterator[np.ndarray]:
        """The model-ready waveforms of the item's judged windows, one at a time (a streamed file's are cut from a
        second pass over its blocks, holding at most a window and a block)."""
        if item.activity is None:
            return
        regions = item.activity.speech_regions()
        judged = [(start, end) for start, end, _, judge in item.windows if judge]
        signal, item.signal = item.signal, None
        parts = cut_blocks(self._blocks(item, show_progress, 'judging'), judged) if item.stream is not None else \
            (signal[start:end] for start, end in judged)
        for (start, end), part in zip(judged, parts):
            if self.extractor.level == 'peak':
                peak = speech_peak(part, regions, start, end, self.extractor.sample_rate)
                part = normalize_level(part, 'peak', peak)
                loud = self._loud_speech_db(item, start, end)
                item.speech_below_peak.append(loud - 20 * math.log10(peak) if peak > 0 else 0.0)
            yield part if self.window is None else centre_fit(part, self.window)
        parts.close()                                    # a streamed file's reading and progress bar end here

    def _loud_speech_db(self, item: '_Item', start: int, end: int) -> float:
        """The 90th percentile level (dBFS) of the voiced frames in the window."""
        activity, rate = item.activity, self.extractor.sample_rate
        frames = activity.frame_range(start / rate, end / rate)
        levels = activity.level_db[frames][activity.voiced[frames]]
        return float(np.percentile(levels, 90)) if len(levels) else float('-inf')
