"""The seed models are the research group's networks: their outputs on the research code's golden files, the
research checkpoints (state dicts and pickled whole models) loading, the full-size structure, and each documented
fix of a research defect changing the output."""
import json
import math
import os
from pathlib import Path
import pickle
import types
import warnings

import numpy as np
import pytest
import torch

import tim_zoo
from tim_zoo.exceptions import CheckpointMismatchError, ConfigurationError, UnknownArgumentError, UnsafeFileError
from tim_zoo.layers import SpatialDropout1d
from tim_zoo.research import DROPPED, convert_research_state_dict, load_research_checkpoint

from conftest import SHARED

GOLDEN = SHARED / 'golden' / 'seed'

#: golden file -> (tim_zoo model, research class)
FILES = {
    'tim': ('tim', 'TIM'), 'transformer': ('transformer', 'Transformer'),
    'transformer_tim': ('transformer_tim', 'Transformer_TIM'),
    'transformer_deltatim': ('transformer_deltatim', 'Transformer_DeltaTIM'),
    'mltransformer_tim': ('mltransformer_tim', 'MLTransformer_TIM'),
    'cnn_transformer': ('cnn_transformer', 'CNN_Transformer'),
    'cnn_ml_transformer': ('cnn_ml_transformer', 'CNN_ML_Transformer'),
    'set': ('set', 'SET'), 'set_official': ('set_official', 'SET_official'),
    **{f'{m}_{t}': (m, c) for m, c in (('at_tim', 'AT_TIM'), ('at_deltatim', 'AT_DeltaTIM'),
                                        ('at_deltatim_v2', 'AT_DeltaTIM_v2'), ('multitim', 'MultiTIM'))
       for t in ('mh', 'af')},
}


def golden(name):
    if not GOLDEN.is_dir():
        pytest.skip(f'{GOLDEN} is absent (the research golden files live in ../shared)')
    data = np.load(GOLDEN / f'{name}.npz')
    sd = {k[3:]: torch.from_numpy(data[k]) for k in data.files if k.startswith('sd/')}
    return data, sd, json.loads(str(data['args']))


def sizes(model: str, args: dict) -> dict:
    """The golden file's recorded sizes as tim_zoo arguments (written out here, not taken from the converter)."""
    out = dict(num_classes=args['num_class'], in_chans=args['filters'])
    transformer = dict(d_model=args['d_model'], num_heads=args['n_head'], num_layers=args['n_layer'],
                       # the research Args keep d_ff from their constructor; these files set `dim_feed_forward` (128)
                       # afterwards, which changes nothing there: their tensors hold the default 1024
                       d_ff=1024)
    if model != 'set' and model != 'set_official' and model != 'transformer':
        out['filters'] = args['filters']
    if model.startswith(('transformer', 'mltransformer', 'cnn', 'set')):
        out.update(transformer)
    if model != 'set' and model != 'tim':
        out['seq_len'] = args['seq_len']
    if model.startswith('at_') or model == 'multitim':
        out.update(d_qkv=args['d_qkv'], d_ff=1024,
                   fusion='attention' if args['attention_type'] == 'MH' else 'aft_local')
    if model.startswith('at_') or model in ('tim',) or model.startswith(('transformer_', 'mltransformer', 'cnn')):
        out['depth'] = args['dilation']
    if model == 'multitim' and out['fusion'] == 'attention':
        del out['seq_len']                               # any length
    return out


@pytest.mark.parametrize('name', sorted(FILES))
def test_default_construction_reproduces_the_research_logits(name):
    """Built with its defaults and the file's sizes, each seed model computes the research code's logits from the
    research state dict (every tensor mapped, strict loading)."""
    data, sd, args = golden(name)
    model_name, research_class = FILES[name]
    model = tim_zoo.create_model(model_name, **sizes(model_name, args)).eval()
    converted, dropped, unknown = convert_research_state_dict(research_class, sd)
    assert not unknown
    assert {DROPPED['resample'], DROPPED['local_mask'], DROPPED['shared']} >= set(dropped.values())
    converted.pop('fusion.local_mask', None)
    model.load_state_dict(converted, strict=True)
    with torch.no_grad():
        logits = model(torch.from_numpy(data['x']))
    assert torch.allclose(logits, torch.from_numpy(data['logits']), atol=1e-5, rtol=0)


