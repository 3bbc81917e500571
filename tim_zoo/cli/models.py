"""`tim-zoo list`, `tim-zoo weights`, `tim-zoo convert-keras` and `tim-zoo hub-folder`."""
import json
import sys
from typing import List

from .._factory import (
    convert_keras, create_model, create_model_for_frames, is_hub_source, list_models, list_pretrained_weights,
    load_checkpoint, unknown_weight_files,
)
from .._utils import format_table
from ..complexity import count_macs, count_params
from ..exceptions import ConfigurationError
from ..models._base import DEFAULT_TAGS
from ..models._zoo import format_tag_accuracy, zoo_row_accuracy
from ..models.timnet_releases import releases_known_by_hash
from ..weights import save_for_hub, weights_dir
from ..weights.hub import HOME_ENV


def _model_rows(pattern: str, in_chans: int, frames: int) -> List[dict]:
    rows = []
    for name in list_models(pattern or ''):
        model = create_model_for_frames(name, frames, in_chans=in_chans)
        rows.append(dict(
            model=name,
            params=count_params(model),
            macs=count_macs(model, (1, in_chans, frames)),
            length='fixed (seq_len)' if model.fixed_len is not None else 'any',
            features=model.num_features,
            emodb=zoo_row_accuracy(name),
        ))
    return rows


def _print_table(rows: List[dict], in_chans: int, frames: int) -> None:
    header = ('model', 'params', f'MACs @ {in_chans}x{frames}', 'input length', 'feature dim', 'EMODB WAR % (zoo)')
    body = [(r['model'], f"{r['params']:,}", f"{r['macs'] / 1e6:,.1f} M", r['length'], str(r['features']),
             format_tag_accuracy(r['emodb'])) for r in rows]
    print(format_table(header, body, ('<', '>', '>', '<', '>', '<')))
    print(f'{len(rows)} models')
    if any(r['emodb'] for r in rows):
        print('EMODB WAR % (zoo): the zoo table\'s row, each model\'s recipe trained on nine of the ten EMODB folds and '
              'tested on the tenth: the mean, ± the std over the folds (with several training seeds: the mean over '
              'them, the folds\' std averaged over them; fp32 or bf16: the precision it trained in; docs/training.md, '
              '"The zoo"); -: not measured yet. The rows\' '
              'models take 87 frames (the 2.0 s recordings): --frames 87 counts their MACs')



def cmd_list(args) -> int:
    if args.frames < 2 or args.in_chans < 1:
        raise ConfigurationError(f'--frames must be at least 2 and --in-chans at least 1, got {args.frames} and '
                                 f'{args.in_chans}')
    rows = _model_rows(args.pattern, args.in_chans, args.frames)
    if args.json:
        print(json.dumps(rows, indent=2))
    else:
        _print_table(rows, args.in_chans, args.frames)
    return 0


def cmd_weights(args) -> int:
    rows = list_pretrained_weights(args.pattern or '')
    unknown = unknown_weight_files()
    if args.json:
        print(json.dumps(dict(weights_dir=str(weights_dir()), weights=[dict(r, found=str(r['found']) if r['found'] else None)
                                                                        for r in rows],
                              unknown_files=[str(p) for p in unknown]), indent=2))
        return 0
    root = weights_dir()
    print(f'weights directory: {root} (${HOME_ENV}/weights; set ${HOME_ENV} to move it)')
    if root.exists() and not root.is_dir():
        print(f'note: {root} is not a folder, so no weights can be found in it')
    if not rows:
        print(f'no pretrained tag matches {args.pattern!r}; `tim-zoo weights` lists them all')
        return 0
    # the loadable tags first, then the other tags with a measured figure, then the rest; list_pretrained_weights'
    # order within each group
    loadable = [r for r in rows if r['found'] and not r['problem']]
    shown = loadable + sorted((r for r in rows if r not in loadable), key=lambda r: r['accuracy'] is None)
    body = [(r['name'], ('WRONG FILE' if r['problem'] else 'found') if r['found'] else 'missing',
             format_tag_accuracy(r['accuracy']), str(r['found'] or r['file'])) for r in shown]
    print(format_table(('pretrained tag', 'status', 'held-out WAR %',
                        'found: the file it loads; missing: where it belongs in the weights directory'),
                       body, ('<', '<', '<', '<')))
    if any(r['accuracy'] for r in rows):
        print('held-out WAR %: accuracy on EMODB utterances the weights never saw, measured in this repository (mean '
              '± std over the folds). "recipe": a zoo tag saw all of EMODB, so the figure is its recipe\'s on the 10 folds '
              '(with several training seeds, averaged over them; fp32 or bf16: the precision of that row, which may '
              'differ from the tag\'s own, given in its description); "its test fold": one of the authors\' fold models '
              'on its own test fold (docs/evaluation.md); -: not measured')
    found = sum(r['found'] is not None and not r['problem'] for r in rows)
    print(f'{found} of {len(rows)} found' + (' (listed first). Load one with tim_zoo.create_model(TAG, '
                                               'pretrained=True).' if found else '.'))
    for r in rows:
        if r['problem']:
            print(f'{r["name"]}: {r["problem"]}')
    published = sorted({r['published'] for r in rows if not r['found'] and r['published']})
    for line in published:
        print(line)
    for path in unknown:
        print(f'note: {path} belongs to no pretrained tag (misplaced or renamed?)')
    return 0


