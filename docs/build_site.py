"""Build the documentation site (MkDocs, Material theme) from docs/ plus pages generated from the code.

    python docs/build_site.py [--out site] [--strict]

Generated at build time, never typed by hand: the model zoo table (parameters and multiply-accumulates
from the registry, latency from benchmarks/results, accuracy from docs/results), one card per
registered model (its factory and class documentation, constructor arguments with their defaults,
recipes, research findings, references), the CLI reference (each command's --help) and the API
reference (mkdocstrings), the home page's zoo table and architecture diagram. The Mermaid script that
draws the diagrams is shipped inside the site (fetched once from the npm registry and cached), so the
site works offline. The MkDocs configuration is written next to a copy of the pages in a temporary
folder, so docs/ holds only the pages.
"""
import argparse
import contextlib
import inspect
import io
import json
import os
import re
import shutil
import subprocess
import sys
import tarfile
import tempfile
from pathlib import Path

DOCS = Path(__file__).resolve().parent
ROOT = DOCS.parent
sys.path.append(str(ROOT / 'benchmarks'))
import zoo_cost  # noqa: E402  (benchmarks/zoo_cost.py: the zoo's measured training cost and its input length)

#: where the notes' figures were measured, as their introduction says (the findings do not name it each time)
_NOTES_SETTING = "(the notes' corpus, MODMA, and their split; not reproduced here)"
#: research findings of the notes (SEED_NOTES.md) that concern each model
FINDINGS = {
    'tim': ['Plain TIM fluctuates a lot early in training but settles and ends well.',
            'For plain TIM the additive TAB residual was much better than the multiplicative one.',
            'BatchNorm (+ReLU) after the 1x1 stem stabilises every TIM variant a lot (`stem_norm=True`).',
            'TABs with 1x1 + dilated k=2 + 1x1 convolutions (`conv_style="bottleneck"`): about 2 points worse, '
            'more stable.'],
    'timnet': ['The authors\' published figures chose checkpoints on the test fold; corrected EMODB figure '
               '90.28 % WAR / 89.19 % UAR. tim_zoo never selects on the test fold.'],
    'transformer': ['Also reaches about 95 % validation accuracy, with sharp drops around epochs 20 and 60 (95 % -> '
                    f'86 %) {_NOTES_SETTING}.'],
    'transformer_tim': ['Stayed stable at about 95 % validation accuracy (lr about 1e-3) after the switch to '
                        f'PyTorch\'s official Transformer {_NOTES_SETTING}.',
                        'On IEMOCAP a lower lr (1e-4) stops big swings.',
                        'Fine-tuning an IEMOCAP-pretrained model\'s Transformer part: train 100 %, validation '
                        '99.275 %, test 99.719 %, little gain over training it whole (the notes do not name the '
                        'target corpus, MODMA by their introduction, nor the split; not reproduced here).'],
    'transformer_deltatim': ['Converges fastest to its best value.',
                             'The multiplicative TAB residual was better and stable here (the research code, and '
                             'so the default, adds it: `residual="mul"` gives the notes\' variant).'],
    'mltransformer_tim': ['Keeps every Transformer layer\'s output and fuses them with a learned weight.'],
    'at_tim': ['Attention fusion (each TAB level one head) started slightly worse than the weight layer; a '
               'larger `d_qkv` and the feed-forward block clearly improved accuracy and stability.',
               'At times better than AT_DeltaTIM.', 'AFT-local fusion (`fusion="aft_local"`): unstable early, '
               'fine after about 60 epochs.', 'Trained on 100 GMM-selected frames (8 mixtures better than 12) '
               'with a larger learning rate.'],
    'at_deltatim': ['The multiplicative TAB residual was better and stable here (the research code, and so the '
                    'default, adds it: `residual="mul"` gives the notes\' variant; the zoo measures both, run '
                    '`finding.at_deltatim.mul`).',
                    'Switching an IEMOCAP-pretrained model from add to mul residual: no clear gain, steadier.'],
    'at_deltatim_v2': ['Slightly better than AT_DeltaTIM.',
                       f'Masking input frames with probability 0.2 helped slightly (< 0.6 points) {_NOTES_SETTING}.',
                       'Depth 6 instead of 8 also works.'],
    'multitim': ['MultiTIM (add + delta, 4 + 4 levels): train 100 / val 99.154 / test 99.156 on MODMA '
                 '(segment-level random splits, not speaker-independent; not reproduced here).'],
    'cnn_transformer': ['Collapsed after the switch to PyTorch\'s official Transformer.'],
    'cnn_ml_transformer': ['Collapsed after the switch to PyTorch\'s official Transformer.'],
    'set': ['Fell to about 85 % validation accuracy after the switch to PyTorch\'s official Transformer '
            f'{_NOTES_SETTING}.'],
    'set_official': ['Without positional encoding: more erratic at first, but settles higher (90 % vs 86 % '
                     f'validation accuracy) {_NOTES_SETTING}.'],
}

