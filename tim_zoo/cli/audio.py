"""`tim-zoo extract`, `tim-zoo predict` and `tim-zoo evaluate`: from recordings to results."""
import json
import sys
from pathlib import Path

from .._factory import create_model, list_models, load_checkpoint
from ..models._base import DEFAULT_TAGS
from .._utils import atomic_write, import_from_cwd
from .._validation import resolve_device
from ..benchmark.harness import tune_malloc
from ..data import (
    FeatureSet, MFCCExtractor, cached_features, corpus_extractor, extract_features, load_corpus, release_signal_length,
    save_timnet_npy,
)
from ..data.audio import LEVEL_MODES
from ..evaluation import evaluate_keras_release, training_folds_note
from ..train.scoring import evaluate_model
from ..exceptions import ConfigurationError, UnsafeFileError
from ..inference import (
    EmotionRecognizer, check_output_path, check_plot_path, format_table, plot_predictions, write_predictions,
)
from ..weights.load import KERAS_SUFFIXES, WEIGHT_SUFFIXES
from ..models.timnet_releases import TIMNET_RELEASES, find_release


def add_level_argument(parser, default: str = 'default') -> None:
    parser.add_argument('--level', choices=LEVEL_MODES, default=None,
                        help='input level normalisation, recorded with the features and applied at prediction: peak '
                             f'({default}: each recording scaled to a full-scale peak, so models do not depend on the '
                             "microphone's gain) or none (the samples as read: the TIM-Net authors' features)")


def cmd_extract(args) -> int:
    corpus = load_corpus(args.corpus, args.data_root)
    extractor = corpus_extractor(args.corpus, args.mean_signal_length, args.n_mfcc, args.order, args.level)
    features = extract_features(corpus, extractor, show_progress=not args.quiet)
    out = Path(args.output)
    if out.suffix == '.npy':
        save_timnet_npy(features, out)
    else:
        FeatureSet.save(features, out)
    print(f'wrote {out}: {len(features)} utterances, x {tuple(features.x.shape)}, classes {", ".join(features.label_names)}')
    if features.fit_note():
        print(f'note: {features.fit_note()} (--mean-signal-length sets the length)')
    return 0


def build_recognizer(args):
    """The `EmotionRecognizer` the `predict` flags describe."""

    kwargs = dict(device=args.device, hop_seconds=args.hop, min_speech=args.min_speech, judge_tones=args.judge_tones)
    if args.mean_signal_length:
        kwargs['feature_settings'] = dict(mean_signal_length=args.mean_signal_length)
    if args.checkpoint and args.keras_weights:
        raise ConfigurationError('give either --checkpoint or --keras-weights, not both')
    if args.model and not args.checkpoint and (Path(args.model).suffix.lower() in WEIGHT_SUFFIXES
                                               or Path(args.model).is_file()):
        raise ConfigurationError(f'--model names a model, a pretrained tag or a hub folder; {args.model} is a weight '
                                 f'file: pass it as --checkpoint {args.model}')
    keras = args.keras_weights or (args.checkpoint if Path(args.checkpoint).suffix.lower() in KERAS_SUFFIXES else '')
    if args.release and not keras:
        raise ConfigurationError('--release names the release of a Keras weight file (--keras-weights FILE.hdf5)')
    if keras:
        if args.model and args.model != 'timnet':
            raise ConfigurationError(f'Keras weights are TIM-Net weights; --model {args.model} cannot take them')
        return EmotionRecognizer.from_keras(keras, release=args.release or None, **kwargs)
    if args.builder and not args.checkpoint:
        raise ConfigurationError('--builder names the function that builds the model of a --checkpoint')
    if args.checkpoint:
        if args.builder:
            import_from_cwd()
        try:
            return EmotionRecognizer.from_checkpoint(args.checkpoint, model_name=args.model or None,
                                                     builder=args.builder or None, **kwargs)
        except UnsafeFileError as e:                     # a model of blocks: name its builder on the command line
            if args.builder:
                raise
            raise UnsafeFileError(f'{e}; on the command line: --builder MODULE:FUNCTION') from None
    if args.model in set(list_models()) - set(DEFAULT_TAGS):    # the library's message names Python's arguments
        raise ConfigurationError(f'--model {args.model} has no published weights: name a pretrained tag (tim-zoo '
                                 f'weights lists them), or pass --checkpoint PATH or --keras-weights PATH')
    return EmotionRecognizer.from_pretrained(args.model or None, **kwargs)   # a tag, a hub folder, a model's default


