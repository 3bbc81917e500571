"""Train the project's model (my_models.py) with tim_zoo's engine, then save the model to ship.

    python train.py                              # EMODB from ../shared when present, else made-up voices
    python train.py --emodb PATH/TO/emodb/wav --epochs 100 --out runs

1. Features: MFCC of every recording (`MFCCExtractor`, 2.0 s windows, peak level), cached in
   OUT/features.npz.
2. One k-fold split trained and tested, to see where the model stands (a result to report needs all folds
   and repeats: docs/training.md).
3. The model to ship: trained on every recording (`protocol="all"`), saved as OUT/model.safetensors with
   its label names and feature settings. predict.py loads it in another process.
"""
import argparse
import shutil
from pathlib import Path

import numpy as np

from tim_zoo.data import FeatureSet, MFCCExtractor, cached_features, load_corpus
from tim_zoo.train import TrainConfig, init_gmm_heads, run_training

from my_models import emotion_net

HERE = Path(__file__).resolve().parent
EMODB = HERE.parents[2] / 'shared' / 'data' / 'emodb' / 'wav'
EXTRACTOR = MFCCExtractor(44100, level='peak')               # 2.0 s at 22050 Hz: 87 frames
VOICES = {'low': 110.0, 'mid': 170.0, 'high': 260.0}          # made-up "classes": a voice's pitch


def made_up_voice(f0: float, seconds: float, rng: np.random.Generator, rate: int = 22050) -> np.ndarray:
    """Harmonics of a gliding pitch in syllables, with a little noise: what a speech detector takes for a
    voice."""
    t = np.arange(int(seconds * rate)) / rate
    f = f0 * (1 + 0.1 * rng.uniform(0.5, 1.5) * np.sin(2 * np.pi * rng.uniform(0.8, 2.0) * t))
    phase = 2 * np.pi * np.cumsum(f) / rate
    syllables = (0.5 - 0.5 * np.cos(2 * np.pi * t / rng.uniform(0.25, 0.4))) ** 2
    voice = sum(np.sin(k * phase) / k for k in range(1, 12)) * syllables
    return (0.3 * voice / np.abs(voice).max() + 0.003 * rng.normal(size=t.shape)).astype(np.float32)


def made_up_features(per_class: int = 16) -> FeatureSet:
    rng = np.random.default_rng(0)
    names = list(VOICES)
    y = np.repeat(np.arange(len(names)), per_class)
    signals = [EXTRACTOR.signal(made_up_voice(VOICES[names[k]] * rng.uniform(0.9, 1.1), 2.0, rng), 22050)
               for k in y]
    speakers = [f'spk{i % 4}' for i in range(len(y))]
    files = [f'voice{i}.wav' for i in range(len(y))]
    return FeatureSet(EXTRACTOR.batch(signals), y, names, files, speakers, EXTRACTOR.settings)


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument('--emodb', default=str(EMODB),
                   help='EMODB wav folder (made-up voices when it is absent)')
    p.add_argument('--made-up', action='store_true',
                   help='train on made-up voices even when EMODB is there')
    p.add_argument('--epochs', type=int, default=15)
    p.add_argument('--out', default=str(HERE / 'runs'),
                   help='where the runs, features.npz and model.safetensors go')
    args = p.parse_args(argv)
    out = Path(args.out)
    if Path(args.emodb).is_dir() and not args.made_up:
        features = cached_features(load_corpus('emodb', args.emodb), EXTRACTOR, out / 'features.npz')
        print(f'EMODB: {len(features.y)} recordings, {len(features.label_names)} emotions')
    else:
        features = made_up_features()
        out.mkdir(parents=True, exist_ok=True)
        features.save(out / 'features.npz')
        print(f'made-up voices: {len(features.y)} recordings of {", ".join(features.label_names)} pitch')

    settings = dict(model=emotion_net, model_args=dict(filters=16, depth=4), init_hook=init_gmm_heads,
                    epochs=args.epochs, lr=1e-3, batch_size=16)
    # a second start continues (or, when finished, reads) the runs in OUT; other settings need another --out
    resume = (out / 'fold1' / 'config.json').exists()
    if resume:
        print(f'continuing the runs in {out} (another --out starts afresh)')
    first_split = TrainConfig.from_recipe(None, protocol='kfold', folds=5, only_folds=[1], **settings)
    check = run_training(first_split, features, out / 'fold1', resume=resume, show_progress=False)
    print(f'fold 1 of 5: test WAR {check["war_mean"]:.3f} (one split: a first look, not a result)')

    run_training(TrainConfig.from_recipe(None, protocol='all', **settings), features, out / 'all',
                 resume=(out / 'all' / 'config.json').exists(), show_progress=False)
    shutil.copyfile(out / 'all' / 'all' / 'last.safetensors', out / 'model.safetensors')
    print(f'saved {out / "model.safetensors"}; try: python predict.py --model {out / "model.safetensors"}')


if __name__ == '__main__':
    main()
