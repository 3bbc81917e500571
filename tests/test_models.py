"""Every registered model: shapes, gradients, determinism, batch independence, the timm interface."""
import pytest
import timm
import torch
from torch import nn

import tim_zoo
from tim_zoo.exceptions import ConfigurationError, InputShapeError

MODEL_NAMES = tim_zoo.list_models()
DOCUMENTED = [
    'timnet', 'tim', 'transformer', 'transformer_tim', 'transformer_deltatim', 'mltransformer_tim', 'at_tim',
    'at_deltatim', 'at_deltatim_v2', 'multitim', 'cnn_transformer', 'cnn_ml_transformer', 'set', 'set_official',
]
FRAMES = 64


def _build(name, **kwargs):
    model = tim_zoo.create_model(name, **kwargs)
    if model.fixed_len is not None:
        model = tim_zoo.create_model(name, seq_len=FRAMES, **kwargs)
    return model


def _randomise_bn_stats(model):
    for m in model.modules():
        if isinstance(m, nn.modules.batchnorm._BatchNorm):
            m.running_mean.uniform_(-0.2, 0.2)
            m.running_var.uniform_(0.5, 1.5)
    return model


def test_every_documented_model_is_registered():
    assert sorted(MODEL_NAMES) == sorted(DOCUMENTED)


@pytest.mark.parametrize('name', MODEL_NAMES)
def test_output_shape_and_features(name):
    model = _build(name, num_classes=5).eval()
    x = torch.randn(3, 39, FRAMES)
    logits = model(x)
    assert logits.shape == (3, 5) and torch.isfinite(logits).all()
    feats = model.forward_features(x)
    assert feats.shape[:2] == (3, model.num_features)
    pre = model.forward_head(feats, pre_logits=True)
    assert pre.shape == (3, model.head_hidden_size)
    torch.testing.assert_close(model.get_classifier()(pre), logits)


@pytest.mark.parametrize('name', MODEL_NAMES)
def test_gradients_reach_every_parameter(name):
    model = _build(name, num_classes=4).train()
    x = torch.randn(4, 39, FRAMES)
    loss = nn.functional.cross_entropy(model(x), torch.tensor([0, 1, 2, 3]))
    loss.backward()
    missing = [n for n, p in model.named_parameters() if p.requires_grad and p.grad is None]
    assert not missing, f'no gradient reached {missing}'
    bad = [n for n, p in model.named_parameters() if not torch.isfinite(p.grad).all()]
    assert not bad, f'non-finite gradients in {bad}'
    zero = [n for n, p in model.named_parameters() if p.grad.abs().sum() == 0]
    assert not zero, f'all-zero gradients in {zero}'


@pytest.mark.parametrize('name', MODEL_NAMES)
def test_eval_determinism_and_batch_independence(name):
    model = _randomise_bn_stats(_build(name)).eval()
    x = torch.randn(4, 39, FRAMES)
    with torch.no_grad():
        full = model(x)
        assert torch.equal(full, model(x))
        singles = torch.cat([model(x[i:i + 1]) for i in range(4)])
        others = model(torch.cat([x[:2], torch.randn(3, 39, FRAMES) * 5]))
    torch.testing.assert_close(singles, full, atol=1e-5, rtol=1e-4)
    torch.testing.assert_close(others[:2], full[:2], atol=1e-5, rtol=1e-4)


@pytest.mark.parametrize('name', MODEL_NAMES)
def test_training_mode_is_stochastic_where_dropout_exists(name):
    model = _build(name).train()
    x = torch.randn(2, 39, FRAMES)
    assert not torch.equal(model(x), model(x))


@pytest.mark.parametrize('name', MODEL_NAMES)
def test_reset_classifier(name):
    model = _build(name, num_classes=7).eval()
    x = torch.randn(2, 39, FRAMES)
    model.reset_classifier(3)
    assert model.num_classes == 3 and model(x).shape == (2, 3)
    assert model.get_classifier().out_features == 3
    model.reset_classifier(0)
    assert isinstance(model.get_classifier(), nn.Identity)
    assert model(x).shape == (2, model.head_hidden_size)


@pytest.mark.parametrize('name', MODEL_NAMES)
def test_timm_create_model_builds_the_same_architecture(name):
    ours = tim_zoo.create_model(name)
    theirs = timm.create_model(name)
    assert type(ours) is type(theirs)
    assert {k: v.shape for k, v in ours.state_dict().items()} == {k: v.shape for k, v in theirs.state_dict().items()}
    cfg = theirs.pretrained_cfg
    assert cfg['architecture'] == name
    for image_key in ('mean', 'std', 'crop_pct', 'interpolation'):
        assert image_key not in cfg, f'image default {image_key} leaked into {name} config'
    assert cfg['input_size'] == (39, 188)                    # channels and frames, not an image's (3, 224, 224)