_TIM = ['MFCC [B, C, T]', 'x and x reversed as 2 channel groups', '1x1 stem', 'TAB levels 1..n (dilation 1..2^(n-1))']
#: the stages of each model, drawn as a flowchart on its card
STAGES = {
    'timnet': _TIM + ['merge fwd + bwd per level', 'WeightLayer over levels [B, F, T]', 'mean over time', 'Linear -> classes'],
    'tim': _TIM[:2] + ['1x1 stem (shared)', 'shared TAB levels', 'merge fwd + bwd', 'WeightLayer [B, F, T]',
                       'mean over time', 'Linear -> classes'],
    'transformer': ['MFCC [B, C, T]', 'prep: 1x1 convs + BN + ReLU', 'Transformer encoder', '1x1 conv + BN [B, 64, T]',
                    'flatten', 'Linear 1000, Dropout', 'Linear -> classes'],
    'transformer_tim': ['MFCC [B, C, T]', 'prep', 'Transformer encoder', 'BN + 1x1 conv -> C', 'shared bidirectional TIM',
                        'WeightLayer [B, F, T]', 'flatten', 'Linear 100, Dropout', 'Linear -> classes'],
    'transformer_deltatim': ['MFCC [B, C, T]', 'prep', 'Transformer encoder', 'BN + 1x1 conv -> C', '1x1 stem',
                             'one-direction TAB levels', 'delta aggregation', 'WeightLayer [B, F, T]', 'flatten',
                             'Linear 100, Dropout', 'Linear -> classes'],
    'mltransformer_tim': ['MFCC [B, C, T]', 'prep', 'every encoder layer kept', 'Linear over layers', 'BN + 1x1 conv',
                          'shared bidirectional TIM', 'flatten', 'Linear 1000, Dropout', 'Linear -> classes'],
    'at_tim': ['MFCC [B, C, T]', 'stem 1x1 + BN + ReLU', 'shared bidirectional TAB levels', 'merge fwd + bwd',
               'AttentionFusion: one head per level [B, T, n*F]', 'Linear n*F -> 1 per frame', 'Dropout, Linear T -> classes'],
    'at_deltatim': ['MFCC [B, C, T]', 'stem 1x1 + BN + ReLU', 'one-direction TAB levels', 'delta aggregation',
                    'AttentionFusion [B, T, n*F]', 'Linear n*F -> 1 per frame', 'Dropout, Linear T -> classes'],
    'at_deltatim_v2': ['MFCC [B, C, T]', 'frame masking (training)', 'stem 1x1 + BN + ReLU',
                       'shared bidirectional TAB levels', 'fuse fwd, bwd per level (1x1 conv)', 'delta aggregation',
                       'AttentionFusion [B, T, n*F]', 'Linear n*F -> 1 per frame', 'Dropout, Linear T -> classes'],
    'multitim': ['MFCC [B, C, T]', 'stem 1x1 + BN + ReLU', 'general TAB stack (n1 levels)',
                 'special TAB stack on its last level (n2 levels, delta)', 'AttentionFusion over n1 + n2 levels',
                 'adaptive pool over time to 256', 'Linear 256 -> 1, Dropout', 'Linear -> classes'],
    'cnn_transformer': ['MFCC [B, C, T]', 'shared bidirectional TIM, WeightLayer', 'MaxPool 2', '1x1 conv -> d_model',
                        'Transformer encoder', 'Linear over time', 'Linear -> classes'],
    'cnn_ml_transformer': ['MFCC [B, C, T]', 'shared bidirectional TIM, WeightLayer', 'MaxPool 2', '1x1 conv -> d_model',
                           'positional encoding', 'encoder layers, each kept', 'WeightLayer over layers',
                           'Linear over time', 'Linear -> classes'],
    'set': ['MFCC [B, C, T]', '1x1 conv + BN -> d_model', 'positional encoding', 'encoder layers, each kept',
            'WeightLayer over layers', 'mean over time', 'Linear -> classes'],
    'set_official': ['MFCC [B, C, T]', '1x1 conv + BN -> d_model', 'encoder layers stacked as image channels',
                     'BatchNorm2d', '4 x (Conv2d 3x3, BN, MaxPool)', 'flatten, Linear 100, Dropout', 'Linear -> classes'],
}


def diagram(name: str) -> str:
    """A Mermaid flowchart of the model's stages."""
    stages = STAGES[name]
    nodes = [f'    s{i}["{stage}"]' for i, stage in enumerate(stages)]
    edges = ' --> '.join(f's{i}' for i in range(len(stages)))
    return '\n'.join(['```mermaid', 'flowchart TD'] + nodes + [f'    {edges}', '```'])


TIMNET_PAPER = ('Ye et al., [Temporal Modeling Matters: A Novel Temporal Emotional Modeling Approach for Speech '
                'Emotion Recognition](https://arxiv.org/abs/2211.08233), ICASSP 2023; code: '
                '[Jiaxin-Ye/TIM-Net_SER](https://github.com/Jiaxin-Ye/TIM-Net_SER) (GPL-3.0)')
SEED = ('the research group\'s lab notes and code on depression and emotion detection from speech (unpublished: '
        'the findings above are the notes\')')


def _references(name: str) -> list:
    refs = [TIMNET_PAPER] if 'tim' in name or name.startswith(('cnn', 'at_', 'multi')) else []
    return refs + ([SEED] if name != 'timnet' else [])


def tim_zoo_version() -> str:
    from tim_zoo.version import __version__
    return __version__


def bibtex(key: str) -> str:
    """The BibTeX entry `key` of docs/citing.md (the one place the entries are written)."""
    text = (DOCS / 'citing.md').read_text()
    entry = re.search(r'^```bibtex\n(@\w+\{' + re.escape(key) + r',.*?)^```', text, re.S | re.M)
    if entry is None:
        raise KeyError(f'docs/citing.md has no BibTeX entry {key!r}')
    return entry.group(1)


def _json_rows(path: Path) -> dict:
    return {r['model']: r for r in json.loads(path.read_text())} if path.is_file() else {}


def _current_definitions(cfg: dict) -> bool:
    """Whether a run's model computes what the registered model computes now: runs record the version of the model
    definitions (`model_defaults`); an older run counts only if none of its model's arguments changed since."""
    import tim_zoo
    from tim_zoo.version import MODEL_DEFAULTS
    from tim_zoo.weights.legacy import VERSION_1
    if cfg.get('model_defaults', 1) >= MODEL_DEFAULTS:
        return True
    now = tim_zoo.create_model(cfg['model']).init_args
    return all(now.get(k) == v for k, v in VERSION_1.get(cfg['model'], {}).items() if k not in cfg.get('model_args', {}))


