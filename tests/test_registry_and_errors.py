"""Registry, builder and the error messages users see."""
import json
import subprocess
import sys

import numpy as np
import pytest
import timm
import torch

import tim_zoo
from tim_zoo import cli
from tim_zoo.exceptions import (
    ConfigurationError, InputDtypeError, InputShapeError, NonFiniteInputError, UnknownModelError,
)


def test_list_models_patterns():
    assert tim_zoo.list_models('at_*') == ['at_deltatim', 'at_deltatim_v2', 'at_tim']
    assert tim_zoo.list_models(['timnet', 'set*']) == ['set', 'set_official', 'timnet']
    assert 'resnet50' not in tim_zoo.list_models('*')
    assert tim_zoo.is_model('timnet') and not tim_zoo.is_model('resnet50')


def test_unknown_model_suggests_close_names():
    with pytest.raises(UnknownModelError, match='at_deltatim_v2') as info:
        tim_zoo.create_model('at_deltatim2')
    assert 'did you mean' in str(info.value)
    with pytest.raises(UnknownModelError, match='did you mean timnet'):
        tim_zoo.create_model('TIMNet')
    with pytest.raises(UnknownModelError, match='Available models'):
        tim_zoo.create_model('resnet50')


def test_unknown_pretrained_tag_suggests_close_tags():
    for pretrained in (True, False):
        with pytest.raises(UnknownModelError, match=r"tim has no pretrained tag 'tim_zoo_emdb'; did you mean "
                                                    r"tim.tim_zoo_emodb\? Its tags: tim_zoo_emodb"):
            tim_zoo.create_model('tim.tim_zoo_emdb', pretrained=pretrained)
    with pytest.raises(UnknownModelError, match=r'did you mean timnet.emodb_46'):
        tim_zoo.create_model('timnet.emodb_64', pretrained=True)
    # another architecture's tag: which one has it
    with pytest.raises(UnknownModelError, match=r"tim has no pretrained tag 'emodb_46'\. 'emodb_46' is a tag of "
                                                r"timnet\. Its tags: tim_zoo_emodb"):
        tim_zoo.create_model('tim.emodb_46', pretrained=True)


def test_recognizer_from_a_model_name_or_a_mistyped_tag(tmp_path):
    recognizer = tim_zoo.EmotionRecognizer.from_pretrained('at_tim')       # its default tag, as create_model
    assert recognizer.model.pretrained_cfg['tag'] == 'tim_zoo_emodb' and recognizer.model_notes
    with pytest.raises(UnknownModelError, match=r"unknown model 'at_tm.tim_zoo_emodb'; did you mean at_tim"):
        tim_zoo.EmotionRecognizer.from_pretrained('at_tm.tim_zoo_emodb')
    with pytest.raises(UnknownModelError, match=r'did you mean at_tim.tim_zoo_emodb'):
        tim_zoo.EmotionRecognizer.from_pretrained('at_tim.tim_zoo_emdb')
    for gone in (tmp_path / 'gone.safetensors', str(tmp_path / 'gone.safetensors'), str(tmp_path / 'run' / 'last')):
        with pytest.raises(FileNotFoundError):                                 # a path stays a path
            tim_zoo.EmotionRecognizer.from_pretrained(gone)
    with pytest.raises(tim_zoo.ConfigurationError, match=r'm.safetensors is not a Keras file \(.hdf5, .h5\); a tim_zoo '
                                                         r'checkpoint .* EmotionRecognizer.from_checkpoint\(path\)'):
        tim_zoo.EmotionRecognizer.from_keras(tmp_path / 'm.safetensors')


def test_pretrained_without_weights_is_refused(monkeypatch):
    from tim_zoo.models._base import DEFAULT_TAGS
    monkeypatch.delitem(DEFAULT_TAGS, 'at_tim')         # an architecture whose default is not a tag
    with pytest.raises(ConfigurationError, match=r'at_tim has no published weights.*at_tim\.tim_zoo_emodb'):
        tim_zoo.create_model('at_tim', pretrained=True)


def test_bad_constructor_values_name_the_argument():
    with pytest.raises(ConfigurationError, match="head must be one of"):
        tim_zoo.create_model('timnet', head='mlp')
    with pytest.raises(ConfigurationError, match='tim_variant'):
        tim_zoo.create_model('transformer_tim', tim_variant='x')
    with pytest.raises(ValueError, match='at least 36 x 36'):
        tim_zoo.create_model('set_official', seq_len=20)


