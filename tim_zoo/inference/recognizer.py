"""`EmotionRecognizer`: a model together with the feature extraction its weights expect."""
import math
import os
from pathlib import Path
from typing import List, Optional, Sequence

import numpy as np
import torch

from .._factory import check_model_name, create_model, is_hub_source, list_models, load_checkpoint
from .._utils import progress, require
from .._validation import check_choice, resolve_device
from ..data.features import MFCCExtractor
from ..data.frame_selection import gmm_frame_selection
from ..data.normalize import normalize_by_speaker
from ..data.speech import MIN_SPEECH_SECONDS, SpeechDetector
from ..exceptions import ConfigurationError, WeightsNotFoundError
from ..pretrained import load_default_model
from ..train.protocols import heard_by, heard_fingerprints
from ..weights.fresh_head import classifier_notes, labels_left_out
from ..weights.load import KERAS_SUFFIXES, WEIGHT_SUFFIXES
from ..models._zoo import tag_notes
from ..models.timnet_releases import TIMNET_RELEASES, file_sha256, find_release, published_release
from .audio_input import CHANNEL_MODES, check_sample_rate
from .inputs import expand_inputs
from .notes import RecordingNotes, _Item, own_training_note
from .reading import RecordingReader, _Given
from .results import Prediction, Segment


