"""The zoo's published EMODB tags (`<model>.tim_zoo_emodb`): each shipped file loads, predicts a real EMODB file
and carries the metadata of its tracked all-data run (docs/results/zoo/tag.<model>/)."""
import dataclasses
import hashlib
import json
from pathlib import Path

import pytest

import tim_zoo
from tim_zoo.exceptions import ConfigurationError, WeightsNotFoundError
from tim_zoo.models._zoo import PACKAGED, ZOO_TAG, packaged_file

ROOT = Path(__file__).resolve().parents[1]
TRACKED = ROOT / 'docs' / 'results' / 'zoo'
EMODB = ROOT.parent / 'shared' / 'data' / 'emodb' / 'wav'
ZOO_MODELS = sorted({name.split('.')[0] for name in tim_zoo.list_models(f'*.{ZOO_TAG}', pretrained=True)})


def test_every_model_has_a_zoo_tag_that_pretrained_true_resolves_to():
    assert len(ZOO_MODELS) == 14 and set(PACKAGED) < set(ZOO_MODELS)


@pytest.mark.parametrize('model', PACKAGED)
def test_packaged_tag_matches_its_tracked_run(model):
    record = TRACKED / f'tag.{model}' / 'fold1'
    if not record.is_dir():
        pytest.skip(f'tag.{model} has not been trained yet (benchmarks/zoo.py)')
    result = json.loads((record / 'all' / 'result.json').read_text())
    data = packaged_file(model).read_bytes()
    assert hashlib.sha256(data).hexdigest() == result['checkpoint']['sha256']
    net = tim_zoo.create_model(model, pretrained=True)
    assert net.pretrained_cfg['tag'] == ZOO_TAG
    config = json.loads((record / 'config.json').read_text())
    with __import__('safetensors').safe_open(str(packaged_file(model)), 'pt') as f:
        meta = json.loads(f.metadata()['tim_zoo'])
    trained = meta['extra']['train_config']
    assert {k: trained[k] for k in ('model', 'recipe', 'seed', 'protocol', 'precision', 'epochs', 'lr')} == \
        {k: config[k] for k in ('model', 'recipe', 'seed', 'protocol', 'precision', 'epochs', 'lr')}
    assert meta['feature_settings']['frames'] == 87 and meta['feature_settings']['order'] == 1
    assert net.label_names == list(tim_zoo.models._zoo.EMODB_LABELS)
    # what its description and notes say of the file's precision is what it trained in (its row's may differ)
    words = tim_zoo.models._zoo.PRECISION_WORDS[trained['precision']]
    assert trained['precision'] == tim_zoo.models._zoo.tag_precision(model)
    assert words in net.pretrained_cfg['description']
    if tim_zoo.models._zoo.zoo_accuracy(model) is not None:
        assert f'these weights: the same recipe once on all 535 utterances, trained {words}' in \
            tim_zoo.models._zoo.accuracy_note(model)


@pytest.mark.parametrize('model', PACKAGED)
def test_packaged_tag_predicts_a_real_emodb_file(model):
    if not packaged_file(model).exists():
        pytest.skip(f'{model}: not trained yet')
    if not EMODB.is_dir():
        pytest.skip('../shared EMODB copy absent')
    pytest.importorskip('librosa')
    wav = sorted(EMODB.glob('*.wav'))[0]
    recognizer = tim_zoo.EmotionRecognizer.from_pretrained(f'{model}.{ZOO_TAG}')
    result = recognizer.predict(str(wav))
    assert set(result.probabilities) == set(tim_zoo.models._zoo.EMODB_LABELS)


def test_a_large_tag_without_its_folder_names_the_command_and_the_place(tmp_path, monkeypatch):
    monkeypatch.setenv('TIM_ZOO_HOME', str(tmp_path))
    with pytest.raises(WeightsNotFoundError, match=r'tim-zoo train --corpus emodb .*--model set_official '
                                                     r'--recipe transformer.emodb --protocol all') as caught:
        tim_zoo.create_model('set_official', pretrained=True)
    # where the hub folder's file goes, and how the command line loads a copy from elsewhere
    message = str(caught.value)
    assert f'Put it at {tmp_path / "weights" / "set_official.tim_zoo_emodb" / "model.safetensors"}' in message
    assert 'tim-zoo predict --checkpoint PATH or --model local-dir:FOLDER, tim-zoo train --init PATH' in message