@pytest.mark.parametrize('kwargs, message', [
    (dict(stem_norm='True'), "stem_norm takes True or False \\(default False\\), got 'True'"),   # truthy text
    (dict(pos_embed=1), 'pos_embed takes True or False'),
    (dict(drop_rate='0.1'), "drop_rate takes a number \\(default 0.1\\), got '0.1'"),
    (dict(filters=True), 'filters takes a number'),
    (dict(depth='4'), 'depth takes a number'),
    (dict(kernel_size='2'), 'kernel_size takes a number'),                      # a TAB argument as well
    (dict(filters=8.0), r'filters takes a whole number \(default 39\), got 8.0: pass 8'),  # JSON's 8.0
    (dict(depth=2.5), r'depth takes a whole number \(default 8\), got 2.5$'),
])
def test_an_argument_of_the_wrong_type_is_refused_not_taken_by_its_truthiness(kwargs, message):
    name = 'set_official' if 'pos_embed' in kwargs else 'tim'
    with pytest.raises(ConfigurationError, match=message):
        tim_zoo.create_model(name, **kwargs)
    model = tim_zoo.create_model('tim', stem_norm=True, drop_rate=0, filters=np.int64(8), seq_len=None)
    assert model.init_args['stem_norm'] is True and model.init_args['filters'] == 8


def test_a_rate_of_a_users_function_may_be_a_float_where_its_default_is_0():
    from tim_zoo._validation import check_argument_types
    check_argument_types('build', dict(noise=0), dict(noise=0.5), int_means_count=False)     # a rate: passes
    with pytest.raises(ConfigurationError, match='noise takes a whole number'):
        check_argument_types('build', dict(noise=0), dict(noise=0.5))                        # a count: refused


@pytest.fixture(scope='module')
def timnet():
    return tim_zoo.create_model('timnet').eval()


@pytest.fixture(scope='module')
def at_model():
    return tim_zoo.create_model('at_deltatim_v2', seq_len=188).eval()


def test_wrong_ndim(timnet):
    with pytest.raises(InputShapeError, match=r'\[B, C, T\].*2-D tensor of shape \(39, 100\).*unsqueeze\(0\)'):
        timnet(torch.randn(39, 100))
    with pytest.raises(InputShapeError, match='4-D'):
        timnet(torch.randn(1, 1, 39, 100))


def test_wrong_channels_with_keras_layout_hint(timnet):
    with pytest.raises(InputShapeError, match=r'expects 39 channels.*got 40 channels'):
        timnet(torch.randn(2, 40, 100))
    with pytest.raises(InputShapeError, match=r'Keras layout \[B, T, C\].*transpose\(1, 2\)'):
        timnet(torch.randn(2, 188, 39))


def test_wrong_length_for_fixed_head(at_model):
    with pytest.raises(InputShapeError, match=r'at_deltatim_v2 was built for seq_len=188 frames.*got 200 frames'):
        at_model(torch.randn(1, 39, 200))


def test_too_short_for_cnn_transformer():
    model = tim_zoo.create_model('cnn_transformer', head='gmm')
    with pytest.raises(InputShapeError, match='at least 2 frames, got 1'):
        model(torch.randn(1, 39, 1))


def test_aft_max_len_enforced_by_model():
    model = tim_zoo.create_model('at_tim', fusion='aft_local', seq_len=50, head='gmm')
    with pytest.raises(InputShapeError, match='at most 50 frames, got 60'):
        model(torch.randn(1, 39, 60))


def test_empty_batch(timnet):
    with pytest.raises(InputShapeError, match='empty batch'):
        timnet(torch.randn(0, 39, 100))


@pytest.mark.parametrize('name', ['timnet', 'at_tim'])
def test_no_frames_is_named_as_such(name):
    model = tim_zoo.create_model(name, num_classes=4)
    wants = 'exactly 188 frames' if name == 'at_tim' else 'at least 1 frame$'
    with pytest.raises(InputShapeError, match=f'got no frames.*{wants}') as err:
        model(torch.randn(1, 39, 0))
    assert 'seq_len=0' not in str(err.value)


def test_block_given_a_list_names_the_tensor_it_expects():
    from tim_zoo.layers import PoolHead
    with pytest.raises(InputDtypeError, match=r'PoolHead expects a torch.Tensor \[B, D, T\], got list'):
        PoolHead(39, 4)([torch.randn(2, 39, 5)])