def measured_accuracy(detail: bool = True) -> dict:
    """`{model: [text, ...]}`: EMODB accuracy (mean +- std over the splits, averaged over the repeats, with how it
    was measured) from the engine's runs in docs/results, one run per model and protocol. The zoo's run comes first
    (`zoo_repeats.<model>` over `zoo_table.<model>`, `zoo_loso.<model>`); otherwise the run with repeats, then one
    without per-speaker normalisation. A run is never picked by its test accuracy, nor a variant of the model (a
    finding's, with model arguments changed)."""
    chosen = {}                                 # (model, protocol) -> (rank, description)
    for path in sorted((DOCS / 'results').glob('*.json')):
        run = json.loads(path.read_text())
        if not _current_definitions(run['config']) or run['config'].get('model_args'):
            continue                            # a run of model definitions since changed (training.md says which)
        cfg, wars = run['config'], [100 * f['war'] for f in run['folds']]
        war = sum(wars) / len(wars)
        std = (sum((w - war) ** 2 for w in wars) / len(wars)) ** 0.5
        zoo = path.name.startswith(('zoo_table.', 'zoo_repeats.', 'zoo_loso.'))    # a zoo row, not one of its parts
        how = f"{cfg['protocol']}, {len(wars)} splits" + (f", recipe {cfg['recipe']}" if detail else '')
        if 'repeat_summary' in run:      # the mean over the seeds, ± the splits' std (like for like with one repeat)
            rs = run['repeat_summary']
            war, std = 100 * rs['war_mean'], 100 * rs['fold_war_std']
            how = f"{rs['num_repeats']} seeds whose means spread ± {100 * rs['war_std']:.1f}, " + how
        if detail and cfg.get('normalize', 'none') != 'none':
            how += f", normalised per speaker ({cfg['normalize']})"
        if detail and zoo:
            how += ", the zoo's row"
        key, rank = (cfg['model'], cfg['protocol']), (zoo, 'repeat_summary' in run, cfg.get('normalize') == 'none')
        if key not in chosen or rank > chosen[key][0]:
            chosen[key] = (rank, f'{war:.1f} ± {std:.1f} % ({how})')
    accuracy = {}
    for (model, _), (_, text) in sorted(chosen.items()):
        accuracy.setdefault(model, []).append(text)
    return accuracy


#: the input length of the zoo's rows (MFCC order 1 at the shared copy's 2.0 s; training.md, "Chosen")
ZOO_FRAMES = zoo_cost.ZOO_FRAMES


def zoo_row_files(name: str) -> list:
    """The results files of `name`'s zoo rows: its 10-fold row (its repeats' once they are in, else its one-run
    row), then its leave-one-speaker-out row; those that exist."""
    results = DOCS / 'results'
    kfold = next((p for p in (results / f'zoo_repeats.{name}.json', results / f'zoo_table.{name}.json') if p.is_file()),
                 None)
    return [p for p in (kfold, results / f'zoo_loso.{name}.json') if p is not None and p.is_file()]


def training_cost(name: str):
    """Single-thread CPU hours of one repeat of the zoo's 10-fold row of `name` (its results file's epochs, folds
    and precision, at the step cost `zoo_cost.COST_FILE` measured), or None before the row exists. The file is the
    one whose accuracy the table shows (`measured_accuracy`): its repeats' once they are in, else its one-run row."""
    row_file = next((p for p in zoo_row_files(name) if not p.name.startswith('zoo_loso.')), None)
    if row_file is None:
        return None
    cfg = json.loads(row_file.read_text())['config']
    return zoo_cost.training_hours(name, cfg['precision'], cfg['epochs'], splits=cfg['folds'])


def zoo_table(names, link: str = '{name}.md', detail: bool = True) -> list:
    """The model zoo table's lines: parameters and MACs as the zoo trains each model, CPU latency at the same length
    (`zoo_latency`), H100 latency at 188 frames from benchmarks/results, EMODB accuracy (`measured_accuracy`)."""
    import tim_zoo
    cpu, cpu_frames, _ = zoo_cost.zoo_latency()
    gpu = _json_rows(ROOT / 'benchmarks' / 'results' / 'h100_compiled_reduce_overhead_188.json')
    accuracy = measured_accuracy(detail)
    lines = [f'| model | params | MACs | input length | CPU infer / train ms ({cpu_frames} frames) | H100 compiled '
             'infer / train ms (188 frames) | EMODB WAR (mean ± std over the splits; with several seeds, averaged over '
             'them) | zoo row: CPU hours |',
             '|---|---|---|---|---|---|---|---|']
    stale = False
    for name in names:
        params, macs = zoo_cost.zoo_size(name)
        at = {ZOO_FRAMES: params, 188: tim_zoo.count_params(tim_zoo.create_model_for_frames(name, 188))}
        c, g = cpu.get(name), gpu.get(name)
        marks = [' †' if row and row['params'] != at[frames] else '' for row, frames in ((c, cpu_frames), (g, 188))]
        stale = stale or any(marks)
        fixed = tim_zoo.create_model(name).fixed_len is not None
        lines.append(
            f'| [`{name}`]({link.format(name=name)}) | {params:,} | {macs / 1e6:,.1f} M | '
            f'{"fixed (seq_len)" if fixed else "any"} | '
            f'{"%.1f / %.1f" % (c["infer_ms"], c["train_step_ms"]) + marks[0] if c else "-"} | '
            f'{"%.1f / %.1f" % (g["infer_ms"], g["train_step_ms"]) + marks[1] if g else "-"} | '
            f'{", ".join(accuracy.get(name, [])) or "-"} | '
            f'{"%.1f" % cost if (cost := training_cost(name)) is not None else "-"} |')
    if stale:
        lines += ['', '† latency measured on an earlier definition of the model (its parameter count has changed '
                  f'since; [speed]({"" if link.startswith("models/") else "../"}speed.md))']
    return lines


