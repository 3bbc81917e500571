"""The zoo's EMODB models: one pretrained tag `<model>.tim_zoo_emodb` per architecture.

Each is the zoo table's recipe (docs/training.md, "The zoo") trained once on all 535 EMODB utterances. The six
small models' files ship inside the package (`tim_zoo/models/pretrained/`); the eight larger ones (9.5-32 MB each
at 87 frames) are not shipped: their tags look for a hub folder in the weights directory (`$TIM_ZOO_HOME/weights`)
and, when it is absent, say which command trains and writes it there.
"""
import functools
import json
import re
from pathlib import Path
from typing import Dict, List, Optional

from timm.models import generate_default_cfgs

from ..weights.hub import weights_dir
from ._base import DEFAULT_TAGS, TAG_TRAINING
from ._build import audio_cfg
from .timnet_releases import BUNDLED_CHECKPOINT, TIMNET_RELEASES, release_tag

#: the tag of every zoo model (timnet's is the bundled model `tim-zoo predict` uses)
ZOO_TAG = 'tim_zoo_emodb'
#: the folder of the files that ship inside the package
PRETRAINED_DIR = BUNDLED_CHECKPOINT.parent
#: the seed models whose zoo files ship inside the package (with timnet's bundled file: about 12 MB in all)
PACKAGED = ('tim', 'at_tim', 'at_deltatim', 'at_deltatim_v2', 'multitim')
#: the precision the packaged files trained in (`benchmarks/zoo.py`'s `tag` runs, on a Zen 4 with avx512_bf16)
PACKAGED_PRECISION = 'bf16'
#: a precision in words
PRECISION_WORDS = {'bf16': 'under bf16 autocast', 'fp32': 'in fp32'}
#: the note of a tag whose file ships inside the package
PACKAGED_NOTE = 'It ships inside the tim_zoo package; reinstall tim_zoo if it is missing.'
#: the zoo rows' measured accuracy (written by benchmarks/make_tables.py from docs/results/zoo_table.<model>.json,
#: or zoo_repeats.<model>.json once a model's repeats are in)
ZOO_TABLE_FILE = PRETRAINED_DIR / 'zoo_table.json'
#: EMODB's classes in the order every EMODB model of tim_zoo predicts them
EMODB_LABELS = tuple(TIMNET_RELEASES['EMODB_46']['labels'])
#: the Transformer family: the zoo trains it with `transformer.emodb` (lr 1e-4; at `seed.emodb`'s 1e-3 some folds
#: never learned), the other seed models with `seed.emodb`, timnet with `timnet.paper`
TRANSFORMER_FAMILY = ('transformer', 'transformer_tim', 'transformer_deltatim', 'mltransformer_tim', 'cnn_transformer',
                      'cnn_ml_transformer', 'set', 'set_official')
#: the command that trains a zoo model on EMODB and writes it where its tag looks (`{model}`, `{recipe}`, `{folder}`)
TRAIN_COMMAND = ('tim-zoo train --corpus emodb --data-root EMODB --mean-signal-length 44100 --model {model} '
                 '--recipe {recipe} --protocol all --seed 46 --precision {precision} --threads 1 '
                 '--out runs/{model}_emodb --hub-folder {folder}')
#: the zoo rows that trained under bf16 autocast (on a Zen 4 with avx512_bf16) before the zoo went fp32, the reference
#: precision, which every machine runs (bf16 autocast needs avx512_bf16 or amx_bf16): every other row, the repeats and
#: the findings train in fp32 (docs/training.md, "Chosen")
BF16_ROWS = ('tim', 'at_tim', 'at_deltatim', 'transformer')


def packaged_file(model: str) -> Path:
    """The file of `model`'s zoo tag inside the package."""
    return PRETRAINED_DIR / f'{model}_emodb.safetensors'


def hub_folder_name(model: str) -> str:
    """The folder, in the weights directory, where a larger model's zoo tag looks for its hub folder."""
    return f'{model}.{ZOO_TAG}'


def zoo_recipe(model: str) -> str:
    """The recipe of `model`'s row in the zoo table and of its zoo tag."""
    return 'timnet.paper' if model == 'timnet' else 'transformer.emodb' if model in TRANSFORMER_FAMILY else 'seed.emodb'


