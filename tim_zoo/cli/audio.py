"""``tim-zoo extract``, ``tim-zoo predict`` and ``tim-zoo evaluate``: from recordings to results."""
import json
import sys
from pathlib import Path

from ..exceptions import ConfigurationError


def _release_length(corpus: str, default: int = 96000) -> int:
    from ..data import CORPUS_RELEASES
    from ..weights.releases import TIMNET_RELEASES

    release = CORPUS_RELEASES.get(corpus.lower())
    return TIMNET_RELEASES[release]['mean_signal_length'] if release else default


def cmd_extract(args) -> int:
    from ..data import FeatureSet, MFCCExtractor, extract_features, load_corpus, save_timnet_npy

    corpus = load_corpus(args.corpus, args.data_root)
    length = args.mean_signal_length or _release_length(args.corpus)
    features = extract_features(corpus, MFCCExtractor(length, args.n_mfcc, order=args.order), show_progress=not args.quiet)
    out = Path(args.output)
    if out.suffix == '.npy':
        save_timnet_npy(features, out)
    else:
        FeatureSet.save(features, out)
    print(f'wrote {out}: {len(features)} utterances, x {tuple(features.x.shape)}, classes {", ".join(features.label_names)}')
    return 0


def _load_predict_model(args):
    from .._factory import create_model
    from ..weights import load_checkpoint

    if args.checkpoint and args.keras_weights:
        raise ConfigurationError('give either --checkpoint or --keras-weights, not both')
    if args.checkpoint:
        if args.model:
            return create_model(args.model, checkpoint_path=args.checkpoint)
        return load_checkpoint(args.checkpoint)
    if args.keras_weights:
        if args.model and args.model != 'timnet':
            raise ConfigurationError(f'Keras weights are TIM-Net weights; --model {args.model} cannot take them')
        return create_model('timnet', pretrained=True, pretrained_cfg_overlay=dict(file=args.keras_weights))
    if args.model:
        raise ConfigurationError(f'--model {args.model} needs weights: pass --checkpoint PATH or --keras-weights PATH')
    from ..pretrained import load_default_model
    return load_default_model()


def predict_files(model, paths, mean_signal_length=None, same_speaker=False):
    """``[(path, {label: probability})]`` for audio files, with the features the model's weights expect.

    A model trained on per-speaker normalised features (``normalize`` in its feature settings) needs
    ``same_speaker=True``: the files are then taken as recordings of one speaker and normalised together.
    """
    import numpy as np

    from ..data import MFCCExtractor, normalize_by_speaker
    from ..evaluation import predict_proba

    settings = dict((getattr(model, 'pretrained_cfg', None) or {}).get('feature_settings') or {})
    normalize = settings.get('normalize', 'none')
    if normalize != 'none' and not same_speaker:
        raise ConfigurationError(
            f'this model was trained on features normalised per speaker (normalize={normalize!r}); give several '
            f'recordings of one speaker with --same-speaker (same_speaker=True) so they are normalised together')
    if mean_signal_length:
        settings['mean_signal_length'] = mean_signal_length
    extractor = MFCCExtractor.from_settings(settings)
    x = np.stack([extractor(p) for p in paths])
    if normalize != 'none':
        x = normalize_by_speaker(x, ['speaker'] * len(x), normalize)
    probs = predict_proba(model, x)
    labels = model.label_names or [f'class_{i}' for i in range(model.num_classes)]
    return [(str(p), dict(zip(labels, map(float, row)))) for p, row in zip(paths, probs)]


def cmd_predict(args) -> int:
    model = _load_predict_model(args)
    results = predict_files(model, args.wav, args.mean_signal_length, args.same_speaker)
    if args.json:
        print(json.dumps([dict(file=f, prediction=max(p, key=p.get), probabilities=p) for f, p in results], indent=2))
        return 0
    labels = list(results[0][1])
    name_w = max(len('file'), *(len(f) for f, _ in results))
    pred_w = max(len('prediction'), *(len(k) for k in labels))
    print(f'{"file":<{name_w}}  {"prediction":<{pred_w}}  ' + '  '.join(f'{k:>8}' for k in labels))
    for f, p in results:
        print(f'{f:<{name_w}}  {max(p, key=p.get):<{pred_w}}  ' + '  '.join(f'{p[k]:>8.3f}' for k in labels))
    return 0


