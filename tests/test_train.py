"""Training engine: recipes, protocols, outputs, checkpoint choice, resuming, fine-tuning, CLI."""
import dataclasses
import json
import logging
import math
import re
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch

import tim_zoo
from tim_zoo.data.known_utterances import utterance_name
from tim_zoo.cli import main as cli_main
from tim_zoo.data import FeatureSet
from tim_zoo.evaluation import kfold_splits, war
from tim_zoo.exceptions import ConfigurationError, DatasetError
from tim_zoo.train import (
    RECIPES, StopTraining, TrainConfig, build_scheduler, get_recipe, make_splits, param_groups, run_training,
)

from conftest import SHARED, benchmark_script

TINY = dict(depth=2, filters=8)
HAS_CXX = any(map(shutil.which, ('g++', 'c++', 'clang++')))          # torch.compile's CPU backend needs one


def _features(n=60, classes=3, frames=32, speakers=6, shift=1.0, seed=0):
    """Synthetic features whose class shifts every coefficient: learnable in a few epochs."""
    rng = np.random.default_rng(seed)
    y = np.arange(n) % classes
    x = (rng.normal(size=(n, 39, frames)) + shift * y[:, None, None]).astype(np.float32)
    return FeatureSet(x, y, [f'c{i}' for i in range(classes)], [f'u{i}.wav' for i in range(n)],
                      [f's{i % speakers}' for i in range(n)], dict(mean_signal_length=1000))


def _cfg(**kw):
    base = dict(model='timnet', model_args=dict(TINY), epochs=3, lr=3e-3, weight_decay=0.0, protocol='kfold',
                batch_size=16)
    base.update(kw)
    if base['protocol'] == 'kfold':
        base.setdefault('folds', 3)
    return TrainConfig.from_recipe(None, **base)


# --- recipes and configuration ---------------------------------------------------------------------

def test_every_recipe_of_the_notes_is_shipped():
    expected = {'default', 'transformer_tim.modma', 'transformer_tim.modma_tt0', 'transformer_tim.iemocap',
                'transformer_deltatim.iemocap', 'at_deltatim.modma', 'at_deltatim.iemocap_v2', 'at_deltatim.iemocap',
                'at_deltatim_v2.modma', 'at_tim.modma_gmm', 'set_official.modma', 'timnet.paper', 'timnet.paper_val',
                'seed.emodb', 'transformer.emodb'}
    assert set(RECIPES) == expected
    for name, recipe in RECIPES.items():
        cfg = TrainConfig.from_recipe(name)
        assert tim_zoo.is_model(cfg.model), name
    paper = TrainConfig.from_recipe('timnet.paper')
    assert (paper.optimizer, paper.lr, paper.epochs, paper.protocol, paper.folds, paper.scheduler) == \
        ('adam', 1e-3, 500, 'kfold', 10, 'none')
    assert paper.label_smoothing == 0.1 and paper.betas == (0.93, 0.98)
    # the authors' current protocol: all nine training folds, the last epoch; selection on a carve-out by flag
    assert (paper.val_fraction, paper.select) == (0.0, 'last')
    assert make_splits('kfold', 535, folds=10, seed=46, val_fraction=paper.val_fraction)[0].train.size == 481
    val = TrainConfig.from_recipe('timnet.paper_val')
    assert (val.val_fraction, val.select) == (0.1, 'val') and val.epochs == paper.epochs and val.lr == paper.lr
    with pytest.raises(ConfigurationError, match='needs a validation split'):
        TrainConfig.from_recipe('timnet.paper', select='val')
    tdt = TrainConfig.from_recipe('transformer_deltatim.iemocap')
    assert (tdt.lr, tdt.weight_decay, tdt.step_size, tdt.gamma, tdt.dropout) == (1e-4, 0.3, 20, 0.4, 0.2)
    assert TrainConfig.from_recipe('at_deltatim.iemocap').model_args == {'residual': 'add'}


def test_overrides_and_bad_settings():
    cfg = TrainConfig.from_recipe('at_deltatim.iemocap', lr=1e-5, epochs=None, model_args=dict(depth=6))
    assert cfg.lr == 1e-5 and cfg.epochs == 150 and cfg.model_args == {'residual': 'add', 'depth': 6}
    with pytest.raises(ConfigurationError, match='did you mean at_deltatim.iemocap'):
        get_recipe('at_deltatim.iemocp')
    with pytest.raises(ConfigurationError, match='scheduler'):
        TrainConfig(scheduler='linear')
    with pytest.raises(ConfigurationError, match='validation split'):
        TrainConfig(select='val', val_fraction=0.0)
    with pytest.raises(ConfigurationError, match='unknown training settings: colour'):
        TrainConfig.from_recipe(None, colour='red')


def test_schedulers():
    model = torch.nn.Linear(2, 2)
    for name, check in [
        ('step', lambda lrs: lrs[0] == 1.0 and lrs[19] == 1.0 and math.isclose(lrs[20], 0.5)),
        ('cosine', lambda lrs: lrs[0] == 1.0 and lrs[20] < 0.6 and lrs[39] < 0.01),
        ('noam', lambda lrs: lrs[0] < 0.2 and math.isclose(max(lrs), 1.0) and lrs.index(max(lrs)) == 9 and lrs[39] < 0.6),
        ('none', lambda lrs: set(lrs) == {1.0}),
    ]:
        own = dict(step=dict(step_size=2, gamma=0.5), noam=dict(warmup_steps=10)).get(name, {})
        cfg = TrainConfig(scheduler=name, epochs=4, **own)
        opt = torch.optim.SGD(model.parameters(), lr=1.0)
        sched = build_scheduler(opt, cfg, steps_per_epoch=10)
        lrs = []
        for _ in range(40):
            lrs.append(opt.param_groups[0]['lr'])
            opt.step()
            sched.step()
        assert check(lrs), (name, lrs[:12])


# --- protocols -------------------------------------------------------------------------------------

def test_kfold_test_folds_are_the_authors_and_validation_comes_from_training():
    splits = make_splits('kfold', 100, folds=10, seed=46, val_fraction=0.1)
    reference = kfold_splits(100, 10, 46)
    for split, (train, test) in zip(splits, reference):
        np.testing.assert_array_equal(split.test, test)
        assert set(split.train) | set(split.val) == set(train)
        assert not set(split.val) & set(split.train) and len(split.val) == 9


def test_loso_is_speaker_independent():
    speakers = [f's{i % 5}' for i in range(50)]
    splits = make_splits('loso', 50, speakers, seed=1, val_fraction=0.25)
    assert [s.name for s in splits] == [f'speaker_s{i}' for i in range(5)]
    for s in splits:
        test_spk = {speakers[i] for i in s.test}
        val_spk = {speakers[i] for i in s.val}
        train_spk = {speakers[i] for i in s.train}
        assert len(test_spk) == 1 and val_spk and not (val_spk & train_spk) and not (test_spk & (val_spk | train_spk))
    with pytest.raises(DatasetError, match='speaker for every sample'):
        make_splits('loso', 4, ['a', '', 'b', 'c'])


def test_validation_speakers_leave_every_class_in_training_with_one_label_per_speaker(tmp_path, capsys):
    """A depression corpus: one label per speaker, two speakers a class. A validation speaker drawn regardless of
    its label took the last training speaker of a class for most seeds; with the labels it never does, and splits
    that kept every class anyway (EMODB, whose speakers speak every emotion) do not move."""
    from tim_zoo.data.known_utterances import known_utterances
    from tim_zoo.train.protocols import class_notes
    speakers = [f's{i // 3}' for i in range(12)]
    labels = np.array([0 if i < 6 else 1 for i in range(12)])
    one_class = [seed for seed in range(10) if any(len(set(labels[s.train])) < 2 for s in
                                                    make_splits('loso', 12, speakers, seed=seed))]
    assert one_class                                      # what the labels are for
    for seed in range(10):
        assert all(set(labels[s.train]) == {0, 1} for s in make_splits('loso', 12, speakers, seed=seed, labels=labels))
    redrawn = make_splits('loso', 12, speakers, seed=one_class[0], labels=labels)
    said = class_notes(redrawn, labels, ['depressed', 'healthy'])
    assert [s.name for s in redrawn if s.redrawn] and all(                  # a redraw is said, split by split
        any(n.startswith(f'{s.name}: its validation part was drawn again') for n in said) for s in redrawn if s.redrawn)
    assert not any(s.redrawn for s in make_splits('loso', 12, speakers, seed=one_class[0]))
    # a split that redraws moves no other split's draw
    six = [f's{i // 2}' for i in range(12)]
    per_speaker = np.repeat([0, 0, 1, 1, 1, 2], 2)
    redrawn_before_a_kept_split = 0
    for seed in range(5):
        plain = make_splits('loso', 12, six, seed=seed, val_fraction=0.2)
        labelled = make_splits('loso', 12, six, seed=seed, val_fraction=0.2, labels=per_speaker)
        redrawn = False
        for a, b in zip(plain, labelled):
            assert np.array_equal(a.test, b.test)
            if set(per_speaker[a.train]) == set(per_speaker[np.concatenate([a.train, a.val])]):
                assert np.array_equal(a.val, b.val), (seed, a.name)
                redrawn_before_a_kept_split += redrawn
            else:
                redrawn = True
    assert redrawn_before_a_kept_split                      # the case this is about occurred
    notes = class_notes(make_splits('loso', 12, speakers, seed=one_class[0]), labels, ['depressed', 'healthy'])
    assert any('trains on no utterance of' in n and 'its validation part took them' in n for n in notes)
    assert any("every test set holds one class" in n and 'pooled_uar' in n for n in notes)
    emodb = known_utterances('emodb')
    y = np.unique([n[5] for n in emodb.names], return_inverse=True)[1]
    for protocol in ('kfold', 'loso'):
        plain = make_splits(protocol, 535, list(emodb.speakers), 10, 46, 0.1)
        labelled = make_splits(protocol, 535, list(emodb.speakers), 10, 46, 0.1, y)
        assert all(np.array_equal(a.val, b.val) and np.array_equal(a.train, b.train) for a, b in zip(plain, labelled))
        assert not class_notes(labelled, y, list('abcdefg'))
    # the run says it, and the command prints the UAR pooled over the splits beside the per-split mean
    rng = np.random.default_rng(0)
    x = (rng.normal(size=(12, 39, 16)) + labels[:, None, None]).astype(np.float32)
    features = FeatureSet(x, labels, ['depressed', 'healthy'], [f'u{i}.wav' for i in range(12)], speakers)
    path = tmp_path / 'f.npz'
    features.save(path)
    args = ['train', '--features', str(path), '--model', 'timnet', '--model-arg', 'depth=2', '--model-arg', 'filters=8',
            '--protocol', 'loso', '--epochs', '1', '--quiet', '--out', str(tmp_path / 'run')]
    assert cli_main(args) == 0
    out = capsys.readouterr().out
    assert 'note: every test set holds one class' in out and 'pooled over the splits: WAR' in out
    metrics = json.loads((tmp_path / 'run' / 'metrics.json').read_text())
    assert metrics['notes'] and all('trains on no utterance' not in n for n in metrics['notes'])
    votes = metrics['speakers']                         # subject level: each speaker's most common answer
    right = 0
    for fold in metrics['folds']:
        test = json.loads((tmp_path / 'run' / fold['split'] / 'result.json').read_text())['test']
        counts = np.bincount(test['predicted'], minlength=2)
        right += counts.max() > counts.min() and int(counts.argmax()) == test['label'][0]
    assert votes['speakers'] == 4 and votes['war'] == right / 4
    assert f'speakers (one label each; a speaker\'s answer is the class most of their utterances got): {right} of 4' in out


def test_speaker_normalisation_with_one_label_per_speaker_is_warned_of(tmp_path, caplog):
    from tim_zoo.data.normalize import speakers_with_one_label
    speakers = [f's{i // 3}' for i in range(12)]
    labels = np.array([0 if i < 6 else 1 for i in range(12)])
    assert speakers_with_one_label(speakers, labels) == 4
    assert speakers_with_one_label(speakers, np.arange(12) % 2) == 0          # speakers with both labels
    assert speakers_with_one_label(speakers, np.zeros(12)) == 0               # one label in all
    x = np.random.default_rng(0).normal(size=(12, 39, 16)).astype(np.float32)
    features = FeatureSet(x, labels, ['depressed', 'healthy'], [f'u{i}.wav' for i in range(12)], speakers)
    with caplog.at_level('WARNING', logger='tim_zoo.train'):
        run_training(_cfg(protocol='loso', folds=None, epochs=1, only_folds=[1], normalize='speaker_mean'), features,
                     tmp_path, show_progress=False)
    assert "each of the 4 speakers has one label" in caplog.text and '--normalize none' in caplog.text


def test_a_recipe_on_another_model_or_other_features_is_noted(tmp_path, caplog):
    from tim_zoo.train.recipes import recipe_notes
    research = dict(order=3, level='none', mean_signal_length=96000)
    assert recipe_notes('at_deltatim_v2.modma', 'at_deltatim_v2', research) == []
    assert recipe_notes('seed.emodb', 'tim', dict(order=1, level='peak', mean_signal_length=44100)) == []
    assert recipe_notes(None, 'timnet', {}) == []
    notes = recipe_notes('at_tim.modma_gmm', 'at_deltatim_v2', dict(research, order=1, level='peak'))
    assert notes[0] == 'recipe at_tim.modma_gmm was set for at_tim; this run trains at_deltatim_v2 with its settings'
    assert 'order 1 (the recipe\'s 3), level peak (the recipe\'s none)' in notes[1]
    assert 'tim-zoo extract --order 3 --level none --mean-signal-length 96000' in notes[1]
    features = _features()
    features.settings = dict(features.settings, order=1, level='peak')
    with caplog.at_level('WARNING', logger='tim_zoo.train'):
        run_training(TrainConfig.from_recipe('at_deltatim_v2.modma', model='timnet', model_args=dict(TINY), epochs=1,
                                             protocol='kfold', folds=3, only_folds=[1]),
                     features, tmp_path, show_progress=False)
    assert 'was set for at_deltatim_v2; this run trains timnet' in caplog.text and 'these features differ' in caplog.text
    notes = json.loads((tmp_path / 'metrics.json').read_text())['notes']
    assert len([n for n in notes if n.startswith('recipe at_deltatim_v2.modma')]) == 2
    assert len(notes) == 3 and 'did not learn' in notes[2]              # one epoch: it learned nothing, and says so