@pytest.mark.parametrize('name', sorted(FILES))
def test_load_research_checkpoint_from_a_state_dict_and_the_research_args(name):
    data, sd, args = golden(name)
    model_name, research_class = FILES[name]
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter('always')
        model = load_research_checkpoint(research_class, sd, **args).eval()
    assert model.model_name == model_name
    if model_name not in ('tim',):           # d_ff is a field of these models: the given 128 is not the weights'
        moot_seq_len = (model_name == 'multitim' and args['attention_type'] == 'MH') or model_name == 'set'  # any length
        assert all('dim_feed_forward' in str(w.message) or 'd_ff' in str(w.message)
                   or (moot_seq_len and 'seq_len not used' in str(w.message)) for w in caught)
        assert moot_seq_len == any('seq_len not used' in str(w.message) for w in caught)
    with torch.no_grad():
        assert torch.allclose(model(torch.from_numpy(data['x'])), torch.from_numpy(data['logits']), atol=1e-5, rtol=0)


@pytest.mark.parametrize('stem, research_class, extra', [
    ('pickled_tim', 'TIM', dict(weighted=True)),
    ('pickled_at_deltatim_v2_af', 'AT_DeltaTIM_v2', dict(fusion='aft_local', d_qkv=16, frame_mask=0.2)),
])
def test_pickled_whole_models_load_as_data_and_match(stem, research_class, extra):
    if not GOLDEN.is_dir():
        pytest.skip(f'{GOLDEN} is absent')
    io = np.load(GOLDEN / f'{stem}_io.npz')
    model = load_research_checkpoint(None, GOLDEN / f'{stem}.pt').eval()
    for key, value in extra.items():
        assert model.init_args[key] == value, key
    assert model.init_args['residual'] == 'add' and model.init_args['drop_mode'] == 'frame'
    with torch.no_grad():
        assert torch.allclose(model(torch.from_numpy(io['x'])), torch.from_numpy(io['logits']), atol=1e-5, rtol=0)
    assert set(model.research_dropped.values()) <= set(DROPPED.values())
    with pytest.raises(CheckpointMismatchError, match='holds a'):
        load_research_checkpoint('set' if research_class == 'TIM' else 'TIM', GOLDEN / f'{stem}.pt')


@pytest.mark.parametrize('name', sorted(FILES))
def test_full_size_research_tensors_map_onto_the_model(name):
    """At the research sizes (d_model 256, 8 heads, 3 layers, d_ff 1024, d_qkv 64, 188 frames) every research
    tensor maps to a same-shape tim_zoo tensor or is on the documented drop list, and every tim_zoo tensor is fed."""
    data, _, args = golden(name)
    model_name, research_class = FILES[name]
    shapes = json.loads(str(data['full_shapes']))
    full = {k: torch.zeros(v) for k, v in shapes.items()}
    if 'attn.local_mask' in full:                    # the research AFT window, |t - t'| < 128
        idx = torch.arange(full['attn.local_mask'].shape[0])
        full['attn.local_mask'] = (idx[:, None] - idx[None, :]).abs() < 128
    converted, dropped, unknown = convert_research_state_dict(research_class, full)
    assert not unknown
    assert set(dropped.values()) <= set(DROPPED.values())
    research = dict(d_model=256, n_head=8, n_layer=3, d_qkv=64, seq_len=188, num_class=args['num_class'],
                    dilation=8, attention_type=args['attention_type'])
    with warnings.catch_warnings():
        warnings.simplefilter('ignore')
        model = load_research_checkpoint(research_class, full, **research)
    own = {k: v.shape for k, v in model.state_dict().items()}
    converted.pop('fusion.local_mask', None)
    assert {k: v.shape for k, v in converted.items()} == own
    if model_name == 'mltransformer_tim':            # one layer under the research code's three names
        assert sum(r == DROPPED['shared'] for r in dropped.values()) == 2 * 12
    if 'attn.local_mask' in full:
        assert model.init_args['aft_window'] == 128


