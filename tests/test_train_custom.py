"""The engine trains models of the user's: builder functions, timm-registered models, init hooks, train_split."""
import json

import numpy as np
import pytest
import torch
from timm.models import register_model
from torch import nn

import tim_zoo
from tim_zoo.cli import main as cli_main
from tim_zoo.data import FeatureSet
from tim_zoo.evaluation import war
from tim_zoo.exceptions import ConfigurationError, UnknownModelError
from tim_zoo.layers import GMMClusteringHead, TemporalStack
from tim_zoo.train import TrainConfig, init_gmm_heads, make_splits, run_training, train_split

pytest.importorskip('safetensors')


def _features(n=48, classes=3, frames=20, seed=0, channels=39):
    rng = np.random.default_rng(seed)
    y = np.arange(n) % classes
    x = (rng.normal(size=(n, channels, frames)) + y[:, None, None]).astype(np.float32)
    return FeatureSet(x, y, [f'c{i}' for i in range(classes)], [f'u{i}.wav' for i in range(n)],
                      [f's{i % 6}' for i in range(n)], dict(mean_signal_length=1000))


class _PooledStack(nn.Module):
    """TABs over `[B, C, T]`, mean over time, a linear layer; `hooked` records the init hook's sample count."""

    def __init__(self, num_classes, in_chans, filters, drop_rate=0.0):
        super().__init__()
        self.stack = TemporalStack(filters, 2, in_chans=in_chans, drop_rate=drop_rate)
        self.fc = nn.Linear(filters, num_classes)
        self.register_buffer('hooked', torch.zeros(()))

    def forward(self, x):
        return self.fc(self.stack(x)[-1].mean(-1))             # the last level [B, F, T], averaged over time


def pooled_stack(num_classes: int, in_chans: int, filters: int = 8, drop_rate: float = 0.0) -> nn.Module:
    return _PooledStack(num_classes, in_chans, filters, drop_rate)


def fixed_outputs(filters: int = 8) -> nn.Module:
    """Takes no class count: always 5 outputs (wrong for 3 classes)."""
    return nn.Sequential(nn.Conv1d(39, filters, 1), nn.AdaptiveAvgPool1d(1), nn.Flatten(), nn.Linear(filters, 5))


def count_hook(model, x):
    model.hooked.fill_(len(x))


class _GMMNet(nn.Module):
    def __init__(self, num_classes, in_chans):
        super().__init__()
        self.proj = nn.Conv1d(in_chans, 6, 1)
        self.head = GMMClusteringHead(6, num_classes, num_components=3)

    def forward(self, x):
        return self.head(self.proj(x))


def gmm_net(num_classes: int, in_chans: int) -> nn.Module:
    return _GMMNet(num_classes, in_chans)


@register_model
def tim_zoo_test_timm_stack(pretrained=False, **kwargs):
    """A model registered with timm (not by tim_zoo)."""
    return _PooledStack(kwargs.pop('num_classes'), kwargs.pop('in_chans'), 8, **kwargs)


def _cfg(model, **kw):
    return TrainConfig.from_recipe(None, model=model, epochs=2, lr=3e-3, weight_decay=0.0, protocol='kfold', folds=3,
                                   only_folds=[1, 2], batch_size=16, **kw)


