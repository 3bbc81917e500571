"""timm's model interface on every model: features_only, forward_intermediates, group_matcher (layer-wise lr decay),
set_grad_checkpointing, no_weight_decay, reset_classifier."""
import pytest
import timm
import timm.optim
import torch

import tim_zoo
from conftest import small_model_args
from tim_zoo.exceptions import ConfigurationError
from tim_zoo.layers import GMMClusteringHead, WeightLayer

MODELS = tim_zoo.list_models()
FRAMES = 40


def _build(name, **kwargs):
    return tim_zoo.create_model(name, **small_model_args(name, FRAMES, **kwargs))


@pytest.fixture(scope='module')
def x():
    torch.manual_seed(0)
    return torch.randn(2, 39, FRAMES)


@pytest.mark.parametrize('name', MODELS)
def test_forward_intermediates_matches_forward_and_feature_info(name, x):
    model = _build(name).eval()
    with torch.no_grad():
        features, levels = model.forward_intermediates(x)
        assert torch.equal(features, model.forward_features(x))
        assert len(levels) == len(model.feature_info) > 0
        for level, info in zip(levels, model.feature_info):
            assert level.shape == (2, info['num_chs'], FRAMES // info['reduction']), info
        last2 = model.forward_intermediates(x, indices=2, intermediates_only=True)
        assert all(torch.equal(a, b) for a, b in zip(last2, levels[-2:]))
        nlc = model.forward_intermediates(x, indices=[0], output_fmt='NLC', intermediates_only=True)
        assert torch.equal(nlc[0], levels[0].transpose(1, 2))
    with pytest.raises(tim_zoo.ConfigurationError, match='output_fmt'):
        model.forward_intermediates(x, output_fmt='NCHW')


@pytest.mark.parametrize('name', MODELS)
def test_timm_features_only_returns_the_levels(name, x):
    feats = timm.create_model(name, features_only=True, out_indices=(0, -1), **small_model_args(name, FRAMES)).eval()
    model = _build(name).eval()
    missing, unexpected = model.load_state_dict(feats.model.state_dict(), strict=False)
    assert not unexpected and all(k.startswith('head.') or 'fusion' in k or 'weight_layer' in k or 'layer_weight' in k
                                  for k in missing), missing      # the feature net drops what follows the levels
    with torch.no_grad():
        got = feats(x)
        want = model.forward_intermediates(x, indices=[0, len(model.feature_info) - 1], intermediates_only=True)
    assert len(got) == 2 and all(torch.equal(a, b) for a, b in zip(got, want))
    assert feats.feature_info.channels() == [model.feature_info[0]['num_chs'], model.feature_info[-1]['num_chs']]


def test_timnet_features_are_the_tab_levels(x):
    model = tim_zoo.create_model('timnet', depth=3).eval()
    with torch.no_grad():
        levels = model.forward_intermediates(x, intermediates_only=True)
        both = torch.cat([x, x.flip(-1)], dim=1)
        h = model.tim.encoder.stem(both)
        for j, block in enumerate(model.tim.encoder.stack.blocks):
            h = block(h)
            assert torch.allclose(levels[j], h[:, :39] + h[:, 39:])


@pytest.mark.parametrize('name', MODELS)
def test_layer_decay_groups_stem_levels_head(name):
    model = _build(name)
    matcher = model.group_matcher()
    opt = timm.optim.create_optimizer_v2(model, 'adamw', lr=1e-3, layer_decay=0.75)
    seen = [p for g in opt.param_groups for p in g['params']]
    assert len(seen) == len(list(model.parameters())) == len({id(p) for p in seen})
    scale = {id(p): g['lr_scale'] for g in opt.param_groups for p in g['params']}
    named = dict(model.named_parameters())
    head = [scale[id(p)] for n, p in named.items() if n.startswith('head.')]
    assert head and set(head) == {1.0}
    levels = len(model.feature_info)
    scales = sorted(set(scale.values()))
    assert len(scales) >= levels, f'{len(scales)} lr scales for {levels} levels'
    if matcher['stem']:
        stem = [scale[id(p)] for n, p in named.items() if n.split('.')[0] + '.' in matcher['stem'] or
                any(n.startswith(s + '.') for s in model._stem_modules)]
        assert stem and max(stem) == scales[0] < 1.0
    first = model.feature_info[0].get('modules', [model.feature_info[0]['module']])[0]     # holds the level's weights
    last = model.feature_info[-1].get('modules', [model.feature_info[-1]['module']])[0]
    first_scale = {scale[id(p)] for n, p in named.items() if n.startswith(first + '.')}
    last_scale = {scale[id(p)] for n, p in named.items() if n.startswith(last + '.')}
    assert len(first_scale) == len(last_scale) == 1 and first_scale.pop() < last_scale.pop()


@pytest.mark.parametrize('name', ['timnet', 'at_deltatim_v2', 'multitim', 'cnn_ml_transformer', 'transformer_tim', 'set'])
def test_grad_checkpointing_gives_the_same_gradients(name, x):
    def grads(checkpointing):
        torch.manual_seed(1)
        model = _build(name).train()
        model.set_grad_checkpointing(checkpointing)
        torch.manual_seed(2)
        model(x).square().sum().backward()
        return {n: p.grad.clone() for n, p in model.named_parameters() if p.grad is not None}

    plain, checkpointed = grads(False), grads(True)
    assert plain.keys() == checkpointed.keys()
    for n in plain:
        assert torch.allclose(plain[n], checkpointed[n], atol=1e-6), n


def test_grad_checkpointing_is_used(x, monkeypatch):
    import tim_zoo.layers._checkpoint as ckpt
    calls = []
    real = ckpt.torch.utils.checkpoint.checkpoint
    monkeypatch.setattr(ckpt.torch.utils.checkpoint, 'checkpoint', lambda *a, **k: calls.append(1) or real(*a, **k))
    model = tim_zoo.create_model('timnet', depth=3).train()
    model.set_grad_checkpointing()
    model(x).sum().backward()
    assert len(calls) == 3
    calls.clear()
    with torch.no_grad():
        model(x)
    assert not calls


@pytest.mark.parametrize('name', MODELS)
def test_no_weight_decay_names_fusion_weights(name):
    model = _build(name, head='gmm')
    names = model.no_weight_decay()
    params = dict(model.named_parameters())
    assert names <= set(params)
    expected = {f'{m}.{n}' if m else n for m, mod in model.named_modules() if isinstance(mod, (WeightLayer, GMMClusteringHead))
                for n, _ in mod.named_parameters(recurse=False)}
    assert expected <= names
    opt = timm.optim.create_optimizer_v2(model, 'adamw', lr=1e-3, weight_decay=0.05)
    decay = {id(p): g['weight_decay'] for g in opt.param_groups for p in g['params']}
    assert all(decay[id(params[n])] == 0 for n in names)


def test_no_weight_decay_covers_the_weight_layer():
    assert 'tim.weight_layer.weight' in tim_zoo.create_model('timnet').no_weight_decay()
    assert {'head.means', 'head.log_vars', 'head.mix_logits'} <= tim_zoo.create_model('timnet', head='gmm').no_weight_decay()


@pytest.mark.parametrize('name', MODELS)
def test_reset_classifier_timm_signature(name, x):
    model = _build(name).eval()
    model.reset_classifier(3, global_pool=None)
    assert model(x).shape == (2, 3)
    model.reset_classifier(0)
    assert model(x).shape == (2, model.head_hidden_size)
    if name not in POOLING:
        with pytest.raises(tim_zoo.ConfigurationError, match='does not pool time.*forward_features'):
            model.reset_classifier(3, global_pool='max')
        with pytest.raises(tim_zoo.ConfigurationError, match='does not pool time'):
            tim_zoo.create_model(name, global_pool='')


#: the models whose head pools time (`PoolHead`): timm's `global_pool` chooses how
POOLING = ('timnet', 'tim', 'set')


@pytest.mark.parametrize('name', POOLING)
def test_global_pool_as_timm_offers_it(name, x, tmp_path):
    model = _build(name).eval()
    features = model.forward_features(x)                                   # [2, C, T]
    fc = model.get_classifier()
    for pool, pooled in (('avg', features.mean(-1)), ('max', features.amax(-1)),
                         ('avgmax', 0.5 * (features.mean(-1) + features.amax(-1)))):
        model.reset_classifier(model.num_classes, global_pool=pool)
        model.head.fc = fc                                                  # the same classifier, pooled otherwise
        torch.testing.assert_close(model(x), fc(pooled))
    model.reset_classifier(4, global_pool='')
    assert model(x).shape == (2, 4, x.shape[-1])                           # per-frame logits
    torch.testing.assert_close(model(x)[..., 5], model.get_classifier()(features[..., 5]))
    model.reset_classifier(0, global_pool='')
    torch.testing.assert_close(model(x), features)                         # unpooled frame features
    built = tim_zoo.create_model(name, global_pool='max', num_classes=3).eval()
    via_timm = timm.create_model(name, global_pool='', num_classes=0).eval()
    assert built.head.pool_type == 'max' and via_timm(x).ndim == 3
    tim_zoo.save_checkpoint(built, tmp_path / 'm.safetensors')              # the pooling is part of the checkpoint
    loaded = tim_zoo.load_checkpoint(tmp_path / 'm.safetensors').eval()
    assert loaded.head.pool_type == 'max' and torch.equal(loaded(x), built(x))
    as_file = tim_zoo.create_model(name, pretrained=True, pretrained_cfg_overlay=dict(
        file=str(tmp_path / 'm.safetensors'))).eval()
    assert as_file.head.pool_type == 'max' and torch.equal(as_file(x), built(x))
    unpooled = tim_zoo.create_model(name, pretrained=True, global_pool='', pretrained_cfg_overlay=dict(
        file=str(tmp_path / 'm.safetensors')))                             # the caller's choice wins
    assert unpooled.head.pool_type == ''
    with pytest.raises(tim_zoo.ConfigurationError, match="global_pool must be one of 'avg', 'max', 'avgmax', ''"):
        model.reset_classifier(3, global_pool='catavgmax')
    with pytest.raises(tim_zoo.ConfigurationError, match='per-frame logits.*set_global_pool'):
        tim_zoo.EmotionRecognizer(via_timm, feature_settings=dict(mean_signal_length=None))


@pytest.mark.parametrize('out_indices, said', [((9,), r'out_indices \[9\]: timnet has 8 levels, indices 0 to 7'),
                                               ((0, -9), r'out_indices \[-9\]'), (9, r'out_indices=9 \(the last n'),
                                               (0, r'n is 1 to 8')])
def test_feature_indices_out_of_range_are_refused_not_wrapped(out_indices, said):
    """Level 9 of 8 was taken as level 1 (i % 8); timm refuses indices out of range."""
    with pytest.raises(ConfigurationError, match=said):
        timm.create_model('timnet', features_only=True, out_indices=out_indices)
    assert len(timm.create_model('timnet', features_only=True, out_indices=(-8, 7)).feature_info.channels()) == 2
