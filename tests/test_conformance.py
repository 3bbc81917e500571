"""timm's model contract on every registered model, in the spirit of timm's own `tests/test_models.py` with `[B, 39, T]`
sequences: forward and backward, configs true to the model, features (getter, hook and fx against
`forward_intermediates`), torch.fx tracing, torch.export, pooling, and the hub-folder round trip."""
import json
import shutil
import tempfile
from pathlib import Path

import pytest
import timm
import torch

import tim_zoo
from conftest import small_model_args

MODELS = tim_zoo.list_models()
FRAMES = 40


def _args(name, **kwargs):
    return small_model_args(name, FRAMES, **kwargs)


def _model(name, **kwargs):
    args = _args(name, **kwargs)
    torch.manual_seed(0)
    return _set_statistics(tim_zoo.create_model(name, **args)).eval()


def _set_statistics(module):
    """Non-trivial BatchNorm statistics (so BN is not an identity in eval), the same for a model and any wrapper of
    it: set by buffer, as an fx graph module holds the buffers of the norms it folded, not the norms."""
    for name, buffer in module.named_buffers():
        if name.endswith('running_mean'):
            buffer.copy_(torch.linspace(-0.2, 0.2, buffer.numel()))
        elif name.endswith('running_var'):
            buffer.copy_(torch.linspace(0.5, 1.5, buffer.numel()))
    return module


@pytest.fixture(scope='module')
def x():
    return torch.randn(2, 39, FRAMES, generator=torch.Generator().manual_seed(0))


@pytest.mark.parametrize('name', MODELS)
def test_forward_backward(name, x):
    model = _model(name).train()
    out = model(x)
    assert out.shape == (2, 4) and torch.isfinite(out).all()
    out.sum().backward()
    unused = [n for n, p in model.named_parameters() if p.requires_grad and p.grad is None]
    assert not unused, f'parameters without gradient: {unused}'


@pytest.mark.parametrize('name', MODELS)
def test_config_is_true_to_the_model(name, x):
    model = _model(name)
    cfg = model.pretrained_cfg
    channels, frames = cfg['input_size']
    assert channels == model.in_chans == 39 and cfg['num_classes'] == model.num_classes == 4
    assert cfg['fixed_input_size'] == (model.fixed_len is not None)
    if cfg['fixed_input_size']:
        assert frames == model.fixed_len == FRAMES
        with pytest.raises(tim_zoo.InputShapeError):
            model(torch.randn(1, 39, frames + 1))
    else:
        model(torch.randn(1, 39, frames + 8))                  # a free-length model takes another length
    with torch.no_grad():
        features = model.forward_features(torch.randn(1, *cfg['input_size']))
    assert features.shape == (1, model.num_features, cfg['pool_size'][0])
    modules = dict(model.named_modules())
    assert isinstance(modules[cfg['classifier']], (torch.nn.Linear, torch.nn.Identity))
    assert modules[cfg['classifier']] is model.get_classifier()
    order = []                                         # first_conv: the first module with weights to run
    hooks = [m.register_forward_pre_hook(lambda m, a, n=n: order.append(n)) for n, m in model.named_modules()
             if any(True for _ in m.parameters(recurse=False))]
    with torch.no_grad():
        model(x)
    for h in hooks:
        h.remove()
    assert order[0] == cfg['first_conv']
    features = cfg['input_features']
    assert features['n_mfcc'] == 39 and features['order'] == (1 if name == 'timnet' else 3)
    assert 'feature_settings' not in cfg                 # untrained: the features it was designed for, not trained on
    model.reset_classifier(2)
    assert model.pretrained_cfg['num_classes'] == 2


def test_a_tag_config_holds_the_features_of_its_training():
    model = tim_zoo.create_model('timnet.tim_zoo_emodb', pretrained=True)
    cfg = model.pretrained_cfg
    trained = {k: v for k, v in cfg['feature_settings'].items() if k in cfg['input_features']}
    assert cfg['input_features'] == trained and cfg['input_features']['level'] == 'peak'
    assert cfg['input_size'] == (39, 188) and cfg['num_classes'] == 7
    model.reset_classifier(3)                                 # a new head: the old label names go everywhere
    assert model.label_names is None and 'label_names' not in model.pretrained_cfg
    assert model.pretrained_cfg['num_classes'] == 3
    assert tim_zoo.create_model('timnet.iemocap_16').pretrained_cfg['input_features']['order'] == 1


