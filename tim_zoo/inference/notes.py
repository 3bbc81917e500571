"""The notes of a prediction: what was done to a recording beyond the documented feature extraction, and why an
answer is missing or may be off (`EmotionRecognizer`'s, through `RecordingNotes`)."""
from dataclasses import dataclass, field
from pathlib import Path
from typing import List, Optional

import numpy as np

from ..data.speech import SpeechActivity
from ..exceptions import AudioError
from ..train.protocols import training_records
from .audio_input import StreamedInput
from .results import Prediction, format_clock

#: below this peak (dBFS) a model that takes the level as it is (`level="none"`) gets a note
QUIET_PEAK_DB = -20.0
#: with `level="peak"`: speech whose loud frames (90th percentile) lie further below the peak than this gets a
#: note (EMODB: -12.5 dB typical, -26 dB at the extreme): a click or other short loud sound set the peak
SPEECH_BELOW_PEAK_DB = -32.0
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
#: a recording whose peak spans fewer steps of its sample format than this (16-bit PCM peaking below about -48
#: dBFS) gets a note where the model scales it to a level (`level="peak"`): its rounding noise is scaled with it
FEW_STEPS = 128
#: judged voiced speech below this many seconds gets a note: every EMODB utterance holds more (0.53 s the fewest)
LITTLE_SPEECH_SECONDS = 0.5


def _voiced_in_judged(item: '_Item', rate: int) -> float:
    """Seconds of voiced speech in the item's judged windows, each counted once where windows overlap."""
    merged: List[list] = []
    for start, end in sorted((w[0], w[1]) for w in item.windows if w[3]):
        if merged and start <= merged[-1][1]:
            merged[-1][1] = max(merged[-1][1], end)
        else:
            merged.append([start, end])
    return sum(item.activity.voiced_seconds(a / rate, b / rate) for a, b in merged)


def own_training_note(record: dict) -> str:
    """A model note for weights a `tim_zoo.train` run wrote (their `trained_on` names its utterance list) that are
    no zoo tag with a measured accuracy: what they trained on, and where their held-out figure is (or that there is
    none)."""
    split, protocol, corpus, n = record.get('split'), record.get('protocol'), record.get('corpus'), record.get('utterances')
    recipe = f', recipe {record["recipe"]}' if record.get('recipe') else ''
    if protocol == 'all':
        return (f'these weights trained on all {n} utterances of {corpus}{recipe}: none was held out, so how far their '
                f'answers can be trusted was not measured; the probabilities do not say it')
    return (f'these weights trained on split {split} ({protocol}) of {n} utterances of {corpus}{recipe}: how far '
            f'their answers can be trusted is that split\'s held-out accuracy, in the result.json of {split} in its '
            f'run, not the probabilities')


@dataclass
class _Item:
    """One input on its way through `EmotionRecognizer.predict_many`: what the analysis found of it, from which its
    notes are written."""
    result: Prediction
    signal: Optional[np.ndarray] = None                    # dropped once its windows' features are computed
    stream: Optional[StreamedInput] = None                 # a long file, read block by block instead of `signal`
    activity: Optional[SpeechActivity] = None
    peak_db: float = float('-inf')
    clipped: float = 0.0                                   # share of samples at full scale
    peak_steps: float = float('inf')                       # the peak in steps of the sample format (`peak_in_steps`)
    native_rate: int = 0                                   # the rate it was recorded at
    speech_below_peak: List[float] = field(default_factory=list)   # dB, per judged window (level="peak")
    windows: List[tuple] = field(default_factory=list)     # (start sample, end sample, voiced seconds, judged)
    features: List[np.ndarray] = field(default_factory=list)  # kept only to normalise per speaker
    probabilities: List[np.ndarray] = field(default_factory=list)
    error_type: type = AudioError                          # what `predict` raises for this input's error
    hum: Optional[tuple] = None                            # (mains frequency, share of the energy) of a strong hum
    seen: Optional[tuple] = None                           # (record, its count, utterance, how it was known)
    clipping_known: bool = True                            # full-scale samples mean clipping (`AudioInput`)