class EmotionRecognizer(RecordingNotes, RecordingReader):
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
                 hop_seconds: Optional[float] = None, min_speech: float = MIN_SPEECH_SECONDS,
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
        select = self.feature_settings.get('gmm_select')
        #: GMM frame selection of each window's frames as training selected them (`n_select, n_fits, seed`), or None
        self.frame_selection = (int(select), int(self.feature_settings.get('gmm_fits', 8)),
                                self.feature_settings.get('gmm_seed')) if select else None
        name = getattr(model, 'model_name', type(model).__name__)
        if select:
            require('sklearn.mixture', 'GMM frame selection (the model trained on selected frames)')
            if self.extractor.frames is not None and self.extractor.frames < int(select):
                raise ConfigurationError(
                    f'{name} trained on {select} GMM-selected frames of each utterance, but mean_signal_length='
                    f'{self.extractor.mean_signal_length} gives windows of {self.extractor.frames} frames, fewer than '
                    f'it selects from; leave it at the model\'s own '
                    f'({(recorded or {}).get("mean_signal_length", "-")} samples)')
        fixed_len, frames = getattr(model, 'fixed_len', None), int(select) if select else self.extractor.frames
        if fixed_len and frames is not None and frames != fixed_len:
            if not select and (feature_settings or {}).get('mean_signal_length') is not None:   # the caller's length
                raise ConfigurationError(
                    f'{name} takes exactly {fixed_len} frames (its head has a fixed size), but mean_signal_length='
                    f'{self.extractor.mean_signal_length} (--mean-signal-length) gives {frames}; leave it at the '
                    f'model\'s own ({(recorded or {}).get("mean_signal_length", "-")} samples), or load a model built '
                    f'for {frames} frames')
            raise ConfigurationError(
                f'{name} takes exactly {fixed_len} frames (its head has a fixed size), but the feature settings its '
                f'weights record give {frames} (mean_signal_length={self.extractor.mean_signal_length}'
                f'{", gmm_select=" + str(select) if select else ""}): the model was built for another length than '
                f'its weights trained at; build it with seq_len={frames} (create_model(..., seq_len={frames}))')
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
        #: is untrained (weights loaded for another class count: `tim_zoo.weights.fresh_head`), which every
        #: prediction's notes say too
        head = classifier_notes(model)[0]                   # then the tag's figures are not this model's
        self.model_notes: List[str] = head or tag_notes(getattr(model, 'pretrained_cfg', None))
        record = (getattr(model, 'pretrained_cfg', None) or {}).get('trained_on')
        if not self.model_notes and record and record.get('names_sha256'):   # a run's weights: what they learned
            self.model_notes.append(own_training_note(record))
        if self.frame_selection:
            n, fits, seed = self.frame_selection
            self.model_notes.append(
                f'each window\'s {self.extractor.frames} frames are shortened to {n} by GMM frame selection, as the '
                f'model trained (gmm_fits={fits}, ' + (f'seed {seed})' if seed is not None else
                                                       'seed 0: the weights do not record their run\'s seed)'))
        #: what the weights record of the utterances they trained on (`pretrained_cfg["trained_on"]`); a prediction's
        #: notes say when its recording is one of them, where their corpus' utterances are known
        #: (`tim_zoo.train.protocols.heard_by`)
        self.trained_on = (getattr(model, 'pretrained_cfg', None) or {}).get('trained_on')
        self._heard = heard_by(self.trained_on)
        #: and those of corpora without a table, by the content they recorded (`heard_fingerprints`)
        self._heard_content = heard_fingerprints(self.trained_on)

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
        if path.is_dir() and str(name_or_path) not in list_models():       # a model's name before a folder of it
            raise ConfigurationError(f'{path} is a folder: a hub folder (tim_zoo.save_for_hub) loads as '
                                     f'"local-dir:{path}", a checkpoint by its file\'s path')
        exists = path.exists()
        if (isinstance(name_or_path, str) and not path.is_file() and path.suffix.lower() not in WEIGHT_SUFFIXES
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
        folder name, a published file's hash, or `release="EMODB_46"`) gives the labels and the authors' features
        (`level="none"`)."""

        if Path(path).suffix.lower() not in KERAS_SUFFIXES:
            raise ConfigurationError(f'{path} is not a Keras file ({", ".join(KERAS_SUFFIXES)}); a tim_zoo checkpoint or '
                                     f'other weight file loads with EmotionRecognizer.from_checkpoint(path)')
        if release and release not in TIMNET_RELEASES:
            raise ConfigurationError(f'unknown release {release!r}; the releases are {", ".join(TIMNET_RELEASES)}')
        release = release or find_release(path) or published_release(file_sha256(path))[0]
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
        head = classifier_notes(self.model)                 # once a call: they compare the classifier's tensors
        cut = labels_left_out(self.model) is not None
        for item in items:
            self._finish(item, *head, cut)
        return items

    # --- steps -----------------------------------------------------------------------------------------

    def _extract(self, pending: List[tuple]) -> None:
        """MFCC of `[(item, window signal)]`, classified at once unless features are normalised per speaker."""
        if not pending:
            return
        lengths = {len(s) for _, s in pending}
        groups = [pending] if len(lengths) == 1 else [[p] for p in pending]   # whole-file models: one at a time
        for group in groups:
            feats = self.extractor.batch([s for _, s in group], device=self.device)
            if self.frame_selection:
                n, fits, seed = self.frame_selection
                feats = np.stack([gmm_frame_selection(f, n, fits, seed or 0) for f in feats])
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

    def _finish(self, item: '_Item', head_notes: List[str], untrained: bool, cut: bool) -> Prediction:
        """The item's result from its windows' probabilities, with its notes (`head_notes`, `untrained`: what every
        answer says of the classifier, `fresh_head.classifier_notes`; `cut`: it leaves out labels its weights
        trained on, `fresh_head.labels_left_out`)."""
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
        result.notes += (head_notes if rows else []) + self._notes(item, len(rows))
        if rows and item.seen and not untrained:            # an untrained head's answers mean nothing anyway
            result.notes.append(self._seen_note(*item.seen, file=result.file, cut=cut))
        result.status = 'ok' if rows else 'too_short' if result.duration < self.min_speech else \
            'non_speech' if self._tones(item) else 'no_speech'
        if rows:
            mean = np.average(np.stack(rows), axis=0, weights=np.asarray(weights, dtype=np.float64))
            result.probabilities = self._named(mean)
            result.prediction = self.label_names[int(mean.argmax())]
        return result

    def _named(self, p: np.ndarray) -> dict:
        return {k: round(float(v), 6) for k, v in zip(self.label_names, p)}