@pytest.mark.parametrize('name', MODELS)
def test_features_getter_hook_and_fx_return_the_levels(name, x):
    reference = _model(name).forward_intermediates(x, indices=[0, -2, -1], intermediates_only=True)
    args = _args(name)
    for cls in ('getter', 'hook', 'fx'):
        torch.manual_seed(0)
        net = timm.create_model(name, features_only=True, feature_cls=cls, out_indices=(0, -2, -1), **args)
        out = _set_statistics(net).eval()(x)
        assert len(out) == 3, cls
        for got, want in zip(out, reference):
            assert torch.equal(got, want), cls
        assert [i['num_chs'] for i in net.feature_info.get_dicts()] == [t.shape[1] for t in reference]


def test_an_unknown_feature_class_is_refused():
    with pytest.raises(tim_zoo.ConfigurationError, match="'getter', 'hook', 'fx'"):
        tim_zoo.create_model('timnet', features_only=True, feature_cls='pyramid')


@pytest.mark.parametrize('name', MODELS)
def test_fx_traces_in_eval_and_training(name, x):
    model = _model(name)
    traced = torch.fx.symbolic_trace(model)
    assert torch.equal(traced(x), model(x))
    with torch.no_grad():                                  # the trace reads the weights and statistics when it runs
        for tensor in [*model.parameters(), *model.buffers()]:
            if tensor.is_floating_point():
                tensor.mul_(1.5)
    assert torch.equal(traced(x), model(x))
    with pytest.raises(tim_zoo.InputShapeError, match='39 channels'):
        traced(torch.randn(2, 40, FRAMES))                 # the traced module checks its input as the model does
    model.train()
    traced = torch.fx.symbolic_trace(model)
    start = {k: v.clone() for k, v in model.state_dict().items()}
    outputs, states = [], []
    for fn in (traced, model):
        model.load_state_dict(start)
        torch.manual_seed(1)                               # same dropout draws
        outputs.append(fn(x))
        states.append({k: v.clone() for k, v in model.state_dict().items()})
    assert torch.equal(*outputs)
    for key in states[0]:                                  # BatchNorm statistics updated as the model updates them
        assert torch.equal(states[0][key], states[1][key]), key
    traced(x).sum().backward()


@pytest.mark.parametrize('name', MODELS)
def test_export_with_dynamic_batch_and_length(name, x):
    model = _model(name)
    batch = torch.export.Dim('batch', min=1, max=64)
    frames = torch.export.Dim('frames', min=16, max=1024)
    dynamic = {0: batch} if model.fixed_len is not None else {0: batch, 2: frames}
    exported = torch.export.export(model, (x,), dynamic_shapes=(dynamic,)).module()
    other = torch.randn(3, 39, FRAMES if model.fixed_len is not None else FRAMES + 24)
    with torch.no_grad():
        torch.testing.assert_close(exported(other), model(other), atol=1e-5, rtol=1e-5)


POOLING = ('timnet', 'tim', 'set')


@pytest.mark.parametrize('name', MODELS)
def test_global_pool_where_the_head_pools_time(name, x):
    if name in POOLING:
        model = _model(name, global_pool='', num_classes=0)
        assert model(x).shape == (2, model.num_features, FRAMES)
    else:
        with pytest.raises(tim_zoo.ConfigurationError, match='forward_features'):
            _model(name, global_pool='max')


def _hub_cache(root: Path, repo: str, folder: Path) -> Path:
    """A Hugging Face hub cache holding `folder` as huggingface_hub lays it out: refs/main -> snapshots/<commit>/."""
    commit = 'fedcba9876543210fedcba9876543210fedcba98'
    repo_dir = root / ('models--' + repo.replace('/', '--'))
    (repo_dir / 'refs').mkdir(parents=True)
    (repo_dir / 'refs' / 'main').write_text(commit)
    shutil.copytree(folder, repo_dir / 'snapshots' / commit)
    return root


