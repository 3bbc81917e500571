"""Weight initialisation: Keras' scheme (the TIM-Net authors' model) and PyTorch's defaults."""
import math

import pytest
import torch

import tim_zoo
from tim_zoo.layers import GroupConv1d, WeightLayer


def _uniform_ok(w: torch.Tensor, bound: float):
    """All within the bound, and (for enough values) spread like U(-bound, bound): std bound/sqrt(3)."""
    assert w.abs().max() <= bound + 1e-7
    if w.numel() >= 1000:
        assert abs(w.std().item() - bound / math.sqrt(3)) < 0.06 * bound


def test_timnet_starts_from_keras_initialisation():
    torch.manual_seed(0)
    model = tim_zoo.create_model('timnet')
    assert model.init_args['weight_init'] == 'keras'
    enc = model.tim.encoder
    # Keras sees one direction: stem kernel [1, 39, 39], TAB kernels [2, 39, 39], dense [39, 7]
    _uniform_ok(enc.stem.conv.weight, math.sqrt(6 / (39 + 39)))
    for block in enc.stack.blocks:
        for unit in block.convs:
            _uniform_ok(unit.conv.weight, math.sqrt(6 / (2 * 39 + 2 * 39)))
            assert torch.count_nonzero(unit.conv.bias) == 0
            assert torch.all(unit.norm.weight == 1) and torch.count_nonzero(unit.norm.bias) == 0
    all_tab = torch.cat([u.conv.weight.flatten() for b in enc.stack.blocks for u in b.convs])
    _uniform_ok(all_tab, math.sqrt(6 / 156))
    _uniform_ok(model.head.fc.weight, math.sqrt(6 / (39 + 7)))
    assert torch.count_nonzero(model.head.fc.bias) == 0 and torch.count_nonzero(enc.stem.conv.bias) == 0
    assert model.tim.weight_layer.weight.abs().max() <= 0.05


def test_torch_initialisation_is_pytorchs_default():
    torch.manual_seed(0)
    model = tim_zoo.create_model('timnet', weight_init='torch')
    stem = model.tim.encoder.stem.conv
    assert torch.count_nonzero(stem.bias) > 0                       # PyTorch: biases in +-1/sqrt(fan_in)
    assert stem.weight.abs().max() <= 1 / math.sqrt(39) + 1e-7
    # the seed models start as the research code's: PyTorch's defaults, weight layers standard normal
    assert tim_zoo.create_model('tim').init_args['weight_init'] == 'research'
    assert tim_zoo.create_model('at_deltatim_v2').init_args['weight_init'] == 'research'
    with pytest.raises(tim_zoo.ConfigurationError, match='weight_init'):
        tim_zoo.create_model('timnet', weight_init='xavier')


@pytest.mark.parametrize('name', tim_zoo.list_models())
def test_every_model_takes_keras_initialisation(name):
    torch.manual_seed(0)
    model = tim_zoo.create_model_for_frames(name, 60, weight_init='keras')
    for module in model.modules():
        if isinstance(module, (torch.nn.Conv1d, GroupConv1d, torch.nn.Linear)) and module.bias is not None:
            assert torch.count_nonzero(module.bias) == 0, module
        if isinstance(module, torch.nn.Linear):
            assert module.weight.abs().max() <= math.sqrt(6 / (module.in_features + module.out_features)) + 1e-7
        if isinstance(module, (torch.nn.Conv1d, GroupConv1d)):
            w = module.weight
            per_group = w.shape[0] if getattr(module, 'share_groups', False) else w.shape[0] // module.groups
            assert w.abs().max() <= math.sqrt(6 / (w.shape[1] * w.shape[2] + per_group * w.shape[2])) + 1e-7, module
        if isinstance(module, WeightLayer):
            assert module.weight.abs().max() <= 0.05
    assert model.eval()(torch.randn(2, 39, 60)).isfinite().all()


def test_weight_init_is_recorded_in_checkpoints(tmp_path):
    model = tim_zoo.create_model('at_tim', weight_init='keras')
    tim_zoo.save_checkpoint(model, tmp_path / 'm.safetensors')
    _, meta = tim_zoo.weights.read_checkpoint(tmp_path / 'm.safetensors')
    assert meta['model_args']['weight_init'] == 'keras'
    again = tim_zoo.load_checkpoint(tmp_path / 'm.safetensors')
    assert again.init_args['weight_init'] == 'keras'
    assert all(torch.equal(a, b) for a, b in zip(model.state_dict().values(), again.state_dict().values()))


def test_a_subclass_default_and_a_new_classifier_follow_the_weight_init():
    from tim_zoo.models import ATTIM

    class KerasATTIM(ATTIM):
        default_weight_init = 'keras'

    model = KerasATTIM(num_classes=4, depth=2)
    assert model.init_args['weight_init'] == 'keras' and torch.count_nonzero(model.head.fc.bias) == 0
    timnet = tim_zoo.create_model('timnet')
    timnet.reset_classifier(3)
    assert torch.count_nonzero(timnet.head.fc.bias) == 0
    assert timnet.head.fc.weight.abs().max() <= math.sqrt(6 / (39 + 3)) + 1e-7
    assert timnet.head.fc.weight.abs().max() > 1 / math.sqrt(39)      # beyond PyTorch's bound: not torch's init


def test_a_new_classifier_leaves_the_rest_of_the_head_as_it_was():
    model = tim_zoo.create_model('transformer_tim', weight_init='keras', d_model=32, num_heads=4, d_ff=64)
    with torch.no_grad():
        model.head.hidden.weight.mul_(3.0)                  # as after training
    hidden = model.head.hidden.weight.clone()
    model.reset_classifier(3)
    assert torch.equal(model.head.hidden.weight, hidden)