def test_a_builder_function_trains_saves_and_reloads(tmp_path):
    features = _features()
    cfg = _cfg(pooled_stack, model_args=dict(filters=6), dropout=0.2)
    assert cfg.model == 'test_train_custom:pooled_stack'             # kept as its import name (the config is JSON)
    summary = run_training(cfg, features, tmp_path / 'run', show_progress=False)
    assert len(summary['folds']) == 2
    split = make_splits('kfold', len(features.y), None, 3, cfg.seed, cfg.val_fraction)[0]
    fold = tmp_path / 'run' / 'fold1'
    result = json.loads((fold / 'result.json').read_text())
    chosen = 'best' if cfg.select == 'val' and result['chosen_epoch'] != cfg.epochs else 'last'
    model = tim_zoo.load_checkpoint(fold / f'{chosen}.safetensors', builder=pooled_stack).eval()
    assert model.stack.blocks[0].convs[0].conv.in_channels == 39 and model.fc.out_features == 3   # from the data
    assert model.stack.blocks[0].convs[0].drop.p == 0.2                                          # from dropout
    assert model.label_names == ['c0', 'c1', 'c2']
    with torch.no_grad():                                # the saved checkpoint is the model the split tested
        logits = model(torch.as_tensor(features.x[split.test]))
    assert war(features.y[split.test], logits.argmax(-1).numpy()) == pytest.approx(result['war'])
    # resuming finds the builder again from the config
    assert run_training(None, features, tmp_path / 'run', resume=True, show_progress=False)['folds']


def test_a_timm_registered_model_trains():
    cfg = _cfg('tim_zoo_test_timm_stack')
    model = tim_zoo.train.create_training_model(cfg, 3, 39, 20)
    assert isinstance(model, _PooledStack) and model.fc.out_features == 3


def test_builders_that_cannot_work_are_refused_before_training(tmp_path):
    features = _features()

    def local(num_classes, in_chans):
        return pooled_stack(num_classes, in_chans)

    with pytest.raises(ConfigurationError, match='cannot be imported again'):
        _cfg(local)
    with pytest.raises(ConfigurationError, match='cannot be imported again'):
        _cfg(lambda **k: pooled_stack(**k))
    with pytest.raises(ConfigurationError, match="cannot import the builder 'no_such_module:f' .*run from the folder "
                                                 "that holds no_such_module.py .*or add that folder to PYTHONPATH"):
        run_training(_cfg('no_such_module:f'), features, tmp_path / 'a', show_progress=False)
    with pytest.raises(ConfigurationError, match=r'num_classes: set from the data \(3 classes'):
        run_training(_cfg(pooled_stack, model_args=dict(num_classes=3)), features, tmp_path / 'b',
                     show_progress=False)
    with pytest.raises(ConfigurationError, match='takes no argument depth'):
        run_training(_cfg(pooled_stack, model_args=dict(depth=2)), features, tmp_path / 'c', show_progress=False)
    with pytest.raises(ConfigurationError, match=r'must return logits \[2, 3\] .* got \[2, 5\]'):
        run_training(_cfg(fixed_outputs), features, tmp_path / 'd', show_progress=False)
    with pytest.raises(ConfigurationError, match=r'fails on a batch of these features \[2, 13, 20\]'):
        run_training(_cfg(fixed_outputs), _features(channels=13), tmp_path / 'e', show_progress=False)
    with pytest.raises(ConfigurationError, match="init_hook: cannot import the builder 'nowhere:hook'"):
        run_training(_cfg(pooled_stack, init_hook='nowhere:hook'), features, tmp_path / 'f', show_progress=False)
    with pytest.raises(UnknownModelError, match="did you mean at_deltatim_v2.*Your own model: a builder function.*registers with timm"):
        run_training(_cfg('at_deltatim_v3'), features, tmp_path / 'g', show_progress=False)
    for name in 'abcdefg':                              # refused before anything was written
        assert not (tmp_path / name).exists() or not any((tmp_path / name).iterdir())


def test_init_hook_runs_once_per_new_split_with_its_training_features(tmp_path):
    features = _features()
    run_training(_cfg(pooled_stack, init_hook=count_hook), features, tmp_path / 'run', show_progress=False)
    for k, split in enumerate(make_splits('kfold', len(features.y), None, 3, 34, 0.1)[:2], 1):
        model = tim_zoo.load_checkpoint(tmp_path / 'run' / f'fold{k}' / 'last.safetensors', builder=pooled_stack)
        assert int(model.hooked) == len(split.train)