def zoo_note() -> str:
    """What the zoo table's figures are, the protocol beside them."""
    _, cpu_frames, machine = zoo_cost.zoo_latency()
    return (f'EMODB (535 utterances, 10 speakers, 7 classes), the TIM-Net authors\' 10 folds (KFold seed 46), MFCC '
            f'order 1 at {ZOO_FRAMES} frames (the recordings\' 2.0 s), level peak, each model\'s zoo recipe, the last '
            f'epoch (the test fold chooses nothing); accuracy is the mean WAR and its standard deviation over the '
            f'splits, averaged over the training seeds where a run has several, whose means\' spread is given apart, '
            f'from the engine\'s runs in `docs/results` (the zoo\'s row where it is done, never the run with the best '
            f'test accuracy); parameters and multiply-accumulates per sample at 39 MFCC x {ZOO_FRAMES} frames, as the '
            f'zoo trains each model; latency per batch of 64 from `benchmarks/results` (CPU: 2 cores of an {machine}, '
            f'eager, {cpu_frames} frames; H100: `torch.compile(mode="reduce-overhead")`, 188 frames); the zoo row\'s '
            f'training cost in single-thread hours of one CPU core (AMD EPYC Zen 4) for its 10 folds, from the epoch '
            f'cost `benchmarks/zoo_cost.py` measured')


def zoo_page(names) -> str:
    lines = ['# Model zoo', '', f'Generated from the registry at build time: {zoo_note()} '
             f'([training](../training.md)).', ''] + zoo_table(names)
    return '\n'.join(lines) + '\n'


def home_page(names) -> str:
    """docs/index.md with its generated parts: the zoo table and TIM-Net's architecture."""
    text = (DOCS / 'index.md').read_text()
    table = '\n'.join(zoo_table(names, 'models/{name}.md', detail=False) + [
        '', f'Generated at build time: {zoo_note()}; recipes and settings in the [model zoo](models/index.md) and '
            f'[training](training.md).'])
    return text.replace('<!-- zoo-table -->', table).replace('<!-- architecture -->', diagram('timnet'))


def docstring_parts(doc: str):
    """A Google-style docstring (the package's convention: Markdown, `code` in single backticks) as its
    description (Markdown) and ``{argument: meaning}`` from its ``Args:`` section."""
    text = inspect.cleandoc(doc or '')
    parts = re.split(r'^Args:$', text, maxsplit=1, flags=re.M)
    description, rest = parts[0], parts[1] if len(parts) > 1 else ''
    args, current = {}, []
    for line in rest.splitlines():
        if line and not line.startswith(' '):
            break                                          # the next section (Returns:, Raises:, ...)
        match = re.match(r'^ {4}([\w*]+(?:, [\w*]+)*)(?: \([^)]*\))?: ?(.*)$', line)
        if match:
            current = [n.lstrip('*') for n in match.group(1).split(', ')]
            for n in current:
                args[n] = match.group(2).strip()
        elif line.strip():
            for n in current:
                args[n] += ' ' + line.strip()
    return description.strip(), {k: v.replace('|', '\\|') for k, v in args.items()}


#: the sections of docs/blocks.md's reference and the public names of `tim_zoo.layers` in each (every public class
#: and function must be in one: tests/test_docs_site.py)
BLOCK_GROUPS = {
    'Temporal blocks': ['TemporalAwareBlock', 'TemporalStack', 'BiTemporalEncoder', 'TIMEncoder'],
    'Levels and fusion': ['DeltaAggregation', 'WeightLayer', 'AttentionFusion', 'AFTLocalFusion'],
    'Pooling over time and heads': ['MaskedStatsPool', 'AttentiveStatsPool', 'GMMClusteringHead', 'PoolHead',
                                    'FlattenHead', 'FrameScoreHead', 'TimeProjectionHead', 'ConvMapHead',
                                    'ClassifierHead'],
    'Transformers': ['TransformerEncoderStack', 'SinusoidalPositionalEncoding'],
    'Front-end and augmentation': ['MFCC', 'FrequencyMask', 'FrameMask', 'SpatialDropout1d'],
    'Convolutions and norms': ['CausalConv1d', 'GroupConv1d', 'ConvNormAct1d', 'GroupBatchNorm1d',
                               'ChannelLayerNorm1d', 'KerasBatchNorm1d', 'PerGroupNorm'],
    'Helpers': ['lengths_to_mask', 'get_act_layer', 'get_norm_layer', 'init_weights_'],
}
BLOCKS_PAGE = DOCS / 'blocks.md'
BLOCKS_MARK = re.compile(r'(<!-- blocks:reference -->\n)(.*?)(<!-- /blocks:reference -->)', re.S)


def _default(value) -> str:
    return getattr(value, '__name__', None) or repr(value)


def call_signature(obj) -> str:
    """`Name(a, b=1, *, c="x", **tab_kwargs)`: the names and defaults of `inspect.signature`, no annotations."""
    params = []
    for p in inspect.signature(obj).parameters.values():
        prefix = {p.VAR_POSITIONAL: '*', p.VAR_KEYWORD: '**'}.get(p.kind, '')
        params.append(prefix + p.name + ('' if p.default is p.empty else f'={_default(p.default)}'))
    return f'{obj.__name__}({", ".join(params)})'


def model_classes(names) -> list:
    """The import paths of the classes the registered models are built from, in registry order, each once."""
    import tim_zoo
    paths = []
    for name in names:
        cls = type(tim_zoo.create_model(name))
        path = f'{cls.__module__}.{cls.__qualname__}'
        paths += [path] if path not in paths else []
    return paths


def api_page(names) -> str:
    """The API reference, with a section for the model classes (each heading, like every other, carries its
    source: "Source code in ...")."""
    return API_PAGE + '\n## Model classes\n\nThe classes the factories build; each card names its own.\n\n' + \
        '\n'.join(f'::: {path}\n' for path in model_classes(names))