def test_frame_wise_spatial_dropout_drops_whole_frames_per_direction():
    torch.manual_seed(1)
    drop = SpatialDropout1d(0.5, mode='frame', groups=2).train()
    x = torch.ones(8, 6, 40)
    y = drop(x)
    for group in (y[:, :3], y[:, 3:]):
        zero = group == 0
        assert torch.equal(zero.all(dim=1), zero.any(dim=1))           # a frame is dropped in all its channels
    assert not torch.equal(y[:, :3] == 0, y[:, 3:] == 0)                # the two groups draw their own frames
    assert set(torch.unique(y).tolist()) == {0.0, 2.0}
    channel = SpatialDropout1d(0.5).train()(x) == 0
    assert torch.equal(channel.all(dim=2), channel.any(dim=2))          # channel mode: whole channels
    assert torch.equal(drop.eval()(x), x)


@pytest.mark.parametrize('model_name', ['tim', 'at_tim', 'multitim', 'transformer_tim', 'cnn_transformer'])
def test_seed_models_drop_frames_timnet_channels(model_name):
    kwargs = {} if model_name in ('tim', 'multitim') else dict(seq_len=32)
    modes = {m.mode for m in tim_zoo.create_model(model_name, **kwargs).modules() if isinstance(m, SpatialDropout1d)}
    assert modes == {'frame'}
    modes = {m.mode for m in tim_zoo.create_model('timnet').modules() if isinstance(m, SpatialDropout1d)}
    assert modes == {'channel'}


def _loaded_pair(name, **fix):
    """The golden model as loaded, and the same weights in the model built with a documented fix."""
    data, sd, args = golden(name)
    model_name, research_class = FILES[name]
    converted, _, _ = convert_research_state_dict(research_class, sd)
    converted.pop('fusion.local_mask', None)
    research = tim_zoo.create_model(model_name, **sizes(model_name, args)).eval()
    research.load_state_dict(converted)
    fixed = tim_zoo.create_model(model_name, **sizes(model_name, args), **fix).eval()
    missing, unexpected = fixed.load_state_dict(converted, strict=False)
    x = torch.from_numpy(data['x'])
    with torch.no_grad():
        return research(x), fixed(x), set(missing), set(unexpected)


@pytest.mark.parametrize('name, fix, new_keys', [
    ('at_tim_mh', dict(fusion_style='standard'), {'fusion.norm2.weight', 'fusion.norm2.bias'}),
    ('multitim_mh', dict(fusion_style='standard'), {'fusion.norm2.weight', 'fusion.norm2.bias'}),
    ('set', dict(pos_encoding='sincos'), set()),
    ('cnn_ml_transformer', dict(pos_encoding='sincos'), set()),
    ('tim', dict(residual='mul'), set()),
    ('transformer_tim', dict(residual='mul'), set()),
])
def test_each_documented_fix_changes_the_output(name, fix, new_keys):
    research, fixed, missing, unexpected = _loaded_pair(name, **fix)
    assert missing == new_keys and not unexpected
    assert (research - fixed).abs().max() > 1e-2


def test_independent_layers_fix_gives_mltransformer_tim_its_own_layers():
    shared = tim_zoo.create_model('mltransformer_tim', seq_len=16, d_model=32, num_heads=2, d_ff=64)
    independent = tim_zoo.create_model('mltransformer_tim', seq_len=16, d_model=32, num_heads=2, d_ff=64,
                                       share_layers=False)
    layer = sum(p.numel() for p in shared.transformer.layers[0].parameters())
    assert tim_zoo.count_params(independent) - tim_zoo.count_params(shared) == 2 * layer
    # copying the one layer into all three gives the same function, and training then moves them apart
    sd = {k.replace('layers.0.', f'layers.{j}.'): v for j in range(3) for k, v in shared.state_dict().items()
          if k.startswith('transformer.layers.0.')}
    independent.load_state_dict({**shared.state_dict(), **sd})
    x = torch.randn(2, 39, 16)
    with torch.no_grad():
        assert torch.allclose(shared.eval()(x), independent.eval()(x), atol=1e-5)
    assert [name for name, _ in shared.named_modules() if name.startswith('transformer.layers.')] == \
        ['transformer.layers.0'] + [n for n, _ in shared.transformer.layers[0].named_modules(prefix='transformer.layers.0')][1:]