def test_non_finite_only_when_asked():
    model = tim_zoo.create_model('timnet', check_finite=True).eval()
    x = torch.randn(1, 39, 50)
    x[0, 3, 7] = float('nan')
    x[0, 4, 8] = float('inf')
    with pytest.raises(NonFiniteInputError, match='1 NaN and 1 Inf'):
        model(x)
    assert tim_zoo.create_model('timnet').eval()(x).shape == (1, 7)


def test_integer_and_non_tensor_input(timnet):
    with pytest.raises(InputDtypeError, match='floating-point.*torch.int64'):
        timnet(torch.ones(1, 39, 10, dtype=torch.long))
    with pytest.raises(InputDtypeError, match='got ndarray'):
        import numpy as np
        timnet(np.zeros((1, 39, 10), dtype=np.float32))


@pytest.mark.parametrize('dtype', [torch.float64, torch.float16, torch.bfloat16])
def test_other_float_dtypes_are_refused_not_converted(timnet, dtype):
    with pytest.raises(InputDtypeError, match=f'torch.float32 parameters but got a {dtype} input; convert the input '
                                              r'with x.to\(torch.float32\)'):
        timnet(torch.randn(1, 39, 10, dtype=dtype))


def test_matching_dtypes_and_autocast_are_accepted():
    model = tim_zoo.create_model('timnet', depth=2).eval()
    x = torch.randn(2, 39, 12)
    with torch.no_grad():
        expected = model(x)
        torch.testing.assert_close(model.double()(x.double()).float(), expected, atol=1e-5, rtol=1e-5)
        model.float()
        with torch.autocast('cpu', dtype=torch.bfloat16):
            assert model(x).dtype == torch.bfloat16


def test_cli_list_shows_every_model(capsys):
    assert cli.main(['list']) == 0
    out = capsys.readouterr().out
    for name in tim_zoo.list_models():
        assert f'\n{name} ' in out
    assert '14 models' in out
    assert cli.main(['list', 'tim*', '--json']) == 0
    rows = json.loads(capsys.readouterr().out)
    assert [r['model'] for r in rows] == ['tim', 'timnet']
    assert rows[1]['params'] == 104_496
    # 16 TABs x 2 causal convs (39x39, k=2) and two 1x1 stems over 188 frames, plus the 39x7 classifier
    # (the weight layer's matrix-vector product is below the counter's notice)
    assert rows[1]['macs'] == 188 * (16 * 2 * 39 * 39 * 2 + 2 * 39 * 39) + 39 * 7


def test_console_entry_point_runs():
    out = subprocess.run([sys.executable, '-m', 'tim_zoo', 'list', 'timnet'], capture_output=True, text=True, check=True)
    assert 'timnet' in out.stdout and '104,496' in out.stdout


def test_misspelt_argument_suggests_the_name():
    with pytest.raises(tim_zoo.UnknownArgumentError, match="kernel_sze'; did you mean kernel_size") as err:
        tim_zoo.create_model('timnet', kernel_sze=3)
    assert isinstance(err.value, TypeError) and isinstance(err.value, tim_zoo.TimZooError)
    with pytest.raises(tim_zoo.UnknownArgumentError, match=r"'pretraind'; did you mean pretrained \(an argument of "
                                                           r"create_model\)"):
        tim_zoo.create_model('tim', pretraind=True)             # create_model's own keywords are candidates too
    with pytest.raises(TypeError, match='drop_rat'):
        timm.create_model('at_deltatim_v2', drop_rat=0.2)


def test_tab_arguments_are_declared_once_and_reach_every_block():
    import inspect
    from tim_zoo.layers.tab import TAB_ARGS, TAB_DEFAULTS
    for name in tim_zoo.list_models():
        if name in ('set', 'set_official'):
            continue
        if name == 'transformer':
            with pytest.raises(ConfigurationError, match='conv_style, kernel_size: tim_variant="none" has no TIM part'):
                tim_zoo.create_model(name, kernel_size=3, conv_style='bottleneck')
            continue
        other = dict(mul='add', add='mul')[tim_zoo.create_model_for_frames(name, 188).init_args['residual']]
        model = tim_zoo.create_model_for_frames(name, 188, kernel_size=3, residual=other)
        params = inspect.signature(type(model)).parameters
        assert all(params[a].kind is inspect.Parameter.KEYWORD_ONLY for a in TAB_ARGS), name
        tabs = [m for m in model.modules() if type(m).__name__ == 'TemporalAwareBlock']
        assert tabs and all(t.residual == other and t.convs[0].conv.kernel_size == (3,) for t in tabs), name
        assert model.init_args['kernel_size'] == 3 and model.init_args['bottleneck_chans'] == TAB_DEFAULTS['bottleneck_chans']
    assert inspect.signature(tim_zoo.models.TIMNet).parameters['norm_layer'].default == 'batchnorm_keras'
    assert inspect.signature(tim_zoo.models.ATTIM).parameters['norm_layer'].default == TAB_DEFAULTS['norm_layer']