def blocks_reference() -> str:
    """The reference part of docs/blocks.md: per section, each block's signature (read from the code) and the first
    paragraph of its docstring."""
    from tim_zoo import layers
    lines = []
    for section, names in BLOCK_GROUPS.items():
        lines += [f'### {section}', '']
        for name in names:
            obj = getattr(layers, name)
            summary = ' '.join(inspect.cleandoc(obj.__doc__ or '').split('\n\n')[0].split())
            forward = getattr(obj, 'forward', None) if inspect.isclass(obj) else None
            extra = [q for q in inspect.signature(forward).parameters][2:] if forward is not None else []
            if extra:                                         # what the call takes beyond the input
                summary += f' Call: `{call_signature(forward).replace("forward(self, ", "(")}`.'
            lines += [f'- `{call_signature(obj)}`<br>',
                      f'  {summary} [Reference, source](api.md#tim_zoo.layers.{name}).']
        lines.append('')
    return '\n'.join(lines)


def update_blocks_page(check: bool = False) -> bool:
    """Write the generated reference into docs/blocks.md; with `check`, only say whether it is current."""
    text = BLOCKS_PAGE.read_text()
    new = BLOCKS_MARK.sub(lambda m: m.group(1) + blocks_reference() + '\n' + m.group(3), text)
    if not check and new != text:
        BLOCKS_PAGE.write_text(new)
    return new == text


def model_arg_docs(cls, seen=()) -> dict:
    """`{argument: meaning}` of a model class: the arguments every model takes (`SERModel`), those of the classes
    its docstring refers to ("as `TIMNet`"), then its own."""
    from tim_zoo.models import SERModel
    families, queue = {}, [SERModel]
    while queue:
        for sub in queue.pop().__subclasses__():
            families[sub.__name__] = sub
            queue.append(sub)
    docs = docstring_parts(SERModel.__doc__)[1]
    for ref in re.findall(r'as `(\w+)`', cls.__doc__ or ''):
        other = families.get(ref) if ref not in seen else None
        if other is not None and other is not cls:
            docs.update(model_arg_docs(other, seen + (ref, cls.__name__)))
    docs.update(docstring_parts(cls.__doc__)[1])
    return docs


OPTIMIZER_NAMES = {'adamw': 'AdamW', 'adam': 'Adam', 'sgd': 'SGD'}
#: the corpora of the research notes' recipes (a recipe note naming one reports the notes' own figures)
NOTES_CORPORA = ('MODMA', 'IEMOCAP', 'CASIA')


def _recipe_note(note: str) -> str:
    """A recipe's note for its card: a research-notes recipe says so, and its figures are labelled as the notes'."""
    corpus, _, said = note.partition(':')
    if not corpus.startswith(NOTES_CORPORA):
        return (note[:1].upper() + note[1:]).rstrip('.') + '.' if note else ''
    text = f"The research notes' recipe for {corpus.strip()}"
    if any(c.isdigit() for c in said):
        return text + f'; they report {said.strip()} (their split; not reproduced here).'
    return text + (f': {said.strip()}.' if said.strip() else '.')


def tag_lines(name: str) -> list:
    """How a card's model gets its EMODB weights (`<model>.tim_zoo_emodb`): loading them, and where the file is."""
    from tim_zoo.models._zoo import PACKAGED, ZOO_TAG, hub_folder_name, train_command
    tag = f'{name}.{ZOO_TAG}'
    lines = [f'`tim_zoo.create_model("{tag}", pretrained=True)` loads them (`"{name}"` alone is the same tag), as do '
             f'`tim_zoo.EmotionRecognizer.from_pretrained("{tag}")` and `tim-zoo predict --model {name} speech.wav` '
             f'([predicting](../predict.md)).', '']
    if name == 'timnet':
        return lines + ['The file ships inside the package: it is the default of `tim-zoo predict`, trained with '
                        '`timnet.paper` at the release\'s 188 frames ([weights](../weights.md#the-zoos-emodb-models)).']
    if name in PACKAGED:
        return lines + ['The file ships inside the package, trained with the zoo\'s recipe on all 535 utterances at '
                        f'{ZOO_FRAMES} frames; its run\'s record, with the file\'s SHA-256, is '
                        f'`docs/results/zoo/tag.{name}/` ([weights](../weights.md#the-zoos-emodb-models)).']
    return lines + [f'Its file is too large for the package and published nowhere: this command trains it on your '
                    f'EMODB copy with the zoo\'s recipe and writes the hub folder `{hub_folder_name(name)}/` where the '
                    f'tag looks, in the weights directory (`$TIM_ZOO_HOME/weights`, else `~/.cache/tim_zoo/weights`; '
                    f'the tag\'s error names yours):', '',
                    '```', shell_lines(train_command(name, folder='~/.cache/tim_zoo/weights/' + hub_folder_name(name))),
                    '```']


def shell_lines(command: str, width: int = 88) -> str:
    """A long shell command as lines of at most about `width` characters joined by `\\`, so that its code block
    does not scroll sideways on the site."""
    lines, line = [], ''
    for word in command.split(' '):
        if line and len(line) + 1 + len(word) > width:
            lines.append(line)
            line = '    ' + word
        else:
            line = f'{line} {word}' if line else word
    return ' \\\n'.join(lines + [line])