@pytest.mark.parametrize('name', MODELS)
def test_hub_folder_round_trip(name, x, tmp_path, monkeypatch):
    pytest.importorskip('huggingface_hub')
    model = _model(name)
    model.label_names = ['a', 'b', 'c', 'd']
    settings = dict(sample_rate=16000, n_mfcc=39, order=3, hop_length=512, mean_signal_length=None, level='peak')
    folder = tim_zoo.save_for_hub(model, tmp_path / 'folder', feature_settings=settings)
    assert sorted(p.name for p in folder.iterdir()) == ['README.md', 'config.json', 'model.safetensors']
    config = json.loads((folder / 'config.json').read_text())
    assert config['architecture'] == name and config['label_names'] == ['a', 'b', 'c', 'd']
    assert name in (folder / 'README.md').read_text()
    cache = _hub_cache(tmp_path / 'hub', 'someone/' + name, folder)
    monkeypatch.setenv('HF_HUB_OFFLINE', '1')
    for create in (tim_zoo.create_model, timm.create_model):
        for source, kwargs in ((f'local-dir:{folder}', {}), (f'hf-hub:someone/{name}', dict(cache_dir=cache))):
            loaded = create(source, pretrained=True, **kwargs).eval()
            assert type(loaded) is type(model) and loaded.model_name == name
            assert torch.equal(loaded(x), model(x)), source
            assert loaded.label_names == ['a', 'b', 'c', 'd']
            assert loaded.pretrained_cfg['feature_settings'] == settings
            assert loaded.pretrained_cfg['input_features']['sample_rate'] == 16000


def test_hub_folder_loads_the_weights_file_as_saved(x, tmp_path):
    """The weight file's own arguments build the model (not config.json's, if the two disagree); arguments the
    caller chooses against the file's are warned about; features_only works on a folder with every feature class."""
    pytest.importorskip('huggingface_hub')
    mul, add = _model('timnet'), _model('timnet', residual='add')
    folder = tim_zoo.save_for_hub(mul, tmp_path / 'h')
    tim_zoo.save_checkpoint(add, folder / 'model.safetensors')              # the file replaced by another's
    assert torch.equal(tim_zoo.create_model(f'local-dir:{folder}', pretrained=True).eval()(x), add(x))
    with pytest.warns(UserWarning, match="residual='add'.*another function"):
        tim_zoo.create_model('timnet', pretrained=True, residual='mul',
                             pretrained_cfg_overlay=dict(file=str(folder / 'model.safetensors')))
    for cls in ('hook', 'fx'):
        net = tim_zoo.create_model(f'local-dir:{folder}', pretrained=True, features_only=True, feature_cls=cls)
        assert len(net.eval()(x)) == len(add.feature_info)
    assert tim_zoo.create_model(f'local-dir:{folder}', pretrained=True).pretrained_cfg.get('mean') is None


def test_hub_folder_of_another_library_is_refused(tmp_path):
    (tmp_path / 'config.json').write_text(json.dumps(dict(architecture='resnet18', num_classes=10)))
    with pytest.raises(tim_zoo.UnknownModelError, match='resnet18'):
        tim_zoo.create_model(f'local-dir:{tmp_path}', pretrained=True)
    with pytest.raises(tim_zoo.WeightsNotFoundError, match='config.json'):
        tim_zoo.create_model(f'local-dir:{tmp_path / "none"}', pretrained=True)


def test_timm_save_for_hf_folder_loads_too(x, tmp_path):
    pytest.importorskip('huggingface_hub')
    from timm.models import save_for_hf
    model = tim_zoo.create_model('timnet.tim_zoo_emodb', pretrained=True).eval()
    save_for_hf(model, tmp_path, safe_serialization=True)
    loaded = tim_zoo.create_model(f'local-dir:{tmp_path}', pretrained=True).eval()
    assert torch.equal(loaded(x), model(x)) and loaded.label_names == model.label_names
    assert loaded.pretrained_cfg['feature_settings']['level'] == 'peak'


