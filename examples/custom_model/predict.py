"""Load the model train.py saved (another process: nothing shared but the file) and predict recordings.

    python predict.py --model runs/model.safetensors [RECORDING.wav ...]

Without recordings it predicts two made-up voices. The checkpoint names the function that built the model
(`my_models:emotion_net`); passing that function is what makes loading it safe: a file alone never picks the
code that runs.
"""
import argparse
from pathlib import Path

import numpy as np

from tim_zoo import EmotionRecognizer
from tim_zoo.inference import format_table

from my_models import emotion_net

HERE = Path(__file__).resolve().parent


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument('recordings', nargs='*', help='audio files (default: two made-up voices)')
    p.add_argument('--model', default=str(HERE / 'runs' / 'model.safetensors'))
    args = p.parse_args(argv)
    recognizer = EmotionRecognizer.from_checkpoint(args.model, builder=emotion_net)
    print(f'classes: {", ".join(recognizer.label_names)}; features: {recognizer.feature_settings}')
    if args.recordings:
        results = recognizer.predict_many(args.recordings)
    else:
        from train import made_up_voice
        rng = np.random.default_rng(1)
        results = [recognizer.predict(made_up_voice(f0, 3.0, rng), sample_rate=22050)
                   for f0 in (110.0, 260.0)]
        print('two made-up voices, at 110 Hz (low) and 260 Hz (high):')
    print(format_table(results, labels=recognizer.label_names))


if __name__ == '__main__':
    main()