def cmd_convert_keras(args) -> int:
    done = convert_keras(args.input, args.output, release=args.release or None)
    labels = done['label_names']
    print(f'wrote {done["path"]}: timnet depth {done["depth"]}, {done["num_classes"]} classes'
          + (f', release {done["release"]}' if done['release'] else '') + (f' ({", ".join(labels)})' if labels else ''))
    if not done['release']:
        print(f'tim-zoo convert-keras: {args.input} is not inside a release folder, nor one of the authors\' files '
              f'tim_zoo knows by SHA-256 ({", ".join(releases_known_by_hash())}), and no --release was given, so the '
              f'checkpoint has no feature '
              + ('settings' if labels else 'settings or label names')
              + '; pass --release NAME (e.g. EMODB_46) if it is one of the authors\' releases', file=sys.stderr)
    return 0


def cmd_hub_folder(args) -> int:
    if args.model in list_models(pretrained=True) or is_hub_source(args.model) or args.model in DEFAULT_TAGS:
        model = create_model(args.model, pretrained=True)          # an architecture: its default tag
        checkpoint = None
    else:
        model, checkpoint = load_checkpoint(args.model), args.model
    folder = save_for_hub(model, args.folder, checkpoint=checkpoint)      # a checkpoint keeps its training record
    labels = ', '.join(model.label_names) if model.label_names else f'{model.num_classes} unnamed classes'
    print(f'wrote {folder}/ (config.json, model.safetensors, README.md): {model.model_name}, {labels}; load it with '
          f'create_model("local-dir:{folder}", pretrained=True), or upload the folder to a Hugging Face hub '
          f'repository and load "hf-hub:ORG/NAME"')
    return 0


def add_commands(sub) -> None:
    p = sub.add_parser('list', help='list the registered models with parameters, multiply-accumulates and the zoo\'s '
                                    'EMODB accuracy',
                       description='List the registered models (tim_zoo.list_models) with their parameters, '
                                   'multiply-accumulates per sample at the given input size, whether their input length '
                                   'is fixed, the width of their frame features and their row of the zoo\'s EMODB '
                                   'table (held-out WAR, where measured).')
    p.add_argument('pattern', nargs='?', default='', help='wildcard filter, e.g. "at_*"')
    p.add_argument('--frames', type=int, default=188, help='frames of the input used to count MACs (default 188)')
    p.add_argument('--in-chans', type=int, default=39, help='input channels (default 39 MFCC)')
    p.add_argument('--json', action='store_true', help='print JSON rows instead of a table')
    p.set_defaults(func=cmd_list)
    p = sub.add_parser('weights', help='list the published weights, which are in the weights directory and where the '
                                       'others belong', description='List every pretrained tag (tim_zoo.list_models('
                                       'pretrained=True)), whether its file is found (its path, the weights directory '
                                       f'${HOME_ENV}/weights, or the Hugging Face hub cache) and where a missing one '
                                       'belongs and is published; files in the weights directory that belong to no tag '
                                       'are noted.')
    p.add_argument('pattern', nargs='?', default='', help='wildcard over tags, e.g. "timnet.emodb*"')
    p.add_argument('--json', action='store_true', help='print JSON instead of a table')
    p.set_defaults(func=cmd_weights)
    p = sub.add_parser('convert-keras', help='convert a TIM-Net Keras .hdf5 file to a tim_zoo .safetensors checkpoint',
                       description='Convert one of the TIM-Net authors\' Keras weight files to a tim_zoo checkpoint '
                                   '(safetensors, with the metadata that rebuilds the model: depth, classes, label '
                                   'names and feature settings of its release). No TensorFlow needed.')
    p.add_argument('input', help='a Keras weight file, e.g. EMODB_46/10-fold_weights_best_1.hdf5')
    p.add_argument('output', help='the .safetensors file to write')
    p.add_argument('--release', default='', help='release name (e.g. EMODB_46) for label names and feature settings; '
                                                 'default: a release folder name in the input path')
    p.set_defaults(func=cmd_convert_keras)
    p = sub.add_parser('hub-folder', help='write a model as a Hugging Face hub folder (config, weights, model card)',
                       description='Write a model as a hub-ready folder (tim_zoo.save_for_hub): config.json, '
                                   'model.safetensors and README.md. It loads with create_model("local-dir:FOLDER", '
                                   'pretrained=True), and, uploaded to the hub, with "hf-hub:ORG/NAME".')
    p.add_argument('model', help='a tim_zoo checkpoint (.safetensors), a pretrained tag, or a hub folder')
    p.add_argument('folder', help='the folder to write')
    p.set_defaults(func=cmd_hub_folder)