def test_init_gmm_heads_sets_each_head_from_the_frames_it_receives():
    torch.manual_seed(0)
    model = gmm_net(3, 39)
    x = torch.randn(40, 39, 20)
    before = model.head.means.clone()
    model.train()
    init_gmm_heads(model, x, batch_size=16)
    assert model.training and not torch.equal(model.head.means, before)
    expected = GMMClusteringHead(6, 3, num_components=3).init_from_data(model.proj(x).detach())
    assert torch.allclose(model.head.means, expected.means) and torch.allclose(model.head.log_vars, expected.log_vars)
    with pytest.raises(ConfigurationError, match='has no GMMClusteringHead'):
        init_gmm_heads(pooled_stack(3, 39), x)


def test_the_cli_trains_a_builder_from_the_current_folder(tmp_path, monkeypatch, capsys):
    features = _features()
    features.save(tmp_path / 'f.npz')
    (tmp_path / 'my_models.py').write_text(
        'from tim_zoo.layers import GMMClusteringHead\nfrom torch import nn\n\n\n'
        'def build(num_classes, in_chans, components=2):\n'
        '    return nn.Sequential(nn.Conv1d(in_chans, 4, 1), GMMClusteringHead(4, num_classes, '
        'num_components=components))\n')
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr('sys.path', [p for p in __import__('sys').path if p not in ('', str(tmp_path))])
    args = ['train', '--features', 'f.npz', '--model', 'my_models:build', '--model-arg', 'components=3',
            '--init-hook', 'tim_zoo.train:init_gmm_heads', '--epochs', '1', '--folds', '3', '--fold', '1',
            '--protocol', 'kfold', '--out', 'out', '--quiet', '--threads', '1']
    assert cli_main(args) == 0, capsys.readouterr().err
    cfg = json.loads((tmp_path / 'out' / 'config.json').read_text())
    assert cfg['model'] == 'my_models:build' and cfg['init_hook'] == 'tim_zoo.train.init_hooks:init_gmm_heads'
    model = tim_zoo.load_checkpoint(tmp_path / 'out' / 'fold1' / 'last.safetensors', trust_builder=True)
    assert model[1].num_components == 3
    # scored on labelled recordings: the builder named on the command line, as for predict
    import soundfile as sf
    from conftest import synthetic_speech
    for k, label in enumerate(['c0', 'c1', 'c2']):
        (tmp_path / 'data' / label).mkdir(parents=True)
        sf.write(tmp_path / 'data' / label / 'a.wav', synthetic_speech(1.0, seed=k), 22050)
    scoring = ['evaluate', '--model', 'out/fold1/last.safetensors', '--corpus', 'folders', '--data-root', 'data',
               '--quiet', '--json']
    assert cli_main(scoring) == 1
    assert 'on the command line: --builder MODULE:FUNCTION' in capsys.readouterr().err
    assert cli_main(scoring + ['--builder', 'my_models:build']) == 0
    assert json.loads(capsys.readouterr().out)['n'] == 3


def test_train_split_needs_a_builder_to_name_in_its_checkpoints(tmp_path):
    features = _features()
    x, y = torch.as_tensor(features.x), torch.as_tensor(features.y)
    split = make_splits('kfold', len(y), None, 3, 0, 0.1)[0]
    cfg = TrainConfig(model=pooled_stack, epochs=1, batch_size=16)
    with pytest.raises(ConfigurationError, match='checkpoints must name the function that builds it'):
        train_split(lambda: pooled_stack(3, 39), x, y, split, 1, 3, cfg, tmp_path / 'a', show_progress=False)
    assert not (tmp_path / 'a' / 'last.safetensors').exists()
    meta = dict(label_names=features.label_names, builder='test_train_custom:pooled_stack',
                builder_args=dict(num_classes=3, in_chans=39))
    result = train_split(lambda: pooled_stack(3, 39), x, y, split, 1, 3, cfg, tmp_path / 'b', meta,
                         show_progress=False)
    assert 'war' in result
    assert tim_zoo.load_checkpoint(tmp_path / 'b' / 'last.safetensors', builder=pooled_stack).label_names == \
        features.label_names