def cmd_predict(args) -> int:
    recognizer = build_recognizer(args)
    if args.output:
        check_output_path(args.output)
    if args.plot:
        check_plot_path(args.plot)
    tune_malloc()                                        # keep the activations' memory between batches (up to 2x)
    predictions = recognizer.predict_many(
        args.inputs, recursive=args.recursive, batch_size=args.batch_size, same_speaker=args.same_speaker,
        channels=args.channels,
        show_progress=not args.quiet and sys.stderr.isatty())
    if args.json:
        print(json.dumps([p.to_dict() for p in predictions], indent=2))
    else:
        print(format_table(predictions, segments=args.segments, labels=recognizer.label_names))
    for note in recognizer.model_notes:                  # on stderr beside --json, which stays a list of answers
        print(f'note on the model: {note}', file=sys.stderr if args.json else sys.stdout)
    if args.output:
        write_predictions(predictions, args.output, segments=True, labels=recognizer.label_names)
        print(f'wrote {args.output}', file=sys.stderr)
    for path in plot_predictions(predictions, args.plot) if args.plot else []:
        print(f'wrote {path}', file=sys.stderr)
    failed = [p for p in predictions if p.error]
    if failed:
        print(f'tim-zoo predict: {len(failed)} of {len(predictions)} inputs failed: '
              + '; '.join(f'{p.file}: {p.error}' for p in failed[:5]) + (' ...' if len(failed) > 5 else ''),
              file=sys.stderr)
    return 1 if failed else 0


def _evaluation_features(args, corpus, extractor):
    """The features `evaluate` scores: read from or written to the `--features` cache, else extracted."""
    if args.features:
        return cached_features(corpus, extractor, args.features, not args.quiet, overwrite=False)
    return extract_features(corpus, extractor, not args.quiet)


def _write_result(args, result: dict) -> None:
    """`-o FILE.json`: the result as JSON."""
    if args.output:
        atomic_write(Path(args.output), lambda tmp: Path(tmp).write_text(json.dumps(result, indent=2)))
        print(f'wrote {args.output}', file=sys.stderr)


def cmd_evaluate(args) -> int:
    resolve_device(args.device)                          # before the features are computed
    if args.output:
        check_output_path(args.output, suffixes=())
    if args.model:
        return _evaluate_model(args)
    if args.known_classes_only:
        raise ConfigurationError('--known-classes-only is for --model; a Keras release is scored on its own corpus, '
                                 'whose classes its models have')
    release = find_release(args.keras_release)
    corpus = load_corpus(args.corpus, args.data_root)
    length = TIMNET_RELEASES[release]['mean_signal_length'] if release else release_signal_length(args.corpus)
    extractor = MFCCExtractor(length)
    features = _evaluation_features(args, corpus, extractor)
    result = evaluate_keras_release(args.keras_release, features, seed=args.seed, show_progress=not args.quiet,
                                    folds=args.fold, device=args.device)
    result.update(corpus=args.corpus, data_root=str(args.data_root), utterances=len(features))
    if args.json:
        print(json.dumps(result, indent=2))
    else:
        print(f'{result["release"]} on {args.corpus} ({len(features)} utterances), KFold seed {result["seed"]}')
        print(f'{"fold":>4}  {"n":>4}  {"WAR":>7}  {"UAR":>7}')
        for f in result['per_fold']:
            print(f'{f["fold"]:>4}  {f["n"]:>4}  {100 * f["war"]:>6.2f}%  {100 * f["uar"]:>6.2f}%')
        print(f'mean WAR {100 * result["war"]:.2f}% (std {100 * result["war_std"]:.2f}), '
              f'pooled UAR {100 * result["uar"]:.2f}%')
        print(training_folds_note(result))
    _write_result(args, result)
    return 0