def test_the_research_positional_table_has_the_documented_properties():
    """What docs/models.md says of the research table (the golden `set` and `cnn_ml_transformer` files check the
    values): frame 0 all zeros; even dimensions cos(sin(.)), so within [cos 1, 1]; odd dimensions grow linearly
    with the frame, 174 at frame 187 in dimension 1 for d 256; no longer a sin/cos table."""
    table = tim_zoo.layers.SinusoidalPositionalEncoding(256, max_len=188, style='research').table
    assert table[0].abs().max() == 0
    assert table[1:, ::2].min() >= math.cos(1.0) - 1e-6 and table[1:, ::2].max() <= 1.0
    odd = table[1:, 1::2]
    assert torch.allclose(odd[-1] / 187, odd[0], rtol=1e-5)                 # linear in the frame
    assert 173.5 < float(table[187, 1]) < 174.5 and float(table.max()) == float(table[187, 1])
    sincos = tim_zoo.layers.SinusoidalPositionalEncoding(256, max_len=188).table
    assert sincos.abs().max() <= 1.0 and (table - sincos).abs().max() > 100


def test_research_args_as_attributes_and_yml(tmp_path):
    data, sd, args = golden('at_deltatim_mh')
    model = load_research_checkpoint('at_deltatim', sd, args=types.SimpleNamespace(**args)).eval()
    yaml = pytest.importorskip('yaml')
    path = tmp_path / 'hyperparameter.yml'
    path.write_text(yaml.safe_dump(dict(args, order=3, lr=4e-4, epochs=100, d_ff=1024)))
    from_yml = load_research_checkpoint('AT_DeltaTIM', sd, args=path).eval()
    x = torch.from_numpy(data['x'])
    with torch.no_grad():
        assert torch.equal(model(x), from_yml(x))
    assert from_yml.init_args['in_chans'] == from_yml.init_args['filters'] == 39
    # fields the research code wrote in some versions and tim_zoo does not know: a note, not an error, from a file
    path.write_text(yaml.safe_dump(dict(args, mode='train', smooth=0.1, something_new=1)))
    with pytest.warns(UserWarning, match='something_new=1 of the research Args is not known here'):
        load_research_checkpoint('AT_DeltaTIM', sd, args=path)


@pytest.mark.parametrize('name, key', [('tim', 'extractor.weight.param'),
                                       ('transformer_tim', 'specialFeatureExtractor.weight.param'),
                                       ('cnn_transformer', 'generalFeatureExtractor.weight.param'),
                                       ('transformer_deltatim', None)])
def test_is_weight_false_builds_the_last_level_fusion_of_the_research_causal_conv(name, key):
    """The research CausalConv (TIM, the Transformer_TIM family, the CNN_Transformer family) fuses the levels with
    its weight layer only with `is_weight`; Transformer_DeltaTIM has no CausalConv and always weights."""
    data, sd, args = golden(name)
    with warnings.catch_warnings():
        warnings.simplefilter('ignore')
        model = load_research_checkpoint(FILES[name][1], sd, **args, is_weight=False).eval()
    with torch.no_grad():
        diff = (model(torch.from_numpy(data['x'])) - torch.from_numpy(data['logits'])).abs().max()
    if key is None:
        assert diff < 1e-5 and model.tim.weight_layer is not None
    else:
        assert model.init_args['weighted'] is False and model.research_dropped[key] == DROPPED['unweighted']
        assert diff > 1e-3                                  # another function of the same weights