def test_a_large_tags_message_says_no_file_is_published_and_what_training_it_costs(tmp_path, monkeypatch):
    import re
    monkeypatch.setenv('TIM_ZOO_HOME', str(tmp_path))
    row = tim_zoo.models._zoo.zoo_accuracy('transformer_deltatim')
    cost_file = ROOT / 'benchmarks' / 'results' / 'zoo_cost_cpu2_zen4.json'
    if row is None or not cost_file.is_file():
        pytest.skip('transformer_deltatim has no zoo row or no measured cost yet')
    with pytest.raises(WeightsNotFoundError) as caught:
        tim_zoo.create_model('transformer_deltatim', pretrained=True)
    message = str(caught.value)
    assert 'published nowhere' in message and 'no download exists' in message
    # the cost: the measured step at 87 frames in the tag's precision, 9 steps of 64 over the 535 utterances, the
    # recipe's epochs (from its results file)
    cost = json.loads(cost_file.read_text())
    step_s = next(r['step_s'] for r in cost['rows'] if r['model'] == 'transformer_deltatim' and r['frames'] == 87
                  and r['precision'] == tim_zoo.models._zoo.tag_precision('transformer_deltatim'))
    epochs = json.loads((ROOT / row['results']).read_text())['config']['epochs']
    said = re.search(r'about (\d+) minutes on one thread', message)
    assert said and abs(int(said.group(1)) - step_s * 9 * epochs / 60) <= 1


def test_weights_in_a_large_tags_place_must_record_the_tags_training(tmp_path, monkeypatch):
    """Any weights put where a tag's hub folder goes would load as the tag's, with its row's accuracy in the notes:
    they must record the tag's training (EMODB, all 535 utterances, the zoo recipe)."""
    monkeypatch.setenv('TIM_ZOO_HOME', str(tmp_path))
    folder = tmp_path / 'weights' / 'transformer_tim.tim_zoo_emodb'
    untrained = tim_zoo.create_model('transformer_tim', num_classes=7, seq_len=87)
    tim_zoo.save_for_hub(untrained, folder, label_names=list(tim_zoo.models._zoo.EMODB_LABELS))
    with pytest.raises(ConfigurationError, match=r"does not hold the weights of transformer_tim.tim_zoo_emodb: it "
                                                 r"records corpus None \(the tag's: 'emodb'\), protocol None"):
        tim_zoo.create_model('transformer_tim', pretrained=True)
    trained = tmp_path / 'all.safetensors'
    for recipe in ('seed.emodb', 'transformer.emodb'):
        tim_zoo.save_checkpoint(untrained, trained, label_names=list(tim_zoo.models._zoo.EMODB_LABELS),
                                feature_settings=dict(corpus='emodb'),
                                extra=dict(trained_on=dict(corpus='emodb', protocol='all', split='all', recipe=recipe)))
        tim_zoo.save_for_hub(tim_zoo.load_checkpoint(trained), folder, checkpoint=trained)
        if recipe == 'seed.emodb':
            with pytest.raises(ConfigurationError, match=r"recipe 'seed.emodb' \(the tag's: 'transformer.emodb'\)"):
                tim_zoo.create_model('transformer_tim', pretrained=True)
    model = tim_zoo.create_model('transformer_tim', pretrained=True)
    assert model.pretrained_cfg['tag'] == ZOO_TAG and model.pretrained_cfg['trained_on']['protocol'] == 'all'
    tim_zoo.save_for_hub(model, tmp_path / 'again')         # saved anew: the record goes with the weights
    folder.rename(tmp_path / 'first')
    (tmp_path / 'again').rename(folder)
    assert tim_zoo.create_model('transformer_tim', pretrained=True).pretrained_cfg['trained_on'] == \
        model.pretrained_cfg['trained_on']
    other = tim_zoo.create_model('transformer_tim', pretrained=True,            # without the tag: taken as it is
                                 pretrained_cfg_overlay=dict(file=str(tmp_path / 'all.safetensors')))
    assert other.pretrained_cfg.get('tag') != ZOO_TAG


def _row_figures(model):
    """WAR and UAR (%) of the model's tracked results: the mean and population std over the splits of its one-run
    row; once its repeats are in (in place of the row, or for a model without one), the mean over the repeats' means
    and the splits' std averaged over the repeats. None before either exists."""
    results = ROOT / 'docs' / 'results'
    path = results / f'zoo_repeats.{model}.json'
    if path.exists():
        repeats = [r['folds'] for r in json.loads(path.read_text())['repeats']]
    elif (results / f'zoo_table.{model}.json').exists():
        repeats = [json.loads((results / f'zoo_table.{model}.json').read_text())['folds']]
    else:
        return None
    out = {}
    for key in ('war', 'uar'):
        means, stds = [], []
        for folds in repeats:
            values = [100 * f[key] for f in folds]
            means.append(sum(values) / len(values))
            stds.append((sum((v - means[-1]) ** 2 for v in values) / len(values)) ** 0.5)
        out[key] = (sum(means) / len(means), sum(stds) / len(stds))
    return out