def row_command(config: dict) -> str:
    """The `tim-zoo train` command that trains, on an EMODB copy, the zoo run whose results file holds `config`: the
    zoo's features (`TRAIN_COMMAND`'s), its model and model arguments, recipe, protocol, seed, precision, repeats
    and compilation, one thread as the zoo's splits ran."""
    parts = ['tim-zoo train --corpus emodb --data-root EMODB --mean-signal-length 44100',
             f'--model {config["model"]} --recipe {config["recipe"]} --protocol {config["protocol"]}',
             f'--seed {config["seed"]} --precision {config["precision"]} --compile {config["compile"]}']
    if config.get('repeats', 1) > 1:
        parts.append(f'--repeats {config["repeats"]}')
    parts += [f'--model-arg {key}={value if isinstance(value, str) else json.dumps(value)}'
              for key, value in config.get('model_args', {}).items()]
    return ' '.join(parts + [f'--threads 1 --out runs/{config["model"]}_{config["protocol"]}'])


def tag_precision(model: str) -> str:
    """The precision `model`'s zoo tag trained in: the packaged files under bf16 autocast (`PACKAGED_PRECISION`), a
    larger model's in its row's (`train_command`). A row and its tag may differ: the rows left train in fp32."""
    return PACKAGED_PRECISION if model in PACKAGED else zoo_precision(model)


def zoo_precision(model: str) -> str:
    """The precision `model`'s row in the zoo table trains in (`"bf16"` autocast or `"fp32"`), and so the command
    that trains its tag."""
    return 'bf16' if model in BF16_ROWS else 'fp32'


def train_command(model: str, folder: str = '') -> str:
    """The one command that trains `model`'s zoo tag on EMODB and writes it as a hub folder (default: where the tag
    looks, under the weights directory), in the precision of its row."""
    return TRAIN_COMMAND.format(model=model, recipe=zoo_recipe(model), precision=zoo_precision(model),
                                folder=folder or weights_dir() / hub_folder_name(model))


@functools.lru_cache(maxsize=None)
def _zoo_table() -> dict:
    return json.loads(ZOO_TABLE_FILE.read_text()) if ZOO_TABLE_FILE.is_file() else dict(protocol='', models={})


def zoo_accuracy(model: str) -> Optional[dict]:
    """The zoo table's row of `model` (`war_mean`, `war_std`, `uar_mean`, `uar_std` in %: the mean over the splits
    and their std, like for like in every row; with several `repeats` (training seeds) the mean over all of them, the
    splits' std averaged over them, and `seed_war_std`/`seed_uar_std` the spread of the repeats' means; `splits`,
    `recipe`, `precision`, `results`: its results file in the repository), or None before the row is done."""
    return _zoo_table()['models'].get(model)


def tag_accuracy(name: str) -> Optional[dict]:
    """What the weights of pretrained tag `name` (`arch.tag`) scored on EMODB utterances they never saw, as
    measured in this repository, or None where nothing was measured. A dict with `war` and `war_std` (%; `war_std`
    None for a single fold), `what` (what was measured, in words), `over` (the same in two or three words) and
    `results` (its results file in the repository).

    - a zoo tag (`MODEL.tim_zoo_emodb`): the model saw all of EMODB, so the figure is its recipe's, from the zoo
      table (the mean, ± the std over the 10 folds; with repeats, averaged over the seeds); for `timnet`'s, the
      bundled model, its recipe at the release's 188 frames over three seeds;
    - an EMODB release tag of the TIM-Net authors (`timnet.emodb_46_fold<k>`, and `timnet.emodb_46`, which loads
      fold 1): the fold model on its own test fold of the shared EMODB copy (`tim-zoo evaluate`,
      docs/evaluation.md).
    """
    arch, _, tag = name.partition('.')
    table = _zoo_table()
    if tag == ZOO_TAG:
        return _recipe_accuracy((table.get('bundled', {}) if arch == 'timnet' else table['models']).get(arch))
    fold = re.fullmatch(r'(.+)_fold(\d+)', tag)
    release = next((r for r in TIMNET_RELEASES if release_tag(r) == (fold.group(1) if fold else tag)), None)
    row = table.get('releases', {}).get(release) if arch == 'timnet' else None
    if row is None:
        return None
    k = int(fold.group(2)) if fold else 1                 # the release tag loads fold 1
    war = next((f['war'] for f in row['per_fold'] if f['fold'] == k), None)
    return None if war is None else dict(
        war=war, war_std=None, results=row['results'], over='its test fold',
        what=f'fold {k}\'s model on its own test fold (the release\'s 10 fold models: {row["war_mean"]:.1f} ± '
             f'{row["war_std"]:.1f} % over their test folds)')