def test_arguments_after_the_shape_are_keyword_only():
    from tim_zoo.models import ATTIM, MultiTIM, TIMNet
    for cls, args in ((TIMNet, (7, 39, 39, 8, 3)), (ATTIM, (7, 39, 188, 39, 8, True)), (MultiTIM, (7, 39, 39, 4, 4, 3))):
        with pytest.raises(tim_zoo.UnknownArgumentError, match='too many positional arguments'):
            cls(*args)
    assert TIMNet(4, 39, 16, 3).init_args['depth'] == 3


def test_a_subclass_with_its_own_arguments_builds_and_records_them():
    from tim_zoo.models import TIMNet

    class Mine(TIMNet):
        def __init__(self, extra: int = 1, **kwargs):
            super().__init__(**kwargs)
            self.extra = extra

    model = Mine(extra=2, depth=3, kernel_size=3)
    assert model.extra == 2 and len(model.tim.encoder.stack.blocks) == 3
    assert model.tim.encoder.stack.blocks[0].convs[0].conv.kernel_size == (3,)
    assert model.init_args == dict(extra=2, depth=3, kernel_size=3, weight_init='keras', num_classes=7)


def test_a_timm_model_is_named_as_such():
    from timm.models import register_model

    @register_model
    def my_timm_only_net(pretrained=False, **kwargs):      # a model registered with timm by someone else
        return torch.nn.Linear(2, 2)
    with pytest.raises(tim_zoo.UnknownModelError, match=r"registered with timm but is not a tim_zoo model.*"
                                                        r"timm.create_model\('my_timm_only_net'\); tim_zoo.train "
                                                        r"trains it by that name"):
        tim_zoo.create_model('my_timm_only_net')


def test_a_transformer_without_a_tim_part_refuses_the_tim_arguments_it_would_ignore():
    for args in (dict(depth=4), dict(filters=64), dict(stem_norm=True), dict(weighted=False)):
        with pytest.raises(ConfigurationError, match=f'{next(iter(args))}: tim_variant="none" has no TIM part'):
            tim_zoo.create_model('transformer', **args)
    model = tim_zoo.create_model('transformer', depth=8, residual='add', drop_rate=0.2)    # the defaults change nothing
    assert set(model.unused_args) >= {'depth', 'filters', 'kernel_size'} and 'drop_rate' not in model.unused_args
    assert tim_zoo.create_model('transformer_tim', depth=4).tim.depth == 4
    assert 'depth' not in tim_zoo.create_model('transformer_tim').unused_args


def test_gmm_components_without_the_gmm_head_is_refused_not_ignored():
    for name in tim_zoo.list_models():
        with pytest.raises(ConfigurationError, match='gmm_components=12 sets the mixtures of the GMM head.*head="gmm"'):
            tim_zoo.create_model(name, gmm_components=12)
    model = tim_zoo.create_model('tim', head='gmm', gmm_components=12)
    assert model.head.num_components == 12 and model.init_args['gmm_components'] == 12
    assert tim_zoo.create_model('tim', gmm_components=8).init_args['head'] == 'default'     # the default changes nothing


def test_set_with_the_weight_layer_refuses_the_conv2d_heads_arguments():
    with pytest.raises(ConfigurationError, match='head_drop_rate: layer_fusion="weight" pools the layers, of any length'):
        tim_zoo.create_model('set', head_drop_rate=0.5)
    assert set(tim_zoo.create_model('set').unused_args) == {'head_hidden', 'head_drop_rate', 'seq_len'}
    with pytest.raises(ConfigurationError, match='seq_len: layer_fusion="weight" pools the layers, of any length'):
        tim_zoo.create_model('set', seq_len=100)
    official = tim_zoo.create_model('set_official', head_drop_rate=0.5, head_hidden=50)
    assert official.head.drop.p == 0.5 and not {'head_hidden', 'head_drop_rate'} & set(official.unused_args)