@pytest.mark.parametrize('model', ZOO_MODELS)
def test_a_zoo_tag_says_what_its_recipe_scored_on_held_out_folds(model):
    from tim_zoo.models._zoo import accuracy_note, zoo_accuracy, zoo_cfg
    figures, row = _row_figures(model), zoo_accuracy(model)
    if figures is None:
        assert row is None and 'not been measured on held-out data yet' in accuracy_note(model)
        assert 'not measured yet' in zoo_cfg(model)['description']
        return
    (war, war_std), (uar, _) = figures['war'], figures['uar']
    assert row['war_mean'] == pytest.approx(war, abs=0.006) and row['war_std'] == pytest.approx(war_std, abs=0.006)
    assert row['uar_mean'] == pytest.approx(uar, abs=0.006) and row['splits'] == 10
    assert f'WAR {war:.1f} ± {war_std:.1f} %' in accuracy_note(model)
    results = ROOT / 'docs' / 'results'
    path = next(p for p in (results / f'zoo_repeats.{model}.json', results / f'zoo_table.{model}.json') if p.exists())
    precision = json.loads(path.read_text())['config']['precision']
    assert {'fp32': 'trained in fp32', 'bf16': 'trained under bf16 autocast'}[precision] in accuracy_note(model)
    assert f'WAR {war:.1f} ± {war_std:.1f} %' in zoo_cfg(model)['description']
    loso = ROOT / 'docs' / 'results' / f'zoo_loso.{model}.json'
    if loso.exists():                                     # the figure for a speaker it never heard, from its file
        folds = json.loads(loso.read_text())['folds']
        wars = [100 * f['war'] for f in folds]
        mean, uar_mean = sum(wars) / len(wars), sum(100 * f['uar'] for f in folds) / len(folds)
        std = (sum((w - mean) ** 2 for w in wars) / len(wars)) ** 0.5
        said = f'WAR {mean:.1f} ± {std:.1f} %, UAR {uar_mean:.1f} % on a speaker it never heard'
        assert said in accuracy_note(model)
    else:
        assert 'a speaker it never heard: not measured yet' in accuracy_note(model)


def test_a_recognizer_over_a_zoo_tag_carries_its_accuracy_and_the_cli_prints_it(capsys):
    from tim_zoo import cli
    from tim_zoo.models._zoo import accuracy_note, bundled_note
    tim = tim_zoo.EmotionRecognizer.from_pretrained(f'tim.{ZOO_TAG}')
    timnet_war = _row_figures('timnet')['war'][0]
    assert tim.model_notes == [accuracy_note('tim')] and f'(timnet\'s recipe: {timnet_war:.1f} %)' in tim.model_notes[0]
    bundled = tim_zoo.EmotionRecognizer.from_pretrained().model_notes            # the default: timnet's zoo tag
    assert bundled == [bundled_note()] and bundled[0].startswith(
        f'timnet.{ZOO_TAG} (inputs of 4.35 s: 188 frames), its recipe on EMODB: WAR 85.9 ± 5.2 %, UAR 85.3 % on new '
        f'utterances of speakers it trained on; at the zoo table\'s 2.0 s inputs (87 frames): {timnet_war:.1f} % on '
        f'those')
    untrained = tim_zoo.create_model('tim', num_classes=3)           # no tag's figures: its own untrained head
    assert tim_zoo.EmotionRecognizer(untrained, feature_settings=dict(mean_signal_length=32768)).model_notes == [
        "the model's classifier is untrained: the model was built without weights (no pretrained=True, checkpoint or "
        "training), so these probabilities mean nothing until it is trained"]
    if not EMODB.is_dir():
        pytest.skip('../shared EMODB copy absent')
    pytest.importorskip('librosa')
    wav = str(sorted(EMODB.glob('*.wav'))[0])
    assert cli.main(['predict', wav, '--model', 'tim']) == 0
    assert f'note on the model: {accuracy_note("tim")}' in capsys.readouterr().out
    assert cli.main(['predict', wav, '--model', 'tim', '--json']) == 0
    captured = capsys.readouterr()
    assert json.loads(captured.out)[0]['prediction'] and 'note on the model: tim.' in captured.err