def _recipe_accuracy(row: Optional[dict]) -> Optional[dict]:
    if row is None:
        return None
    seeds = f' x {row["repeats"]} seeds' if row['repeats'] > 1 else ''
    length = f', {row["frames"]} frames' if 'frames' in row else ''
    precision = f', {row["precision"]}' if row.get('precision') else ''
    return dict(war=row['war_mean'], war_std=row['war_std'], results=row['results'],
                over=f'recipe, {row["splits"]} folds{seeds}{length}{precision}',
                what=f'its recipe trained on 9 of the 10 EMODB folds and tested on the tenth{length}: '
                     f'{_spread(row)}')


def zoo_row_accuracy(model: str) -> Optional[dict]:
    """`model`'s row of the zoo table as `tag_accuracy` gives a figure (None before the row is done)."""
    return _recipe_accuracy(zoo_accuracy(model))


def format_tag_accuracy(acc: Optional[dict]) -> str:
    """`tag_accuracy`'s figure in a few words (`-` where nothing was measured)."""
    return '-' if acc is None else f'{_plus_minus(acc["war"], acc["war_std"])} ({acc["over"]})'


def _plus_minus(mean: float, std: Optional[float]) -> str:
    return f'{mean:.1f}' + ('' if std is None else f' ± {std:.1f}')


def held_out_words(name: str) -> str:
    """`tag_accuracy` of tag `name` in a sentence part, for its description."""
    acc = tag_accuracy(name)
    if acc is None:
        return 'not measured yet'
    return f'WAR {_plus_minus(acc["war"], acc["war_std"])} % ({acc["what"]}; {acc["results"]})'


def _figure(row: dict) -> str:
    return f'WAR {_plus_minus(row["war_mean"], row["war_std"])} %, UAR {row["uar_mean"]:.1f} %'


def _spread(row: dict) -> str:
    """What a zoo row's mean and ± are, and the precision it trained in, in words."""
    if row['repeats'] > 1:
        spread = (f'the mean over {row["repeats"]} training seeds, ± the std over the {row["splits"]} folds (averaged '
                  f'over the seeds; the seeds\' means spread ± {row["seed_war_std"]:.1f})')
    else:
        spread = f'the mean, ± the std over the {row["splits"]} folds'
    precision = PRECISION_WORDS.get(row.get('precision'))
    return spread + (f', the row trained {precision}' if precision else '')


#: the inputs of the zoo table (the shared EMODB copy's 2.0 s recordings) and of the bundled timnet (the release's)
TABLE_INPUTS = 'inputs of 2.0 s: 87 frames'
BUNDLED_INPUTS = 'inputs of 4.35 s: 188 frames'


def _how(row: dict) -> str:
    """How a figure of `row` is made, in a few words: the mean (over the seeds) ± the std over the folds, and the
    precision its training ran in."""
    seeds = f' over {row["repeats"]} training seeds' if row.get('repeats', 1) > 1 else ''
    precision = PRECISION_WORDS.get(row.get('precision'))
    return f'mean{seeds} ± std over the folds' + (f', trained {precision}' if precision else '')


def _two_figures(row: dict, timnet: Optional[dict] = None) -> str:
    """A zoo row's figures on new utterances of the speakers it trained on (the 10 folds) and on a speaker it never
    heard (leave one speaker out: 'not measured yet' before that run is in), each with `timnet`'s beside it."""
    def beside(other):
        return f' (timnet\'s recipe: {other["war_mean"]:.1f} %)' if other else ''
    loso, timnet_loso = row.get('loso'), (timnet or {}).get('loso')
    unheard = (f'{_figure(loso)} on a speaker it never heard{beside(timnet_loso)}' if loso else
               'a speaker it never heard: not measured yet')
    return f'{_figure(row)} on new utterances of speakers it trained on{beside(timnet)}; {unheard}'


def accuracy_note(model: str) -> str:
    """What the zoo measured for `model`'s recipe on held-out EMODB data (new utterances of the training speakers;
    a speaker held out), beside `timnet`'s recipe, in a few lines' worth of words."""
    row, timnet = zoo_accuracy(model), zoo_accuracy('timnet')
    head = f'{model}.{ZOO_TAG} ({TABLE_INPUTS})'
    if row is None:
        return (f'{head}: its recipe has not been measured on held-out data yet (the zoo table: EMODB, 10 folds); '
                f'treat its answers as unvalidated' + (f'; timnet\'s recipe: {_two_figures(timnet)}' if timnet else ''))
    these = (f'; these weights: the same recipe once on all 535 utterances, trained '
             f'{PRECISION_WORDS[tag_precision(model)]}' if model in PACKAGED else '')
    return (f'{head}, its recipe on EMODB: {_two_figures(row, timnet if model != "timnet" else None)}; other '
            f'corpora: not measured (the figures: {_how(row)}{these})')