def test_utterance_names_must_match_the_samples(tmp_path):
    from tim_zoo.train import train_split
    features = _features(n=12)
    split = make_splits('kfold', 12, folds=3, seed=0)[0]
    with pytest.raises(ConfigurationError, match='names: 5 utterance names for 12 samples'):
        train_split(lambda: tim_zoo.create_model('timnet', num_classes=3, **TINY), torch.as_tensor(features.x),
                    torch.as_tensor(features.y), split, 1, 3, _cfg(epochs=1), tmp_path, names=['a'] * 5,
                    show_progress=False)


def test_holdout_is_seeded_80_10_10():
    a, b = make_splits('holdout', 200, seed=34)[0], make_splits('holdout', 200, seed=34)[0]
    assert (len(a.train), len(a.val), len(a.test)) == (160, 20, 20)
    np.testing.assert_array_equal(a.test, b.test)
    assert len(set(a.train) | set(a.val) | set(a.test)) == 200


# --- runs --------------------------------------------------------------------------------------------

def test_run_writes_every_output_and_reports_the_chosen_checkpoint(tmp_path):
    features = _features()
    run_training(_cfg(frame_mask=0.1, grad_clip=1.0), features, tmp_path, show_progress=False)
    for name in ('config.json', 'metrics.json', 'curves.png', 'confusion.png', 'train.log'):
        assert (tmp_path / name).is_file(), name
    metrics = json.loads((tmp_path / 'metrics.json').read_text())
    assert len(metrics['folds']) == 3
    assert math.isclose(metrics['war_mean'], np.mean([f['war'] for f in metrics['folds']]))
    assert np.array(metrics['pooled_confusion']).sum() == 60
    splits = make_splits('kfold', 60, folds=3, seed=34, val_fraction=0.1)
    for fold, split in zip(metrics['folds'], splits):
        result = json.loads((tmp_path / fold['split'] / 'result.json').read_text())
        val = [h['val_war'] for h in result['history']]
        assert fold['chosen_epoch'] == 1 + int(np.argmax(val))        # best validation epoch, first of ties
        model = tim_zoo.load_checkpoint(tmp_path / fold['split'] / 'best.safetensors').eval()
        assert model.label_names == ['c0', 'c1', 'c2']
        with torch.no_grad():
            pred = model(torch.as_tensor(features.x[split.test])).argmax(-1).numpy()
        assert math.isclose(war(features.y[split.test], pred), fold['war'])     # recomputed independently
        assert result['test'] == dict(utterances=[utterance_name(features.paths[i]) for i in split.test],
                                      label=features.y[split.test].tolist(), predicted=pred.tolist())
        assert 'test' not in fold                         # metrics.json stays a summary
        assert not (tmp_path / fold['split'] / 'state.pt').exists()
    unnamed = FeatureSet(features.x, features.y, features.label_names)
    run_training(_cfg(epochs=1, only_folds=[2]), unnamed, tmp_path / 'unnamed', show_progress=False)
    result = json.loads((tmp_path / 'unnamed' / 'fold2' / 'result.json').read_text())
    assert result['test']['utterances'] == splits[1].test.tolist()      # no file names: indices into the features


def test_training_learns_separable_classes(tmp_path):
    features = _features(n=90, shift=1.5)
    cfg = _cfg(model='tim', protocol='holdout', epochs=25, select='last', batch_size=16)
    summary = run_training(cfg, features, tmp_path, show_progress=False)
    assert summary['folds'][0]['chosen_epoch'] == 25
    assert summary['war_mean'] >= 0.8
    assert not any('did not learn' in n for n in summary['notes'])       # it learned: no failed-training note


def test_gmm_frame_selection_recipe_setting(tmp_path):
    pytest.importorskip('sklearn')
    features = _features(n=12, frames=30)
    cfg = _cfg(model='at_tim', model_args=dict(TINY, d_qkv=8, d_ff=16), protocol='holdout', epochs=1,
               gmm_select=10, gmm_fits=2, select='last')
    run_training(cfg, features, tmp_path, show_progress=False)
    model = tim_zoo.load_checkpoint(tmp_path / 'holdout' / 'last.safetensors')
    assert model.seq_len == 10
    assert {k: model.pretrained_cfg['feature_settings'][k] for k in ('gmm_select', 'gmm_fits', 'gmm_seed')} == \
        dict(gmm_select=10, gmm_fits=2, gmm_seed=34)         # so that scoring and predicting select as training did
    log = (tmp_path / 'train.log').read_text()
    assert 'GMM frame selection: 10 of each utterance\'s 30 frames (2 fits, seed 34)' in log
    assert 'fewer distinct frames' not in log
    cfg = _cfg(model='at_tim', model_args=dict(TINY, d_qkv=8, d_ff=16), protocol='holdout', epochs=1,
               gmm_select=40, gmm_fits=2, select='last')
    run_training(cfg, features, tmp_path / 'short', show_progress=False)
    assert '12 of 12 utterances have fewer distinct frames than 40' in (tmp_path / 'short' / 'train.log').read_text()


def test_interrupted_run_resumes_to_the_same_result(tmp_path):
    features = _features()
    cfg = _cfg(epochs=4, frame_mask=0.2, only_folds=[1, 2])
    full = run_training(cfg, features, tmp_path / 'full', show_progress=False)

    def stop(epoch, record, calls=[]):
        calls.append(epoch)
        if len(calls) == 6:                              # fold 2, after its second epoch
            raise StopTraining
    with pytest.raises(StopTraining):
        run_training(cfg, features, tmp_path / 'cut', show_progress=False, on_epoch_end=stop)
    assert (tmp_path / 'cut' / 'fold2' / 'state.pt').exists() and not (tmp_path / 'cut' / 'metrics.json').exists()
    with pytest.raises(ConfigurationError, match='already holds a run'):
        run_training(cfg, features, tmp_path / 'cut', show_progress=False)
    seen = []
    resumed = run_training(None, features, tmp_path / 'cut', resume=True, show_progress=False,
                           on_epoch_end=lambda e, r: seen.append(e))
    assert seen == [3, 4]                                # no epoch lost or repeated
    assert resumed['folds'] == full['folds']
    for fold in ('fold1', 'fold2'):
        a = tim_zoo.load_checkpoint(tmp_path / 'full' / fold / 'last.safetensors').state_dict()
        b = tim_zoo.load_checkpoint(tmp_path / 'cut' / fold / 'last.safetensors').state_dict()
        assert all(torch.equal(a[k], b[k]) for k in a)


def test_state_is_saved_on_first_last_stopped_and_improved_epochs_and_every_interval(tmp_path, monkeypatch):
    """state.pt is not rewritten every epoch (that copies everything off a GPU): after a session's first epoch, a
    new validation choice, the last epoch, a stop, and STATE_EVERY_S apart; a resume then repeats no epoch."""
    from tim_zoo.train import engine
    saved = []
    original = engine.SplitTrainer.save_state

    def counting(self):
        saved.append(len(self.history))
        original(self)
    monkeypatch.setattr(engine.SplitTrainer, 'save_state', counting)
    monkeypatch.setattr(engine, 'STATE_EVERY_S', 1e9)
    features = _features()
    cfg = _cfg(epochs=6, select='last', val_fraction=0.0, only_folds=[1])
    run_training(cfg, features, tmp_path / 'last', show_progress=False)
    assert saved == [1, 6]
    saved.clear()

    def stop(epoch, record):
        if epoch == 4:
            torch.rand(5)                              # a callback's random draws do not move the saved state
            raise StopTraining
    with pytest.raises(StopTraining):
        run_training(cfg, features, tmp_path / 'cut', show_progress=False, on_epoch_end=stop)
    assert saved == [1, 4]
    seen = []
    run_training(None, features, tmp_path / 'cut', resume=True, show_progress=False,
                 on_epoch_end=lambda e, r: seen.append(e))
    assert seen == [5, 6]
    a, _ = tim_zoo.weights.read_checkpoint(tmp_path / 'last' / 'fold1' / 'last.safetensors')
    b, _ = tim_zoo.weights.read_checkpoint(tmp_path / 'cut' / 'fold1' / 'last.safetensors')
    assert all(torch.equal(a[k], b[k]) for k in a)
    saved.clear()
    run = run_training(_cfg(epochs=6, only_folds=[1]), features, tmp_path / 'val', show_progress=False)
    history = json.loads((tmp_path / 'val' / 'fold1' / 'result.json').read_text())['history']
    best, best_loss, improved = -1.0, float('inf'), []
    for h in history:                                  # the epochs whose validation accuracy became the choice
        if h['val_war'] > best or (h['val_war'] == best and h['val_loss'] < best_loss):
            best, best_loss = h['val_war'], h['val_loss']
            improved.append(h['epoch'])
    assert saved == sorted(set([1, 6] + improved))
    assert run['folds'][0]['chosen_epoch'] == improved[-1]
    monkeypatch.setattr(engine, 'STATE_EVERY_S', 0.0)
    saved.clear()
    run_training(cfg, features, tmp_path / 'every', show_progress=False)
    assert saved == [1, 2, 3, 4, 5, 6]


def test_adam_runs_fused_when_every_parameter_is_on_cuda():
    from types import SimpleNamespace
    from tim_zoo.train.optim import build_optimizer, fused_adam
    cuda, cpu = SimpleNamespace(is_cuda=True), SimpleNamespace(is_cuda=False)
    assert fused_adam([dict(params=[cuda, cuda])]) and not fused_adam([dict(params=[cuda]), dict(params=[cpu])])
    model = tim_zoo.create_model('timnet', num_classes=3, **TINY)
    for name in ('adam', 'adamw'):
        optimizer = build_optimizer(model, _cfg(optimizer=name))
        assert not optimizer.defaults.get('fused')                        # the CPU keeps the default