def without_dropout(num_classes: int, in_chans: int) -> nn.Module:
    return nn.Sequential(nn.Conv1d(in_chans, 4, 1), nn.AdaptiveAvgPool1d(1), nn.Flatten(), nn.Linear(4, num_classes))


def test_names_are_kept_in_one_form_so_a_resumed_run_finds_them():
    by_function = TrainConfig(model=pooled_stack, init_hook=init_gmm_heads)
    by_name = TrainConfig(model='test_train_custom:pooled_stack', init_hook='tim_zoo.train:init_gmm_heads')
    assert by_function.model == by_name.model == 'test_train_custom:pooled_stack'
    assert by_function.init_hook == by_name.init_hook == 'tim_zoo.train.init_hooks:init_gmm_heads'
    # a timm-registered name is kept as its function's import name: a resumed run needs no registration first
    assert TrainConfig(model='tim_zoo_test_timm_stack').model == 'test_train_custom:tim_zoo_test_timm_stack'
    assert TrainConfig(model='at_tim').model == 'at_tim'
    with pytest.raises(ConfigurationError, match=r'got a built model \(_PooledStack\); give the function'):
        TrainConfig(model=pooled_stack(3, 39))
    import functools
    with pytest.raises(ConfigurationError, match='a partial cannot be kept by its import name'):
        TrainConfig(model=functools.partial(pooled_stack, filters=4))


def test_the_run_says_when_its_dropout_cannot_reach_the_model(tmp_path, caplog):
    features = _features()
    with caplog.at_level('WARNING', logger='tim_zoo.train'):
        run_training(_cfg(without_dropout), features, tmp_path / 'a', show_progress=False)
    assert 'dropout 0.1 is not applied: without_dropout takes no drop_rate argument' in caplog.text
    assert 'dropout 0.1 is not applied' in (tmp_path / 'a' / 'train.log').read_text()
    model = tim_zoo.train.create_training_model(_cfg('tim_zoo_test_timm_stack', dropout=0.3), 3, 39, 20)
    assert model.stack.blocks[0].convs[0].drop.p == 0.3                       # timm's models take drop_rate
    with pytest.raises(ConfigurationError, match=r'takes no argument filter \(did you mean filters\?\)'):
        tim_zoo.train.create_training_model(_cfg(pooled_stack, model_args=dict(filter=4)), 3, 39, 20)


@pytest.mark.parametrize('model_args, message', [
    (dict(filters=8.0), r'pooled_stack: filters takes a whole number \(default 8\), got 8.0: pass 8'),
    (dict(filters='8'), r"pooled_stack: filters takes a number \(default 8\), got '8'"),
])
def test_a_builder_argument_of_the_wrong_type_is_named_not_failed_inside_torch(model_args, message):
    with pytest.raises(ConfigurationError, match=message):
        tim_zoo.train.create_training_model(_cfg(pooled_stack, model_args=model_args), 3, 39, 20)
    model = tim_zoo.train.create_training_model(_cfg(pooled_stack, model_args=dict(drop_rate=0)), 3, 39, 20)
    assert isinstance(model, nn.Module)                  # an int for a float default is a number as well


def test_init_with_another_class_count_warns_for_a_model_of_blocks(tmp_path):
    path = tim_zoo.save_checkpoint(stack_with_head(3), tmp_path / 'three.safetensors', builder=stack_with_head,
                                   builder_args=dict(num_classes=3))
    with pytest.warns(UserWarning, match='its classifier has 3 classes, the model 4'):
        tim_zoo.load_weights(stack_with_head(4), path, allow_head_reset=True)


def stack_with_head(num_classes: int) -> nn.Module:
    return _PooledStackWithHead(num_classes)