class RecordingNotes:
    """The notes `EmotionRecognizer` writes of each recording (`Prediction.notes`), from its settings (`extractor`,
    `window`, `hop`, `min_speech`, `judge_tones`, `label_names`, `trained_on`, `model`) and what the analysis
    found of the recording (`_Item`)."""

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

    def _seen_note(self, record: dict, seen: int, utterance: Optional[str], how: str, file: Optional[str] = None,
                   cut: bool = False) -> str:
        """The note of a recording the weights trained on; the utterance named only where the file's own name is
        not already it (so that the note reads the same for every such file, and a listing gives it once), and not
        where only its content is known (`utterance` None: a corpus without a table, by its recorded content)."""
        corpus, split = str(record['corpus']).upper(), str(record.get('split'))
        which = {'all': f'all of {corpus}', 'kfold': f'every {corpus} utterance but {split.replace("fold", "fold ")}\'s '
                                                     f'test set',
                 'loso': f'every {corpus} speaker but {split.replace("speaker_", "")}'}.get(
                     record.get('protocol'), 'its training part')
        own = [record] == training_records(self.trained_on)[:1]
        whose = 'these weights' if own else 'the weights these were trained from'
        # weights trained from others learned their own answers (often with a new classifier): the body heard it
        learned = 'the model learned this answer' if own and not cut else \
            'the weights the model was trained from learned an answer to it' if not own else \
            'the weights learned an answer to it among all the labels they trained on, some of which this ' \
            'classifier leaves out'
        verb = 'trained or chose their epoch on' if record.get('val_fraction') else 'trained on'
        one_of = f'one of the {seen} utterances {whose} {verb} ({which})'
        own_name = file is not None and Path(file).stem == utterance
        nothing = 'so it says nothing of how the model judges speech it has not heard' + (
            '' if cut else ' (its held-out accuracy does)')
        if utterance is None:
            return f'this recording is, by its content, {one_of}: {learned}, {nothing}'
        if how == 'content':
            which_one = (f'the {corpus} utterance of its name' if own_name else f'{corpus}\'s {utterance}')
            return f'this recording is {which_one} (by its content), {one_of}: {learned}, {nothing}'
        named = one_of if own_name else f'{corpus}\'s {utterance}, {one_of}'
        return f'this file is named as {named}: if it is that recording, {learned}, {nothing}'

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
            steady = ('a tone that holds one level throughout stands out from no quieter background, so even '
                      'judge_tones=True judges none of it')
            notes.append(f'no prediction: the periodic sound here is a tone, not a voice ({tones}); ' + (
                f'{steady}' if self.judge_tones else f'judge_tones=True (--judge-tones) judges a tone that starts and '
                f'stops (beeps) anyway; {steady}'))
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
            floor = getattr(self.detector, "min_level_db", -70.0)
            quiet = '' if not -119 < peak < floor + 10 else (
                f': too quiet to tell speech from silence (the speech detector hears nothing below {floor:.0f} dBFS); '
                f'if there is speech, record it louder or raise its gain')
            notes.append(f'no prediction: no speech to judge ({voiced:.2f} s of voiced speech{where}, '
                         f'{self.min_speech:.2f} s needed; {loudest}){quiet}')
            return notes
        if judged >= 3:                                      # a long recording: do its windows agree?
            winners = [self.label_names[int(p.argmax())] for p in item.probabilities]
            weights = [w[2] for w in item.windows if w[3]]
            share = {k: sum(v for c, v in zip(winners, weights) if c == k) / sum(weights) for k in set(winners)}
            if max(share.values()) < DISAGREE_SHARE:
                notes.append('the windows disagree (share of voiced speech per window answer: ' + ', '.join(
                    f'{k} {100 * v:.0f} %' for k, v in sorted(share.items(), key=lambda kv: -kv[1])) + '): the '
                    'recording\'s answer averages different emotions; see its segments')
        voiced = _voiced_in_judged(item, self.extractor.sample_rate)
        if voiced < LITTLE_SPEECH_SECONDS:
            notes.append(f'only {voiced:.2f} s of voiced speech was judged, less than any EMODB utterance holds '
                         f'({LITTLE_SPEECH_SECONDS:.1f} s or more): the answer rests on very little speech')
        below = min(item.speech_below_peak, default=0.0)
        if below < SPEECH_BELOW_PEAK_DB:
            notes.append(f'the speech lies {-below:.0f} dB below the loudest sample among it (a click or other short '
                         f'loud sound?), so scaling to that peak leaves it quieter than the recordings the model '
                         f'learned from: the answer may be off')
        if item.native_rate and item.native_rate < NARROW_BAND_HZ:
            notes.append(f'recorded at {item.native_rate} Hz: nothing above {item.native_rate // 2} Hz, while speech '
                         f'models here learn from wide-band speech (EMODB, the corpus of the bundled and zoo models, is '
                         f'16 kHz), so the answer may be off unless this model trained on such recordings')
        if self.extractor.level != 'none' and item.peak_steps < FEW_STEPS:
            notes.append(f'the recording peaks at {item.peak_db:.1f} dBFS, only {item.peak_steps:.0f} steps of its '
                         f'sample format: scaling it to the level the model learned from raises its rounding noise '
                         f'with it, so the answer may be off (record it louder, or with more bits)')
        if self.extractor.level == 'none' and item.peak_db < QUIET_PEAK_DB:
            notes.append(f'the recording peaks at {item.peak_db:.1f} dBFS and this model takes the level as it is '
                         f'(level="none"): quieter than the recordings it learned from, so the answer may be off')
        if item.clipped > 0.001:
            notes.append(f'{100 * item.clipped:.1f} % of the samples are at full scale (clipped): the answer may be off')
        return notes