def _evaluate_model(args) -> int:
    """`tim-zoo evaluate --model`: one model on every utterance of a labelled corpus (`evaluate_model`)."""
    if args.seed is not None or args.fold:
        raise ConfigurationError('--seed and --fold choose folds of a Keras release (--keras-release); --model scores '
                                 'the one model on every utterance of the corpus')
    if args.builder:
        if not Path(args.model).is_file():
            raise ConfigurationError('--builder names the function that builds the model of a checkpoint file '
                                     f'(--model PATH); {args.model} is not a file')
        import_from_cwd()
    # a weight file as it is (a checkpoint without feature settings too), else a pretrained tag or hub folder
    try:
        model = load_checkpoint(args.model, builder=args.builder or None) if Path(args.model).exists() else \
            create_model(args.model, pretrained=True)
    except UnsafeFileError as e:                         # a model of blocks: name its builder on the command line
        if args.builder:
            raise
        raise UnsafeFileError(f'{e}; on the command line: --builder MODULE:FUNCTION') from None
    settings = (getattr(model, 'pretrained_cfg', None) or {}).get('feature_settings')
    extractor = MFCCExtractor.from_settings(settings) if settings else MFCCExtractor(release_signal_length(args.corpus))
    corpus = load_corpus(args.corpus, args.data_root)
    features = _evaluation_features(args, corpus, extractor)
    result = evaluate_model(model, features, device=args.device, known_classes_only=args.known_classes_only)
    result.update(model=args.model, corpus=args.corpus, data_root=str(args.data_root))
    if args.json:
        print(json.dumps(result, indent=2))
    else:
        print(f'{args.model} on {args.corpus} ({result["n"]} utterances)')
        print(f'{"class":<16} {"n":>5}  {"recall":>7}')
        for name, row in result['per_class'].items():
            recall = '-' if row['recall'] is None else f'{100 * row["recall"]:6.2f}%'
            print(f'{name:<16} {row["n"]:>5}  {recall:>7}')
        print(f'WAR {100 * result["war"]:.2f}%, UAR {100 * result["uar"]:.2f}%')
        if result['speakers']:
            print(speaker_line(result['speakers']))
        for note in result['notes']:
            print(f'note: {note}')
    _write_result(args, result)
    return 0


def speaker_line(votes: dict) -> str:
    """The subject-level result (`tim_zoo.evaluation.speaker_votes`, or a run's `speakers`) in a line."""
    return (f'speakers (one label each; a speaker\'s answer is the class most of their utterances got): '
            f'{round(votes["war"] * votes["speakers"])} of {votes["speakers"]} right'
            + (f', {votes["ties"]} tied' if votes['ties'] else ''))