def card_page(name: str) -> str:
    import timm

    import tim_zoo
    from tim_zoo.train import RECIPES

    model = tim_zoo.create_model(name)
    cls = type(model)
    factory = timm.models.model_entrypoint(name)
    from tim_zoo.layers import TemporalAwareBlock
    from tim_zoo.layers.tab import TAB_ARGS

    description = docstring_parts(cls.__doc__)[0]
    class_path = f'{cls.__module__}.{cls.__qualname__}'
    arg_docs = model_arg_docs(cls)
    tab_docs = docstring_parts(TemporalAwareBlock.__doc__)[1]              # TAB arguments: documented on the block
    if any(isinstance(m, TemporalAwareBlock) for m in model.modules()):
        arg_docs = {**{k: f'{v} (every TAB)' for k, v in tab_docs.items() if k in TAB_ARGS}, **arg_docs}
    lines = [f'# `{name}`', '', inspect.cleandoc(factory.__doc__ or ''), '',
             '```python', 'import torch', '', 'import tim_zoo', '',
             f'model = tim_zoo.create_model("{name}", num_classes=7).eval()',
             'logits = model(torch.randn(2, 39, 188))      # MFCC frames [B, 39, T] -> logits [2, 7]', '```', '',
             f'{tim_zoo.count_params(model):,} parameters, {tim_zoo.count_macs(model) / 1e6:,.1f} M multiply-accumulates '
             f'per sample at 39 x 188; `forward_features` gives `[B, {model.num_features}, T\']`.', '',
             '## Architecture', '', diagram(name), '', description, '',
             '## Constructor arguments', '', f'[`{class_path}`](../api.md#{class_path}) (its reference and source), '
             'with the defaults this factory uses:', '',
             '| argument | default | meaning |', '|---|---|---|']
    lines += [f'| `{k}` | `{v!r}` | {arg_docs.get(k, "")} |' for k, v in model.init_args.items()
              if k not in model.unused_args]
    if model.unused_args:
        by_reason = {}
        for arg, reason in model.unused_args.items():
            by_reason.setdefault(reason, []).append(f'`{arg}`')
        lines += ['', f'Not used by `{name}` as built above, and refused unless left at their defaults:', '']
        lines += [f'- {", ".join(args)}: {reason}.' for reason, args in by_reason.items()]
    from tim_zoo.models._zoo import zoo_recipe
    zoo = zoo_recipe(name)
    recipes = [zoo] + [r for r, v in RECIPES.items() if v.get('model') == name and r != zoo] + ['default']
    lines += ['', '## Recipes', '', f'The zoo trains it with `{zoo}` (its row in [the zoo](index.md)); any of these runs with '
              '`tim-zoo train --recipe NAME`, every setting of it can be overridden ([training](../training.md)).', '']
    for r in recipes:
        v = RECIPES[r]
        optimizer = OPTIMIZER_NAMES.get(v.get('optimizer', 'adamw'), v.get('optimizer'))
        schedule = '' if v.get('scheduler', 'none') == 'none' else f', {v["scheduler"]} schedule'
        lines.append(f'- `{r}`: {optimizer}, lr {v["lr"]}, weight decay {v["weight_decay"]}{schedule}, '
                     f'{v["epochs"]} epochs. {_recipe_note(v.get("note", ""))}'.rstrip())
    lines += ['', f'`tim-zoo train --model {name} --recipe {zoo} ...`',
              '', '## Measured here', '']
    measured = measured_accuracy().get(name)
    lines += [f'- EMODB WAR {m}' for m in measured] if measured else [
        '- Not measured yet: the zoo trains every model under one protocol ([training](../training.md), "The zoo on '
        'EMODB"); its results will appear here.']
    from tim_zoo.models._zoo import row_command
    for path in zoo_row_files(name):
        config = json.loads(path.read_text())['config']
        lines.append(f'- The zoo\'s {config["protocol"]} row is `{path.relative_to(ROOT)}`; on your EMODB copy: '
                     f'`{row_command(config)}`')
    params, macs = zoo_cost.zoo_size(name)
    latency, frames, machine = zoo_cost.zoo_latency()
    row = latency.get(name)
    timed = (f'; latency per batch of 64 on 2 cores of an {machine} ({frames} frames, eager): {row["infer_ms"]:.1f} ms '
             f'inference, {row["train_step_ms"]:.1f} ms a training step' + (
                 '' if row['params'] == tim_zoo.count_params(tim_zoo.create_model_for_frames(name, frames)) else
                 ', measured on an earlier definition of the model') if row else '; latency not measured')
    lines.append(f'- As the zoo trains it ({ZOO_FRAMES} frames): {params:,} parameters, {macs / 1e6:,.1f} M '
                 f'multiply-accumulates per sample{timed} ([speed](../speed.md)).')
    cost = training_cost(name)
    if cost is not None:
        lines.append(f'- Training the zoo\'s row (10 folds): {cost:.1f} single-thread hours of one CPU core (AMD EPYC '
                     f'Zen 4, {ZOO_FRAMES} frames; [speed](../speed.md#training-the-zoo)).')
    lines += ['', '## Its EMODB weights', ''] + tag_lines(name)
    lines += ['', '## The research notes\' findings', '',
              'From the research group\'s lab notes: their corpora (mostly MODMA, depressed vs healthy speakers, with '
              'IEMOCAP and CASIA pre-training), splits and recipes, not tim_zoo\'s. They are the notes\' figures and '
              'impressions, not reproduced here; the zoo tests several of them.', '']
    lines += [f'- {f}' for f in FINDINGS.get(name, ['None recorded.'])]
    from tim_zoo.research import RESEARCH_CLASSES
    research = {model: cls for cls, model in RESEARCH_CLASSES.items()}.get(name)
    if research:
        lines += ['', f'With its defaults it computes what the research group\'s `{research}` computes (tested against '
                  f'that code\'s outputs); what differs, the arguments that fix the research code\'s defects and the '
                  f'findings above that rest on one: [the research group\'s code](../models.md#the-research-groups-code). '
                  f'`tim_zoo.load_research_checkpoint("{research}", PATH)` loads its checkpoints.']
    lines += ['', '## References', ''] + [f'- {r}' for r in _references(name)]
    paper = ['ye2023temporal'] if TIMNET_PAPER in _references(name) else []
    lines += ['', '## Citing', '', 'tim_zoo, and the paper this model comes from where there is one; EMODB too when you '
              f'use weights trained on it (`{name}.tim_zoo_emodb`; [licences and citing](../citing.md)):', '',
              '```bibtex', *[bibtex(key).rstrip('\n') for key in ['tim_zoo'] + paper], '```', '', '```bibtex',
              bibtex('burkhardt2005database').rstrip('\n'), '```']
    return '\n'.join(lines) + '\n'