def _recorded_war(results: Path, fold=None):
    """WAR (%) and its std recomputed from a tracked results file: a Keras release evaluation (one fold's), a
    repeated run (the mean over the repeats, ± the splits' std averaged over them) or a single run (over its
    splits)."""
    run = json.loads(results.read_text())
    if 'per_fold' in run:
        return 100 * run['per_fold'][fold - 1]['war'], None
    repeats = [r['folds'] for r in run['repeats']] if isinstance(run.get('repeats'), list) else [run['folds']]
    means, stds = [], []
    for folds in repeats:
        wars = [100 * f['war'] for f in folds]
        means.append(sum(wars) / len(wars))
        stds.append((sum((w - means[-1]) ** 2 for w in wars) / len(wars)) ** 0.5)
    return sum(means) / len(means), sum(stds) / len(stds)


def test_every_held_out_figure_of_the_weights_listing_comes_from_its_results_file():
    rows = {r['name']: r for r in tim_zoo.list_pretrained_weights()}
    measured = {name for name, r in rows.items() if r['accuracy']}
    expected = ({'timnet.tim_zoo_emodb', 'timnet.emodb_46'} | {f'timnet.emodb_46_fold{k}' for k in range(1, 11)}
                | {f'{m}.{ZOO_TAG}' for m in ZOO_MODELS if _row_figures(m) is not None})
    assert measured == expected
    for name in measured:
        acc = rows[name]['accuracy']
        fold = int(name.rsplit('_fold', 1)[1]) if '_fold' in name else 1      # a release tag loads fold 1
        war, war_std = _recorded_war(ROOT / acc['results'], fold)
        assert acc['war'] == pytest.approx(war, abs=0.006), name
        assert (acc['war_std'] is None) == (war_std is None) and acc['war_std'] == pytest.approx(war_std, abs=0.006)
        summary = json.loads((ROOT / acc['results']).read_text()).get('repeat_summary')
        if summary:                              # the seeds' spread is said apart from the folds' std
            assert f"the seeds' means spread ± {100 * summary['war_std']:.1f}" in acc['what'], name
    assert 'emodb_timnet_paper' in rows['timnet.tim_zoo_emodb']['accuracy']['results']      # 188 frames, not the row
    assert rows['timnet.casia_32']['accuracy'] is None


def test_the_weights_command_shows_the_held_out_figure_and_what_it_is(capsys):
    from tim_zoo import cli
    release = json.loads((ROOT / 'docs' / 'results' / 'releases' / 'EMODB_46.json').read_text())
    assert cli.main(['weights', 'timnet.emodb_46_fold4']) == 0
    out = capsys.readouterr().out
    assert f'{100 * release["per_fold"][3]["war"]:.1f} (its test fold)' in out and 'held-out WAR %: ' in out
    assert cli.main(['weights', 'timnet.casia_32_fold1']) == 0
    out = capsys.readouterr().out
    assert 'held-out WAR %: ' not in out and 'timnet.casia_32_fold1  missing  -  ' in out



def test_the_weights_command_lists_the_loadable_tags_first_then_the_measured_ones(capsys, tmp_path, monkeypatch):
    from tim_zoo import cli
    monkeypatch.setenv('TIM_ZOO_HOME', str(tmp_path))                  # only the packaged files are found
    assert cli.main(['weights']) == 0
    lines = capsys.readouterr().out.splitlines()
    tags = {r['name']: r for r in tim_zoo.list_pretrained_weights()}
    listed = [line.split()[0] for line in lines if line.split() and line.split()[0] in tags]
    assert sorted(listed) == sorted(tags)
    groups = [0 if tags[t]['found'] else 1 if tags[t]['accuracy'] else 2 for t in listed]
    assert groups == sorted(groups) and groups[0] == 0 and groups[-1] == 2
    for group in range(3):                                 # within a group, list_pretrained_weights' order
        names = [t for t, g in zip(listed, groups) if g == group]
        assert names == [t for t in tags if t in names]
    found = groups.count(0)
    assert any(line.startswith(f'{found} of {len(tags)} found (listed first).') for line in lines)