class _PooledStackWithHead(nn.Module):
    def __init__(self, num_classes):
        super().__init__()
        self.stack = TemporalStack(8, 2, in_chans=39)
        self.head = nn.Module()
        self.head.fc = nn.Linear(8, num_classes)
        self.register_buffer('hooked', torch.zeros(()))

    def forward(self, x):
        return self.head.fc(self.stack(x)[-1].mean(-1))


def test_train_split_checks_its_checkpoint_meta_before_training(tmp_path):
    features = _features()
    x, y = torch.as_tensor(features.x), torch.as_tensor(features.y)
    split = make_splits('kfold', len(y), None, 3, 0, 0.1)[0]
    cfg = TrainConfig(model=pooled_stack, epochs=1, batch_size=16)
    good = dict(builder='test_train_custom:pooled_stack', builder_args=dict(num_classes=3, in_chans=39))
    for meta, message in [(dict(good, labels=['a']), 'unknown keys labels'),
                          (dict(builder=pooled_stack), 'give builder_args'),
                          (dict(good, builder_args=dict(num_classes=3, in_chans=39, filters=4)),
                           'builds another model than the one saved'),
                          (dict(good, builder_args=dict(classes=3)), r'pooled_stack\(\*\*\{.classes.: 3\}\) fails')]:
        with pytest.raises(ConfigurationError, match=message):
            train_split(lambda: pooled_stack(3, 39), x, y, split, 1, 3, cfg, tmp_path / 'a', meta, show_progress=False)
        assert not (tmp_path / 'a' / 'last.safetensors').exists()
    result = train_split(lambda: pooled_stack(3, 39), x, y, split, 1, 3, cfg, str(tmp_path / 'b'), good,
                         show_progress=False)                         # a folder given as a string
    assert 'war' in result


def test_checkpoints_load_with_the_builder_named_and_the_cli_predicts_with_it(tmp_path, monkeypatch, capsys):
    sf = pytest.importorskip('soundfile')
    path = tim_zoo.save_checkpoint(pooled_stack(3, 39), tmp_path / 'm.safetensors', label_names=['a', 'b', 'c'],
                                   feature_settings=dict(mean_signal_length=22050, level='peak'),
                                   builder=pooled_stack, builder_args=dict(num_classes=3, in_chans=39))
    assert isinstance(tim_zoo.load_checkpoint(path, builder='test_train_custom:pooled_stack'), _PooledStack)
    with pytest.warns(UserWarning, match='was saved from test_train_custom:pooled_stack; building it with '
                                         'tim_zoo_test_timm_stack instead'):
        tim_zoo.load_checkpoint(path, builder=tim_zoo_test_timm_stack)
    t = np.arange(22050) / 22050
    sf.write(str(tmp_path / 'v.wav'), (0.3 * np.sin(2 * np.pi * 150 * t) * (np.sin(2 * np.pi * 3 * t) > 0))
             .astype(np.float32), 22050)
    assert cli_main(['predict', str(tmp_path / 'v.wav'), '--checkpoint', str(path), '--quiet']) != 0
    assert '--builder MODULE:FUNCTION' in capsys.readouterr().err
    assert cli_main(['predict', str(tmp_path / 'v.wav'), '--checkpoint', str(path), '--builder',
                     'test_train_custom:pooled_stack', '--quiet']) == 0
    assert 'prediction' in capsys.readouterr().out
    assert cli_main(['predict', str(tmp_path / 'v.wav'), '--checkpoint', str(path), '--builder',
                     'test_train_custom:pooled_stack', '--model', 'tim', '--quiet']) == 2
    assert "model_name='tim' builds the model, so builder and trust_builder would not be used" in capsys.readouterr().err


def test_a_hook_that_fails_is_refused_before_anything_is_written(tmp_path):
    features = _features()
    with pytest.raises(ConfigurationError, match=r'init_hook tim_zoo.train.init_hooks:init_gmm_heads\(model, x '
                                                 r'\[16, 39, 20\]\) fails: ConfigurationError: .*no GMMClusteringHead'):
        run_training(_cfg(pooled_stack, init_hook=init_gmm_heads), features, tmp_path / 'run', show_progress=False)
    assert not (tmp_path / 'run').exists() or not any((tmp_path / 'run').iterdir())