def getting_started() -> str:
    """README.md as the site's Getting started page: its mentions of pages (`docs/predict.md`) become links, and
    `docs/` alone (a folder of the checkout) the site itself."""
    text = (ROOT / 'README.md').read_text().replace('# tim_zoo', '# Getting started', 1)
    text = re.sub(r'`docs/([\w-]+)\.md`', lambda m: f'[{m.group(1)}]({m.group(1)}.md)', text)
    text = re.sub(r'`examples/(custom_model/|(\w+)\.py)`',
                  lambda m: f'[`examples/{m.group(1)}`](examples.md#{m.group(2) or "custom_model"})', text)
    return text.replace('`docs/` describes', 'these pages describe')


def _example_parts(path: Path):
    """An example script as (its docstring's prose as Markdown, its usage lines, its code without the
    docstring)."""
    import ast
    source = path.read_text()
    tree = ast.parse(source)
    doc = ast.get_docstring(tree) or ''
    body = source.splitlines()[tree.body[0].end_lineno:] if doc else source.splitlines()
    usage = [line.strip() for line in doc.splitlines() if line.startswith('    ')]
    prose = '\n'.join(line for line in doc.splitlines() if not line.startswith('    '))
    prose = re.sub(r'\n{3,}', '\n\n', prose.replace('``', '`')).strip()
    return prose, usage, '\n'.join(body).strip('\n')


def examples_page() -> str:
    """The scripts of examples/, whole, each with what it shows and how to run it."""
    examples = ROOT / 'examples'
    lines = ['# Examples', '', 'The scripts of the checkout\'s `examples/` folder, shown whole. Install the package '
             'from the checkout first (`pip install ".[audio]"`: the audio extra reads recordings), then run them from '
             'the checkout\'s root as shown; each says what else it needs. `tests/test_examples.py` runs every one.', '']

    def script(path: Path, title: str, level: str = '##'):
        prose, usage, code = _example_parts(path)
        out = [f'{level} `{title}` {{#{path.stem}}}' if level == '##' else f'{level} `{title}`', '', prose, '']
        if usage:
            out += ['```bash', *usage, '```', '']
        return out + ['```python', code, '```', '']

    for path in sorted(examples.glob('*.py')):
        lines += script(path, path.name)
    project = examples / 'custom_model'
    readme = (project / 'README.md').read_text().split('\n', 1)[1]               # its own title replaced
    readme = readme.replace('](../../docs/', '](')
    lines += ['## `custom_model/`: a project built on the blocks {#custom_model}', '', readme.strip(), '']
    for path in sorted(project.glob('*.py')):
        lines += script(path, f'custom_model/{path.name}', level='###')
    return '\n'.join(lines) + '\n'


def cli_page() -> str:
    from tim_zoo.cli import build_parser
    parser = build_parser()
    lines = ['# Command line', '', 'Generated from the parsers: `tim-zoo COMMAND --help`. Training also runs as '
             '`python -m tim_zoo.train`, the benchmark as `python -m tim_zoo.benchmark`.', '']
    sub = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    for name, p in sub.choices.items():
        lines += [f'## `tim-zoo {name}`', '', '```text', p.format_help().strip(), '```', '']
    from tim_zoo.benchmark.__main__ import build_parser as bench_parser
    lines += ['## `python -m tim_zoo.benchmark`', '', '```text', bench_parser().format_help().strip(), '```', '']
    return '\n'.join(lines)


API_PAGE = """# API reference

Generated from the docstrings.

## Predicting

::: tim_zoo.EmotionRecognizer

::: tim_zoo.Prediction

::: tim_zoo.Segment

::: tim_zoo.inference.expand_inputs

::: tim_zoo.inference.write_predictions

::: tim_zoo.inference.plot_prediction

::: tim_zoo.data.speech.SpeechDetector

## Models and factory

::: tim_zoo.create_model

::: tim_zoo.create_model_for_frames

::: tim_zoo.list_models

::: tim_zoo.SERModel

## Blocks

::: tim_zoo.layers

## Weights

::: tim_zoo.save_checkpoint

::: tim_zoo.load_checkpoint

::: tim_zoo.load_weights

## Data

::: tim_zoo.data

## Training

::: tim_zoo.train
"""


MERMAID_FORMAT = 'FENCE_CODE_FORMAT'
#: the Mermaid release shipped inside the site (Material would otherwise load it from unpkg.com when a page is viewed)
MERMAID_VERSION = '11.17.2'


def mermaid_script(given: str = '') -> Path:
    """`mermaid.min.js` for the site: `given`, else the cached copy, else fetched once from the npm registry
    (`npm pack mermaid@MERMAID_VERSION`, integrity-checked by npm) into `$TIM_ZOO_CACHE` (default
    `~/.cache/tim_zoo`). Returns None (with a warning) where neither works: the site then draws its
    diagrams only when viewed online."""
    if given:
        return Path(given)
    cache = Path(os.environ.get('TIM_ZOO_CACHE') or Path.home() / '.cache' / 'tim_zoo')
    target = cache / f'mermaid-{MERMAID_VERSION}.min.js'
    if target.is_file():
        return target
    npm = shutil.which('npm')
    try:
        if not npm:
            raise OSError('npm is not installed')
        with tempfile.TemporaryDirectory() as tmp:
            subprocess.run([npm, 'pack', f'mermaid@{MERMAID_VERSION}', '--silent'], cwd=tmp, check=True,
                           capture_output=True, timeout=600)
            with tarfile.open(Path(tmp) / f'mermaid-{MERMAID_VERSION}.tgz') as tar:
                script = tar.extractfile('package/dist/mermaid.min.js').read()
        cache.mkdir(parents=True, exist_ok=True)
        partial = target.with_suffix('.part')
        partial.write_bytes(script)
        partial.replace(target)
        return target
    except (OSError, subprocess.SubprocessError, tarfile.TarError, KeyError) as e:
        print(f'warning: could not fetch Mermaid {MERMAID_VERSION} from the npm registry ({e}); the diagrams will '
              f'be drawn only when the site is viewed online (or pass --mermaid PATH/mermaid.min.js)', file=sys.stderr)
        return None


