"""Load the TIM-Net authors' Keras release and evaluate it on its own test fold.

    python examples/official_weights.py [--shared ../shared] [--fold 1] [--all-folds]

Reads ``EMODB_46/10-fold_weights_best_{fold}.hdf5`` from the shared folder, rebuilds the authors'
10-fold split (KFold seed 46 over EMODB in canonical order), extracts TIM-Net's MFCC features for
the fold's test utterances and reports accuracy (WAR) and UAR. ``--all-folds`` does what
``tim-zoo evaluate`` does for all ten. Needs the audio and keras extras.
"""
import argparse
from pathlib import Path

import numpy as np

import tim_zoo
from tim_zoo.data import MFCCExtractor, load_corpus
from tim_zoo.evaluation import kfold_splits, predict_proba, uar, war


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument('--shared', default=str(Path(__file__).resolve().parents[1].parent / 'shared'))
    p.add_argument('--fold', type=int, default=1)
    p.add_argument('--all-folds', action='store_true')
    args = p.parse_args(argv)

    release = Path(args.shared) / 'weights' / 'timnet_official' / 'EMODB_46'
    audio = Path(args.shared) / 'data' / 'emodb'
    if not release.is_dir() or not audio.is_dir():
        print(f'no EMODB release or audio under {args.shared}: point --shared at a folder holding '
              f'weights/timnet_official/EMODB_46 and data/emodb')
        return
    corpus = load_corpus('emodb', audio)
    extractor = MFCCExtractor(mean_signal_length=96000)           # the EMODB_46 release's settings
    folds = range(1, 11) if args.all_folds else [args.fold]
    splits = kfold_splits(len(corpus), n_splits=10, seed=46)
    for fold in folds:
        model = tim_zoo.create_model('timnet.emodb_46', pretrained=True, pretrained_cfg_overlay=dict(
            file=str(release / f'10-fold_weights_best_{fold}.hdf5')))
        test = splits[fold - 1][1]
        x = np.stack([extractor(corpus.items[i].path) for i in test])
        y = np.array([corpus.items[i].label for i in test])
        pred = predict_proba(model, x).argmax(1)
        print(f'EMODB_46 fold {fold}: {len(test)} test utterances, WAR {100 * war(y, pred):.2f} %, '
              f'UAR {100 * uar(y, pred, len(model.label_names)):.2f} % '
              f'(labels: {", ".join(model.label_names)})')


if __name__ == '__main__':
    main()
