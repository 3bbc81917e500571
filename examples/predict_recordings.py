"""From recordings to emotions with the bundled EMODB model: one file, a long recording, a folder.

    python examples/predict_recordings.py                  # a long recording made of EMODB utterances
    python examples/predict_recordings.py --folder calls/  # your recordings: a table, and in --out
                                                           # (predictions/) predictions.csv, a PNG per file

Without EMODB beside the checkout (``../shared/data/emodb``) the example uses a synthetic voice.
"""
import argparse
from pathlib import Path

import numpy as np

import tim_zoo
from tim_zoo.inference import format_table, plot_prediction, write_predictions

EMODB = Path(__file__).resolve().parents[1] / '..' / 'shared' / 'data' / 'emodb' / 'wav'
RATE = 22050


def synthetic_voice(seconds: float, f0: float = 140.0) -> np.ndarray:
    """Harmonics of a gliding pitch in 0.3 s syllables: voiced, but no emotion in particular."""
    t = np.arange(int(seconds * RATE)) / RATE
    phase = 2 * np.pi * np.cumsum(f0 * (1 + 0.15 * np.sin(2 * np.pi * 1.3 * t))) / RATE
    syllables = (0.5 - 0.5 * np.cos(2 * np.pi * t / 0.3)) ** 2
    voice = sum(np.sin(k * phase) / k for k in range(1, 12)) * syllables
    return (0.3 * voice / np.abs(voice).max()).astype(np.float32)


def utterances():
    if (EMODB / '03a01Wa.wav').is_file():
        from tim_zoo.data import load_audio
        audio = [load_audio(EMODB / name) for name in ('03a01Wa.wav', '03a02Ta.wav')]
        return audio, 'EMODB 03a01Wa (angry), 03a02Ta (sad)'
    return [synthetic_voice(2.0), synthetic_voice(2.0, f0=220)], 'a synthetic voice'


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument('--folder', help='predict every recording in this folder (and its subfolders)')
    p.add_argument('--out', default='predictions', help='where the CSV and plots go')
    args = p.parse_args()

    recognizer = tim_zoo.EmotionRecognizer.from_pretrained()            # bundled EMODB timnet, level="peak"
    if args.folder:
        out = Path(args.out)
        out.mkdir(exist_ok=True)
        results = recognizer.predict_many([args.folder], recursive=True, show_progress=True)
        print(format_table(results, labels=recognizer.label_names))
        write_predictions(results, out / 'predictions.csv', labels=recognizer.label_names)
        for i, r in enumerate(results):
            if not r.error:
                plot_prediction(r, out / f'{i:04d}-{Path(r.file).stem}.png')
        print(f'wrote {out / "predictions.csv"} and a plot per file predicted ({out}/NNNN-NAME.png)')
        return

    first, second = utterances()[0]
    silence = np.zeros(6 * RATE, np.float32)
    # the second utterance 20 dB quieter
    recording = np.concatenate([silence[:RATE], first, silence, 0.1 * second, silence[:RATE]])
    print(f'a {len(recording) / RATE:.1f} s recording made of {utterances()[1]}, with silence between:')
    result = recognizer.predict(recording, sample_rate=RATE)
    print(format_table([result], segments=True))
    print('\nsilence alone:')
    print(format_table([recognizer.predict(silence, sample_rate=RATE)], labels=recognizer.label_names))


if __name__ == '__main__':
    main()