def add_commands(sub) -> None:
    p = sub.add_parser('extract', help='extract MFCC features of a corpus to a feature file',
                       description='Compute the MFCC features of every recording of a corpus (in the canonical order '
                                   'of the TIM-Net releases) and write them with their labels, speakers and settings '
                                   'to a feature file for tim-zoo train, or to TIM-Net\'s own .npy format.')
    p.add_argument('--corpus', required=True,
                   help='emodb, casia, ravdess, savee, emovo, iemocap, folders or manifest (docs/training.md: your own data)')
    p.add_argument('--data-root', required=True, help='the corpus folder (manifest: the CSV file)')
    p.add_argument('-o', '--output', required=True, help='.npz (tim_zoo, [N, C, T]) or .npy (TIM-Net, [N, T, C])')
    p.add_argument('--mean-signal-length', type=int, default=0, help="samples after centre pad/crop (default: the corpus's release)")
    p.add_argument('--n-mfcc', type=int, default=39)
    p.add_argument('--order', type=int, default=1, choices=(1, 3), help='3: static + delta + delta-delta')
    add_level_argument(p)
    p.add_argument('--quiet', action='store_true', help='no progress bar')
    p.set_defaults(func=cmd_extract)

    p = sub.add_parser(
        'predict', help='classify the emotion of recordings (files, folders, globs)',
        description='Classify the emotion of recordings with the bundled EMODB timnet or given weights. Recordings '
                    'longer than the model\'s input are cut into windows; windows without speech get no prediction. '
                    'A thin layer over tim_zoo.EmotionRecognizer (docs/predict.md).')
    p.add_argument('inputs', nargs='+', metavar='INPUT', help='audio files, folders or glob patterns ("calls/*.flac")')
    p.add_argument('-r', '--recursive', action='store_true', help='also take audio files in subfolders (and ** in globs)')
    weights = p.add_argument_group('weights (default: the bundled EMODB timnet)')
    weights.add_argument('--model', default='', help='a pretrained tag (timnet.emodb_46_fold3: its file found as '
                         '`tim-zoo weights` shows; a bare model name, at_tim, loads its zoo tag at_tim.tim_zoo_emodb), '
                         'a hub folder (local-dir:PATH, hf-hub:ORG/NAME), or with '
                         '--checkpoint the architecture to load it into')
    weights.add_argument('--checkpoint', default='', help='a tim_zoo .safetensors checkpoint')
    weights.add_argument('--builder', default='', metavar='MODULE:FUNCTION',
                         help='the function that builds the model of a --checkpoint saved from your own model (as it '
                              'was trained: tim-zoo train --model MODULE:FUNCTION), imported from the current folder')
    weights.add_argument('--keras-weights', default='', help='a TIM-Net Keras .hdf5 file')
    weights.add_argument('--release', default='', help='the Keras release of --keras-weights when its folder does not '
                                                       'name it, e.g. EMODB_46')
    analysis = p.add_argument_group('analysis')
    analysis.add_argument('--mean-signal-length', type=int, default=0,
                          help="override the weights' input length in samples (the window length)")
    analysis.add_argument('--hop', type=float, default=None, metavar='SECONDS',
                          help='window step for recordings longer than the input (default: half a window)')
    analysis.add_argument('--min-speech', type=float, default=0.25, metavar='SECONDS',
                          help='voiced speech a window needs to get a prediction (default 0.25)')
    analysis.add_argument('--judge-tones', action='store_true',
                          help='judge tones too (beeps, ringing, sirens, music), which are not speech by default')
    analysis.add_argument('--channels', choices=('mix', 'left', 'right'), default='mix',
                          help='stereo recordings: mix the two channels (default; noted when they differ) or judge one')
    analysis.add_argument('--same-speaker', action='store_true',
                          help='the files are one speaker: normalise them together (models trained with --normalize)')
    run = p.add_argument_group('run')
    run.add_argument('--batch-size', type=int, default=64, help='windows per batch (default 64)')
    run.add_argument('--device', default='cpu', help='cpu (default), cuda, cuda:1 ...')
    run.add_argument('--quiet', action='store_true', help='no progress bar')
    out = p.add_argument_group('output')
    out.add_argument('--json', action='store_true', help='print JSON rows instead of a table')
    out.add_argument('--segments', action='store_true', help='print the windows of long recordings under each row')
    out.add_argument('-o', '--output', default='', metavar='FILE', help='also write the results to FILE.csv or FILE.json')
    out.add_argument('--plot', default='', metavar='FILE.png',
                     help='draw the emotion probabilities over time (several inputs: FILE-<name>.png each)')
    p.set_defaults(func=cmd_predict)

    p = sub.add_parser('evaluate', help='score a model, or a released 10-fold TIM-Net model set, on a labelled corpus',
                       description='--model: score one model (a checkpoint, pretrained tag or hub folder) on every '
                                   'utterance of a labelled corpus, with the features its checkpoint names: WAR, UAR, '
                                   'recall per class, and notes on what makes the figure other than a held-out score '
                                   '(utterances its weights trained on, by their record). --keras-release: run fold '
                                   'i\'s released TIM-Net model on fold i\'s test set, with the authors\' fold '
                                   'construction and features, and report per-fold WAR and UAR, their mean and the '
                                   'pooled UAR (docs/evaluation.md).')
    which = p.add_mutually_exclusive_group(required=True)
    which.add_argument('--model', default='', metavar='CHECKPOINT|TAG|HUB',
                       help='a .safetensors checkpoint, a pretrained tag (tim-zoo weights) or hub folder (local-dir:PATH)')
    which.add_argument('--keras-release', default='', help='folder of 10-fold_weights_best_{1..10}.hdf5, e.g. EMODB_46')
    p.add_argument('--builder', default='', metavar='MODULE:FUNCTION',
                   help='the function that builds the model of a --model checkpoint saved from your own model (as it '
                        'was trained: tim-zoo train --model MODULE:FUNCTION), imported from the current folder')
    p.add_argument('--corpus', required=True, help='emodb, casia, ... folders or manifest (as for tim-zoo extract)')
    p.add_argument('--data-root', required=True, help='the corpus folder (manifest: the CSV file)')
    p.add_argument('--seed', type=int, default=None, help="KFold seed (default: the release's)")
    p.add_argument('--fold', type=int, nargs='+', help='evaluate only these folds (1-based; default: all)')
    p.add_argument('--device', default='cpu', help='cpu (default), cuda, cuda:1 ...')
    p.add_argument('--features', default='', help='feature cache (.npz) to read or write')
    p.add_argument('--known-classes-only', action='store_true',
                   help='--model: score only the utterances of classes the model has, leaving out (noted) those of '
                        'classes it lacks (the weights a fine-tuning run started from, on a corpus with a new label)')
    p.add_argument('--json', action='store_true', help='print the result as JSON instead of a table')
    p.add_argument('-o', '--output', default='', metavar='FILE.json', help='also write the result as JSON to FILE.json')
    p.add_argument('--quiet', action='store_true', help='no progress bars')
    p.set_defaults(func=cmd_evaluate)