def test_bottleneck_chans_without_the_bottleneck_style_is_refused_not_ignored():
    from tim_zoo.layers import TemporalAwareBlock
    for name in ('timnet', 'tim', 'at_tim', 'at_deltatim'):
        with pytest.raises(ConfigurationError, match='bottleneck_chans sets the width of conv_style="bottleneck"'):
            tim_zoo.create_model(name, bottleneck_chans=8)
        model = tim_zoo.create_model(name, bottleneck_chans=8, conv_style='bottleneck')
        widths = {t.convs[0].conv.out_channels for t in model.modules() if isinstance(t, TemporalAwareBlock)}
        assert widths <= {8, 16}, name                    # 16: both direction groups of one grouped layer
    with pytest.raises(ConfigurationError, match='bottleneck_chans'):
        TemporalAwareBlock(8, 8, dilation=1, bottleneck_chans=4)


def test_naming_weights_without_pretrained_is_refused_not_ignored(tmp_path):
    import timm
    with pytest.raises(ConfigurationError, match='pretrained_cfg_overlay file says where weights are.*pretrained=True'):
        tim_zoo.create_model('timnet', pretrained_cfg_overlay=dict(file=str(tmp_path / 'none.safetensors')))
    with pytest.raises(ConfigurationError, match='cache_dir says where weights are'):
        timm.create_model('tim', cache_dir=str(tmp_path))
    assert timm.create_model('tim', pretrained_cfg_overlay=dict(label_names=list('abcdefg'))).num_classes == 7


def test_pos_encoding_without_pos_embed_is_refused_not_ignored():
    for name in ('transformer', 'transformer_tim', 'cnn_transformer', 'set_official'):
        with pytest.raises(ConfigurationError, match='pos_encoding: pos_embed=False adds no positional encoding'):
            tim_zoo.create_model(name, pos_encoding='sincos')
        assert 'pos_encoding' in tim_zoo.create_model(name).unused_args, name
    model = tim_zoo.create_model('transformer_tim', pos_embed=True, pos_encoding='sincos')
    assert model.pos_embed is not None and 'pos_encoding' not in model.unused_args


@pytest.mark.parametrize('name', ['at_tim', 'at_deltatim', 'at_deltatim_v2', 'multitim'])
def test_the_fusion_arguments_the_chosen_fusion_has_no_use_for_are_refused(name):
    aft = dict(fusion='aft_local', seq_len=50)
    for args, refused in ((dict(aft, d_ff=512), 'd_ff'), (dict(aft, ffn=False), 'ffn'),
                          (dict(aft, fusion_style='standard'), 'fusion_style'), (dict(aft, attn_drop_rate=0.3),
                                                                                  'attn_drop_rate')):
        with pytest.raises(ConfigurationError, match=f'^{refused}: fusion="aft_local" has no multi-head attention'):
            tim_zoo.create_model(name, **args)
    with pytest.raises(ConfigurationError, match='^aft_window: only fusion="aft_local" has a window'):
        tim_zoo.create_model(name, aft_window=64)
    with pytest.raises(ConfigurationError, match='^d_ff: ffn=False: the attention fusion has no feed-forward block'):
        tim_zoo.create_model(name, ffn=False, d_ff=256)
    assert tim_zoo.create_model(name, aft_window=64, **aft).fusion.window == 64
    assert {'d_ff', 'ffn', 'fusion_style', 'attn_drop_rate'} <= set(tim_zoo.create_model(name, **aft).unused_args)
    assert 'd_ff' in tim_zoo.create_model(name, ffn=False).unused_args
    used = tim_zoo.create_model(name, d_ff=256)
    assert used.fusion.ffn[0].out_features == 256 and 'aft_window' in used.unused_args and 'd_ff' not in used.unused_args


def test_multitim_with_attention_refuses_a_seq_len_it_would_ignore():
    with pytest.raises(ConfigurationError, match='^seq_len: multitim with fusion="attention" takes any length'):
        tim_zoo.create_model('multitim', seq_len=188)
    model = tim_zoo.create_model('multitim').eval()
    assert 'seq_len' in model.unused_args and model(torch.randn(1, 39, 40)).shape == (1, 7)
    assert tim_zoo.create_model('multitim', fusion='aft_local', seq_len=60).max_len == 60