def test_aft_window_is_read_from_the_research_mask():
    data, sd, args = golden('at_tim_af')
    idx = torch.arange(64)
    sd = dict(sd, **{'attn.local_mask': (idx[:, None] - idx[None, :]).abs() < 20})
    model = load_research_checkpoint('AT_TIM', sd, **args)
    assert model.init_args['aft_window'] == 20 and model.fusion.window == 20
    with pytest.raises(CheckpointMismatchError, match='local window'):
        load_research_checkpoint('AT_TIM', dict(sd, **{'attn.local_mask': torch.rand(64, 64) > 0.5}), **args)


def test_research_checkpoint_errors_name_the_problem():
    _, sd, args = golden('tim')
    with pytest.raises(UnknownArgumentError, match='dilaton.*did you mean dilation'):
        load_research_checkpoint('TIM', sd, dilaton=8)
    with pytest.raises(ConfigurationError, match='did you mean'):
        load_research_checkpoint('AT_DeltaTIM_2', sd)
    with pytest.raises(CheckpointMismatchError, match='extra.thing'):
        load_research_checkpoint('TIM', {**sd, 'extra.thing': torch.zeros(1)})
    broken = {k: v for k, v in sd.items() if 'dilation_layer.3.casual.5' not in k}
    with pytest.raises(CheckpointMismatchError, match='missing in the file: .*blocks.3.convs.1.conv.weight'):
        load_research_checkpoint('TIM', broken)
    with pytest.raises(ConfigurationError, match='a state dict does not say'):
        load_research_checkpoint(None, sd)


class _RunsCode:
    def __reduce__(self):
        return os.system, ('touch pwned_by_pickle',)