@pytest.mark.parametrize('name', [n for n in MODEL_NAMES if n != 'set_official'])
def test_gmm_head_on_frame_features(name):
    model = tim_zoo.create_model(name, head='gmm', gmm_components=4, num_classes=3).eval()
    from tim_zoo.layers import GMMClusteringHead
    assert isinstance(model.head, GMMClusteringHead)
    assert model.fixed_len is None
    for frames in (40, 70):
        assert model(torch.randn(2, 39, frames)).shape == (2, 3)
    model.train()
    model(torch.randn(2, 39, 40)).sum().backward()
    for p in model.head.parameters():
        assert p.grad is not None and torch.isfinite(p.grad).all()


def test_set_official_gives_frame_features_and_takes_a_gmm_head():
    """`forward_features` is `[B, num_layers*d_model, T]` as every model's `[B, C, T]` (the layers' outputs
    concatenated, layer-major); with `head="gmm"` any length."""
    model = tim_zoo.create_model('set_official', num_layers=2, d_model=48, num_heads=4, seq_len=40).eval()
    x = torch.randn(2, 39, 40)
    features, levels = model.forward_intermediates(x)
    assert features.shape == (2, 96, 40) and model.num_features == 96
    torch.testing.assert_close(features, torch.cat(levels, dim=1))
    gmm = tim_zoo.create_model('set_official', head='gmm', num_layers=2, d_model=32, num_heads=4)
    assert gmm(torch.randn(2, 39, 57)).shape == (2, 7) and gmm.fixed_len is None
    from tim_zoo.models.set import SpeechEmotionTransformer
    with pytest.raises(ConfigurationError, match='needs seq_len'):       # timm drops seq_len=None: the class itself
        SpeechEmotionTransformer(layer_fusion='conv2d', seq_len=None)


@pytest.mark.parametrize('name', [n for n in MODEL_NAMES if tim_zoo.create_model(n).fixed_len is not None])
def test_fixed_length_models_refuse_other_lengths(name):
    model = tim_zoo.create_model(name, seq_len=100)
    with pytest.raises(InputShapeError, match=r'seq_len=100.*got 120 frames'):
        model(torch.randn(1, 39, 120))


@pytest.mark.parametrize('name', ['timnet', 'tim', 'multitim', 'set'])
def test_length_agnostic_models_take_any_length(name):
    model = tim_zoo.create_model(name).eval()
    assert model.fixed_len is None
    for frames in (5, 188, 606):
        assert model(torch.randn(1, 39, frames)).shape == (1, 7)


def test_default_model_is_the_users_example():
    model = tim_zoo.create_model('at_deltatim_v2', num_classes=2)
    assert model(torch.randn(2, 39, 188)).shape == (2, 2)
    assert model.frame_mask.p == 0.2 and model.head.drop.p == 0.3


def test_timnet_structure_matches_the_keras_release():
    model = tim_zoo.create_model('timnet')
    enc = model.tim.encoder
    assert not enc.share_weights and len(enc.stack.blocks) == 8
    assert enc.stack.blocks[0].convs[0].conv.weight.shape == (78, 39, 2)     # both directions' kernels
    bn = enc.stack.blocks[0].convs[0].norm
    assert bn.eps == 1e-3 and bn.momentum == 0.01
    assert tim_zoo.count_params(model) == 104_496
    deep = tim_zoo.create_model('timnet', depth=10, num_classes=4)
    assert len(deep.tim.encoder.stack.blocks) == 10 and deep.tim.weight_layer.num_inputs == 10


def test_tim_options():
    tim = tim_zoo.create_model('tim')
    assert tim.tim.encoder.share_weights
    unweighted = tim_zoo.create_model('tim', weighted=False).eval()
    assert unweighted.tim.weight_layer is None
    x = torch.randn(1, 39, 30)
    torch.testing.assert_close(unweighted.forward_features(x), unweighted.tim.encoder(x)[-1])
    add = tim_zoo.create_model('tim', residual='add')
    assert all(b.residual == 'add' for b in add.tim.encoder.stack.blocks)


def test_family_variants_are_arguments():
    assert tim_zoo.create_model('at_deltatim').tim.stem is not None            # one direction
    assert tim_zoo.create_model('at_deltatim_v2').tim.encoder.fuse is not None
    aft = tim_zoo.create_model('at_tim', fusion='aft_local', seq_len=50).eval()
    assert aft(torch.randn(1, 39, 50)).shape == (1, 7)
    assert tim_zoo.create_model('cnn_ml_transformer').layer_weight is not None
    assert tim_zoo.create_model('mltransformer_tim').layer_fusion.in_features == 3
    gelu = tim_zoo.create_model('transformer_tim', transformer_act='gelu')
    assert gelu.transformer.layers[0].activation is torch.nn.functional.gelu
    assert tim_zoo.create_model('set').pos_embed is not None
    assert tim_zoo.create_model('set_official').pos_embed is None