def test_the_model_list_shows_each_zoo_row_with_its_results_file(capsys):
    from tim_zoo import cli
    assert cli.main(['list', '--json']) == 0
    rows = {r['model']: r['emodb'] for r in json.loads(capsys.readouterr().out)}
    for model, acc in rows.items():
        has_row = _row_figures(model) is not None
        assert (acc is not None) == has_row, model
        if acc is not None:                      # the architecture's row: timnet's at 87 frames, not its bundled tag's
            war, war_std = _recorded_war(ROOT / acc['results'])
            assert (acc['war'], acc['war_std']) == (pytest.approx(war, abs=0.006), pytest.approx(war_std, abs=0.006))
    assert rows['timnet']['results'] != tim_zoo.list_pretrained_weights('timnet.tim_zoo_emodb')[0]['accuracy']['results']
    assert cli.main(['list', 'timnet']) == 0
    assert f"{rows['timnet']['war']:.1f} ± {rows['timnet']['war_std']:.1f} (recipe, 10 folds x 3 seeds, fp32)" in capsys.readouterr().out
    # the bundled tag's figure is of its own length: the listing says so, not only its description
    assert tim_zoo.list_pretrained_weights('timnet.tim_zoo_emodb')[0]['accuracy']['over'] == \
        'recipe, 10 folds x 3 seeds, 188 frames, fp32'


def test_each_zoo_results_file_names_the_command_that_trains_it():
    """The command a card gives for a zoo row (`row_command`) is read by `tim-zoo train` into the configuration its
    results file records: the same model, arguments, recipe, protocol, seed, precision, repeats and compilation."""
    import shlex

    from tim_zoo.cli import build_parser
    from tim_zoo.cli.train import config_from_args
    from tim_zoo.models._zoo import row_command
    files = sorted((ROOT / 'docs' / 'results').glob('zoo_*.json'))
    if not files:
        pytest.skip('no zoo results files in this checkout')
    for path in files:
        recorded = json.loads(path.read_text())['config']
        command = shlex.split(row_command(recorded))
        assert command[:2] == ['tim-zoo', 'train']
        args = build_parser().parse_args(command[1:])
        assert args.corpus == 'emodb' and args.mean_signal_length == 44100      # the zoo's features: 87 frames
        built = dataclasses.asdict(config_from_args(args))
        differ = {key: (built[key], value) for key, value in recorded.items()
                  if key in built and key not in ('device', 'note') and built[key] != value
                  and not (isinstance(value, list) and tuple(value) == built[key])}
        assert not differ, f'{path.name}: {differ}'


def test_the_bundled_models_figures_in_prose_come_from_their_results_files():
    """The figures the README, the predict guide and the bundled model's docstring quote for `timnet`, typed by hand,
    are its results files' (the recipe's 10-fold runs at 188 frames, the zoo's rows at 87)."""
    import statistics

    import tim_zoo.pretrained
    results = ROOT / 'docs' / 'results'

    def summary(name):
        run = json.loads((results / f'{name}.json').read_text())
        wars = [100 * f['war'] for f in run['folds']]
        mean = 100 * run['repeat_summary']['war_mean'] if 'repeat_summary' in run else statistics.mean(wars)
        spread = 100 * run['repeat_summary']['fold_war_std'] if 'repeat_summary' in run else statistics.pstdev(wars)
        seeds = 100 * run['repeat_summary']['war_std'] if 'repeat_summary' in run else None
        return mean, spread, seeds
    bundled, folds, seeds = summary('emodb_timnet_paper_keras_r3')
    table = summary('zoo_repeats.timnet')[0]
    loso, loso_std, _ = summary('zoo_loso.timnet')
    readme = ' '.join((ROOT / 'README.md').read_text().split())
    assert f'its recipe gets about {bundled:.0f} % of unseen EMODB utterances right' in readme
    assert f'about {loso:.0f} % for a speaker it never heard' in readme
    assert f'where the 10-fold figure is {table:.0f} %' in readme
    guide = ' '.join((ROOT / 'docs' / 'predict.md').read_text().split())
    assert f"`timnet`'s recipe scores {table:.1f} % on new utterances of known speakers and {loso:.1f} % on a " \
        f"speaker it never heard" in guide
    assert f'188 frames, give {bundled:.1f} % on the first' in guide
    assert f'{bundled:.1f} % of unseen utterances right (ten folds, ± {folds:.1f} over the folds; the three ' \
        f"training seeds' means with a sample std of {seeds:.1f}" in guide
    assert f'{loso:.1f} ± {loso_std:.1f} % for a speaker' in guide
    docstring = ' '.join(tim_zoo.pretrained.__doc__.split())
    assert f'({bundled:.1f} % over three training seeds, whose means have a sample std of {seeds:.1f})' in docstring