@pytest.mark.parametrize('name', MODELS)
def test_torchscript_script_save_and_load(name, x, tmp_path):
    model = _model(name)
    scripted = torch.jit.script(model)
    with torch.no_grad():
        torch.testing.assert_close(scripted(x), model(x), atol=1e-6, rtol=1e-6)
        torch.testing.assert_close(scripted.forward_features(x), model.forward_features(x), atol=1e-6, rtol=1e-6)
    torch.jit.save(scripted, tmp_path / 'model.pt')                # no Python left in the compiled model
    loaded = torch.jit.load(tmp_path / 'model.pt')
    with torch.no_grad():
        torch.testing.assert_close(loaded(x), model(x), atol=1e-6, rtol=1e-6)


@pytest.mark.parametrize('name', MODELS)
def test_prune_intermediate_layers(name, x):
    model = _model(name)
    levels = len(model.feature_info)
    weights = sum(p.numel() for p in model.parameters())
    for indices in ([0], [levels // 2], [0, levels - 2], 1):
        pruned = _model(name)
        kept = pruned.prune_intermediate_layers(indices)
        want = model.forward_intermediates(x, indices=indices, intermediates_only=True)
        got = pruned.forward_intermediates(x, indices=kept, intermediates_only=True)
        assert len(got) == len(want) and all(torch.equal(a, b) for a, b in zip(got, want))
        assert len(pruned.feature_info) == max(kept) + 1
        assert torch.equal(pruned(x), want[-1])               # the head is gone: the last kept level
        assert pruned.num_classes == 0 and pruned.pretrained_cfg['num_classes'] == 0
        assert sum(p.numel() for p in pruned.parameters()) < weights   # fusion and head (and later levels) dropped
        assert torch.equal(torch.jit.script(pruned)(x), want[-1])
        kept_levels = pruned.forward_intermediates(x, intermediates_only=True)
        sum(t.sum() for t in kept_levels).backward()           # every parameter left computes a kept level
        assert not [n for n, p in pruned.named_parameters() if p.grad is None], (name, indices)
    with pytest.raises(tim_zoo.ConfigurationError, match='prune_head=True'):
        _model(name).prune_intermediate_layers([0], prune_head=False)
    with pytest.raises(tim_zoo.WeightFileError, match='pruned'):            # its arguments would not rebuild it
        tim_zoo.save_checkpoint(pruned, Path(tempfile.mkdtemp()) / 'p.safetensors')


#: documented alternatives whose code paths the defaults do not take
VARIANTS = [('timnet', dict(head='gmm')), ('set_official', dict(head='gmm')), ('at_tim', dict(fusion='aft_local')),
            ('multitim', dict(fusion='aft_local', seq_len=FRAMES)), ('timnet', dict(conv_style='bottleneck')),
            ('tim', dict(norm_layer='layernorm', stem_norm=True)), ('at_deltatim_v2', dict(fusion_style='standard')),
            ('transformer_tim', dict(pos_embed=True, pos_encoding='sincos')),
            ('mltransformer_tim', dict(share_layers=False))]


@pytest.mark.parametrize('name, kwargs', VARIANTS, ids=[f'{n}-{"-".join(map(str, k.values()))}' for n, k in VARIANTS])
def test_variants_script_trace_and_export(name, kwargs, x):
    model = _model(name, **kwargs)
    with torch.no_grad():
        want = model(x)
        torch.testing.assert_close(torch.jit.script(model)(x), want, atol=1e-6, rtol=1e-6)
        assert torch.equal(torch.fx.symbolic_trace(model)(x), want)
        torch.testing.assert_close(torch.export.export(model, (x,)).module()(x), want, atol=1e-5, rtol=1e-5)


def test_hub_folder_without_weights_and_other_hops_say_what_is_wrong(tmp_path):
    folder = tim_zoo.save_for_hub(_model('tim'), tmp_path / 'h')
    (folder / 'model.safetensors').unlink()
    with pytest.raises(tim_zoo.WeightsNotFoundError, match='has no model.safetensors'):
        tim_zoo.create_model(f'local-dir:{folder}', pretrained=True)
    assert tim_zoo.create_model(f'local-dir:{folder}').model_name == 'tim'        # the architecture alone
    model = _model('tim')
    model.label_names = ['a', 'b', 'c', 'd']
    with pytest.raises(tim_zoo.ConfigurationError, match='hop_length=256'):
        tim_zoo.EmotionRecognizer(model, feature_settings=dict(hop_length=256, mean_signal_length=16000))
