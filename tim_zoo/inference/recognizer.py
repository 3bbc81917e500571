"""`EmotionRecognizer`: a model together with the feature extraction its weights expect."""
import math
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterator, List, Optional, Sequence

import numpy as np
import torch

from .._factory import check_model_name, create_model, is_hub_source, list_models, load_checkpoint
from .._utils import progress
from .._validation import check_choice, resolve_device
from ..data.audio import amplitude_dbfs, centre_fit, normalize_level, peak_dbfs, resample
from ..data.features import MFCCExtractor
from ..data.known_utterances import identify_utterance, known_utterances
from ..data.normalize import normalize_by_speaker
from ..data.speech import HUM_SECONDS, SpeechActivity, SpeechDetector, mains_hum
from ..exceptions import AudioError, ConfigurationError, WeightsNotFoundError
from ..pretrained import load_default_model
from ..train.protocols import heard_by, training_records
from ..weights.load import KERAS_SUFFIXES, WEIGHT_SUFFIXES, untrained_head
from ..models._zoo import tag_notes
from ..models.timnet_releases import TIMNET_RELEASES, find_release
from .audio_input import CHANNEL_MODES, STREAM_SECONDS, StreamedInput, check_sample_rate, open_input
from .inputs import expand_inputs
from .results import Prediction, Segment, format_clock


#: below this peak (dBFS) a model that takes the level as it is (`level="none"`) gets a note
QUIET_PEAK_DB = -20.0
#: with `level="peak"`: speech whose loud frames (90th percentile) lie further below the peak than this gets a
#: note (EMODB: -12.5 dB typical, -26 dB at the extreme): a click or other short loud sound set the peak
SPEECH_BELOW_PEAK_DB = -32.0
#: samples at least this far from zero count as clipped (where full scale means clipping: `clipping_known`)
CLIPPED_LEVEL = 0.999
#: recordings made at a lower rate than this lack the upper speech band the models learned from
NARROW_BAND_HZ = 16000
#: tones (`SpeechActivity.tonal`) are mentioned from this many seconds and this share of the periodic sound on
#: (EMODB's recordings hold at most 0.14 s, 14 %)
TONE_SECONDS = 0.3
TONE_SHARE = 0.25
#: a judged window with one spectral line (a frequency within 1 Hz) in this share of its line frames (186 ms every
#: 93 ms) is noted as holding a tone under the speech (EMODB's recordings: at most 0.2, a 400 Hz mains-hum
#: harmonic; 1, 1.4 and 2 kHz beep trains 6 dB below EMODB speech, 0.25 s on and off: at least 0.3)
LINE_SHARE = 0.28
#: a recording of 3 or more judged windows whose most common window answer holds less than this share of the voiced
#: speech is noted as disagreeing
DISAGREE_SHARE = 0.5


@dataclass
class _Item:
    """One input on its way through `EmotionRecognizer.predict_many`."""
    result: Prediction
    signal: Optional[np.ndarray] = None                    # dropped once its windows' features are computed
    stream: Optional[StreamedInput] = None                 # a long file, read block by block instead of `signal`
    activity: Optional[SpeechActivity] = None
    peak_db: float = float('-inf')
    clipped: float = 0.0                                   # share of samples at full scale
    native_rate: int = 0                                   # the rate it was recorded at
    speech_below_peak: List[float] = field(default_factory=list)   # dB, per judged window (level="peak")
    windows: List[tuple] = field(default_factory=list)     # (start sample, end sample, voiced seconds, judged)
    features: List[np.ndarray] = field(default_factory=list)  # kept only to normalise per speaker
    probabilities: List[np.ndarray] = field(default_factory=list)
    error_type: type = AudioError                          # what `predict` raises for this input's error
    hum: Optional[tuple] = None                            # (mains frequency, share of the energy) of a strong hum
    seen: Optional[tuple] = None                           # (record, its count, utterance, how it was known)
    clipping_known: bool = True                            # full-scale samples mean clipping (`AudioInput`)


@dataclass
class _Given:
    """An input other than a path (a waveform, bytes, a file object, a dict), as the user gave it."""
    value: object