def test_initial_weights_of_another_model_name_the_flags_that_build_it(tmp_path):
    """--init with a checkpoint of another model (a builder's, another architecture, other arguments): the mismatch
    error ends with the --model and --model-arg flags the file records."""
    from tim_zoo.exceptions import CheckpointMismatchError
    features = _features()
    cfg = TrainConfig(model=pooled_stack, model_args=dict(filters=6), epochs=1, protocol='kfold', folds=3, only_folds=[1],
                      batch_size=16)
    run_training(cfg, features, tmp_path / 'own', show_progress=False)
    own = str(tmp_path / 'own' / 'fold1' / 'last.safetensors')
    with pytest.raises(CheckpointMismatchError, match=r'the file was saved from test_train_custom:pooled_stack: '
                                                      r'train it with --model test_train_custom:pooled_stack '
                                                      r'--model-arg drop_rate=0.1 --model-arg filters=6$'):
        run_training(TrainConfig(model='timnet', init=own, epochs=1, protocol='kfold', folds=3, only_folds=[1]), features,
                     tmp_path / 'a', show_progress=False)
    with pytest.raises(CheckpointMismatchError, match=r'saved from test_train_custom:pooled_stack: train it with '
                                                      r'--model-arg drop_rate=0.1 --model-arg filters=6$'):
        run_training(TrainConfig(model=pooled_stack, init=own, epochs=1, protocol='kfold', folds=3, only_folds=[1]), features,
                     tmp_path / 'b', show_progress=False)
    tim = tim_zoo.create_model('tim', num_classes=3, filters=12, depth=3)
    tim_zoo.save_checkpoint(tim, tmp_path / 'tim.safetensors')
    with pytest.raises(CheckpointMismatchError, match=r'saved from tim: train it with --model-arg depth=3 '
                                                      r'--model-arg filters=12$'):
        run_training(TrainConfig(model='tim', init=str(tmp_path / 'tim.safetensors'), epochs=1, protocol='kfold',
                                 folds=3, only_folds=[1]), features, tmp_path / 'c', show_progress=False)
    with pytest.raises(CheckpointMismatchError, match=r'saved from tim: train it with --model tim$'):
        run_training(TrainConfig(model='timnet', init=str(tmp_path / 'tim.safetensors'), epochs=1, protocol='kfold',
                                 folds=3, only_folds=[1]), features, tmp_path / 'd', show_progress=False)
    # before any data: the command line extracted the features first, then refused
    from tim_zoo.train.run import check_config
    with pytest.raises(CheckpointMismatchError, match=r'saved from tim: train it with --model tim$'):
        check_config(TrainConfig(model='timnet', init=str(tmp_path / 'tim.safetensors')))
    with pytest.raises(CheckpointMismatchError, match=r'--model-arg depth=3 --model-arg filters=12$'):
        check_config(TrainConfig(model='tim', init=str(tmp_path / 'tim.safetensors')))
    check_config(TrainConfig(model='tim', init=str(tmp_path / 'tim.safetensors'), model_args=dict(filters=12, depth=3)))
    check_config(TrainConfig(model='tim', init=str(tmp_path / 'tim.safetensors'), model_args=dict(num_classes=3)))
    # (the data sets num_classes: the run refuses it with the data's numbers, not the file's)


def test_a_keras_release_as_initial_weights_of_another_model_is_refused_before_any_data(shared_dir):
    from tim_zoo.exceptions import CheckpointMismatchError
    from tim_zoo.train.run import check_config
    keras = shared_dir / 'weights' / 'timnet_official' / 'EMODB_46' / '10-fold_weights_best_3.hdf5'
    with pytest.raises(CheckpointMismatchError, match='Keras'):
        check_config(TrainConfig(model='tim', init=str(keras)))
    check_config(TrainConfig(model='timnet', init=str(keras)))
