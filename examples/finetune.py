"""Fine-tune a pretrained TIM-Net on new data: freeze the stem, give the encoder a smaller learning rate.

    python examples/finetune.py [--epochs 10] [--out runs/finetune]

Starts from the EMODB timnet that ships with tim_zoo (7 emotions) and fine-tunes it for a 2-class
task. The data here are synthetic MFCC sequences so the example runs anywhere in seconds; put your
own features (``tim-zoo extract``) in their place. The command line does the same with
``tim-zoo train --init ... --freeze ... --lr-mult ...``.
"""
import argparse
import tempfile

import numpy as np

import tim_zoo
from tim_zoo.data import FeatureSet
from tim_zoo.pretrained import DEFAULT_CHECKPOINT
from tim_zoo.train import TrainConfig, run_training


def synthetic_features(n=48, frames=100, seed=0) -> FeatureSet:
    rng = np.random.default_rng(seed)
    y = np.arange(n) % 2
    x = (20 * (rng.normal(size=(n, 39, frames)) + y[:, None, None])).astype(np.float32)   # about MFCC scale
    speakers = [f'spk{i * 6 // n}' for i in range(n)]      # 6 speakers, each with both classes
    return FeatureSet(x, y, ['healthy', 'depressed'], [f'u{i}.wav' for i in range(n)], speakers,
                      dict(mean_signal_length=(frames - 1) * 512))   # hop 512: `frames` frames


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument('--epochs', type=int, default=10)
    p.add_argument('--out', default=None, help='output folder (default: a temporary one)')
    args = p.parse_args(argv)

    cfg = TrainConfig.from_recipe(
        None, model='timnet', init=str(DEFAULT_CHECKPOINT), freeze=['tim.encoder.stem'],
        lr_mult={'tim.encoder': 0.1}, lr=1e-3, weight_decay=0.0, epochs=args.epochs, protocol='loso',
        only_folds=[1, 2], batch_size=16, select='last', val_fraction=0.0)
    out = args.out or tempfile.mkdtemp(prefix='tim_zoo_finetune_')
    summary = run_training(cfg, synthetic_features(), out, show_progress=False)
    print('accuracy on the held-out speaker (2 classes: chance is 0.50), last epoch:')
    for fold in summary['folds']:
        print(f'{fold["split"]}: WAR {fold["war"]:.2f}, UAR {fold["uar"]:.2f} '
              f'(epoch {fold["chosen_epoch"]})')
    model = tim_zoo.load_checkpoint(f'{out}/{summary["folds"][0]["split"]}/last.safetensors')
    print(f'fine-tuned model: {model.label_names}; outputs in {out}')


if __name__ == '__main__':
    main()