def test_a_pickle_that_would_run_code_is_refused(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    path = tmp_path / 'evil.pt'
    torch.save({'model': _RunsCode()}, path)
    with pytest.raises(UnsafeFileError, match='posix.system|os.system|refuses'):
        load_research_checkpoint('TIM', path)
    assert not (tmp_path / 'pwned_by_pickle').exists()
    with open(tmp_path / 'reduce.pt', 'wb') as f:
        pickle.dump(_RunsCode(), f)
    with pytest.raises((UnsafeFileError, tim_zoo.WeightFileError)):
        load_research_checkpoint('TIM', tmp_path / 'reduce.pt')
    assert not (tmp_path / 'pwned_by_pickle').exists()


def _as_version_1(path, drop=()):
    """Rewrite a checkpoint's metadata as a version-1 checkpoint had it: no `model_defaults`, without `drop`."""
    import safetensors.torch
    from safetensors import safe_open
    with safe_open(str(path), framework='pt') as f:
        meta = json.loads(f.metadata()['tim_zoo'])
        tensors = {k: f.get_tensor(k) for k in f.keys()}
    meta.pop('model_defaults')
    meta['model_args'] = {k: v for k, v in meta['model_args'].items() if k not in drop}
    safetensors.torch.save_file(tensors, str(path), metadata={'tim_zoo': json.dumps(meta)})


@pytest.mark.parametrize('model_name, v1_args, dropped', [
    ('at_tim', dict(fusion_style='standard', residual='mul', drop_mode='channel'), ('fusion_style', 'drop_mode')),
    ('set', dict(pos_encoding='sincos'), ('pos_encoding',)),
    ('mltransformer_tim', dict(share_layers=False, residual='mul'), ('share_layers',)),
])
def test_checkpoints_of_the_older_definitions_load_as_they_were_trained(tmp_path, model_name, v1_args, dropped):
    """A checkpoint written before the research-parity definitions records neither the new arguments nor
    `model_defaults`; it must rebuild the model it was trained as (e.g. `pos_embed=True` meaning sin/cos)."""
    kwargs = dict(seq_len=24, d_model=32, num_heads=2, d_ff=64) if model_name != 'at_tim' else dict(seq_len=24)
    if model_name == 'set':
        del kwargs['seq_len']                                        # its pooling head takes any length
    old = tim_zoo.create_model(model_name, **kwargs, **v1_args).eval()
    path = tim_zoo.save_checkpoint(old, tmp_path / 'old.safetensors')
    _as_version_1(path, dropped)
    loaded = tim_zoo.load_checkpoint(path).eval()
    for key, value in v1_args.items():
        assert loaded.init_args[key] == value
    x = torch.randn(3, 39, 24)
    with torch.no_grad():
        assert torch.equal(old(x), loaded(x))
    current = tim_zoo.load_checkpoint(tim_zoo.save_checkpoint(loaded, tmp_path / 'new.safetensors'))
    assert current.init_args == loaded.init_args                     # saved again: recorded as version 2


def test_a_training_run_started_with_the_older_definitions_resumes_with_them():
    from tim_zoo.train.config import TrainConfig
    from tim_zoo.train.run import create_training_model
    stored = json.loads(TrainConfig(model='at_deltatim', model_args=dict(d_qkv=8)).to_json())
    del stored['model_defaults']
    old = TrainConfig.from_json(json.dumps(stored))
    assert old.model_defaults == 1
    model = create_training_model(old, num_classes=4, in_chans=39, frames=20)
    assert model.init_args['residual'] == 'mul' and model.init_args['fusion_style'] == 'standard'
    new = create_training_model(TrainConfig(model='at_deltatim', model_args=dict(d_qkv=8)), 4, 39, 20)
    assert new.init_args['residual'] == 'add' and new.init_args['fusion_style'] == 'research'


def test_version_1_attention_models_get_their_attention_dropout_and_aft_local_ones_nothing_moot(tmp_path):
    """Version 1's attention dropout followed drop_rate (a None that create_model would drop: the value is passed);
    an AFT-local model had no multi-head attention, so none of its arguments is added (they would be refused)."""
    from tim_zoo.train.config import TrainConfig
    from tim_zoo.train.run import create_training_model
    stored = json.loads(TrainConfig(model='at_tim', model_args=dict(d_qkv=8), dropout=0.25).to_json())
    del stored['model_defaults']
    model = create_training_model(TrainConfig.from_json(json.dumps(stored)), num_classes=4, in_chans=39, frames=20)
    assert model.init_args['attn_drop_rate'] == 0.25 == model.init_args['drop_rate']
    aft = dict(fusion='aft_local', seq_len=24, d_qkv=8)
    old = tim_zoo.create_model('at_tim', residual='mul', drop_mode='channel', **aft).eval()
    path = tim_zoo.save_checkpoint(old, tmp_path / 'aft.safetensors')
    _as_version_1(path, ('fusion_style', 'attn_drop_rate', 'drop_mode'))
    loaded = tim_zoo.load_checkpoint(path).eval()
    assert loaded.init_args['drop_mode'] == 'channel' and 'fusion_style' in loaded.unused_args
    x = torch.randn(2, 39, 24)
    with torch.no_grad():
        assert torch.equal(old(x), loaded(x))


def test_research_initialisation_is_pytorchs_with_standard_normal_weight_layers():
    torch.manual_seed(3)
    research = tim_zoo.create_model('tim')
    torch.manual_seed(3)
    plain = tim_zoo.create_model('tim', weight_init='torch')
    assert research.init_args['weight_init'] == 'research'
    for (name, a), (_, b) in zip(research.state_dict().items(), plain.state_dict().items()):
        if name == 'tim.weight_layer.weight':
            assert a.abs().max() > 0.3 and b.abs().max() <= 0.05          # N(0, 1) against uniform(-0.05, 0.05)
        else:
            assert torch.equal(a, b), name


def test_a_torchscript_archive_is_refused_before_its_code_runs(tmp_path):
    import importlib.util
    marker = tmp_path / 'marker'
    marker.write_bytes(b'keep')
    source = tmp_path / 'writes.py'                    # TorchScript needs source: the marker's path as a literal
    source.write_text(f"""import torch
from typing import List


class Writes(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.x = torch.zeros(1)

    @torch.jit.export
    def __getstate__(self) -> List[int]:
        return [1]

    @torch.jit.export
    def __setstate__(self, state: List[int]) -> None:
        written = torch.from_file({str(marker)!r}, shared=True, size=4, dtype=torch.uint8)
        written.fill_(33)
        self.x = written[:1].float()
        self.training = False
""")
    spec = importlib.util.spec_from_file_location('writes', source)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    scripted = torch.jit.script(module.Writes())
    torch.jit.save(scripted, str(tmp_path / 'scripted.pt'))
    from tim_zoo.weights.pickled import read_pickled_model
    for load in (lambda: read_pickled_model(tmp_path / 'scripted.pt'),
                 lambda: load_research_checkpoint('TIM', tmp_path / 'scripted.pt')):
        with pytest.raises(UnsafeFileError, match='TorchScript'):
            load()
    assert marker.read_bytes() == b'keep'
    torch.jit.load(str(tmp_path / 'scripted.pt'))         # what torch.load would have done: the code runs
    assert marker.read_bytes() == b'!!!!'


def test_a_pickle_cannot_change_the_functions_it_may_call(tmp_path):
    """BUILD (set attributes) on one of torch's tensor rebuilders would change every later torch.load in the
    process: refused; the real function is never handed to the pickle."""
    import struct
    import zipfile
    if not GOLDEN.is_dir():
        pytest.skip(f'{GOLDEN} is absent')

    def unicode(text):
        data = text.encode()
        return b'X' + struct.pack('<I', len(data)) + data
    prefix = (b'\x80\x02ctorch._utils\n_rebuild_tensor_v2\nN}' + unicode('__defaults__') + b'}' + unicode('neg')
              + b'\x88s\x85s\x86b0')                      # BUILD (None, {'__defaults__': ({'neg': True},)}), POP
    with zipfile.ZipFile(GOLDEN / 'pickled_tim.pt') as source, zipfile.ZipFile(tmp_path / 'm.pt', 'w') as out:
        for info in source.infolist():
            data = source.read(info.filename)
            out.writestr(info.filename, prefix + data if info.filename.endswith('/data.pkl') else data)
    defaults = torch._utils._rebuild_tensor_v2.__defaults__
    with pytest.raises(UnsafeFileError, match='set attributes'):
        load_research_checkpoint(None, tmp_path / 'm.pt')
    assert torch._utils._rebuild_tensor_v2.__defaults__ == defaults


V1 = Path(__file__).resolve().parent / 'data' / 'checkpoints_v1'


@pytest.mark.parametrize('name', sorted(p.stem for p in V1.glob('*.safetensors')))
def test_checkpoints_written_before_research_parity_load_as_they_were_trained(name):
    """Checkpoints written by tim_zoo before these definitions (tests/data/checkpoints_v1/make.py, with the code of
    that time) rebuild the network they hold: the same outputs, the old arguments."""
    io = np.load(V1 / 'io.npz')
    model = tim_zoo.load_checkpoint(V1 / f'{name}.safetensors').eval()
    with torch.no_grad():
        assert torch.allclose(model(torch.from_numpy(io[f'{name}/x'])), torch.from_numpy(io[f'{name}/logits']),
                              atol=1e-5, rtol=0)
    args = model.init_args
    if 'residual' in args and model.model_name != 'transformer':
        assert args['residual'] == 'mul' and args['drop_mode'] == 'channel' and args['weight_init'] == 'torch'
    if args.get('pos_embed'):                          # without one, which encoding is moot and left at the default
        assert args['pos_encoding'] == 'sincos'
    if 'fusion_style' in args:
        assert args['fusion_style'] == 'standard'
    if 'share_layers' in args:
        assert args['share_layers'] is False


def test_loading_an_older_checkpoint_into_a_model_of_other_arguments_warns():
    with pytest.warns(UserWarning, match="residual='mul'.*load_checkpoint"):
        tim_zoo.create_model('tim', filters=8, depth=3, checkpoint_path=V1 / 'tim.safetensors')