def bundled_note() -> str:
    """What the bundled `timnet` (the default of `tim-zoo predict`) scored on EMODB utterances it never saw, and its
    recipe at the zoo table's length, where a speaker held out was measured."""
    bundled = _zoo_table().get('bundled', {}).get('timnet')
    head = f'timnet.{ZOO_TAG} ({BUNDLED_INPUTS})'
    if bundled is None:
        return f'{head}: not measured on held-out data yet; treat its answers as unvalidated'
    row = zoo_accuracy('timnet')
    short = (f'; at the zoo table\'s 2.0 s inputs (87 frames): {row["war_mean"]:.1f} % on those'
             + (f', {row["loso"]["war_mean"]:.1f} % on a speaker it never heard' if row.get('loso') else '')
             if row else '')
    return (f'{head}, its recipe on EMODB: {_figure(bundled)} on new utterances of speakers it trained on'
            f'{short}; other corpora: not measured ({_how(bundled)})')


def tag_notes(pretrained_cfg: Optional[dict]) -> List[str]:
    """What a model's weights say about how far its answers can be trusted: for a zoo tag, the zoo's measurement
    of its recipe on held-out EMODB data (`accuracy_note`; for `timnet`'s, the bundled model, its recipe at the
    release's 188 frames: `bundled_note`); nothing for other weights."""
    cfg = pretrained_cfg or {}
    model = cfg.get('architecture')
    if cfg.get('tag') != ZOO_TAG or not model:
        return []
    return [bundled_note() if model == 'timnet' else accuracy_note(model)]


def zoo_cfg(model: str) -> dict:
    """The pretrained config of `model`'s zoo tag."""
    row = zoo_accuracy(model)
    what = (f'{model} trained by tim_zoo on all 535 EMODB utterances (7 classes) with the zoo table\'s recipe '
            f'({zoo_recipe(model)}, {PRECISION_WORDS[tag_precision(model)]}, MFCC order 1, 87 frames: the 2.0 s '
            f'recordings, level "peak"; held-out '
            f'accuracy of its recipe: {_figure(row) if row else "not measured yet"}, the zoo table)')
    if model in PACKAGED:
        return audio_cfg(file=str(packaged_file(model)), num_classes=len(EMODB_LABELS), label_names=EMODB_LABELS,
                         description=what, notes=(PACKAGED_NOTE,))
    return audio_cfg(
        file=f'{hub_folder_name(model)}/model.safetensors', num_classes=len(EMODB_LABELS), label_names=EMODB_LABELS,
        description=what + '; its file is not published: one command trains it',
        notes=(train_note(model),))


def train_note(model: str) -> str:
    """How to get a larger model's zoo tag, whose file is published nowhere (not in the package, no download): the
    one command that trains it on an EMODB copy and writes its hub folder where the tag looks, and what that costs."""
    hours = (zoo_accuracy(model) or {}).get('tag_hours')
    asides = ([f'about {hours * 60:.0f} minutes on one thread of an AMD EPYC Zen 4, estimated from the zoo\'s '
               f'measured training step'] if hours else []) + ['add --device cuda for a GPU']
    if zoo_precision(model) == 'bf16':
        asides.append('a CPU without native bf16 needs --precision fp32')
    return (f'{model}.{ZOO_TAG}: its file is published nowhere (too large for the package; no download exists): '
            f'train it on your EMODB copy (its folder for EMODB) with `{train_command(model)}` ({"; ".join(asides)}). '
            f'The command writes the hub folder (model.safetensors with its training record) where this tag looks.')


def zoo_default_cfgs(*models: str) -> Dict[str, object]:
    """timm's default configs of `models`: the untrained architecture and its zoo tag, which `pretrained=True` loads
    (`DEFAULT_TAGS`); the architecture alone stays the untrained model (its config holds no labels)."""
    cfgs = generate_default_cfgs({key: value for model in models
                                  for key, value in ((model, audio_cfg()), (f'{model}.{ZOO_TAG}', zoo_cfg(model)))})
    for model in models:
        load_zoo_tag_by_default(cfgs, model)
    return cfgs


def load_zoo_tag_by_default(cfgs: Dict[str, object], model: str) -> None:
    """`model` alone stays the untrained architecture (timm makes the first tag with weights the default) and
    `pretrained=True` loads its zoo tag (`DEFAULT_TAGS`)."""
    cfgs[model].tags.remove('')
    cfgs[model].tags.appendleft('')
    DEFAULT_TAGS[model] = ZOO_TAG
    TAG_TRAINING[f'{model}.{ZOO_TAG}'] = dict(corpus='emodb', protocol='all', recipe=zoo_recipe(model))