def test_merge_without_two_directions_is_refused_not_ignored():
    from tim_zoo.layers import TIMEncoder
    with pytest.raises(ConfigurationError, match='^merge: bidirectional=False has no directions to merge'):
        tim_zoo.create_model('at_deltatim', merge='fuse')
    assert 'merge' in tim_zoo.create_model('at_deltatim').unused_args
    assert tim_zoo.create_model('at_deltatim', bidirectional=True, merge='fuse').tim.encoder.merge == 'fuse'
    assert tim_zoo.create_model('at_deltatim_v2', bidirectional=False).tim.stem is not None   # its factory's merge: moot
    with pytest.raises(ConfigurationError, match="merge must be one of"):
        tim_zoo.create_model('at_deltatim', merge='concat')                 # validated even where unused
    for args in (dict(merge='fuse'), dict(share_weights=False), dict(align_backward=True)):
        with pytest.raises(ConfigurationError, match=r'TIMEncoder\(bidirectional=False\) has one direction: '
                                                     f'{next(iter(args))}='):
            TIMEncoder(39, 8, 2, bidirectional=False, **args)


@pytest.mark.parametrize('name, sizes', [
    ('transformer', dict(head_hidden=50, head_conv_channels=8, seq_len=100, head_drop_rate=0.5)),
    ('transformer_tim', dict(head_hidden=50, seq_len=100, head_drop_rate=0.5)),
    ('cnn_transformer', dict(seq_len=100)), ('set_official', dict(seq_len=100, head_hidden=50, head_drop_rate=0.5)),
    ('at_deltatim_v2', dict(seq_len=100, head_drop_rate=0.5)), ('multitim', dict(head_pool=10, head_drop_rate=0.5))])
def test_the_gmm_head_refuses_what_only_sets_the_default_head(name, sizes, tmp_path):
    """The factory's own values (transformer's head_hidden=1000, set_official's seq_len=188, at_deltatim_v2's
    head_drop_rate=0.3) are not the caller's: the model builds with head="gmm" and rebuilds from its checkpoint, which
    passes every recorded argument back."""
    for key, value in sizes.items():
        with pytest.raises(ConfigurationError, match=f'^{key}: head="gmm" pools frames of any length'):
            tim_zoo.create_model(name, head='gmm', **{key: value})
        tim_zoo.create_model(name, **{key: value})                           # the default head takes them
    model = tim_zoo.create_model(name, head='gmm', num_classes=3).eval()
    assert set(sizes) <= set(model.unused_args)
    pytest.importorskip('safetensors')
    back = tim_zoo.load_checkpoint(tim_zoo.save_checkpoint(model, tmp_path / 'gmm.safetensors')).eval()
    x = torch.randn(2, 39, 64)
    with torch.no_grad():
        assert torch.equal(back(x), model(x))


def test_a_none_that_timms_create_model_would_drop_is_refused(tmp_path):
    """timm's create_model drops None keyword arguments: the model would be built with the default (or the
    factory's value) without a word. A model built from the class records what None resolved to."""
    for name, args, built in (('at_tim', dict(attn_drop_rate=None, drop_rate=0.3), 'attn_drop_rate=0.1'),
                              ('at_tim', dict(seq_len=None), 'seq_len=188'),
                              ('transformer', dict(head_conv_channels=None), 'head_conv_channels=64')):
        with pytest.raises(ConfigurationError, match=f"drops arguments that are None, so {next(iter(args))}=None "
                                                     f"would build {built}; pass a value, or build the class"):
            tim_zoo.create_model(name, **args)
    assert tim_zoo.create_model('multitim', seq_len=None).init_args['seq_len'] is None          # None is its default
    direct = tim_zoo.models.ATTIM(attn_drop_rate=None, drop_rate=0.3)
    assert direct.init_args['attn_drop_rate'] == 0.3                  # rebuilt through create_model, it stays 0.3
    assert tim_zoo.create_model('at_tim', **direct.init_args).init_args['attn_drop_rate'] == 0.3
    with pytest.raises(tim_zoo.WeightFileError, match=r"needs a model built by tim_zoo.create_model \(got "
                                                      r"model_name='ATTIM'\)"):
        tim_zoo.save_checkpoint(direct, tmp_path / 'direct.safetensors')