def test_fine_tuning_freezes_and_scales_learning_rates(tmp_path):
    source = tim_zoo.create_model('timnet', num_classes=5, **TINY)
    tim_zoo.save_checkpoint(source, tmp_path / 'pre.safetensors')
    model = tim_zoo.create_model('timnet', num_classes=3, **TINY)
    groups = param_groups(model, 1e-3, {'tim.encoder.stack': 0.1})
    by_mult = {g['lr_mult']: g for g in groups}
    assert math.isclose(by_mult[0.1]['lr'], 1e-4) and all(n.startswith('tim.encoder.stack.') for n in by_mult[0.1]['names'])
    assert not any(n.startswith('tim.encoder.stack.') for n in by_mult[1.0]['names'])

    cfg = _cfg(init=str(tmp_path / 'pre.safetensors'), freeze=['tim.encoder'], lr_mult={'tim.weight_layer': 0.5},
               epochs=2, only_folds=[1])
    with pytest.warns(UserWarning, match='classifier has 5 classes, the model 3; loaded the body'):
        run_training(cfg, _features(), tmp_path / 'run', show_progress=False)
    tuned = tim_zoo.load_checkpoint(tmp_path / 'run' / 'fold1' / 'last.safetensors')
    for name, p in source.state_dict().items():
        if name.startswith('tim.encoder.'):                            # frozen: unchanged, BatchNorm statistics too
            assert torch.equal(tuned.state_dict()[name], p), name
    assert not torch.equal(tuned.tim.weight_layer.weight, source.tim.weight_layer.weight)
    history = json.loads((tmp_path / 'run' / 'fold1' / 'result.json').read_text())['history']
    base = [cfg.lr * (cfg.gamma ** (h['epoch'] // cfg.step_size) if cfg.scheduler == 'step' else 1) for h in history]
    assert [h['lr'] for h in history] == pytest.approx(base)    # the base rate, not the first group's scaled one
    frozen_by_rate = _cfg(lr_mult={'tim.encoder': 0.0}, epochs=1, only_folds=[1])    # the first group: rate 0
    run_training(frozen_by_rate, _features(), tmp_path / 'zero', show_progress=False)
    assert json.loads((tmp_path / 'zero' / 'fold1' / 'result.json').read_text())['history'][0]['lr'] == \
        pytest.approx(frozen_by_rate.lr)
    with pytest.raises(ConfigurationError, match='matches no parameter of the model. Its top-level modules: head, tim'):
        run_training(_cfg(freeze=['nothing.here']), _features(), tmp_path / 'bad', show_progress=False)
    with pytest.raises(ConfigurationError, match="'tim.encoder.stme' matches no parameter of the model; did you mean "
                                                 "tim.encoder.stem"):
        run_training(_cfg(lr_mult={'tim.encoder.stme': 0.1}), _features(), tmp_path / 'bad', show_progress=False)


def test_initial_weights_may_be_a_pretrained_tag(tmp_path, monkeypatch):
    """`--init` takes a pretrained tag (or a model name: its default tag) as create_model does: the shipped file,
    loaded with its training record; a tag whose file is absent says what create_model says."""
    from tim_zoo.pretrained import DEFAULT_CHECKPOINT
    from tim_zoo.train.init_file import init_weight_file
    assert init_weight_file('timnet') == init_weight_file('timnet.tim_zoo_emodb') == DEFAULT_CHECKPOINT
    shipped = init_weight_file('tim.tim_zoo_emodb')
    assert shipped.is_file() and shipped.parent == DEFAULT_CHECKPOINT.parent
    features = _features(frames=87)
    features.label_names = ['calm', 'tense', 'other']
    with pytest.warns(UserWarning, match='none of these labels .* loaded the body and kept a freshly initialised'):
        run_training(_cfg(model='tim', model_args={}, init='tim.tim_zoo_emodb', epochs=1, only_folds=[1]),
                     features, tmp_path / 'run', show_progress=False)
    record = tim_zoo.load_checkpoint(tmp_path / 'run' / 'fold1' / 'last.safetensors').pretrained_cfg['trained_on']
    from tim_zoo.train.protocols import training_records
    assert 'emodb' in {r['corpus'] for r in training_records(record)}    # it heard what the tag's weights heard
    assert 'initial weights tim.tim_zoo_emodb: the body loaded, a fresh classifier' in \
        (tmp_path / 'run' / 'train.log').read_text()
    features.label_names = ['sad', 'angry', 'calm']     # two the tag knows: their rows start trained
    with pytest.warns(UserWarning, match='kept the rows of sad, angry, matched by name, and started calm fresh'):
        run_training(_cfg(model='tim', model_args={}, init='tim.tim_zoo_emodb', epochs=1, only_folds=[1]),
                     features, tmp_path / 'some', show_progress=False)
    assert 'the body loaded, a fresh classifier' not in (tmp_path / 'some' / 'train.log').read_text()
    assert "classifier was trained on ['angry', 'boredom', 'disgust', 'fear', 'happy', 'neutral', 'sad']; kept the " \
        'rows of sad, angry' in (tmp_path / 'some' / 'train.log').read_text()
    assert 'the initial weights trained on features with mean_signal_length 44100; these have mean_signal_length ' \
        '1000: the body starts on inputs unlike' in (tmp_path / 'some' / 'train.log').read_text()
    from tim_zoo.train.initial_weights import init_settings_note
    tag = tim_zoo.create_model('tim.tim_zoo_emodb', pretrained=True)
    same = dataclasses.replace(features, settings=dict(tag.pretrained_cfg['feature_settings']))
    assert init_settings_note(tag, same) == ''
    assert init_settings_note(tag, dataclasses.replace(same, settings=dict(same.settings, level='none', order=3))) \
        .startswith('the initial weights trained on features with order 1, level peak; these have order 3, level none')
    with pytest.raises(ConfigurationError, match=r'no weight file at nope.safetensors \(--init\), nor a pretrained '
                                                 r'tag of that name'):
        init_weight_file('nope.safetensors')
    monkeypatch.setenv('TIM_ZOO_HOME', str(tmp_path))
    with pytest.raises(tim_zoo.WeightsNotFoundError, match='--model set_official --recipe transformer.emodb'):
        init_weight_file('set_official')


def test_a_run_whose_splits_learned_nothing_says_so(tmp_path):
    """A split whose model answers its training utterances no better than their most common class gets a note (its
    test figure measures a failed training); a split that learned gets none."""
    from tim_zoo.train.report import unfitted_note
    from tim_zoo.train.protocols import make_splits
    y = np.array([0] * 8 + [1] * 4)
    splits = {s.name: s for s in make_splits('kfold', 12, folds=3, seed=0, val_fraction=0.0, labels=y)}
    history = lambda acc: dict(history=[dict(train_war=0.2), dict(train_war=acc)])     # noqa: E731
    results = [dict(split='fold1', **history(0.7)), dict(split='fold2', **history(0.99)), dict(split='fold3')]
    share = np.bincount(y[splits['fold1'].train]).max() / len(splits['fold1'].train)
    assert 0.7 <= share + 0.05
    note = unfitted_note(results, y, splits, repeat=2)
    assert note.startswith('1 of 3 splits of repeat 2 did not learn their own training utterances beyond answering '
                           f'the most common class (training accuracy at the epoch kept: fold1 70 %, its most common '
                           f'class {100 * share:.0f} %)')
    assert unfitted_note(results[1:], y, splits) == ''
    best = dict(split='fold2', chosen_epoch=1, history=[dict(train_war=0.2), dict(train_war=0.99)])
    assert unfitted_note([best], y, splits).startswith('1 of 1 splits did not learn')   # the epoch kept is the first
    summary = run_training(_cfg(lr=1e-9, epochs=1, only_folds=[1]), _features(shift=0.0), tmp_path / 'none',
                           show_progress=False)
    assert any('did not learn their own training utterances' in n for n in summary['notes'])


def test_initial_weights_choose_the_model_no_one_names(tmp_path):
    """`--init` without `--model` trains the model the weights were saved from; a recipe's model or the caller's
    wins (a mismatch is then refused with the flags), and weights that record no model leave the default."""
    from tim_zoo.train.config import DEFAULT_MODEL
    assert TrainConfig(init='at_tim.tim_zoo_emodb').model == 'at_tim'
    assert TrainConfig.from_recipe('seed.emodb', init='multitim').model == 'multitim'     # a name: its default tag
    assert TrainConfig.from_recipe('timnet.paper', init='at_tim').model == 'timnet'       # the recipe names one
    assert TrainConfig(model='tim', init='at_tim').model == 'tim'
    assert TrainConfig().model == DEFAULT_MODEL == 'timnet'
    bare = tmp_path / 'bare.safetensors'
    tim_zoo.save_checkpoint(tim_zoo.create_model('tim'), bare)
    meta = tim_zoo.weights.read_checkpoint(bare, verify=False)[1]
    assert meta['architecture'] == 'tim' and TrainConfig(init=str(bare)).model == 'tim'
    from safetensors.torch import save_file
    save_file(tim_zoo.create_model('tim').state_dict(), str(tmp_path / 'state.safetensors'))
    assert TrainConfig(init=str(tmp_path / 'state.safetensors')).model == 'timnet'        # it records no model
    out, features = tmp_path / 'run', tmp_path / 'f.npz'
    FeatureSet.save(_features(frames=87), features)
    with pytest.warns(UserWarning, match='kept a freshly initialised classifier'):
        assert cli_main(['train', '--features', str(features), '--init', 'tim.tim_zoo_emodb', '--epochs', '1',
                         '--protocol', 'kfold', '--folds', '3', '--fold', '1', '--out', str(out), '--quiet']) == 0
    assert json.loads((out / 'config.json').read_text())['model'] == 'tim'


def test_a_corpus_run_from_initial_weights_extracts_its_features_as_they_were(tmp_path, speech_like):
    """`train --corpus ... --init TAG`: the length, level, MFCC order and count the weights record are the
    extraction's where not given, and the run's source says so; a given one is kept, and the note names the flags."""
    sf = pytest.importorskip('soundfile')
    from tim_zoo.train.records import training_features
    for k, label in enumerate(['calm', 'calm', 'tense', 'tense']):
        (tmp_path / 'data' / label).mkdir(parents=True, exist_ok=True)
        sf.write(tmp_path / 'data' / label / f'{k}.wav', speech_like(seconds=1.0, seed=k), 22050)
    common = dict(corpus='folders', data_root=tmp_path / 'data', show_progress=False)
    tag = tim_zoo.create_model('tim.tim_zoo_emodb', pretrained=True).pretrained_cfg['feature_settings']
    features, source = training_features(tmp_path / 'a', init='tim.tim_zoo_emodb', **common)
    assert {k: features.settings[k] for k in ('mean_signal_length', 'level', 'order', 'n_mfcc')} == \
        {k: tag[k] for k in ('mean_signal_length', 'level', 'order', 'n_mfcc')} and tag['mean_signal_length'] == 44100
    assert source['settings_from'] == dict(init='tim.tim_zoo_emodb', mean_signal_length=44100, level='peak', order=1,
                                           n_mfcc=39)
    features, source = training_features(tmp_path / 'b', init='tim.tim_zoo_emodb', mean_signal_length=22050, **common)
    assert features.settings['mean_signal_length'] == 22050 and 'mean_signal_length' not in source['settings_from']
    from tim_zoo.train.initial_weights import init_settings_note
    assert init_settings_note(tim_zoo.create_model('tim.tim_zoo_emodb', pretrained=True), features).endswith(
        'were: tim-zoo extract --mean-signal-length 44100; tim-zoo train --corpus --init takes the settings not given '
        'from the weights)')
    features, source = training_features(tmp_path / 'c', **common)          # no initial weights: the corpus's own
    assert features.settings['mean_signal_length'] == 96000 and 'settings_from' not in source
    out = tmp_path / 'cli'
    flags = ['--corpus', 'folders', '--data-root', str(tmp_path / 'data'), '--protocol', 'all', '--out', str(out),
             '--quiet']
    with pytest.warns(UserWarning, match='kept a freshly initialised classifier'):
        assert cli_main(['train', *flags, '--init', 'tim.tim_zoo_emodb', '--epochs', '1']) == 0
    assert cli_main(['train', *flags, '--resume']) == 0      # the stored --init's settings: the features it cached
    from tim_zoo.train.init_file import recorded_feature_settings
    old = tmp_path / 'old.safetensors'                      # written before levels were recorded: as read
    tim_zoo.save_checkpoint(tim_zoo.create_model('tim'), old, feature_settings=dict(mean_signal_length=44100))
    assert recorded_feature_settings(str(old)) == dict(mean_signal_length=44100, level='none')
    release = SHARED / 'weights' / 'timnet_official' / 'EMODB_46' / '10-fold_weights_best_1.hdf5'
    if release.is_file():                                   # a published file outside its folder: known by its hash
        shutil.copy(release, tmp_path / 'renamed.hdf5')
        assert recorded_feature_settings(str(tmp_path / 'renamed.hdf5')) == dict(mean_signal_length=96000,
                                                                                level='none', order=1)


@pytest.mark.parametrize('protocol, folds', [('kfold', 3), ('loso', None), ('all', None)])
def test_a_runs_training_record_counts_folds_only_under_kfold(protocol, folds):
    from tim_zoo.train.run import _trained_on
    features = _features()
    features.settings = dict(features.settings, corpus='manifest')
    cfg = _cfg(protocol=protocol, **({} if protocol == 'kfold' else dict(folds=None)))
    assert _trained_on(cfg, features)['folds'] == folds


def test_a_frozen_batch_norm_stays_in_eval_mode():
    from tim_zoo.train import freeze, freeze_batch_norm
    model = tim_zoo.create_model('tim', num_classes=3, **TINY)
    freeze(model, ['tim.encoder.stack.blocks.0'])
    norms = {n: m for n, m in model.named_modules() if isinstance(m, torch.nn.modules.batchnorm._BatchNorm)}
    model.train()
    assert all(not m.training for n, m in norms.items() if n.startswith('tim.encoder.stack.blocks.0.'))
    assert all(m.training for n, m in norms.items() if not n.startswith('tim.encoder.stack.blocks.0.'))
    before = {k: v.clone() for k, v in model.state_dict().items() if 'blocks.0.' in k}
    model(torch.randn(4, 39, 20))
    assert all(torch.equal(model.state_dict()[k], v) for k, v in before.items())
    head = freeze_batch_norm(torch.nn.Sequential(torch.nn.Linear(3, 3), torch.nn.BatchNorm1d(3))).train()
    assert not head[1].training and head[0].training and not head[1].weight.requires_grad
    import copy
    import io
    buffer = io.BytesIO()
    torch.save(model, buffer)                           # a frozen model pickles and copies, and stays frozen
    buffer.seek(0)
    for again in (torch.load(buffer, weights_only=False), copy.deepcopy(model)):
        again.train()
        assert not again.tim.encoder.stack.blocks[0].convs[0].norm.training
    other = tim_zoo.create_model('tim', num_classes=3, **TINY)
    norm = other.tim.encoder.stack.blocks[1].convs[0].norm
    freeze(other, ['tim.encoder.stack.blocks.1.convs.0.norm.weight'])
    freeze(other, ['tim.encoder.stack.blocks.1.convs.0.norm.bias'])   # frozen over two calls: pinned too
    assert not other.train().tim.encoder.stack.blocks[1].convs[0].norm.training and norm is not None



def test_a_run_resumes_from_python_with_its_recorded_features_and_a_changed_device(tmp_path):
    from tim_zoo.train.records import resume_config, training_features
    _features().save(tmp_path / 'f.npz')
    features, source = training_features(tmp_path / 'out', features=tmp_path / 'f.npz')
    assert source == dict(features=str((tmp_path / 'f.npz').resolve())) and len(features) == 60
    with pytest.raises(ConfigurationError, match=r"mean_signal_length=8000 \(--mean-signal-length 8000\): the "
                                                 r"features in .*f.npz have 1000"):
        training_features(tmp_path / 'out', features=tmp_path / 'f.npz', mean_signal_length=8000)
    with pytest.raises(ConfigurationError, match='give a feature file'):
        training_features(tmp_path / 'out')
    with pytest.raises(ConfigurationError, match="unknown corpus 'emodbb' \\(did you mean emodb\\?\\)"):
        training_features(tmp_path / 'out', corpus='emodbb', data_root=tmp_path)
    assert not (tmp_path / 'out').exists()                                 # refused before anything is made
    assert resume_config(tmp_path / 'out') is None                          # nothing stored yet
    run_training(_cfg(epochs=1, only_folds=[1]), features, tmp_path / 'out', show_progress=False, source=source)
    # resuming: the recorded file, the stored settings with the changes given (None: not given)
    again, _ = training_features(tmp_path / 'out', resume=True)
    assert np.array_equal(again.x, features.x)
    cfg = resume_config(tmp_path / 'out', device='cpu', lr=None, model_args=dict(depth=3))
    assert cfg.device == 'cpu' and cfg.lr == _cfg().lr and cfg.model_args == dict(TINY, depth=3)
    with pytest.raises(ConfigurationError, match='was started with other settings.*depth'):
        run_training(cfg, again, tmp_path / 'out', resume=True, show_progress=False)

def test_cli_train_and_resume_errors(tmp_path, capsys):
    features = _features()
    features.save(tmp_path / 'f.npz')
    args = ['train', '--features', str(tmp_path / 'f.npz'), '--model', 'tim', '--model-arg', 'depth=2',
            '--model-arg', 'filters=8', '--epochs', '2', '--protocol', 'loso', '--fold', '1', '2',
            '--out', str(tmp_path / 'out'), '--quiet', '--threads', '1']
    assert cli_main(args) == 0
    out = capsys.readouterr().out
    assert 'speaker_s0' in out and 'mean WAR' in out
    cfg = json.loads((tmp_path / 'out' / 'config.json').read_text())
    assert cfg['model'] == 'tim' and cfg['protocol'] == 'loso' and cfg['model_args'] == {'depth': 2, 'filters': 8}
    assert cli_main(args) == 2                                       # usage errors
    assert 'already holds a run' in capsys.readouterr().err
    assert cli_main(['train', '--features', str(tmp_path / 'f.npz'), '--out', str(tmp_path / 'none'), '--resume']) == 2
    assert 'nothing to resume' in capsys.readouterr().err
    # --resume continues the run as started: other settings are refused and listed, the device may change
    metrics = (tmp_path / 'out' / 'metrics.json').read_text()
    assert cli_main(args + ['--resume', '--lr', '0.5', '--epochs', '3']) == 2
    err = capsys.readouterr().err
    assert 'was started with other settings' in err and 'epochs: run 2, now 3' in err and "lr: run 0.0004, now 0.5" in err
    assert cli_main(args + ['--resume', '--fold', '1']) == 2                              # which splits: the run's
    assert 'only_folds: run [1, 2], now [1]' in capsys.readouterr().err
    assert cli_main(args + ['--resume', '--device', 'cpu']) == 0                                # nothing left to do
    assert (tmp_path / 'out' / 'metrics.json').read_text() == metrics                           # the same summary
    # a flag given with --resume that the run would not use is refused; the stored settings are taken as they are
    assert cli_main(args + ['--resume', '--compile-mode', 'max-autotune']) == 2
    assert "settings this run would not use: compile_mode='max-autotune' (compile='auto' trains eagerly on cpu" in \
        capsys.readouterr().err
    stored = json.loads((tmp_path / 'out' / 'config.json').read_text())
    (tmp_path / 'out' / 'config.json').write_text(json.dumps(dict(stored, compile='on', compile_mode='max-autotune')))
    assert cli_main(args + ['--resume', '--compile', 'off']) == 0          # the documented way out of compiling
    (tmp_path / 'out' / 'config.json').write_text(json.dumps(stored))
    # the run records its features: --resume alone finds them; other features are refused, naming the first ones
    record = json.loads((tmp_path / 'out' / 'data.json').read_text())
    assert record['source'] == {'features': str((tmp_path / 'f.npz').resolve())} and record['samples'] == 60
    assert record['digest'] == features.digest()
    assert cli_main(['train', '--out', str(tmp_path / 'out'), '--resume', '--quiet']) == 0
    assert (tmp_path / 'out' / 'metrics.json').read_text() == metrics
    _features(seed=1).save(tmp_path / 'g.npz')
    assert cli_main(['train', '--out', str(tmp_path / 'out'), '--resume', '--features', str(tmp_path / 'g.npz')]) == 2
    err = capsys.readouterr().err
    assert 'was started on other features' in err and str((tmp_path / 'f.npz').resolve()) in err
    (tmp_path / 'out' / 'data.json').unlink()                   # a run from before the record: the data must be given
    assert cli_main(['train', '--out', str(tmp_path / 'out'), '--resume']) == 2
    assert 'does not record its features' in capsys.readouterr().err
    other = [a if a != str(tmp_path / 'out') else str(tmp_path / 'other') for a in args]
    assert cli_main(other + ['--fold', '99']) == 2
    assert re.search(r'--fold 99: the loso protocol has splits 1 to \d+ here', capsys.readouterr().err)
    assert cli_main(other + ['--model-arg', 'depth=0']) == 2                       # bad model arguments
    assert 'depth must be >= 1' in capsys.readouterr().err and not (tmp_path / 'other').exists()
    # a start that ended before its first epoch holds no run: starting again is allowed
    (tmp_path / 'early').mkdir()
    (tmp_path / 'early' / 'config.json').write_text((tmp_path / 'out' / 'config.json').read_text())
    early = [a if a != str(tmp_path / 'out') else str(tmp_path / 'early') for a in args]
    assert cli_main(early) == 0 and (tmp_path / 'early' / 'metrics.json').is_file()


def test_an_interrupted_cli_run_says_how_to_continue(tmp_path, capsys, monkeypatch):
    _features().save(tmp_path / 'f.npz')

    def interrupted_after_an_epoch(cfg, features, out_dir, **kw):
        (Path(out_dir) / 'fold1').mkdir(parents=True)
        (Path(out_dir) / 'fold1' / 'state.pt').write_bytes(b'')
        raise KeyboardInterrupt

    monkeypatch.setattr(tim_zoo.cli.train, 'run_training', interrupted_after_an_epoch)
    args = ['train', '--features', str(tmp_path / 'f.npz'), '--quiet', '--out']
    assert cli_main(args + [str(tmp_path / 'run')]) == 130
    assert f'interrupted; continue with: tim-zoo train --resume --out {tmp_path / "run"}' in capsys.readouterr().err
    monkeypatch.setattr(tim_zoo.cli.train, 'run_training', lambda *a, **kw: (_ for _ in ()).throw(KeyboardInterrupt))
    assert cli_main(args + [str(tmp_path / 'early')]) == 130
    assert 'interrupted before the first epoch ended; nothing to resume' in capsys.readouterr().err


@pytest.mark.parametrize('compiled', [False, pytest.param(True, marks=pytest.mark.skipif(
    not HAS_CXX, reason='torch.compile on the CPU needs a C++ compiler'))])
@pytest.mark.slow
def test_distributed_run_on_two_cpu_processes_matches_one_process(tmp_path, compiled):
    """torchrun with 2 gloo processes: each takes half of every batch; the result equals one process.
    LayerNorm and no dropout, so nothing depends on per-process batch statistics or random streams. Compiled
    (`--compile on`, each process compiling the DDP-wrapped model), the same up to rounding."""
    import subprocess
    import sys

    _features().save(tmp_path / 'f.npz')
    args = ['-m', 'tim_zoo.train', '--features', str(tmp_path / 'f.npz'), '--model', 'timnet', '--model-arg', 'depth=2',
            '--model-arg', 'filters=8', '--model-arg', 'norm_layer=layernorm', '--dropout', '0', '--epochs', '3',
            '--lr', '3e-3', '--protocol', 'kfold', '--folds', '3', '--fold', '1', '2', '--batch-size', '16', '--quiet',
            '--threads', '1']
    single = subprocess.run([sys.executable, *args, '--out', str(tmp_path / 'one')], capture_output=True, text=True,
                            timeout=300)
    assert single.returncode == 0, single.stderr
    ddp = subprocess.run([sys.executable, '-m', 'torch.distributed.run', '--nproc_per_node', '2', '--master_port',
                          '29532' if compiled else '29531', *args, '--out', str(tmp_path / 'two'),
                          '--compile', 'on' if compiled else 'auto'], capture_output=True, text=True, timeout=600)
    assert ddp.returncode == 0, ddp.stderr[-3000:]
    tolerance = 1e-4 if compiled else 1e-5
    one = json.loads((tmp_path / 'one' / 'metrics.json').read_text())
    two = json.loads((tmp_path / 'two' / 'metrics.json').read_text())
    assert two['world_size'] == 2 and one['world_size'] == 1
    assert [f['confusion'] for f in two['folds']] == [f['confusion'] for f in one['folds']]
    assert [f['chosen_epoch'] for f in two['folds']] == [f['chosen_epoch'] for f in one['folds']]
    for fold in ('fold1', 'fold2'):
        h1 = json.loads((tmp_path / 'one' / fold / 'result.json').read_text())['history']
        h2 = json.loads((tmp_path / 'two' / fold / 'result.json').read_text())['history']
        np.testing.assert_allclose([h['train_loss'] for h in h2], [h['train_loss'] for h in h1], rtol=tolerance)
        assert json.loads((tmp_path / 'two' / fold / 'result.json').read_text())['compiled'] is compiled
        a = tim_zoo.load_checkpoint(tmp_path / 'one' / fold / 'last.safetensors').state_dict()
        b = tim_zoo.load_checkpoint(tmp_path / 'two' / fold / 'last.safetensors').state_dict()
        for k in a:
            torch.testing.assert_close(b[k], a[k], atol=tolerance, rtol=tolerance)


def test_a_data_error_on_rank_0_stops_every_rank(tmp_path):
    """Under torchrun, rank 0 loads the features first; when that fails, the other ranks stop with its message
    instead of waiting for it until gloo's timeout."""
    import subprocess
    import sys

    (tmp_path / 'broken.npz').write_bytes(b'not an archive')
    run = subprocess.run([sys.executable, '-m', 'torch.distributed.run', '--nproc_per_node', '2', '--master_port',
                          '29533', '-m', 'tim_zoo.train', '--features', str(tmp_path / 'broken.npz'), '--epochs', '1',
                          '--quiet', '--threads', '1', '--out', str(tmp_path / 'run')],
                         capture_output=True, text=True, timeout=240)
    assert run.returncode != 0
    assert 'rank 0 could not load the features, so rank 1 stops too' in run.stderr, run.stderr[-3000:]


@pytest.mark.slow
def test_sigkill_mid_epoch_then_resume_gives_the_uninterrupted_result(tmp_path):
    """A training process killed with SIGKILL part-way through an epoch resumes from its last completed
    epoch and ends with the metrics of a run that was never interrupted."""
    import signal
    import subprocess
    import sys
    import time

    _features().save(tmp_path / 'f.npz')
    args = [sys.executable, '-m', 'tim_zoo.train', '--features', str(tmp_path / 'f.npz'), '--model', 'tim',
            '--model-arg', 'depth=3', '--model-arg', 'filters=8', '--epochs', '6', '--batch-size', '2',
            '--protocol', 'holdout', '--frame-mask', '0.1', '--quiet', '--threads', '1']
    done = subprocess.run(args + ['--out', str(tmp_path / 'whole')], capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr

    cut = tmp_path / 'cut'
    proc = subprocess.Popen(args + ['--out', str(cut)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    log = cut / 'train.log'
    deadline = time.time() + 120
    while time.time() < deadline and not (log.exists() and 'holdout epoch 2:' in log.read_text()):
        time.sleep(0.02)
    time.sleep(0.05)                                    # into epoch 3: 24 steps of a few ms each
    proc.send_signal(signal.SIGKILL)
    proc.wait(timeout=60)
    assert proc.returncode == -signal.SIGKILL
    assert not (cut / 'metrics.json').exists()

    resumed = subprocess.run(args + ['--out', str(cut), '--resume'], capture_output=True, text=True, timeout=300)
    assert resumed.returncode == 0, resumed.stderr
    assert 'resuming after epoch' in log.read_text()
    whole = json.loads((tmp_path / 'whole' / 'metrics.json').read_text())
    again = json.loads((cut / 'metrics.json').read_text())
    assert again['folds'] == whole['folds']
    history = json.loads((cut / 'holdout' / 'result.json').read_text())['history']
    assert [h['epoch'] for h in history] == [1, 2, 3, 4, 5, 6]            # no epoch lost or repeated
    reference = json.loads((tmp_path / 'whole' / 'holdout' / 'result.json').read_text())['history']
    assert history == reference


def test_runs_split_over_processes_collect_into_the_docs_results_of_one_run(tmp_path):
    collect_run, make_tables = benchmark_script('collect_run'), benchmark_script('make_tables')
    features = _features(speakers=3)
    cfg = dict(protocol='loso', epochs=2, val_fraction=0.5)
    whole = run_training(_cfg(**cfg), features, tmp_path / 'whole', show_progress=False)
    for i in (3, 1, 2):                    # how a part ran (here compile, eager either way on a CPU) may differ
        run_training(_cfg(**cfg, only_folds=[i], compile='off' if i == 3 else 'auto'), features, tmp_path / f'part{i}',
                     show_progress=False)
    run = collect_run.collect([tmp_path / f'part{i}' for i in (3, 1, 2)], 'test machine', '0.0')
    assert run['folds'] == whole['folds']                   # same splits, same order, same metrics
    assert 'history' not in run['folds'][0] and 'only_folds' not in run['config']
    table = make_tables.render_results(run)
    assert table.count('| speaker_s') == 3 and 'held out whole' in table and 'test machine' in table
    with pytest.raises(SystemExit, match='appears twice'):
        collect_run.collect([tmp_path / 'part1', tmp_path / 'whole'], 'x', '0.0')
    run_training(_cfg(**dict(cfg, lr=1e-3), only_folds=[1]), features, tmp_path / 'other', show_progress=False)
    with pytest.raises(SystemExit, match='differs .* in lr'):
        collect_run.collect([tmp_path / 'part2', tmp_path / 'other'], 'x', '0.0')
    last = dict(run, config=dict(run['config'], select='last', val_fraction=0.0))
    assert 'the last epoch' in make_tables.render_results(last)
    normalised = dict(run, config=dict(run['config'], normalize='speaker_mean'))
    summary = make_tables.render_summary({'plain': run, 'normalised': normalised}).splitlines()
    assert len(summary) == 4 and summary[2].startswith('| `plain`') and '--normalize speaker_mean' in summary[3]
    wars = np.array([f['war'] for f in run['folds']]) * 100
    assert f'| {wars.mean():.2f} ({wars.std():.2f}) |' in summary[2]


# --- per-speaker normalisation ---------------------------------------------------------------------

def test_speaker_normalisation_removes_each_speakers_offset_and_keeps_the_rest():
    from tim_zoo.data import normalize_by_speaker
    rng = np.random.default_rng(3)
    x = rng.normal(size=(12, 5, 7)).astype(np.float32)
    speakers = ['a', 'b', 'c'] * 4
    centred = normalize_by_speaker(x, speakers, 'speaker_mean')
    scaled = normalize_by_speaker(x, speakers, 'speaker')
    for name in 'abc':
        rows = np.array(speakers) == name
        np.testing.assert_allclose(centred[rows].mean(axis=(0, 2)), 0, atol=1e-5)
        np.testing.assert_allclose(scaled[rows].std(axis=(0, 2)), 1, atol=1e-3)
        # within a speaker the differences between frames are untouched by speaker_mean
        np.testing.assert_allclose(np.diff(centred[rows], axis=2), np.diff(x[rows], axis=2), atol=1e-5)
    # a per-speaker, per-coefficient offset and (for "speaker") gain is what they remove
    gain = np.where(np.array(speakers) == 'b', 3.0, 1.0)[:, None, None]
    offset = np.array([{'a': 0, 'b': 5, 'c': -40}[s] for s in speakers])[:, None, None] * rng.normal(size=(1, 5, 1))
    np.testing.assert_allclose(normalize_by_speaker(x + offset, speakers, 'speaker_mean'), centred, atol=1e-4)
    np.testing.assert_allclose(normalize_by_speaker(x * gain + offset, speakers, 'speaker'), scaled, atol=1e-4)
    np.testing.assert_array_equal(normalize_by_speaker(x, speakers, 'none'), x)
    with pytest.raises(DatasetError, match='a speaker for each of the 12 utterances, got 11'):
        normalize_by_speaker(x, speakers[:11])
    with pytest.raises(DatasetError, match='empty'):
        normalize_by_speaker(x, [''] + speakers[1:])
    with pytest.raises(ConfigurationError, match="normalize must be one of"):
        _cfg(normalize='utterance')


def test_training_on_speaker_normalised_features_records_it_in_the_checkpoint(tmp_path):
    from tim_zoo.data import normalize_by_speaker
    features = _features(shift=1.5)
    offsets = np.array([10.0 * int(s[1:]) for s in features.speakers], dtype=np.float32)[:, None, None]
    shifted = FeatureSet(features.x + offsets, features.y, features.label_names, features.paths, features.speakers,
                         features.settings)
    summary = run_training(_cfg(protocol='loso', normalize='speaker_mean', epochs=2), shifted, tmp_path,
                           show_progress=False)
    x = normalize_by_speaker(shifted.x, shifted.speakers, 'speaker_mean')
    for fold, split in zip(summary['folds'], make_splits('loso', 60, features.speakers, seed=34, val_fraction=0.1)):
        model = tim_zoo.load_checkpoint(tmp_path / fold['split'] / 'best.safetensors').eval()
        assert model.pretrained_cfg['feature_settings']['normalize'] == 'speaker_mean'
        with torch.no_grad():
            pred = model(torch.as_tensor(x[split.test])).argmax(-1).numpy()
        assert math.isclose(war(features.y[split.test], pred), fold['war'])
    assert json.loads((tmp_path / 'config.json').read_text())['normalize'] == 'speaker_mean'


# --- checkpoint choice on ties, repeats -----------------------------------------------------------------------

def test_ties_in_validation_accuracy_go_to_the_lower_validation_loss():
    from tim_zoo.train.engine import better_checkpoint
    assert better_checkpoint(0.9, 0.50, 0.85, 0.10)          # higher accuracy wins whatever the loss
    assert better_checkpoint(0.9, 0.40, 0.90, 0.50)          # a tie: the lower loss wins, even later
    assert not better_checkpoint(0.9, 0.60, 0.90, 0.50)
    assert not better_checkpoint(0.8, 0.01, 0.90, 0.50)


def test_chosen_epoch_is_the_best_validation_accuracy_then_loss(tmp_path):
    cfg = _cfg(epochs=6, folds=3, only_folds=[1], val_fraction=0.3, select='val')
    summary = run_training(cfg, _features(), tmp_path / 'run', show_progress=False)
    history = json.loads((tmp_path / 'run' / 'fold1' / 'result.json').read_text())['history']
    best = max(history, key=lambda h: (h['val_war'], -h['val_loss']))
    assert summary['folds'][0]['chosen_epoch'] == best['epoch']
    assert all('val_loss' in h and h['val_loss'] > 0 for h in history)


def test_repeats_train_the_same_splits_with_other_seeds_and_report_the_spread(tmp_path):
    feats = _features()
    cfg = _cfg(epochs=2, folds=3, only_folds=[1, 2], repeats=3, seed=5)
    summary = run_training(cfg, feats, tmp_path / 'rep', show_progress=False)
    runs = summary['repeats']
    assert [r['seed'] for r in runs] == [5, 6, 7] and summary['num_repeats'] == 3
    for r in range(1, 4):
        for fold in ('fold1', 'fold2'):
            result = json.loads((tmp_path / 'rep' / f'repeat{r}' / fold / 'result.json').read_text())
            assert result['n_test'] == len(kfold_splits(60, 3, 5)[int(fold[-1]) - 1][1])    # the same splits
        assert (tmp_path / 'rep' / f'repeat{r}' / 'curves.png').is_file()
    means = [np.mean([json.loads((tmp_path / 'rep' / f'repeat{r}' / f / 'result.json').read_text())['war']
                      for f in ('fold1', 'fold2')]) for r in range(1, 4)]
    assert summary['war_mean'] == pytest.approx(np.mean(means)) and summary['war_std'] == pytest.approx(np.std(means, ddof=1))
    assert [f['split'] for f in summary['folds']] == ['fold1', 'fold2']
    # repeat 1 is the single run with the same seed; other repeats differ
    single = run_training(_cfg(epochs=2, folds=3, only_folds=[1, 2], seed=5), feats, tmp_path / 'one',
                          show_progress=False)
    one = json.loads((tmp_path / 'one' / 'fold1' / 'result.json').read_text())['history']
    rep1 = json.loads((tmp_path / 'rep' / 'repeat1' / 'fold1' / 'result.json').read_text())['history']
    rep2 = json.loads((tmp_path / 'rep' / 'repeat2' / 'fold1' / 'result.json').read_text())['history']
    assert one == rep1 and rep1 != rep2 and single['war_mean'] == runs[0]['war_mean']
    # resuming a finished repeated run reads every result again
    again = run_training(cfg, feats, tmp_path / 'rep', resume=True, show_progress=False)
    assert again['war_mean'] == summary['war_mean']
    # each trained split's last checkpoint, repeat by repeat (in the summary, not in metrics.json: a folder moves)
    assert summary['checkpoints'] == [str(tmp_path / 'rep' / f'repeat{r}' / f'fold{k}' / 'last.safetensors')
                                      for r in (1, 2, 3) for k in (1, 2)]
    assert all(Path(c).is_file() for c in summary['checkpoints']) and single['checkpoints'] == [
        str(tmp_path / 'one' / f'fold{k}' / 'last.safetensors') for k in (1, 2)]
    assert 'checkpoints' not in json.loads((tmp_path / 'rep' / 'metrics.json').read_text())
    with pytest.raises(ConfigurationError, match='repeats'):
        run_training(_cfg(epochs=2, folds=3, only_folds=[1, 2], repeats=2, seed=5), feats, tmp_path / 'rep',
                     resume=True, show_progress=False)
    with pytest.raises(ConfigurationError, match='repeats must be'):
        _cfg(repeats=0)
    with pytest.raises(ConfigurationError, match=r'only_repeats \[3\]: the run has repeats 1 to 2'):
        _cfg(repeats=2, only_repeats=[3])


def test_cli_trains_with_repeats_and_prints_the_spread(tmp_path, capsys):
    _features().save(tmp_path / 'f.npz')
    args = ['train', '--features', str(tmp_path / 'f.npz'), '--model-arg', 'depth=2', '--model-arg', 'filters=8',
            '--epochs', '1', '--repeats', '2', '--quiet', '--threads', '1']
    assert cli_main(args + ['--protocol', 'kfold', '--folds', '2', '--out', str(tmp_path / 'out')]) == 0
    out = capsys.readouterr().out
    metrics = json.loads((tmp_path / 'out' / 'metrics.json').read_text())
    assert f'mean WAR {100 * metrics["war_mean"]:.2f} (std {100 * metrics["war_std"]:.2f} over repeats)' in out
    assert 'fold1: WAR' in out and '2 repeats' in out
    assert json.loads((tmp_path / 'out' / 'config.json').read_text())['repeats'] == 2
    assert cli_main(args + ['--protocol', 'all', '--out', str(tmp_path / 'all')]) == 0
    assert str(tmp_path / 'all' / 'repeat2' / 'all' / 'last.safetensors') in capsys.readouterr().out


def test_repeated_run_split_over_processes_collects_into_mean_and_std_over_repeats(tmp_path):
    collect_run, make_tables = benchmark_script('collect_run'), benchmark_script('make_tables')
    features = _features()
    cfg = dict(epochs=2, folds=3, repeats=2, seed=3)
    whole = run_training(_cfg(**cfg), features, tmp_path / 'whole', show_progress=False)
    parts = {'part1': dict(only_folds=[1]), 'part2': dict(only_folds=[2, 3], only_repeats=[2]),
             'part3': dict(only_folds=[2, 3], only_repeats=[1])}          # by split and by repeat
    for name, part in parts.items():
        run_training(_cfg(**cfg, **part), features, tmp_path / name, show_progress=False)
    assert not (tmp_path / 'part2' / 'repeat1').exists() and (tmp_path / 'part2' / 'repeat2' / 'fold3').is_dir()
    for fold in ('fold2', 'fold3'):                    # a repeat run alone trains as it does in the whole run
        for r, name in ((1, 'part3'), (2, 'part2')):
            alone = json.loads((tmp_path / name / f'repeat{r}' / fold / 'result.json').read_text())
            assert alone == json.loads((tmp_path / 'whole' / f'repeat{r}' / fold / 'result.json').read_text())
    with pytest.raises(SystemExit, match='the run has 2 repeats but no tested splits of repeat 1 in these folders'):
        collect_run.collect([tmp_path / 'part2'], 'test machine', '0.0')
    run = collect_run.collect([tmp_path / name for name in ('part2', 'part3', 'part1')], 'test machine', '0.0')
    rs = run['repeat_summary']
    assert rs['num_repeats'] == 2 and rs['war_mean'] == pytest.approx(whole['war_mean'])
    assert rs['war_std'] == pytest.approx(whole['war_std'])
    per_repeat = [np.mean([f['war'] for f in r['folds']]) for r in run['repeats']]
    assert rs['war_std'] == pytest.approx(np.std(per_repeat, ddof=1))
    table = make_tables.render_results(run)
    assert 'over 2 repeats' in table and table.count('| fold') == 3
    summary = make_tables.render_summary({'rep': run})
    assert '3 x 2 repeats' in summary and f'{100 * rs["war_mean"]:.2f} ({100 * rs["war_std"]:.2f})' in summary


def test_splits_train_together_by_default_on_cuda_only(tmp_path, caplog, capsys):
    """batch_folds: "auto" batches timnet's splits on CUDA in one process and trains them one by one on a CPU
    (logged); booleans and configurations from before "auto" read as on/off."""
    from tim_zoo.train.run import _batching_obstacle
    build = lambda: tim_zoo.create_model('timnet', num_classes=3, **TINY)   # noqa: E731
    assert _batching_obstacle(_cfg(device='cuda'), [1, 2], build) == ''
    assert 'trains one by one on cpu' in _batching_obstacle(_cfg(), [1, 2], build)
    assert _batching_obstacle(_cfg(batch_folds='off', device='cuda'), [1, 2], build) == 'batch_folds=off'
    assert _batching_obstacle(_cfg(batch_folds=True), [1, 2], build) == ''
    frames = lambda: tim_zoo.create_model('timnet', num_classes=3, drop_mode='frame', **TINY)   # noqa: E731
    assert 'drop_mode="channel"' in _batching_obstacle(_cfg(batch_folds=True), [1, 2], frames)
    assert _cfg(batch_folds=False).batch_folds == 'off'
    stored = json.loads(_cfg().to_json())
    del stored['batch_folds']
    assert TrainConfig.from_json(json.dumps(stored)).batch_folds == 'off'     # a run from before: one by one
    with pytest.raises(ConfigurationError, match='batch_folds'):
        _cfg(batch_folds='sometimes')
    with caplog.at_level(logging.INFO, logger='tim_zoo.train'):
        run_training(_cfg(epochs=1, folds=2), _features(), tmp_path / 'cpu', show_progress=False)
    assert 'training the splits one by one: batch_folds=auto trains one by one on cpu' in caplog.text
    _features().save(tmp_path / 'f.npz')                # --batch-folds alone means on; --repeat picks repeats
    assert cli_main(['train', '--features', str(tmp_path / 'f.npz'), '--model-arg', 'depth=2', '--model-arg',
                     'filters=8', '--epochs', '1', '--protocol', 'kfold', '--folds', '2', '--repeats', '2', '--repeat', '2',
                     '--batch-folds',
                     '--quiet', '--threads', '1', '--out', str(tmp_path / 'cli')]) == 0
    stored = json.loads((tmp_path / 'cli' / 'config.json').read_text())
    assert stored['batch_folds'] == 'on' and stored['only_repeats'] == [2]
    assert sorted(p.name for p in (tmp_path / 'cli').glob('repeat*')) == ['repeat2']
    assert 'training 2 splits together' in (tmp_path / 'cli' / 'train.log').read_text()
    printed = capsys.readouterr().out
    assert 'kfold, repeat 2 only, training seed 35): mean WAR' in printed and 'over repeats' not in printed


def test_a_compile_mode_that_auto_leaves_unused_at_run_time_is_said():
    from tim_zoo.train.compiling import compile_mode_note
    cfg = TrainConfig(device='cuda', compile_mode='max-autotune')      # auto: compiled in one process only
    assert compile_mode_note(cfg, world_size=1) == ''
    assert compile_mode_note(cfg, world_size=2).startswith("compile_mode='max-autotune' is not used: compile=auto "
                                                            "trains eagerly under several processes")
    assert compile_mode_note(TrainConfig(device='cuda'), world_size=2) == ''      # nobody chose a mode


def test_compile_modes_map_to_inductor_options():
    """torch.compile takes a mode or options, not both: the mode's options plus fallback_random, CUDA graphs only
    on CUDA; unknown modes are refused."""
    from tim_zoo.train.compiling import compile_options
    assert compile_options('default', torch.device('cpu')) == dict(fallback_random=True)
    assert compile_options('reduce-overhead', torch.device('cuda'))['triton.cudagraphs'] is True
    assert 'triton.cudagraphs' not in compile_options('reduce-overhead', torch.device('cpu'))
    assert compile_options('max-autotune', torch.device('cpu'))['max_autotune'] is True
    with pytest.raises(ConfigurationError, match='compile_mode'):
        _cfg(compile_mode='fastest')


def test_comparisons_of_runs_give_the_difference_and_its_standard_errors():
    """The compare block: the difference of mean WAR from the base run, its standard error paired over the splits
    and over the repeats, checked against numpy on made-up runs."""
    make_tables = benchmark_script('make_tables')
    rng = np.random.default_rng(0)
    base_wars = rng.uniform(0.7, 0.9, size=(3, 10))                     # 3 repeats x 10 folds
    other_wars = base_wars + rng.normal(0.02, 0.03, size=(3, 10))

    def run(wars, seed=46, precision='fp32'):
        repeats = [dict(repeat=r + 1, folds=[dict(split=f'fold{j + 1}', war=w, n_test=54) for j, w in enumerate(row)])
                   for r, row in enumerate(wars)]
        return dict(folds=repeats[0]['folds'], repeats=repeats, config=dict(protocol='kfold', folds=10, seed=seed,
                                                                            precision=precision))

    table = make_tables.render_comparison({'base': run(base_wars), 'other': run(other_wars),
                                           'single': run(other_wars[:1], precision='bf16')})
    rows = [line.split(' | ') for line in table.splitlines()[2:]]
    diffs = 100 * (other_wars.mean(0) - base_wars.mean(0))
    assert rows[0][1] == f'{100 * base_wars.mean():.2f} (3, fp32)'
    assert rows[2][1] == f'{100 * other_wars[0].mean():.2f} (1, bf16)'      # each row's precision
    assert rows[1][2] == f'{diffs.mean():+.2f}'
    paired = diffs.std(ddof=1) / np.sqrt(10)
    assert rows[1][3] == f'{paired:.2f} ({diffs.mean() / paired:+.1f})'
    means_a, means_b = 100 * base_wars.mean(1), 100 * other_wars.mean(1)
    se = np.sqrt(means_a.var(ddof=1) / 3 + means_b.var(ddof=1) / 3)
    assert rows[1][4] == f'{se:.2f} ({diffs.mean() / se:+.1f})'
    assert rows[1][5].rstrip(' |') == f'{(diffs > 0).sum()} / 0 / {(diffs < 0).sum()}'
    assert rows[2][4] == '-'                                        # one repeat: no spread over repeats
    with pytest.raises(ValueError, match='tested other splits'):
        make_tables.render_comparison({'base': run(base_wars), 'shorter': run(other_wars[:, :9])})
    with pytest.raises(ValueError, match='tested other splits'):             # same names, other test utterances
        make_tables.render_comparison({'base': run(base_wars), 'seed': run(other_wars, seed=0)})
    one = make_tables.render_comparison({'a': run(base_wars[:1, :1]), 'b': run(other_wars[:1, :1])})
    assert one.splitlines()[-1].split(' | ')[3:5] == ['-', '-']               # one split: no spread to show


# --- compiled training step ----------------------------------------------------------------------------------

def _weights_close(dir_a, dir_b, folds, x):
    """The checkpoints of two runs agree up to rounding: weights (but the biases of convolutions that feed a
    BatchNorm and the running means: BatchNorm removes those biases, so their gradient is rounding noise that Adam
    scales to full steps) and eval logits."""
    for fold in folds:
        a, _ = tim_zoo.weights.read_checkpoint(dir_a / fold / 'last.safetensors')
        b, _ = tim_zoo.weights.read_checkpoint(dir_b / fold / 'last.safetensors')
        assert a.keys() == b.keys()
        for key in a:
            if not re.search(r'convs\.\d\.conv\.bias|running_mean', key):
                torch.testing.assert_close(a[key], b[key], atol=1e-5, rtol=1e-4, msg=f'{fold} {key}')
        with torch.no_grad():
            torch.testing.assert_close(tim_zoo.load_checkpoint(dir_a / fold / 'last.safetensors').eval()(x),
                                       tim_zoo.load_checkpoint(dir_b / fold / 'last.safetensors').eval()(x),
                                       atol=1e-4, rtol=1e-4)


@pytest.mark.skipif(not HAS_CXX, reason='torch.compile on the CPU needs a C++ compiler')
def test_compiled_training_equals_eager_training(tmp_path, caplog):
    """compile="on" trains the same model up to rounding (dropout drawn as the eager modules draw it); "auto"
    trains eagerly on the CPU and says why."""
    torch._dynamo.reset()
    torch._dynamo.utils.counters.clear()
    features = _features(n=62)
    for mode in ('on', 'auto'):
        cfg = _cfg(epochs=2, folds=3, only_folds=[1], dropout=0.2, compile=mode, select='last', val_fraction=0.0)
        with caplog.at_level('INFO', logger='tim_zoo.train'):
            run_training(cfg, features, tmp_path / mode, show_progress=False)
        expected = 'the training step is compiled (compile=on)' if mode == 'on' else 'eagerly (compile=auto trains'
        assert expected in caplog.text and 'torch.compile failed' not in caplog.text
        caplog.clear()
        graphs = torch._dynamo.utils.counters['stats']['unique_graphs']
        assert (graphs > 0) is (mode == 'on'), graphs                     # compiled, and only when asked
        if mode == 'on':                # new models of the same shapes reuse the graphs (no recompile limit reached)
            run_training(dataclasses.replace(cfg, repeats=3), features, tmp_path / 'repeats', show_progress=False)
            assert torch._dynamo.utils.counters['stats']['unique_graphs'] == graphs
        torch._dynamo.reset()
        torch._dynamo.utils.counters.clear()
    _weights_close(tmp_path / 'on', tmp_path / 'auto', ['fold1'], torch.as_tensor(features.x))
    results = [json.loads((tmp_path / m / 'fold1' / 'result.json').read_text()) for m in ('on', 'auto')]
    assert [r['compiled'] for r in results] == [True, False]
    assert [r['train_war'] for r in results[0]['history']] == [r['train_war'] for r in results[1]['history']]


@pytest.mark.parametrize('where', ['recompile', 'graph_break'])
def test_a_compile_failure_trains_eagerly_from_the_same_state(tmp_path, caplog, monkeypatch, where):
    """A compiler failing in the first epoch (no C++ compiler, no Triton, a recompile for the epoch's smaller last
    batch...) costs nothing but the log line: the run continues eagerly from the weights, statistics and random state
    of before the failed batch, bit for bit the eager run. The backend here compiles the first graph (running it as
    traced, as eager does) and fails on the next one after running it, so the failed batch has already moved
    BatchNorm statistics (and, with a graph break, drawn random numbers in the first graph), which must be undone:
    "recompile" fails on the recompile for the last batch of epoch 1 (9 samples), "graph_break" in the first step."""
    calls = []
    if where == 'graph_break':
        eager_dropout = tim_zoo.layers.SpatialDropout1d.forward

        def dropout_behind_a_graph_break(self, x):
            torch._dynamo.graph_break()
            return eager_dropout(self, x)
        monkeypatch.setattr(tim_zoo.layers.SpatialDropout1d, 'forward', dropout_behind_a_graph_break)

    def backend(graph_module, example_inputs):
        calls.append(len(calls))
        if len(calls) == 1:
            if where == 'recompile':
                return graph_module.forward

            def first_graph_drawing_random_numbers(*args):   # runs before the second graph fails to compile
                torch.rand(1)
                return graph_module.forward(*args)
            return first_graph_drawing_random_numbers
        graph_module(*example_inputs)                   # the failed batch's side effects
        raise RuntimeError('no compiler here')

    real_compile = torch.compile
    monkeypatch.setattr(torch, 'compile', lambda model, **kw: real_compile(model, backend=backend))
    torch._dynamo.reset()
    features = _features(n=62)
    cfg = dict(epochs=2, only_folds=[1, 2], dropout=0.2, val_fraction=0.0, select='last')
    try:                                                # static recompiles: example inputs of real sizes
        with caplog.at_level('INFO', logger='tim_zoo.train'), torch._dynamo.config.patch(automatic_dynamic_shapes=False):
            run_training(_cfg(**cfg, compile='on'), features, tmp_path / 'failed', show_progress=False)
    finally:
        torch._dynamo.reset()
    assert len(calls) == 2                               # compiled once, then failed
    assert caplog.text.count('training eagerly: RuntimeError: no compiler here') == 1   # fold2 does not retry
    assert [json.loads((tmp_path / 'failed' / f / 'result.json').read_text())['compiled'] for f in ('fold1', 'fold2')] \
        == [False, False]
    assert 'fold1' in caplog.text.split('no compiler here')[0].splitlines()[-1]
    run_training(_cfg(**cfg, compile='off'), features, tmp_path / 'eager', show_progress=False)
    for fold in ('fold1', 'fold2'):
        a, _ = tim_zoo.weights.read_checkpoint(tmp_path / 'failed' / fold / 'last.safetensors')
        b, _ = tim_zoo.weights.read_checkpoint(tmp_path / 'eager' / fold / 'last.safetensors')
        assert all(torch.equal(a[k], b[k]) for k in a), fold
    # where and how a run runs may change on resume: compile is one of them
    caplog.clear()
    with caplog.at_level('INFO', logger='tim_zoo.train'):
        assert run_training(_cfg(**cfg, compile='auto'), features, tmp_path / 'eager', resume=True,
                            show_progress=False)['folds']
    assert "compile='auto' (was 'off')" in caplog.text
    assert "compile='auto' (was 'off')" in (tmp_path / 'eager' / 'train.log').read_text()   # said before the log existed
    # a run from before `compile` existed trained eagerly, and resumes so
    stored = json.loads((tmp_path / 'eager' / 'config.json').read_text())
    del stored['compile']
    assert TrainConfig.from_json(json.dumps(stored)).compile == 'off'
    assert TrainConfig.from_json(json.dumps(dict(stored, compile='on'))).compile == 'on'


def test_runs_record_their_features_and_resume_only_on_them(tmp_path, capsys):
    features = _features(n=30)
    out = tmp_path / 'run'
    out.mkdir()
    features.save(out / 'f.npz')                      # inside the run folder: recorded relative to it
    args = ['train', '--features', str(out / 'f.npz'), '--model', 'timnet', '--model-arg', 'depth=2', '--model-arg',
            'filters=8', '--epochs', '1', '--folds', '3', '--protocol', 'kfold', '--fold', '1', '--quiet']
    assert cli_main(args + ['--out', str(out)]) == 0
    printed = capsys.readouterr()
    assert 'timnet (default, kfold, one split): WAR' in printed.out
    assert 'a validation split holds 2 utterances: its accuracy moves in steps of 50 points' in printed.err
    assert json.loads((out / 'data.json').read_text())['source'] == {'features': 'f.npz'}
    moved = tmp_path / 'moved'
    out.rename(moved)
    (moved / 'fold1' / 'result.json').unlink()            # something left to do
    assert cli_main(['train', '--resume', '--out', str(moved), '--quiet']) == 0
    assert (moved / 'fold1' / 'result.json').is_file()
    assert cli_main(['train', '--resume', '--out', str(tmp_path / 'nothing')]) == 2
    assert 'nothing to resume: ' + str(tmp_path / 'nothing') + ' does not exist' in capsys.readouterr().err
    (moved / 'f.npz').rename(tmp_path / 'elsewhere.npz')      # the recorded file is gone: give it again
    assert cli_main(['train', '--resume', '--out', str(moved)]) == 2
    assert 'which is gone; give the same features again' in capsys.readouterr().err
    assert cli_main(['train', '--resume', '--out', str(moved), '--features', str(tmp_path / 'elsewhere.npz')]) == 0
    assert json.loads((moved / 'data.json').read_text())['source'] == {
        'features': str((tmp_path / 'elsewhere.npz').resolve())}                  # where the same values are now
    _features(n=30, seed=3).save(tmp_path / 'elsewhere.npz')                     # changed in place
    assert cli_main(['train', '--resume', '--out', str(moved)]) == 2
    assert 'the file has changed since the run started' in capsys.readouterr().err
    # the speakers count: the same values with other speakers would make other leave-one-speaker-out splits
    other = _features(n=30, speakers=5)
    assert np.array_equal(other.x, features.x) and other.digest() != features.digest()
    with pytest.raises(ConfigurationError, match='was started on other features'):
        run_training(None, other, moved, resume=True, show_progress=False)
    # model arguments the data sets, or of the wrong type, are usage errors
    args = ['train', '--features', str(tmp_path / 'elsewhere.npz'), '--epochs', '1', '--quiet']
    assert cli_main(args + ['--out', str(tmp_path / 'a'), '--model-arg', 'num_classes=5']) == 2
    assert 'model argument num_classes: set from the data (3 classes, 39 channels' in capsys.readouterr().err
    assert cli_main(args + ['--out', str(tmp_path / 'b'), '--model-arg', 'depth=abc']) == 2
    assert "depth takes a number (default 8), got 'abc'" in capsys.readouterr().err      # refused by the model
    with pytest.raises(ConfigurationError, match=r'unknown training settings: epoch \(did you mean epochs\?\)'):
        TrainConfig.from_recipe(None, epoch=2)
    # started from Python without a source: the digest is checked, the file must be given to the CLI
    run_training(_cfg(model_args=dict(TINY), epochs=1, only_folds=[1]), features, tmp_path / 'py',
                 show_progress=False)
    assert cli_main(['train', '--resume', '--out', str(tmp_path / 'py')]) == 2
    assert 'records the digest of its features but no file' in capsys.readouterr().err


# --- splits trained together ---------------------------------------------------------------------------------

def test_splits_trained_together_equal_the_one_by_one_training(tmp_path, caplog):
    """timnet's splits trained as one grouped computation end with the weights, statistics and results of training
    them one after another: own batches (the splits' last batches differ in size here), own dropout masks,
    own BatchNorm statistics and optimizer state.

    The grouped convolutions sum in another order, so values agree to about 1e-7, except the biases of the
    convolutions that feed a BatchNorm and the BatchNorm running means: BatchNorm removes those biases, so their
    gradient is rounding noise, which Adam scales up to full steps (in either training); what they compute is
    the same, as the eval logits show."""
    features = _features(n=62)
    for together in (True, False):
        cfg = _cfg(epochs=3, folds=3, batch_folds=together, dropout=0.2, val_fraction=0.2, select='last')
        with caplog.at_level('INFO', logger='tim_zoo.train'):
            run_training(cfg, features, tmp_path / str(together), show_progress=False)
        assert ('training 3 splits together' in caplog.text) is together
        caplog.clear()
    _weights_close(tmp_path / 'True', tmp_path / 'False', ('fold1', 'fold2', 'fold3'), torch.as_tensor(features.x))
    for fold in ('fold1', 'fold2', 'fold3'):
        history = [json.loads((tmp_path / str(t) / fold / 'result.json').read_text())['history'] for t in (True, False)]
        assert [h['val_war'] for h in history[0]] == [h['val_war'] for h in history[1]]
        assert [h['train_war'] for h in history[0]] == [h['train_war'] for h in history[1]]


@pytest.mark.skipif(not HAS_CXX, reason='torch.compile on the CPU needs a C++ compiler')
def test_splits_trained_together_compiled_equal_the_eager_grouped_training(tmp_path, caplog):
    """--compile on compiles the grouped step (the dropout masks drawn before it, as eagerly): the same training up
    to rounding; "auto" keeps the grouped step eager and says why."""
    torch._dynamo.reset()
    features = _features(n=62)
    try:
        for mode in ('on', 'auto'):
            cfg = _cfg(epochs=2, folds=3, batch_folds='on', dropout=0.2, compile=mode, select='last',
                       val_fraction=0.0)
            with caplog.at_level('INFO', logger='tim_zoo.train'):
                run_training(cfg, features, tmp_path / mode, show_progress=False)
            expected = ('per step, compiled: compile=on' if mode == 'on' else
                        'per step, eagerly: compile=auto trains eagerly on cpu')
            assert expected in caplog.text and 'torch.compile failed' not in caplog.text, caplog.text
            caplog.clear()
            if mode == 'on':            # the next repeats' grouped steps reuse the graphs (no recompile limit reached)
                graphs = torch._dynamo.utils.counters['stats']['unique_graphs']
                run_training(dataclasses.replace(cfg, repeats=3, epochs=1), features, tmp_path / 'repeats',
                             show_progress=False)
                assert graphs > 0 and torch._dynamo.utils.counters['stats']['unique_graphs'] == graphs
    finally:
        torch._dynamo.reset()
    _weights_close(tmp_path / 'on', tmp_path / 'auto', ['fold1', 'fold2', 'fold3'], torch.as_tensor(features.x))
    for fold in ('fold1', 'fold2', 'fold3'):
        results = [json.loads((tmp_path / m / fold / 'result.json').read_text()) for m in ('on', 'auto')]
        assert [r['compiled'] for r in results] == [True, False]
        assert [r['train_war'] for r in results[0]['history']] == [r['train_war'] for r in results[1]['history']]


def test_a_compile_failure_of_the_grouped_step_trains_eagerly_from_the_same_state(tmp_path, caplog, monkeypatch):
    """A compiler failing on the grouped step's recompile (the last batch, where the splits' batch sizes differ)
    restores the weights and statistics the failed batch moved and reruns it eagerly with the same dropout masks:
    bit for bit the eager grouped run."""
    calls = []

    def backend(graph_module, example_inputs):
        calls.append(len(calls))
        if len(calls) == 1:
            return graph_module.forward
        graph_module(*example_inputs)                   # the failed batch's side effects (BatchNorm statistics)
        raise RuntimeError('no compiler here')

    real_compile = torch.compile
    monkeypatch.setattr(torch, 'compile', lambda fn, **kw: real_compile(fn, backend=backend))
    torch._dynamo.reset()
    features = _features(n=62)
    cfg = dict(epochs=2, folds=3, batch_folds='on', dropout=0.2, val_fraction=0.0, select='last')
    try:
        with caplog.at_level('INFO', logger='tim_zoo.train'), torch._dynamo.config.patch(automatic_dynamic_shapes=False):
            run_training(_cfg(**cfg, compile='on'), features, tmp_path / 'failed', show_progress=False)
    finally:
        torch._dynamo.reset()
    assert len(calls) == 2
    assert caplog.text.count('training eagerly: RuntimeError: no compiler here') == 1
    assert re.search(r'the grouped step of \d splits: torch.compile failed', caplog.text)
    run_training(_cfg(**cfg, compile='off'), features, tmp_path / 'eager', show_progress=False)
    for fold in ('fold1', 'fold2', 'fold3'):
        assert json.loads((tmp_path / 'failed' / fold / 'result.json').read_text())['compiled'] is False
        a, _ = tim_zoo.weights.read_checkpoint(tmp_path / 'failed' / fold / 'last.safetensors')
        b, _ = tim_zoo.weights.read_checkpoint(tmp_path / 'eager' / fold / 'last.safetensors')
        assert all(torch.equal(a[k], b[k]) for k in a), fold


def test_models_that_cannot_be_batched_train_one_by_one_and_say_why(tmp_path, caplog):
    with caplog.at_level('INFO', logger='tim_zoo.train'):
        run_training(_cfg(model='tim', epochs=1, folds=2, batch_folds=True), _features(), tmp_path / 'tim',
                     show_progress=False)
    assert 'one by one: only timnet\'s own encoder' in caplog.text
    caplog.clear()
    with caplog.at_level('INFO', logger='tim_zoo.train'):
        run_training(_cfg(epochs=1, folds=2, frame_mask=0.1, batch_folds=True), _features(), tmp_path / 'mask',
                     show_progress=False)
    assert 'one by one: input frame masking' in caplog.text


def test_splits_trained_together_save_their_state_after_the_same_epochs(tmp_path, caplog, monkeypatch):
    """Splits trained together choose their validation checkpoints apart, yet write state.pt after the same epochs
    (else a killed run would resume them one by one), also when only one split's callback stops the run."""
    from tim_zoo.train import engine
    saved = []
    original = engine.SplitTrainer.save_state

    def recording(self):
        saved.append((self.split.name, len(self.history)))
        original(self)
    monkeypatch.setattr(engine.SplitTrainer, 'save_state', recording)
    monkeypatch.setattr(engine, 'STATE_EVERY_S', 1e9)
    features = _features(n=62)
    cfg = _cfg(epochs=6, folds=3, batch_folds='on', dropout=0.2, val_fraction=0.3)

    def stop_once(epoch, record, calls=[]):
        calls.append(epoch)
        if epoch == 5 and calls.count(5) == 1:          # the first split's callback only
            raise StopTraining
    with pytest.raises(StopTraining):
        run_training(cfg, features, tmp_path / 'cut', show_progress=False, on_epoch_end=stop_once)
    by_epoch = {}
    for split, epoch in saved:
        by_epoch.setdefault(epoch, set()).add(split)
    assert all(splits == {'fold1', 'fold2', 'fold3'} for splits in by_epoch.values()), by_epoch
    assert 5 in by_epoch and len(by_epoch) < 5          # not every epoch, and the stopped one
    choices = {json.loads(torch.load(tmp_path / 'cut' / f / 'state.pt', weights_only=True)['history'])[-1]['epoch']
               for f in ('fold1', 'fold2', 'fold3')}
    assert choices == {5}
    with caplog.at_level('INFO', logger='tim_zoo.train'):
        run_training(None, features, tmp_path / 'cut', resume=True, show_progress=False)
    assert 'training 3 splits together' in caplog.text


def test_splits_trained_together_resume_together_to_the_uninterrupted_result(tmp_path, caplog):
    features = _features(n=62)
    cfg = _cfg(epochs=3, folds=3, batch_folds=True, dropout=0.2)
    run_training(cfg, features, tmp_path / 'whole', show_progress=False)

    def stop_after_epoch_2(epoch, record):
        if epoch == 2:
            raise StopTraining

    with pytest.raises(StopTraining):
        run_training(cfg, features, tmp_path / 'cut', show_progress=False, on_epoch_end=stop_after_epoch_2)
    states = [torch.load(tmp_path / 'cut' / f / 'state.pt', weights_only=True) for f in ('fold1', 'fold2', 'fold3')]
    assert [len(json.loads(s['history'])) for s in states] == [2, 2, 2]     # every split recorded the epoch
    with caplog.at_level('INFO', logger='tim_zoo.train'):
        run_training(cfg, features, tmp_path / 'cut', resume=True, show_progress=False)
    assert 'training 3 splits together' in caplog.text
    for fold in ('fold1', 'fold2', 'fold3'):
        a, _ = tim_zoo.weights.read_checkpoint(tmp_path / 'whole' / fold / 'last.safetensors')
        b, _ = tim_zoo.weights.read_checkpoint(tmp_path / 'cut' / fold / 'last.safetensors')
        assert all(torch.equal(a[k], b[k]) for k in a), fold


def test_bf16_training_runs_where_the_device_has_native_bf16_and_is_refused_elsewhere(tmp_path, monkeypatch):
    """precision="bf16" trains the forward pass under bfloat16 autocast (weights and loss stay float32) and learns the
    easy synthetic task; on a device without native bf16 it is refused before anything is written, with the fix."""
    import torch

    from tim_zoo import _validation
    from tim_zoo.train import run as run_module
    assert TrainConfig.from_json(json.dumps({k: v for k, v in json.loads(_cfg().to_json()).items()
                                             if k != 'precision'})).precision == 'fp32'
    with pytest.raises(ConfigurationError, match='precision'):
        _cfg(precision='fp16')
    monkeypatch.setattr(run_module, 'native_bf16', lambda device: False)
    with pytest.raises(ConfigurationError, match='--precision fp32'):
        run_training(_cfg(precision='bf16', epochs=1), _features(), tmp_path / 'refused', show_progress=False)
    assert not (tmp_path / 'refused' / 'config.json').exists()
    monkeypatch.undo()
    if not _validation.native_bf16(torch.device('cpu')):
        pytest.skip('this CPU has no native bf16 (avx512_bf16 / amx_bf16)')
    cfg = _cfg(model='tim', protocol='holdout', epochs=25, select='last', batch_size=16, precision='bf16')
    summary = run_training(cfg, _features(n=90, shift=1.5), tmp_path / 'bf16', show_progress=False)
    assert summary['war_mean'] >= 0.8                                     # as test_training_learns_separable_classes
    model = tim_zoo.load_checkpoint(next((tmp_path / 'bf16').rglob('last.safetensors')))
    assert all(p.dtype == torch.float32 for p in model.parameters())


def test_no_test_evaluates_no_test_part_and_may_be_switched_on_resume(tmp_path, capsys):
    """Runs that choose on validation: `--no-test` leaves no test figure in results, logs or the summary."""
    features = _features()
    features.save(tmp_path / 'f.npz')
    args = ['train', '--features', str(tmp_path / 'f.npz'), '--model', 'tim', '--model-arg', 'depth=2',
            '--model-arg', 'filters=8', '--epochs', '2', '--protocol', 'kfold', '--folds', '3', '--fold', '1', '2',
            '--quiet', '--threads', '1']
    assert cli_main(args + ['--out', str(tmp_path / 'a'), '--no-test']) == 0
    out = capsys.readouterr().out
    assert 'trained fold1, fold2 without a test figure (--no-test)' in out and 'on all 60 samples' not in out
    for k in (1, 2):
        result = json.loads((tmp_path / 'a' / f'fold{k}' / 'result.json').read_text())
        assert result['n_test'] > 0 and not {'war', 'uar', 'confusion'} & set(result)
        assert result['history'] and 'val_war' in result['history'][-1]
    assert 'test WAR' not in (tmp_path / 'a' / 'train.log').read_text()
    assert json.loads((tmp_path / 'a' / 'config.json').read_text())['test'] is False
    # a run started with the test part evaluated may resume without it (the training is the same)
    from tim_zoo.train import TrainConfig
    from tim_zoo.train.records import resumed_config
    started = TrainConfig(model='tim', epochs=2)
    assert resumed_config(started, TrainConfig(model='tim', epochs=2, test=False), tmp_path).test is False


def test_cli_hub_folder_ships_the_all_data_checkpoint_with_its_training_record(tmp_path, capsys):
    import tim_zoo
    from safetensors import safe_open
    _features().save(tmp_path / 'f.npz')
    args = ['train', '--features', str(tmp_path / 'f.npz'), '--model', 'tim', '--model-arg', 'depth=2',
            '--epochs', '1', '--quiet', '--threads', '1', '--hub-folder', str(tmp_path / 'hub')]
    assert cli_main(args + ['--protocol', 'kfold', '--folds', '2', '--out', str(tmp_path / 'kfold')]) == 2
    assert '--hub-folder writes the model trained on all the data' in capsys.readouterr().err
    assert not (tmp_path / 'kfold').exists()
    assert cli_main(args + ['--protocol', 'all', '--out', str(tmp_path / 'all')]) == 0
    assert f'wrote the hub folder {tmp_path / "hub"}' in capsys.readouterr().out
    trained = tmp_path / 'all' / 'all' / 'last.safetensors'
    assert (tmp_path / 'hub' / 'model.safetensors').read_bytes() == trained.read_bytes()
    with safe_open(str(tmp_path / 'hub' / 'model.safetensors'), 'pt') as f:
        meta = json.loads(f.metadata()['tim_zoo'])
    assert meta['extra']['train_config']['protocol'] == 'all'
    loaded = tim_zoo.create_model(f'local-dir:{tmp_path / "hub"}', pretrained=True).eval()
    direct = tim_zoo.load_checkpoint(trained).eval()
    x = torch.randn(2, 39, 40)
    assert torch.equal(loaded(x), direct(x)) and loaded.label_names == direct.label_names
    # one repeat of several (--repeat 2 of --repeats 2): its own folder's checkpoint
    assert cli_main(args[:-2] + ['--protocol', 'all', '--repeats', '2', '--repeat', '2', '--out',
                                 str(tmp_path / 'rep'), '--hub-folder', str(tmp_path / 'hub2')]) == 0
    second = tmp_path / 'rep' / 'repeat2' / 'all' / 'last.safetensors'
    assert str(second) in capsys.readouterr().out and not (tmp_path / 'rep' / 'all').exists()
    assert (tmp_path / 'hub2' / 'model.safetensors').read_bytes() == second.read_bytes()


def test_save_for_hub_refuses_a_checkpoint_that_is_not_the_models(tmp_path):
    import tim_zoo
    from tim_zoo.exceptions import CheckpointMismatchError
    model = tim_zoo.create_model('tim', num_classes=3, depth=2)
    tim_zoo.save_checkpoint(model, tmp_path / 'm.safetensors')
    other = tim_zoo.create_model('tim', num_classes=3, depth=2)
    with pytest.raises(CheckpointMismatchError, match=r'does not hold the model\'s tensors \(\d+ differ: '):
        tim_zoo.save_for_hub(other, tmp_path / 'hub', checkpoint=tmp_path / 'm.safetensors')
    tim_zoo.save_for_hub(model, tmp_path / 'hub', checkpoint=tmp_path / 'm.safetensors')
    assert (tmp_path / 'hub' / 'model.safetensors').read_bytes() == (tmp_path / 'm.safetensors').read_bytes()


# --- settings a run would not use --------------------------------------------------------------------

@pytest.mark.parametrize('settings, refused', [
    (dict(scheduler='none', step_size=20), "step_size=20 (scheduler='none': only scheduler=\"step\""),
    (dict(scheduler='cosine', gamma=0.5), "gamma=0.5 (scheduler='cosine'"),
    (dict(scheduler='step', warmup_steps=70), "warmup_steps=70 (scheduler='step': only scheduler=\"noam\" warms up"),
    (dict(optimizer='adam', momentum=0.5), "momentum=0.5 (optimizer='adam' has no momentum"),
    (dict(optimizer='sgd', betas=(0.9, 0.99)), 'betas=(0.9, 0.99) (optimizer="sgd" has no betas'),
    (dict(protocol='loso', folds=5), "folds=5 (protocol='loso' has no folds to count"),
    (dict(protocol='all', val_fraction=0.2), 'val_fraction=0.2 (protocol="all" trains on every utterance'),
    (dict(compile='off', compile_mode='max-autotune'), "compile_mode='max-autotune' (compile='off' trains eagerly"),
    (dict(compile='auto', compile_mode='max-autotune'), "compile='auto' trains eagerly on cpu"),
    (dict(gmm_fits=4), 'gmm_fits=4 (no GMM frame selection'),
    (dict(dropout=0.3, model_args=dict(drop_rate=0.2)), "dropout=0.3 (model_args drop_rate=0.2 sets the model's"),
])
def test_a_setting_the_run_would_not_use_is_refused_not_ignored(settings, refused):
    with pytest.raises(ConfigurationError, match=re.escape('settings this run would not use: ') + '.*'
                                                 + re.escape(refused)):
        TrainConfig(**settings)


def test_unused_settings_left_at_their_recipe_or_default_values_pass():
    assert TrainConfig(scheduler='none').unused_settings()['step_size'].startswith("scheduler='none'")
    assert TrainConfig(protocol='all').val_fraction == 0.0                      # the defaults: what "all" uses
    assert TrainConfig(protocol='all', val_fraction=0.0, select='last').select == 'last'
    assert TrainConfig(compile='on', compile_mode='max-autotune').compile_mode == 'max-autotune'
    assert TrainConfig(gmm_select=50, gmm_fits=4).gmm_fits == 4
    assert TrainConfig(dropout=0.2, model_args=dict(drop_rate=0.2)).dropout == 0.2
    # the recipe's own values are not the user's: seed.emodb's folds under loso, timnet.paper's betas under sgd
    assert TrainConfig.from_recipe('seed.emodb', protocol='loso').folds == 10
    assert TrainConfig.from_recipe('timnet.paper', optimizer='sgd').betas == (0.93, 0.98)
    with pytest.raises(ConfigurationError, match='step_size=20'):
        TrainConfig.from_recipe('seed.emodb', step_size=20)                     # the recipe's scheduler is "none"
    # a configuration read back from a run is a record of what ran: read as it is
    stored = dataclasses.asdict(TrainConfig(scheduler='step', step_size=20))
    assert TrainConfig.from_json(json.dumps(dict(stored, scheduler='none'))).step_size == 20


def test_the_recipes_dropout_replaced_by_a_model_argument_is_noted():
    from tim_zoo.train.builders import dropout_note
    assert dropout_note(None, dict(drop_rate=0.3), 0.1) == ('dropout 0.1 (of the recipe) is not applied: the model '
                                                            'argument drop_rate=0.3 sets the model\'s dropout')
    assert dropout_note(None, dict(drop_rate=0.1), 0.1) == '' and dropout_note(None, {}, 0.1) == ''


def test_a_model_class_as_the_builder_takes_the_engines_seq_len_where_its_configuration_leaves_it_unused(tmp_path):
    """The engine gives any builder with a `seq_len` argument the frame count; multitim with attention fusion takes
    any length, and does not refuse the engine's value as it refuses a caller's, neither when the run builds it nor
    when its checkpoint is saved (built again to check) and loaded."""
    from tim_zoo.train.run import checkpoint_builder, create_training_model
    small = dict(filters=8, general_depth=2, special_depth=2, d_qkv=8, d_ff=16)
    cfg = TrainConfig(model='tim_zoo.models.at_tim:MultiTIM', model_args=small)
    model = create_training_model(cfg, 4, 39, 20)
    assert model.init_args['seq_len'] == 20 and 'seq_len' in model.unused_args
    builder = checkpoint_builder(cfg, 4, 39, 20)
    path = tim_zoo.save_checkpoint(model, tmp_path / 'multitim.safetensors', **builder)
    assert type(tim_zoo.load_checkpoint(path, builder=builder['builder'])).__name__ == 'MultiTIM'
    with pytest.raises(ConfigurationError, match='^seq_len: multitim with fusion="attention" takes any length'):
        tim_zoo.models.MultiTIM(4, 39, seq_len=20, **small)


def test_fp32_training_on_cuda_switches_tf32_off_and_restores_it(monkeypatch):
    """cuDNN lets fp32 convolutions round to TF32 by default: a GPU's fp32 run would be another precision than a
    CPU's. The switch is only backend settings, so it is checked without a GPU; both ways of training a split use it."""
    from tim_zoo.train import engine, folds
    from tim_zoo.train.device import full_fp32
    saved = torch.backends.cudnn.allow_tf32, torch.get_float32_matmul_precision()
    try:
        torch.backends.cudnn.allow_tf32 = True
        torch.set_float32_matmul_precision('medium')
        with full_fp32(torch.device('cpu')):
            assert torch.backends.cudnn.allow_tf32 and torch.get_float32_matmul_precision() == 'medium'
        with full_fp32(torch.device('cuda')):
            assert not torch.backends.cudnn.allow_tf32 and not torch.backends.cuda.matmul.allow_tf32
            assert torch.get_float32_matmul_precision() == 'highest'
        assert torch.backends.cudnn.allow_tf32 and torch.get_float32_matmul_precision() == 'medium'
        with pytest.raises(RuntimeError), full_fp32(torch.device('cuda')):
            raise RuntimeError('a failed split')
        assert torch.backends.cudnn.allow_tf32 and torch.get_float32_matmul_precision() == 'medium'
        seen = []
        monkeypatch.setattr(engine, '_run_split', lambda trainer, show: seen.append(torch.backends.cudnn.allow_tf32))
        monkeypatch.setattr(folds, '_train_splits_together',
                            lambda trainers, show, compile_on: seen.append(torch.backends.cudnn.allow_tf32))
        gpu = type('Trainer', (), dict(device=torch.device('cuda')))()
        engine.run_split(gpu)
        folds.train_splits_together([gpu])
        assert seen == [False, False] and torch.backends.cudnn.allow_tf32
    finally:
        torch.backends.cudnn.allow_tf32 = saved[0]
        torch.set_float32_matmul_precision(saved[1])


def test_a_model_of_ones_own_recordings_knows_them_again_by_their_content(tmp_path, speech_like):
    """A corpus the package has no table of: extraction fingerprints each recording, a checkpoint keeps those of its
    split's training part, and predict, evaluate and --init know them again, renamed or not."""
    sf = pytest.importorskip('soundfile')
    from tim_zoo.data import MFCCExtractor, extract_features, load_corpus
    from tim_zoo.train import evaluate_model
    for i in range(12):
        folder = tmp_path / 'corpus' / ('calm', 'tense')[i % 2]
        folder.mkdir(parents=True, exist_ok=True)
        sf.write(str(folder / f'{i}.wav'), speech_like(0.5, f0=110 + 9 * i, seed=i), 16000)
    features = extract_features(load_corpus('folders', tmp_path / 'corpus'), MFCCExtractor(mean_signal_length=8192),
                                show_progress=False)
    assert len(set(features.fingerprints)) == 12
    assert FeatureSet.load(features.save(tmp_path / 'f.npz')).fingerprints == features.fingerprints
    cfg = _cfg(model='tim', epochs=1, only_folds=[1], batch_size=4)
    run_training(cfg, features, tmp_path / 'run', show_progress=False)
    checkpoint = tmp_path / 'run' / 'fold1' / 'last.safetensors'
    split = make_splits('kfold', 12, None, 3, cfg.seed, cfg.val_fraction, features.y)[0]
    heard = sorted({features.fingerprints[i] for i in np.concatenate([split.train, split.val])})
    assert tim_zoo.load_checkpoint(checkpoint).pretrained_cfg['trained_on']['fingerprints'] == heard

    recognizer = tim_zoo.EmotionRecognizer.from_checkpoint(checkpoint)
    trained, held_out = features.paths[int(split.train[0])], features.paths[int(split.test[0])]
    shutil.copy(trained, tmp_path / 'renamed.wav')
    note = [n for n in recognizer.predict(tmp_path / 'renamed.wav').notes if 'by its content' in n]
    assert note == [f'this recording is, by its content, one of the {len(heard)} utterances these weights trained '
                    f'or chose their epoch on (every {features.settings["corpus"].upper()} utterance but fold 1\'s test set): the model '
                    f'learned this answer, so it says nothing of how the model judges speech it has not heard (its '
                    f'held-out accuracy does)']
    assert not [n for n in recognizer.predict(held_out).notes if 'by its content' in n]
    # another list of the corpus' recordings (all but the first): its splits cannot be drawn again, its content is known
    part = dataclasses.replace(features, x=features.x[1:], y=features.y[1:], paths=features.paths[1:],
                               speakers=features.speakers[1:], durations=features.durations[1:],
                               fingerprints=features.fingerprints[1:])
    scored = evaluate_model(recognizer.model, part)
    assert [u['heard'] for u in scored['utterances']] == [f in heard for f in part.fingerprints]
    with pytest.raises(ConfigurationError, match='trained on test utterances of this run'):
        run_training(_cfg(model='tim', epochs=1, only_folds=[2], init=str(checkpoint)), part, tmp_path / 'again',
                     show_progress=False)