class EmotionRecognizer:
    """A model with the feature extraction its weights expect: audio in, emotions out.

    Build one from the bundled model, a tim_zoo checkpoint, a TIM-Net Keras release file, or any model:

        rec = tim_zoo.EmotionRecognizer.from_pretrained()               # the bundled EMODB timnet
        rec = tim_zoo.EmotionRecognizer.from_checkpoint('run/all/last.safetensors')
        rec = tim_zoo.EmotionRecognizer.from_keras('EMODB_46/10-fold_weights_best_1.hdf5')
        rec = tim_zoo.EmotionRecognizer(model, feature_settings=dict(mean_signal_length=96000, level='peak'))
        result = rec.predict('speech.wav')                              # or rec.predict(waveform, sample_rate=16000)
        result.prediction, result.probabilities, result.segments, result.notes
        rec.model_notes                   # what is known of how far the weights' answers hold (a zoo tag's accuracy)

    What happens to a recording (see `docs/predict.md`):

    1. It is read at the model's sample rate (`librosa.load`'s steps); its channels are mixed or one is chosen
       (`channels`), its DC offset is removed, and speech is detected (`SpeechDetector`: tones are not speech
       unless `judge_tones`).
    2. A recording no longer than the model's input (`mean_signal_length` samples) is one window,
       centre zero-padded as in training. A longer one is cut into windows of that length every
       `hop_seconds` (default: half a window), the last ending at the end of the recording, so nothing is
       dropped.
    3. A window with less than `min_speech` seconds of voiced speech gets no prediction. The others are
       level-normalised as the weights expect (`level` in the feature settings: `"peak"` scales each
       window to a full-scale peak, `"none"` leaves it), turned into MFCC and classified.
    4. The recording's probabilities are the mean of its judged windows' probabilities weighted by their
       seconds of voiced speech; with no judged window its `prediction` is None and a note says why.

    Args:
        model: a tim_zoo model (eval mode is set).
        feature_settings: overrides of the model's recorded feature settings
            (`model.pretrained_cfg["feature_settings"]`), e.g. `dict(mean_signal_length=96000, level="peak")`;
            required when the model records none.
        device: where the MFCC and the model run (`"cpu"`, `"cuda"`, ...).
        hop_seconds: window step for long recordings (default: half the window).
        min_speech: seconds of voiced speech a window needs to be judged.
        detector: the speech detector (default: `SpeechDetector` at the model's rate).
        judge_tones: judge tones too (beeps, ringing, sirens, music: periodic sounds whose pitch holds still or
            that are one pure tone), which by default are not speech: a recording of only such sound gets
            `status="non_speech"` and no prediction. Notes say where tones were heard either way.
    """

    def __init__(self, model: torch.nn.Module, feature_settings: Optional[dict] = None, device=None,
                 hop_seconds: Optional[float] = None, min_speech: float = 0.25,
                 detector: Optional[SpeechDetector] = None, judge_tones: bool = False):
        recorded = (getattr(model, 'pretrained_cfg', None) or {}).get('feature_settings')
        if not recorded and feature_settings is None:
            raise ConfigurationError(
                f'{getattr(model, "model_name", type(model).__name__)} records no feature settings, so how its inputs '
                f'were computed is unknown; pass them: EmotionRecognizer(model, feature_settings=dict('
                f'mean_signal_length=96000, level="peak")) (see tim_zoo.data.MFCCExtractor for every setting)')
        self.feature_settings = dict(recorded or {}, **(feature_settings or {}))
        self.extractor = MFCCExtractor.from_settings(self.feature_settings)
        self.normalize = self.feature_settings.get('normalize', 'none')
        in_chans = getattr(model, 'in_chans', None) or getattr(model, 'init_args', {}).get('in_chans')
        if in_chans and in_chans != self.extractor.n_mfcc:
            raise ConfigurationError(f'the model takes {in_chans} channels but the feature settings give '
                                     f'n_mfcc={self.extractor.n_mfcc}')
        fixed_len, frames = getattr(model, 'fixed_len', None), self.extractor.frames
        if fixed_len and frames is not None and frames != fixed_len:
            raise ConfigurationError(
                f'{getattr(model, "model_name", type(model).__name__)} takes exactly {fixed_len} frames (its head has a '
                f'fixed size), but mean_signal_length={self.extractor.mean_signal_length} (--mean-signal-length) gives '
                f'{frames}; leave it at the model\'s own ({(recorded or {}).get("mean_signal_length", "-")} samples), '
                f'or load a model built for {frames} frames')
        if getattr(model, 'levels_pruned', False):
            raise ConfigurationError('this model was pruned to its feature levels (prune_intermediate_layers): it has '
                                     'no classifier to recognise emotions with; use the model as it was before pruning')
        if getattr(getattr(model, 'head', None), 'pool_type', None) == '':
            raise ConfigurationError('this model was set to global_pool="" (per-frame logits [B, classes, T]), while '
                                     'a recognizer needs one answer per window: model.set_global_pool("avg") first')
        self.device = resolve_device(device)
        self.model = model.eval().to(self.device)
        num_classes = getattr(model, 'num_classes', None)
        self.label_names = list(getattr(model, 'label_names', None) or [f'class_{i}' for i in range(num_classes)])
        rate = self.extractor.sample_rate
        self.window = self.extractor.mean_signal_length
        window_s = math.inf if self.window is None else self.window / rate
        if not 0 <= min_speech <= window_s:
            raise ConfigurationError(f'min_speech (--min-speech) must be between 0 and the window ({window_s:.2f} s), got {min_speech}')
        if hop_seconds is not None and not 0 < hop_seconds <= window_s:
            raise ConfigurationError(f'hop_seconds (--hop) must be above 0 and at most the window ({window_s:.2f} s), or parts '
                                     f'of long recordings would be skipped; got {hop_seconds}')
        self.hop = None if self.window is None else max(1, int(round(hop_seconds * rate)) if hop_seconds
                                                         else self.window // 2)
        self.min_speech = min_speech
        if detector is not None and judge_tones:
            raise ConfigurationError('judge_tones configures the default detector; for your own pass '
                                     'SpeechDetector(..., exclude_tonal=False)')
        self.detector = detector or SpeechDetector(rate, exclude_tonal=not judge_tones)
        self.judge_tones = judge_tones
        #: notes on the weights rather than on an input: a zoo tag's measured accuracy on held-out EMODB folds
        #: beside timnet's, or that it was never measured (`tim_zoo.models._zoo.tag_notes`); or that the classifier
        #: is untrained (weights loaded for another class count: `tim_zoo.weights.load.untrained_head`), which every
        #: prediction's notes say too
        untrained = self._untrained_head_note()             # then the tag's figures are not this model's
        self.model_notes: List[str] = [untrained] if untrained else tag_notes(getattr(model, 'pretrained_cfg', None))
        #: what the weights record of the utterances they trained on (`pretrained_cfg["trained_on"]`); a prediction's
        #: notes say when its recording is one of them, where their corpus' utterances are known
        #: (`tim_zoo.train.protocols.heard_by`)
        self.trained_on = (getattr(model, 'pretrained_cfg', None) or {}).get('trained_on')
        self._heard = heard_by(self.trained_on)

    # --- constructors --------------------------------------------------------------------------------

    @classmethod
    def from_pretrained(cls, name_or_path: Optional[str] = None, **kwargs) -> 'EmotionRecognizer':
        """The bundled EMODB `timnet` (`None`, `"timnet_emodb"` or its tag `"timnet.tim_zoo_emodb"`), any pretrained
        tag (`tim_zoo.list_models(pretrained=True)`, e.g. `"timnet.emodb_46_fold3"`: its file found in the weights
        directory or hub cache), a hub folder (`"local-dir:PATH"`, `"hf-hub:ORG/NAME"`: `tim_zoo.save_for_hub`), or a
        weight file path (see `from_checkpoint`). A model name alone (`"at_tim"`) loads its default tag, as
        `create_model(name, pretrained=True)` does; a name that is neither a file nor a tag is refused with the close
        names."""
        if name_or_path in (None, 'timnet_emodb'):
            return cls(load_default_model(), **kwargs)
        if name_or_path in list_models(pretrained=True) or is_hub_source(name_or_path):
            return cls(create_model(name_or_path, pretrained=True).eval(), **kwargs)
        path = Path(name_or_path)
        exists = path.exists()
        if (isinstance(name_or_path, str) and not exists and path.suffix.lower() not in WEIGHT_SUFFIXES
                and '/' not in name_or_path and os.sep not in name_or_path):       # a name, not a path
            check_model_name(str(name_or_path))            # an unknown model or tag: said with the close names
            return cls(create_model(str(name_or_path), pretrained=True).eval(), **kwargs)
        if not exists:
            raise WeightsNotFoundError(f'no weight file at {path} (nor a pretrained tag: tim_zoo.list_models('
                                       f'pretrained=True) lists them)')
        return cls.from_checkpoint(name_or_path, **kwargs)

    @classmethod
    def from_checkpoint(cls, path, model_name: Optional[str] = None, builder=None, trust_builder: bool = False,
                        **kwargs) -> 'EmotionRecognizer':
        """A tim_zoo `.safetensors` checkpoint (rebuilt from its metadata, or loaded into `model_name`); a checkpoint
        of a model composed of blocks takes the function that built it (`builder=`, or `trust_builder=True`, as
        `tim_zoo.load_checkpoint`); a Keras `.hdf5`/`.h5` file goes to `from_keras`."""

        keras = Path(path).suffix.lower() in KERAS_SUFFIXES
        from_builder = builder is not None or trust_builder
        if keras and (model_name or from_builder):
            raise ConfigurationError(f'from_checkpoint: {path} is a TIM-Net Keras file, always built as timnet; '
                                     f'model_name, builder and trust_builder are not used with it: drop them')
        if model_name and from_builder:
            raise ConfigurationError(f'from_checkpoint: model_name={model_name!r} builds the model, so builder and '
                                     f'trust_builder would not be used: give one or the other')
        if keras:
            return cls.from_keras(path, **kwargs)
        model = create_model(model_name, checkpoint_path=str(path)) if model_name else \
            load_checkpoint(path, builder=builder, trust_builder=trust_builder)
        return cls(model, **kwargs)

    @classmethod
    def from_keras(cls, path, release: Optional[str] = None, **kwargs) -> 'EmotionRecognizer':
        """A TIM-Net Keras release file (`.../EMODB_46/10-fold_weights_best_1.hdf5`). Its release (from the
        folder name, or `release="EMODB_46"`) gives the labels and the authors' features (`level="none"`)."""

        if Path(path).suffix.lower() not in KERAS_SUFFIXES:
            raise ConfigurationError(f'{path} is not a Keras file ({", ".join(KERAS_SUFFIXES)}); a tim_zoo checkpoint or '
                                     f'other weight file loads with EmotionRecognizer.from_checkpoint(path)')
        if release and release not in TIMNET_RELEASES:
            raise ConfigurationError(f'unknown release {release!r}; the releases are {", ".join(TIMNET_RELEASES)}')
        release = release or find_release(path)
        if not release:
            raise ConfigurationError(
                f'{path} is not inside a release folder (such as EMODB_46/), so its labels and features are unknown; '
                f'name its release: release="EMODB_46" (--release EMODB_46); the releases are '
                f'{", ".join(TIMNET_RELEASES)}')
        model = create_model(f'timnet.{release.lower()}', pretrained=True, pretrained_cfg_overlay=dict(file=str(path)))
        return cls(model, **kwargs)

    # --- prediction ----------------------------------------------------------------------------------

    def predict(self, audio, sample_rate: Optional[int] = None, same_speaker: bool = False,
                channels: str = 'mix') -> Prediction:
        """The answer for one recording: a path; a waveform `[N]`, `[2, N]` or `[N, 2]` (numpy or torch, any float
        or integer dtype) recorded at `sample_rate` Hz (required for waveforms); the bytes of an audio file or a
        binary file object; or a datasets-style dict `{"array", "sampling_rate"}`.

        The recording's DC offset is removed (noted above 1 % of full scale); float samples beyond full scale are
        scaled down (noted). Two channels are mixed (`channels="mix"`, noted when they differ: two voices, or
        phase-inverted copies that cancel) or one is taken (`"left"`, `"right"`); more than two are refused.

        Raises:
            AudioError: the file is missing or unreadable, or the waveform is empty, not finite or has more than
                two channels.
            ConfigurationError: a folder or pattern (use `predict_many`), a waveform without its rate, a rate that
                is not a whole number of Hz from 1000 up, a URL, an input of another kind.
        """
        if isinstance(audio, (str, Path)) and (Path(audio).is_dir() or not Path(audio).exists() and
                                               any(c in str(audio) for c in '*?[')):
            raise ConfigurationError(f'predict takes one recording; {audio} is a folder or pattern: use '
                                     f'predict_many([{str(audio)!r}])')
        (item,) = self._predict_items([audio], same_speaker=same_speaker, sample_rate=sample_rate, channels=channels)
        if item.result.error:
            raise item.error_type(item.result.error)
        return item.result

    __call__ = predict

    def predict_many(self, inputs: Sequence, recursive: bool = False, batch_size: int = 64,
                     same_speaker: bool = False, show_progress: bool = False,
                     sample_rate: Optional[int] = None, channels: str = 'mix') -> List[Prediction]:
        """Answers for many inputs, in order: files, folders and glob patterns (see `expand_inputs`), and the
        other inputs `predict` takes (waveforms recorded at `sample_rate`). An input that cannot be read gives a
        `Prediction` with its `error` and `status="error"`, and the others still run.

        Args:
            inputs: a list of paths, patterns and waveforms (one path alone is taken as a list of one).
            batch_size: windows per MFCC and model batch.
            same_speaker: all inputs are recordings of one speaker; needed by (and only used for) models
                trained on per-speaker normalised features, which normalise the inputs' features together.
            show_progress: a progress bar over the inputs (tqdm, on stderr).
            channels: `"mix"`, `"left"` or `"right"` for stereo inputs (see `predict`).
        """

        return [item.result for item in self._predict_items(inputs, recursive, batch_size, same_speaker, show_progress,
                                                            sample_rate, channels)]

    def _predict_items(self, inputs, recursive: bool = False, batch_size: int = 64, same_speaker: bool = False,
                       show_progress: bool = False, sample_rate=None, channels: str = 'mix') -> List['_Item']:
        if self.normalize != 'none' and not same_speaker:
            raise ConfigurationError(
                f'this model was trained on features normalised per speaker (normalize={self.normalize!r}); give '
                f'several recordings of one speaker with --same-speaker (same_speaker=True) so they are normalised '
                f'together')
        if same_speaker and self.normalize == 'none':
            raise ConfigurationError('same_speaker (--same-speaker) is for models trained with per-speaker '
                                     'normalisation; this model was not (normalize="none"), so it would change nothing')
        if batch_size < 1:
            raise ConfigurationError(f'batch_size must be >= 1, got {batch_size}')
        check_choice('channels', channels, CHANNEL_MODES)
        if sample_rate is not None:
            sample_rate = check_sample_rate(sample_rate)
        if isinstance(inputs, (str, Path, bytes, dict)):
            inputs = [inputs]
        elif isinstance(inputs, np.ndarray) or isinstance(inputs, torch.Tensor):
            raise ConfigurationError('predict_many takes a list of inputs; for one waveform use predict(waveform, '
                                     'sample_rate=...)')
        sources = []
        for x in inputs:
            if isinstance(x, (str, Path)):
                sources += expand_inputs([x], recursive)
            elif sample_rate is None and isinstance(x, (np.ndarray, torch.Tensor, list, tuple)):
                raise ConfigurationError(f'a waveform needs its sample rate: sample_rate=16000, for example (the model '
                                         f'reads audio at {self.extractor.sample_rate} Hz and resamples)')
            else:
                sources.append(_Given(x))
        items, loaded, pending = [], [], []
        bar = progress(sources, enabled=show_progress and len(sources) > 1, desc='predict', unit='file')
        for i, source in enumerate(bar):
            items.append(self._load(source, sample_rate, channels))
            loaded.append(items[-1])
            if len(loaded) < batch_size and i + 1 < len(sources):
                continue
            self._find_speech(loaded, show_progress)       # one detector call per batch of inputs
            for item in loaded:
                for window in self._window_signals(item, show_progress):
                    pending.append((item, window))
                    if len(pending) == batch_size:
                        self._extract(pending)
                        pending = []
            loaded = []
        self._extract(pending)
        judged = [it for it in items if it.features]       # features are kept only to normalise per speaker
        if judged:                                         # the speaker's statistics need every window first
            counts = [len(it.features) for it in judged]
            x = normalize_by_speaker(np.concatenate([np.stack(it.features) for it in judged]),
                                     ['speaker'] * sum(counts), self.normalize)
            flat = [(it, f) for it, part in zip(judged, np.split(x, np.cumsum(counts)[:-1])) for f in part]
            for start in range(0, len(flat), batch_size):
                self._classify(flat[start:start + batch_size])
        head_note = self._untrained_head_note()            # once a call: it compares the head's tensors
        for item in items:
            self._finish(item, head_note)
        return items

    # --- steps -----------------------------------------------------------------------------------------

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
        item.clipping_known = audio.clipping_known
        if isinstance(audio, StreamedInput):               # its level and clipping are measured as it is read
            item.stream = audio
            item.result.duration = round(audio.length(self.extractor.sample_rate) / self.extractor.sample_rate, 3)
            return item
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
        for start, end in self._window_bounds(length):
            voiced = activity.voiced_seconds(start / rate, end / rate)
            item.windows.append((start, end, voiced, voiced >= self.min_speech and voiced > 0))

    def _window_bounds(self, n: int) -> List[tuple]:
        """Windows every `hop` samples, the last ending at the end; no two start less than a quarter window apart:
        a last window that close replaces the regular one before it where the windows still cover everything,
        and a recording less than a quarter window longer than the input is one centred window (as training
        crops), which `_notes` reports."""
        w = self.window
        if w is None or n <= w:
            return [(0, n)]
        if n - w < w / 4:
            return [((n - w) // 2, (n - w) // 2 + w)]
        starts = list(range(0, n - w + 1, self.hop))
        if starts[-1] != n - w:
            if n - w - starts[-1] < w / 4 and len(starts) > 1 and starts[-2] + 2 * w >= n:
                starts[-1] = n - w
            else:
                starts.append(n - w)
        return [(s, s + w) for s in starts]

    def _window_signals(self, item: '_Item', show_progress: bool = False) -> Iterator[np.ndarray]:
        """The model-ready waveforms of the item's judged windows, one at a time (a streamed file's are cut from a
        second pass over its blocks, holding at most a window and a block)."""
        if item.activity is None:
            return
        regions = item.activity.speech_regions()
        judged = [(start, end) for start, end, _, judge in item.windows if judge]
        signal, item.signal = item.signal, None
        parts = self._cut_stream(item, judged, show_progress) if item.stream is not None else \
            (signal[start:end] for start, end in judged)
        for (start, end), part in zip(judged, parts):
            if self.extractor.level == 'peak':
                peak = self._speech_peak(part, regions, start, end)
                part = normalize_level(part, 'peak', peak)
                loud = self._loud_speech_db(item, start, end)
                item.speech_below_peak.append(loud - 20 * math.log10(peak) if peak > 0 else 0.0)
            yield part if self.window is None else centre_fit(part, self.window)
        parts.close()                                    # a streamed file's reading and progress bar end here

    def _cut_stream(self, item: '_Item', bounds: List[tuple], show_progress: bool) -> Iterator[np.ndarray]:
        """The samples `[start, end)` of each of `bounds` (in order) from the blocks of a streamed item."""
        held, offset = np.zeros(0, dtype=np.float32), 0  # held[i] is sample offset + i
        blocks = self._blocks(item, show_progress, 'judging')
        try:
            for start, end in bounds:
                while True:
                    drop = min(max(0, start - offset), len(held))   # nothing before the window is kept
                    held, offset = held[drop:], offset + drop
                    block = next(blocks, None) if offset + len(held) < end else None
                    if block is None:
                        break
                    held = np.concatenate([held, block])
                yield held[start - offset:end - offset].copy()
        finally:
            blocks.close()                               # nothing after the last judged window is read

    def _speech_peak(self, part: np.ndarray, regions, start: int, end: int) -> float:
        """The largest absolute sample of the window's speech regions (`part`: the samples `[start, end)`): a click
        in a pause does not set the level."""
        rate = self.extractor.sample_rate
        peak = 0.0
        for a, b in regions:
            a, b = max(start, int(a * rate)), min(end, int(math.ceil(b * rate)))
            if b > a:
                peak = max(peak, float(np.max(np.abs(part[a - start:b - start]))))
        return peak

    def _loud_speech_db(self, item: '_Item', start: int, end: int) -> float:
        """The 90th percentile level (dBFS) of the voiced frames in the window."""
        activity, rate = item.activity, self.extractor.sample_rate
        frames = activity.frame_range(start / rate, end / rate)
        levels = activity.level_db[frames][activity.voiced[frames]]
        return float(np.percentile(levels, 90)) if len(levels) else float('-inf')

    def _extract(self, pending: List[tuple]) -> None:
        """MFCC of `[(item, window signal)]`, classified at once unless features are normalised per speaker."""
        if not pending:
            return
        lengths = {len(s) for _, s in pending}
        groups = [pending] if len(lengths) == 1 else [[p] for p in pending]   # whole-file models: one at a time
        for group in groups:
            feats = self.extractor.batch([s for _, s in group], device=self.device)
            if self.normalize == 'none':
                self._classify([(item, f) for (item, _), f in zip(group, feats)])
            else:
                for (item, _), f in zip(group, feats):
                    item.features.append(f)

    @torch.no_grad()
    def _classify(self, pairs: List[tuple]) -> None:
        """Append each `(item, features [C, T])` pair's class probabilities to its item."""
        batch = torch.as_tensor(np.stack([f for _, f in pairs]), dtype=torch.float32, device=self.device)
        for (item, _), p in zip(pairs, self.model(batch).softmax(dim=-1).float().cpu().numpy()):
            item.probabilities.append(p)

    def _finish(self, item: '_Item', head_note: str) -> Prediction:
        result = item.result
        if result.error or item.activity is None:          # unreadable, or a note of expand_inputs: nothing analysed
            return result
        rate = self.extractor.sample_rate
        probs = iter(item.probabilities)
        weights, rows = [], []
        for start, end, voiced, judged in item.windows:
            p = next(probs) if judged else None
            if judged:
                weights.append(voiced)
                rows.append(p)
            result.segments.append(Segment(
                round(start / rate, 3), round(end / rate, 3), self.label_names[int(p.argmax())] if judged else None,
                self._named(p) if judged else None, round(voiced, 3)))
        result.notes += ([head_note] if head_note else []) + self._notes(item, len(rows))
        if rows and item.seen and not head_note:            # an untrained head's answers mean nothing anyway
            result.notes.append(self._seen_note(*item.seen))
        result.status = 'ok' if rows else 'too_short' if result.duration < self.min_speech else \
            'non_speech' if self._tones(item) else 'no_speech'
        if rows:
            mean = np.average(np.stack(rows), axis=0, weights=np.asarray(weights, dtype=np.float64))
            result.probabilities = self._named(mean)
            result.prediction = self.label_names[int(mean.argmax())]
        return result

    def _tones(self, item: '_Item') -> str:
        """What the item's tonal frames were, when there are enough of them to mention ('' otherwise)."""
        activity: SpeechActivity = item.activity
        tonal = activity.tonal_seconds()
        voiced = activity.voiced_seconds() - (tonal if self.judge_tones else 0.0)
        if tonal < TONE_SECONDS or tonal < TONE_SHARE * (tonal + voiced):
            return ''
        return f'{tonal:.2f} s whose pitch holds still or that is one pure tone: a beep, dial or ringing tone, siren ' \
               f'or music?'

    def _tone_under_speech(self, item: '_Item', judged: int) -> List[str]:
        """A note when a judged window holds a spectral line at one frequency in `LINE_SHARE` of its frames or more
        (`SpeechActivity.steady_line`): a tone under the speech, which the voice's periodicity hides from the
        tone tests of `SpeechDetector`."""
        rate = self.extractor.sample_rate
        heard = []
        for start, end, _, is_judged in item.windows:
            line = item.activity.steady_line(start / rate, end / rate) if is_judged else None
            if line and line[1] >= LINE_SHARE:
                heard.append((start, line[0]))
        if not heard:
            return []
        where = '' if len(item.windows) == 1 else \
            f' in {len(heard)} of {judged} judged windows, the first from {format_clock(heard[0][0] / rate)}'
        return [f'a steady tone at about {heard[0][1]:.0f} Hz sounds under the speech{where} (a beep, dial tone or '
                f'music?): the speech was judged with it, so the answer may be off']

    def _untrained_head_note(self) -> str:
        source = untrained_head(self.model)
        return (f'the model\'s classifier is untrained: loading {source} kept only its body (another class count, '
                f'input length or kind of head), so these probabilities mean nothing until the model is fine-tuned'
                if source else '')

    def _seen_note(self, record: dict, seen: int, utterance: str, how: str) -> str:
        corpus, split = str(record['corpus']).upper(), str(record.get('split'))
        which = {'all': f'all of {corpus}', 'kfold': f'every {corpus} utterance but {split.replace("fold", "fold ")}\'s '
                                                     f'test set',
                 'loso': f'every {corpus} speaker but {split.replace("speaker_", "")}'}.get(
                     record.get('protocol'), 'its training part')
        whose = 'these weights' if [record] == training_records(self.trained_on)[:1] else \
            'the weights these were trained from'
        verb = 'trained or chose their epoch on' if record.get('val_fraction') else 'trained on'
        one_of = f'one of the {seen} utterances {whose} {verb} ({which})'
        if how == 'content':
            return (f'this recording is {corpus}\'s {utterance} (by its content), {one_of}: the model learned this '
                    f'answer, so it says nothing of how the model judges speech it has not heard (its held-out '
                    f'accuracy does)')
        return (f'this file is named as {corpus}\'s {utterance}, {one_of}: if it is that recording, the model learned '
                f'this answer, so it says nothing of how the model judges speech it has not heard (its held-out '
                f'accuracy does)')

    def _named(self, p: np.ndarray) -> dict:
        return {k: round(float(v), 6) for k, v in zip(self.label_names, p)}

    def _notes(self, item: '_Item', judged: int) -> List[str]:
        notes = []
        activity: SpeechActivity = item.activity
        windows = len(item.windows)
        rate = self.extractor.sample_rate
        if windows == 1 and item.windows[0][0] > 0:
            cut = item.windows[0][0] / rate
            notes.append(f'{item.result.duration:.2f} s is a little longer than the model\'s input '
                         f'({self.window / rate:.2f} s): its middle was judged, {cut:.2f} s left out at each end '
                         f'(as training crops)')
        if windows > 1:
            rate = self.extractor.sample_rate
            cut = (f'{item.result.duration:.2f} s is longer than the model\'s input ({self.window / rate:.2f} s): cut '
                   f'into {windows} windows (hop {self.hop / rate:.2f} s)')
            notes.append(f'{cut}, {windows - judged} without enough speech skipped; the answer is the mean of {judged} '
                         f'windows\' probabilities weighted by their voiced seconds' if judged else f'{cut}')
        if judged == 0 and item.result.duration < self.min_speech:
            notes.append(f'no prediction: too short to judge ({item.result.duration:.2f} s of audio; a judgement needs '
                         f'{self.min_speech:.2f} s of voiced speech)')
            return notes
        if judged == 0 and item.hum:
            notes.append(f'no prediction: a mains hum ({item.hum[0]} Hz and its harmonics, {100 * item.hum[1]:.0f} % of '
                         f'the energy) sets the noise floor, so no speech stands out above it; filter it out (a '
                         f'{item.hum[0]} Hz notch and its harmonics) and try again')
            return notes
        tones = self._tones(item)
        if judged == 0 and tones:
            notes.append(f'no prediction: the periodic sound here is a tone, not a voice ({tones}); judge_tones=True '
                         f'(--judge-tones) judges it anyway')
            return notes
        if tones:
            notes.append(f'the sound judged includes a tone, not a voice ({tones}): the answer may not be about speech'
                         if self.judge_tones else f'a tone was heard besides the speech ({tones}); it was not counted '
                         f'as speech, and the speech was judged')
        elif judged:
            notes += self._tone_under_speech(item, judged)
        if judged == 0:
            voiced = max(w[2] for w in item.windows)
            peak = float(activity.level_db.max()) if len(activity.level_db) else float('-inf')
            loudest = 'digital silence' if peak <= -119 else f'loudest frame {peak:.1f} dBFS'
            where = '' if windows == 1 else ' in the best window'
            notes.append(f'no prediction: no speech to judge ({voiced:.2f} s of voiced speech{where}, '
                         f'{self.min_speech:.2f} s needed; {loudest})')
            return notes
        if judged >= 3:                                      # a long recording: do its windows agree?
            winners = [self.label_names[int(p.argmax())] for p in item.probabilities]
            weights = [w[2] for w in item.windows if w[3]]
            share = {k: sum(v for c, v in zip(winners, weights) if c == k) / sum(weights) for k in set(winners)}
            if max(share.values()) < DISAGREE_SHARE:
                notes.append('the windows disagree (share of voiced speech per window answer: ' + ', '.join(
                    f'{k} {100 * v:.0f} %' for k, v in sorted(share.items(), key=lambda kv: -kv[1])) + '): the '
                    'recording\'s answer averages different emotions; see its segments')
        below = min(item.speech_below_peak, default=0.0)
        if below < SPEECH_BELOW_PEAK_DB:
            notes.append(f'the speech lies {-below:.0f} dB below the loudest sample among it (a click or other short '
                         f'loud sound?), so scaling to that peak leaves it quieter than the recordings the model '
                         f'learned from: the answer may be off')
        if item.native_rate and item.native_rate < NARROW_BAND_HZ:
            notes.append(f'recorded at {item.native_rate} Hz: nothing above {item.native_rate // 2} Hz, while emotion '
                         f'models learn from wide-band speech (EMODB, the bundled model\'s corpus: 16 kHz), so the '
                         f'answer may be off')
        if self.extractor.level == 'none' and item.peak_db < QUIET_PEAK_DB:
            notes.append(f'the recording peaks at {item.peak_db:.1f} dBFS and this model takes the level as it is '
                         f'(level="none"): quieter than the recordings it learned from, so the answer may be off')
        if item.clipped > 0.001:
            notes.append(f'{100 * item.clipped:.1f} % of the samples are at full scale (clipped): the answer may be off')
        return notes