def cmd_evaluate(args) -> int:
    from ..data import MFCCExtractor, cached_features, extract_features, load_corpus
    from ..evaluation import evaluate_keras_release
    from ..weights.releases import TIMNET_RELEASES, find_release

    release = find_release(args.keras_release)
    corpus = load_corpus(args.corpus, args.data_root)
    length = TIMNET_RELEASES[release]['mean_signal_length'] if release else _release_length(args.corpus)
    extractor = MFCCExtractor(length)
    features = (cached_features(corpus, extractor, args.features, not args.quiet) if args.features
                else extract_features(corpus, extractor, not args.quiet))
    result = evaluate_keras_release(args.keras_release, features, seed=args.seed, show_progress=not args.quiet)
    result.update(corpus=args.corpus, data_root=str(args.data_root), utterances=len(features))
    print(f'{result["release"]} on {args.corpus} ({len(features)} utterances), KFold seed {result["seed"]}')
    print(f'{"fold":>4}  {"n":>4}  {"WAR":>7}  {"UAR":>7}')
    for f in result['per_fold']:
        print(f'{f["fold"]:>4}  {f["n"]:>4}  {100 * f["war"]:>6.2f}%  {100 * f["uar"]:>6.2f}%')
    print(f'mean WAR {100 * result["war"]:.2f}% (std {100 * result["war_std"]:.2f}), pooled UAR {100 * result["uar"]:.2f}%')
    if args.json:
        Path(args.json).write_text(json.dumps(result, indent=2))
        print(f'wrote {args.json}', file=sys.stderr)
    return 0


def add_commands(sub) -> None:
    p = sub.add_parser('extract', help='extract MFCC features of a corpus to a feature file')
    p.add_argument('--corpus', required=True, help='emodb, casia, ravdess, savee, emovo, iemocap or folders')
    p.add_argument('--data-root', required=True, help='the corpus folder')
    p.add_argument('-o', '--output', required=True, help='.npz (tim_zoo, [N, C, T]) or .npy (TIM-Net, [N, T, C])')
    p.add_argument('--mean-signal-length', type=int, default=0, help="samples after centre pad/crop (default: the corpus's release)")
    p.add_argument('--n-mfcc', type=int, default=39)
    p.add_argument('--order', type=int, default=1, choices=(1, 3), help='3: static + delta + delta-delta')
    p.add_argument('--quiet', action='store_true', help='no progress bar')
    p.set_defaults(func=cmd_extract)

    p = sub.add_parser('predict', help='classify audio files')
    p.add_argument('wav', nargs='+', help='audio files')
    p.add_argument('--model', default='', help='model name (with --checkpoint: load into this architecture)')
    p.add_argument('--checkpoint', default='', help='a tim_zoo .safetensors checkpoint')
    p.add_argument('--keras-weights', default='', help='a TIM-Net Keras .hdf5 file')
    p.add_argument('--mean-signal-length', type=int, default=0, help="override the weights' feature length")
    p.add_argument('--json', action='store_true', help='print JSON instead of a table')
    p.add_argument('--same-speaker', action='store_true',
                   help='the files are one speaker: normalise them together (models trained with --normalize)')
    p.set_defaults(func=cmd_predict)

    p = sub.add_parser('evaluate', help='evaluate a released 10-fold TIM-Net model set with the authors\' folds')
    p.add_argument('--keras-release', required=True, help='folder of 10-fold_weights_best_{1..10}.hdf5, e.g. EMODB_46')
    p.add_argument('--corpus', required=True)
    p.add_argument('--data-root', required=True)
    p.add_argument('--seed', type=int, default=None, help="KFold seed (default: the release's)")
    p.add_argument('--features', default='', help='feature cache (.npz) to read or write')
    p.add_argument('--json', default='', help='write the result as JSON here')
    p.add_argument('--quiet', action='store_true', help='no progress bars')
    p.set_defaults(func=cmd_evaluate)