def config(site_dir: Path, docs_dir: Path, names, scripts=()) -> dict:
    pages = ['index.md', 'getting-started.md']
    return dict(
        extra_javascript=list(scripts), extra_css=['stylesheets/extra.css'],
        site_name=f'tim_zoo {tim_zoo_version()}', site_description='PyTorch model zoo for temporal speech emotion recognition',
        docs_dir=str(docs_dir), site_dir=str(site_dir), use_directory_urls=False,
        theme=dict(name='material', features=['navigation.sections', 'content.code.copy', 'toc.integrate']),
        markdown_extensions=['tables', 'admonition', 'attr_list', dict(toc=dict(permalink=True)),
                             {'pymdownx.superfences': dict(custom_fences=[dict(
                                 name='mermaid', cls='mermaid', format=MERMAID_FORMAT)])}],
        plugins=['search', dict(mkdocstrings=dict(handlers=dict(python=dict(
            paths=[str(ROOT)], options=dict(docstring_style='google', show_source=True, show_root_heading=True, separate_signature=True,
                                            show_signature_annotations=True, merge_init_into_class=True,
                                            members_order='source', show_if_no_docstring=False,
                                            filters=['!^_'],
                                            # parameters documented together ("a, b: ...") and unannotated ones
                                            docstring_options=dict(warn_unknown_params=False,
                                                                   warn_missing_types=False))))))],
        exclude_docs='build_site.py\nresults/\n',
        nav=[dict(Home=pages[0]), {'Getting started': pages[1]}, dict(Predicting='predict.md'),
             {'Model zoo': ['models/index.md'] + [f'models/{n}.md' for n in names]},
             dict(Blocks='blocks.md'), dict(Examples='examples.md'), {'Using the models': 'models.md'},
             dict(Weights='weights.md'),
             {'Training and evaluation': 'training.md'}, {'Release evaluation': 'evaluation.md'},
             dict(Speed='speed.md'), {'Bad input': 'errors.md'}, {'Command line': 'cli.md'},
             {'How the package is built': 'architecture.md'},
             {'API reference': 'api.md'}, {'Licences and citing': 'citing.md'}, dict(Changelog='changelog.md')])


def build(out: Path, strict: bool, mermaid: str = '') -> int:
    import yaml

    sys.path.insert(0, str(ROOT))
    import tim_zoo
    names = tim_zoo.list_models()
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp) / 'docs'
        shutil.copytree(DOCS, work, ignore=shutil.ignore_patterns('build_site.py', '__pycache__'))
        (work / 'models').mkdir()
        (work / 'models' / 'index.md').write_text(zoo_page(names))
        (work / 'index.md').write_text(home_page(names))
        for name in names:
            (work / 'models' / f'{name}.md').write_text(card_page(name))
        (work / 'cli.md').write_text(cli_page())
        (work / 'examples.md').write_text(examples_page())
        (work / 'api.md').write_text(api_page(names))
        (work / 'getting-started.md').write_text(getting_started())
        scripts = []
        script = mermaid_script(mermaid)
        if script:                                      # defines `mermaid` before Material looks for it
            (work / 'assets').mkdir(exist_ok=True)
            shutil.copyfile(script, work / 'assets' / 'mermaid.min.js')
            scripts.append('assets/mermaid.min.js')
        cfg_path = Path(tmp) / 'mkdocs.yml'
        text = yaml.safe_dump(config(out.resolve(), work, names, scripts), sort_keys=False)
        # Material renders ```mermaid fences when superfences formats them with this function
        text = text.replace(f"format: {MERMAID_FORMAT}", 'format: !!python/name:pymdownx.superfences.fence_code_format')
        cfg_path.write_text(text.replace('cls: mermaid', 'class: mermaid'))
        from mkdocs.__main__ import cli
        args = ['build', '-f', str(cfg_path)] + (['--strict'] if strict else [])
        try:
            cli.main(args=args, standalone_mode=False)
        except SystemExit as e:
            return int(e.code or 0)
        except Exception as e:                          # mkdocs raises Abort on warnings in strict mode
            print(f'mkdocs build failed: {e}', file=sys.stderr)
            return 1
    return 0


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument('--out', default=str(ROOT / 'site'), help='output folder (default: site/)')
    p.add_argument('--strict', action='store_true', help='fail on any warning')
    p.add_argument('--mermaid', default='', help='a local mermaid.min.js to ship (default: fetched with npm and cached)')
    p.add_argument('--update-pages', action='store_true',
                   help='only rewrite the generated parts of the pages in docs/ (the blocks reference), then stop')
    args = p.parse_args(argv)
    sys.path.insert(0, str(ROOT))
    if args.update_pages:
        print('docs/blocks.md ' + ('was current' if update_blocks_page() else 'updated'))
        return 0
    if not update_blocks_page(check=True):
        print('docs/blocks.md is out of date: run python docs/build_site.py --update-pages', file=sys.stderr)
        return 1
    return build(Path(args.out), args.strict, args.mermaid)


if __name__ == '__main__':
    with contextlib.redirect_stdout(io.StringIO()) if '--quiet' in sys.argv else contextlib.nullcontext():
        sys.exit(main())
