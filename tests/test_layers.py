"""Block semantics, each checked against an independent computation."""
import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from torch import nn

from tim_zoo.exceptions import ConfigurationError
from tim_zoo.layers import (
    AFTLocalFusion, AttentionFusion, BiTemporalEncoder, CausalConv1d, ChannelLayerNorm1d, ConvNormAct1d, DeltaAggregation,
    FrameMask, GMMClusteringHead, GroupBatchNorm1d, GroupConv1d, SinusoidalPositionalEncoding, SpatialDropout1d,
    TemporalAwareBlock, TemporalStack, TIMEncoder, TransformerEncoderStack, WeightLayer,
)
from tim_zoo.benchmark.reference import reference_bi_temporal_encoder


def _randomise_bn(module):
    """Give every BatchNorm non-trivial statistics and affine parameters, so eval-mode checks are not vacuous."""
    for m in module.modules():
        if isinstance(m, nn.modules.batchnorm._BatchNorm):
            m.running_mean.uniform_(-0.5, 0.5)
            m.running_var.uniform_(0.5, 2.0)
            m.weight.data.uniform_(0.5, 1.5)
            m.bias.data.uniform_(-0.3, 0.3)
    return module


# --- dropout -------------------------------------------------------------------------------------

def test_spatial_dropout_drops_whole_channels():
    drop = SpatialDropout1d(0.5).train()
    y = drop(torch.ones(64, 39, 50))
    per_channel = y[:, :, 0]
    assert torch.equal(y, per_channel[:, :, None].expand_as(y)), 'a channel is not constant over frames'
    assert set(per_channel.unique().tolist()) == {0.0, 2.0}
    frac = (per_channel == 0).float().mean().item()
    assert 0.4 < frac < 0.6
    drop.eval()
    x = torch.randn(2, 3, 4)
    assert drop(x) is x


def test_frame_mask_zeroes_whole_frames_without_rescale():
    mask = FrameMask(0.2).train()
    y = mask(torch.ones(32, 39, 100))
    per_frame = y[:, 0, :]
    assert torch.equal(y, per_frame[:, None, :].expand_as(y))
    assert set(per_frame.unique().tolist()) == {0.0, 1.0}
    assert 0.15 < (per_frame == 0).float().mean().item() < 0.25
    x = torch.randn(2, 3, 4)
    assert mask.eval()(x) is x


def test_dropout_probability_checked():
    with pytest.raises(ValueError, match=r'\[0, 1\)'):
        SpatialDropout1d(1.0)


# --- causal convolution and TAB ------------------------------------------------------------------

def test_causal_conv_matches_left_padded_conv_and_keeps_length():
    conv = CausalConv1d(3, 5, kernel_size=2, dilation=4)
    x = torch.randn(2, 3, 20)
    ref = F.conv1d(torch.cat([torch.zeros(2, 3, 4), x], dim=-1), conv.weight, conv.bias, dilation=4)
    y = conv(x)
    assert y.shape == (2, 5, 20)
    torch.testing.assert_close(y, ref)


def _reference_unit(x, unit):
    """conv (left zero padding) -> BN (eval formula) -> ReLU, from the unit's raw parameters."""
    conv, bn = unit.conv, unit.norm
    pad = (conv.kernel_size[0] - 1) * conv.dilation[0]
    y = F.conv1d(F.pad(x, (pad, 0)), conv.weight, conv.bias, dilation=conv.dilation[0])
    y = (y - bn.running_mean[:, None]) / torch.sqrt(bn.running_var[:, None] + bn.eps) * bn.weight[:, None] + bn.bias[:, None]
    return torch.relu(y)


@pytest.mark.parametrize('residual', ['mul', 'add'])
def test_tab_residual_formulas(residual):
    tab = _randomise_bn(TemporalAwareBlock(39, 39, dilation=2, residual=residual)).eval()
    x = torch.randn(3, 39, 30)
    gate = torch.sigmoid(_reference_unit(_reference_unit(x, tab.convs[0]), tab.convs[1]))
    expected = x * gate if residual == 'mul' else x + gate
    torch.testing.assert_close(tab(x), expected)


def test_tab_projects_residual_when_widths_differ():
    tab = TemporalAwareBlock(13, 39, dilation=1).eval()
    assert isinstance(tab.shortcut, GroupConv1d) and tab.shortcut.kernel_size == (1,)
    assert tab(torch.randn(2, 13, 10)).shape == (2, 39, 10)


def test_tab_bottleneck_structure_and_causality():
    tab = _randomise_bn(TemporalAwareBlock(39, 39, dilation=4, conv_style='bottleneck', bottleneck_chans=13)).eval()
    kinds = [(u.conv.in_channels, u.conv.out_channels, u.conv.kernel_size[0], u.conv.dilation[0]) for u in tab.convs]
    assert kinds == [(39, 13, 1, 1), (13, 13, 2, 4), (13, 39, 1, 1)]
    x = torch.randn(1, 39, 40)
    x2 = x.clone()
    x2[..., 25:] = torch.randn(1, 39, 15)
    torch.testing.assert_close(tab(x)[..., :25], tab(x2)[..., :25])


def test_tab_options_layernorm_gelu_and_bad_values():
    tab = TemporalAwareBlock(8, 8, dilation=1, norm_layer='layernorm', act_layer='gelu')
    assert isinstance(tab.convs[0].norm, ChannelLayerNorm1d)
    assert isinstance(tab.convs[0].act, nn.GELU)
    assert tab(torch.randn(2, 8, 5)).shape == (2, 8, 5)
    with pytest.raises(ConfigurationError, match='residual'):
        TemporalAwareBlock(8, 8, dilation=1, residual='concat')
    with pytest.raises(ConfigurationError, match='norm_layer'):
        TemporalAwareBlock(8, 8, dilation=1, norm_layer='groupnorm')


def test_keras_batchnorm_settings():
    tab = TemporalAwareBlock(4, 4, dilation=1, norm_layer='batchnorm_keras')
    bn = tab.convs[0].norm
    assert bn.eps == 1e-3 and bn.momentum == 0.01
    bn = TemporalAwareBlock(4, 4, dilation=1).convs[0].norm
    assert bn.eps == 1e-5 and bn.momentum == 0.1


# --- stacks ----------------------------------------------------------------------------------------

def test_temporal_stack_dilations_and_levels():
    stack = TemporalStack(16, depth=5)
    assert [b.dilation for b in stack.blocks] == [1, 2, 4, 8, 16]
    levels = stack(torch.randn(2, 16, 40))
    assert len(levels) == 5 and all(h.shape == (2, 16, 40) for h in levels)


def test_temporal_stack_is_causal():
    stack = _randomise_bn(TemporalStack(16, depth=6)).eval()
    x = torch.randn(2, 16, 100)
    t = 57
    x2 = x.clone()
    x2[..., t + 1:] = torch.randn(2, 16, 100 - t - 1) * 10
    for h, h2 in zip(stack(x), stack(x2)):
        torch.testing.assert_close(h[..., :t + 1], h2[..., :t + 1])
        assert not torch.allclose(h[..., t + 1:], h2[..., t + 1:])


# --- channel groups: both directions in one call -----------------------------------------------------

def _group_slice(module, group, groups):
    """A copy of ``module``'s parameters and buffers for one group, as a state dict of a one-group twin."""
    sd = {}
    for name, t in module.state_dict().items():
        if t.ndim == 0:
            sd[name] = t
            continue
        owner = module.get_submodule(name.rsplit('.', 1)[0]) if '.' in name else module
        shared = getattr(owner, 'share_groups', False)
        n = t.shape[0] // groups
        sd[name] = t if shared else t[group * n:(group + 1) * n]
    return sd


@pytest.mark.parametrize('share', [False, True])
@pytest.mark.parametrize('norm_layer', ['batchnorm', 'layernorm'])
@pytest.mark.parametrize('conv_style', ['standard', 'bottleneck'])
def test_grouped_tab_equals_one_tab_per_group(share, norm_layer, conv_style):
    width = conv_style == 'bottleneck'                  # a bottleneck width only for the style that has one
    grouped = _randomise_bn(TemporalAwareBlock(
        24, 24, dilation=4, groups=2, share_groups=share, norm_layer=norm_layer, conv_style=conv_style,
        **(dict(bottleneck_chans=10) if width else {}), drop_rate=0.0))
    x = torch.randn(3, 24, 40)
    for training in (False, True):
        grouped.train(training)
        y = grouped(x)
        for g in range(2):
            single = TemporalAwareBlock(12, 12, dilation=4, norm_layer=norm_layer, conv_style=conv_style,
                                        **(dict(bottleneck_chans=5) if width else {}), drop_rate=0.0).train(training)
            single.load_state_dict(_group_slice(grouped, g, 2))
            torch.testing.assert_close(y[:, 12 * g:12 * (g + 1)], single(x[:, 12 * g:12 * (g + 1)]))


def test_shared_group_batchnorm_updates_running_stats_as_two_passes():
    shared = _randomise_bn(GroupBatchNorm1d(8, groups=2, share_groups=True, momentum=0.3)).train()
    plain = nn.BatchNorm1d(4, momentum=0.3).train()
    plain.load_state_dict(shared.state_dict())
    x = torch.randn(5, 8, 11) * 3 + 1
    y = shared(x)
    torch.testing.assert_close(y[:, :4], plain(x[:, :4]))
    torch.testing.assert_close(y[:, 4:], plain(x[:, 4:]))
    for name in ('running_mean', 'running_var', 'num_batches_tracked'):
        torch.testing.assert_close(getattr(shared, name), getattr(plain, name))
    assert shared.weight.shape == (4,)


def test_group_conv_layouts():
    sep = GroupConv1d(6, 10, 2, dilation=3, groups=2, causal=True)
    assert sep.weight.shape == (10, 3, 2)
    x = torch.randn(2, 6, 9)
    ref = F.conv1d(F.pad(x, (3, 0)), sep.weight, sep.bias, dilation=3, groups=2)
    torch.testing.assert_close(sep(x), ref)
    tied = GroupConv1d(6, 10, 1, groups=2, share_groups=True)
    assert tied.weight.shape == (5, 3, 1)
    y = tied(x)
    torch.testing.assert_close(y[:, :5], F.conv1d(x[:, :3], tied.weight, tied.bias))
    torch.testing.assert_close(y[:, 5:], F.conv1d(x[:, 3:], tied.weight, tied.bias))
    with pytest.raises(ValueError, match='divisible by groups'):
        GroupConv1d(5, 10, 1, groups=2)


def test_custom_norm_callable_is_applied_per_group():
    tab = TemporalAwareBlock(8, 8, dilation=1, groups=2, norm_layer=lambda c: nn.GroupNorm(1, c), drop_rate=0.0).eval()
    norm = tab.convs[0].norm
    assert len(norm.norms) == 2 and norm.norms[0].num_channels == 4
    x = torch.randn(2, 8, 6)
    h = tab.convs[0].conv(x)
    torch.testing.assert_close(norm(h), torch.cat([norm.norms[0](h[:, :4]), norm.norms[1](h[:, 4:])], dim=1))


ENCODER_CASES = {
    'separate': dict(share_weights=False),
    'shared': dict(share_weights=True),
    'shared-aligned': dict(share_weights=True, align_backward=True),
    'fuse': dict(share_weights=True, merge='fuse'),
    'fuse-aligned-separate': dict(share_weights=False, merge='fuse', align_backward=True),
    'stem-norm-layernorm': dict(share_weights=True, stem_norm=True, norm_layer='layernorm'),
    'bottleneck-add': dict(share_weights=False, conv_style='bottleneck', bottleneck_chans=5, residual='add'),
}


@pytest.mark.parametrize('case', ENCODER_CASES)
def test_bidirectional_encoder_equals_two_separate_passes(case):
    enc = _randomise_bn(BiTemporalEncoder(13, 16, depth=3, drop_rate=0.0, **ENCODER_CASES[case]))
    x = torch.randn(2, 13, 30)
    for training in (False, True):
        enc.train(training)
        out, ref = enc(x), reference_bi_temporal_encoder(enc, x)
        assert len(out) == 3
        for s, r in zip(out, ref):
            assert s.shape == (2, 16, 30)
            torch.testing.assert_close(s, r, atol=1e-5, rtol=1e-5)


def test_bidirectional_backward_pass_sees_reversed_input():
    """Independent of the reference: with a one-level stack, the backward group's output at frame t
    depends only on input frames >= t (causal in reversed time)."""
    enc = _randomise_bn(BiTemporalEncoder(4, 6, depth=2, share_weights=False, align_backward=True)).eval()
    x = torch.randn(1, 4, 20)
    x2 = x.clone()
    x2[..., :8] = torch.randn(1, 4, 8) * 5
    h = enc.stack(enc.stem(torch.cat([x, x.flip(-1)], 1)))[-1]
    h2 = enc.stack(enc.stem(torch.cat([x2, x2.flip(-1)], 1)))[-1]
    bwd, bwd2 = h[:, 6:].flip(-1), h2[:, 6:].flip(-1)
    torch.testing.assert_close(bwd[..., 8:], bwd2[..., 8:])
    assert not torch.allclose(h[:, :6, 8:], h2[:, :6, 8:])


def test_bidirectional_parameter_counts_and_layout():
    shared = BiTemporalEncoder(13, 16, depth=3, share_weights=True)
    separate = BiTemporalEncoder(13, 16, depth=3, share_weights=False)
    n_shared = sum(p.numel() for p in shared.parameters())
    n_sep = sum(p.numel() for p in separate.parameters())
    assert n_sep == 2 * n_shared
    assert separate.stem.conv.weight.shape == (32, 13, 1) and shared.stem.conv.weight.shape == (16, 13, 1)
    fuse = BiTemporalEncoder(13, 16, depth=3, merge='fuse')
    assert len(fuse.fuse) == 3 and fuse.fuse[0].in_channels == 32 and fuse.fuse[0].out_channels == 16


def test_stem_norm_adds_bn_relu():
    enc = BiTemporalEncoder(13, 16, depth=1, stem_norm=True)
    assert isinstance(enc.stem.norm, nn.BatchNorm1d) and isinstance(enc.stem.act, nn.ReLU)
    plain = BiTemporalEncoder(13, 16, depth=1)
    assert not hasattr(plain.stem, 'norm')


# --- aggregation and fusion -------------------------------------------------------------------------

def test_delta_aggregation_values():
    levels = [torch.full((1, 2, 3), float(v)) for v in (1, 4, 9, 16)]
    delta = DeltaAggregation('delta')(levels)
    assert delta.shape == (1, 2, 3, 4)
    assert delta[0, 0, 0].tolist() == [3.0, 5.0, 7.0, 16.0]
    assert DeltaAggregation('all')(levels)[0, 0, 0].tolist() == [1.0, 4.0, 9.0, 16.0]
    both = DeltaAggregation('delta+all')
    assert both.num_outputs(4) == 7
    assert both(levels)[0, 0, 0].tolist() == [3.0, 5.0, 7.0, 1.0, 4.0, 9.0, 16.0]


def test_weight_layer_is_weighted_sum():
    wl = WeightLayer(5)
    assert wl.weight.abs().max() <= 0.05
    s = torch.randn(2, 3, 7, 5)
    expected = sum(wl.weight[j] * s[..., j] for j in range(5))
    torch.testing.assert_close(wl(s), expected)
    with pytest.raises(ValueError, match='5 items'):
        wl(torch.randn(2, 4))


def _attention_reference(fusion, s):
    """AttentionFusion written out with einsum, straight from the specification (eval mode)."""
    b, c, t, n = s.shape
    d = fusion.d_qkv
    w, bias = fusion.qkv.weight, fusion.qkv.bias
    qkv = torch.einsum('bctn,oc->bnto', s, w) + bias
    q, k, v = qkv[..., :d], qkv[..., d:2 * d], qkv[..., 2 * d:]
    att = torch.softmax(torch.einsum('bntd,bnsd->bnts', q, k) / math.sqrt(d), dim=-1)
    ctx = torch.einsum('bnts,bnsd->bntd', att, v)
    ctx = torch.einsum('bntd,cd->bntc', ctx, fusion.proj.weight) + fusion.proj.bias
    res = s.permute(0, 2, 3, 1).reshape(b, t, n * c)
    z = F.layer_norm(ctx.permute(0, 2, 1, 3).reshape(b, t, n * c) + res, (n * c,), fusion.norm1.weight, fusion.norm1.bias)
    if fusion.ffn is not None:
        l1, l2 = fusion.ffn[0], fusion.ffn[2]
        h = torch.relu(torch.relu(z @ l1.weight.t() + l1.bias) @ l2.weight.t() + l2.bias)
        z = F.layer_norm(h + z, (n * c,), fusion.norm2.weight, fusion.norm2.bias)
    return z


@pytest.mark.parametrize('ffn', [True, False])
def test_attention_fusion_matches_specification(ffn):
    fusion = AttentionFusion(12, 4, d_qkv=16, d_ff=32, ffn=ffn).eval()
    s = torch.randn(2, 12, 10, 4)
    out = fusion(s)
    assert out.shape == (2, 10, 48)
    torch.testing.assert_close(out, _attention_reference(fusion, s), atol=1e-5, rtol=1e-5)


def test_attention_fusion_mask_ignores_padded_frames():
    fusion = AttentionFusion(12, 4, d_qkv=16, d_ff=32).eval()
    s = torch.randn(1, 12, 10, 4)
    padded = torch.cat([s, torch.randn(1, 12, 6, 4) * 100], dim=2)
    mask = torch.zeros(1, 16, dtype=torch.bool)
    mask[:, :10] = True
    torch.testing.assert_close(fusion(padded, mask)[:, :10], fusion(s), atol=1e-5, rtol=1e-5)
    assert not torch.allclose(fusion(padded)[:, :10], fusion(s), atol=1e-3)


def test_aft_local_matches_naive_formula_and_window():
    aft = AFTLocalFusion(6, 3, max_len=20, d_qkv=4, window=5).double().eval()
    s = torch.randn(2, 6, 20, 3, dtype=torch.float64)
    s_lvl = s.permute(0, 3, 2, 1)
    q, k, v = (p.transpose(1, 2).reshape(2, 20, 12) for p in aft.qkv(s_lvl).chunk(3, dim=-1))
    idx = torch.arange(20)
    w = torch.where((idx[:, None] - idx[None, :]).abs() < 5, aft.pos_bias, torch.zeros(()).double())
    weights = torch.exp(w)[None, :, :, None] * torch.exp(k)[:, None, :, :]        # [B, t, t', D]
    y = torch.sigmoid(q) * (weights * v[:, None]).sum(2) / weights.sum(2)
    expected = aft.norm(aft.proj(y) + s_lvl.transpose(1, 2).reshape(2, 20, 18))
    torch.testing.assert_close(aft(s), expected)
    with pytest.raises(ValueError, match='max_len=20'):
        aft(torch.randn(1, 6, 21, 3, dtype=torch.float64))


def test_aft_and_gmm_finite_for_large_inputs():
    aft = AFTLocalFusion(39, 8, max_len=188)
    s = torch.randn(2, 39, 188, 8) * 1e3
    assert torch.isfinite(aft(s)).all()
    gmm = GMMClusteringHead(39, 4)
    x = torch.randn(2, 39, 188) * 1e3
    assert torch.isfinite(gmm(x)).all()
    assert torch.isfinite(gmm.responsibilities(x)).all()
    fusion = AttentionFusion(39, 8)
    assert torch.isfinite(fusion(s)).all()


# --- GMM head --------------------------------------------------------------------------------------

def test_gmm_responsibilities_sum_to_one_and_shapes():
    gmm = GMMClusteringHead(10, num_classes=3, num_components=8)
    x = torch.randn(4, 10, 25)
    gamma = gmm.responsibilities(x)
    assert gamma.shape == (4, 25, 8)
    torch.testing.assert_close(gamma.sum(-1), torch.ones(4, 25))
    assert gmm(x).shape == (4, 3)
    assert gmm(x, pre_logits=True).shape == (4, 80)
    assert GMMClusteringHead(10, 3, 8, second_order=True)(x, pre_logits=True).shape == (4, 160)


def test_gmm_responsibilities_match_direct_gaussian_formula():
    gmm = GMMClusteringHead(3, 2, num_components=4).double()
    with torch.no_grad():
        gmm.log_vars.uniform_(-1, 1)
        gmm.mix_logits.uniform_(-1, 1)
    x = torch.randn(2, 3, 7, dtype=torch.float64)
    var = gmm.log_vars.exp()
    xt = x.transpose(1, 2)[:, :, None, :]
    log_n = -0.5 * (((xt - gmm.means) ** 2 / var).sum(-1) + var.log().sum(-1) + 3 * math.log(2 * math.pi))
    expected = torch.softmax(torch.log_softmax(gmm.mix_logits, 0) + log_n, dim=-1)
    torch.testing.assert_close(gmm.responsibilities(x), expected)


def test_gmm_mask_ignores_padded_frames():
    gmm = GMMClusteringHead(10, 3).eval()
    x = torch.randn(2, 10, 20)
    padded = torch.cat([x, torch.randn(2, 10, 5) * 50], dim=-1)
    mask = torch.ones(2, 25, dtype=torch.bool)
    mask[:, 20:] = False
    torch.testing.assert_close(gmm(padded, mask=mask), gmm(x), atol=1e-5, rtol=1e-5)


def test_gmm_init_from_data_recovers_clusters():
    torch.manual_seed(1)
    centres = torch.tensor([[-5.0, 0.0], [5.0, 0.0], [0.0, 6.0]])
    frames = torch.cat([c + 0.3 * torch.randn(200, 2) for c in centres])
    for method in ('kmeans', 'em'):
        gmm = GMMClusteringHead(2, 2, num_components=3).init_from_data(frames, method=method)
        found = sorted(gmm.means.tolist())
        for f, c in zip(found, sorted(centres.tolist())):
            assert abs(f[0] - c[0]) < 0.2 and abs(f[1] - c[1]) < 0.2
        torch.testing.assert_close(torch.softmax(gmm.mix_logits, 0), torch.full((3,), 1 / 3), atol=0.02, rtol=0)
        assert (gmm.log_vars.exp() - 0.09).abs().max() < 0.05


# --- positional encoding, transformer, encoder ------------------------------------------------------

def test_sinusoidal_positional_encoding_values():
    pe = SinusoidalPositionalEncoding(8, max_len=50)
    out = pe(torch.zeros(1, 50, 8))
    pos, i = 7, 2
    assert out[0, pos, 2 * i].item() == pytest.approx(math.sin(pos / 10000 ** (2 * i / 8)), abs=1e-6)
    assert out[0, pos, 2 * i + 1].item() == pytest.approx(math.cos(pos / 10000 ** (2 * i / 8)), abs=1e-6)
    assert out[0, 0, 0::2].abs().max() == 0 and (out[0, 0, 1::2] == 1).all()
    assert 'table' not in pe.state_dict()


def test_transformer_stack_layers_are_independent_and_keep_all():
    stack = TransformerEncoderStack(32, 4, 64, num_layers=3, keep_all=True).eval()
    w = [layer.linear1.weight for layer in stack.layers]
    assert w[0].data_ptr() != w[1].data_ptr() and not torch.equal(w[0], w[1])
    x = torch.randn(2, 9, 32)
    out = stack(x)
    assert out.shape == (2, 9, 32, 3)
    torch.testing.assert_close(out[..., 0], stack.layers[0](x))
    torch.testing.assert_close(out[..., 2], stack.layers[2](stack.layers[1](out[..., 0])))


@pytest.mark.parametrize('aggregation', ['all', 'delta', 'delta+all'])
def test_tim_encoder_weighted_fusion_equals_weight_layer_on_the_stack(aggregation):
    x = torch.randn(2, 13, 20)
    weighted = _randomise_bn(TIMEncoder(13, 8, depth=4, aggregation=aggregation, fusion='weight')).eval()
    stacked = weighted.aggregate(weighted.encoder(x))
    assert stacked.shape[-1] == weighted.num_levels == (7 if aggregation == 'delta+all' else 4)
    torch.testing.assert_close(weighted(x), weighted.weight_layer(stacked))


def test_tim_encoder_fusions():
    x = torch.randn(2, 13, 20)
    none = TIMEncoder(13, 8, depth=4, bidirectional=False, aggregation='delta', fusion='none')
    assert none(x).shape == (2, 8, 20, 4)
    last = _randomise_bn(TIMEncoder(13, 8, depth=4, fusion='last')).eval()
    torch.testing.assert_close(last(x), last.encoder(x)[-1])


@pytest.mark.parametrize('share', [False, True])
def test_eval_batchnorm_is_folded_into_the_convolution_with_the_same_result(share):
    """The TAB's units are the package's one conv-norm-act unit, `ConvNormAct1d`."""
    tab = _randomise_bn(TemporalAwareBlock(8, 8, dilation=2, groups=2, share_groups=share)).eval()
    unit = tab.convs[0]
    assert type(unit) is ConvNormAct1d and unit.conv.causal
    x = torch.randn(3, 8, 12)
    unfolded = unit.drop(unit.act(unit.norm(unit.conv(x))))
    torch.testing.assert_close(unit(x), unfolded, atol=1e-6, rtol=1e-5)
    unit.norm.train()                                   # a norm in training mode is never folded
    torch.testing.assert_close(unit(x), unit.act(unit.norm(unit.conv(x))))


@pytest.mark.skipif(not torch.cuda.is_available(), reason='needs CUDA')
@pytest.mark.parametrize('share', [False, True])
def test_grouped_encoder_on_cuda_equals_cpu(share):
    """CUDA runs the groups as plain convolutions (cuDNN's grouped kernels are slow): same results."""
    torch.backends.cudnn.allow_tf32 = False
    enc = _randomise_bn(BiTemporalEncoder(13, 16, depth=4, share_weights=share, stem_norm=True, drop_rate=0.0))
    x = torch.randn(3, 13, 50)
    for training in (False, True):
        enc.train(training)
        cpu = [h.detach() for h in enc(x)]
        gpu = [h.detach().cpu() for h in enc.cuda()(x.cuda())]
        enc.cpu()
        for c, g in zip(cpu, gpu):
            torch.testing.assert_close(g, c, atol=1e-5, rtol=1e-5)


@pytest.mark.parametrize('block, old, new', [
    (TemporalAwareBlock, dict(in_channels=8, out_channels=8, dilation=2, dropout=0.0, bottleneck_channels=4,
                              conv_style='bottleneck'),
     dict(in_chans=8, filters=8, dilation=2, drop_rate=0.0, bottleneck_chans=4, conv_style='bottleneck')),
    (TemporalStack, dict(channels=8, depth=2), dict(filters=8, depth=2)),
    (BiTemporalEncoder, dict(in_channels=5, channels=8, depth=2, dropout=0.2), dict(in_chans=5, filters=8, depth=2, drop_rate=0.2)),
    (TIMEncoder, dict(in_channels=5, channels=8, depth=2), dict(in_chans=5, filters=8, depth=2)),
    (AttentionFusion, dict(channels=8, num_levels=2), dict(filters=8, num_levels=2)),
    (SinusoidalPositionalEncoding, dict(dim=8, dropout=0.1), dict(dim=8, drop_rate=0.1)),
    (TransformerEncoderStack, dict(d_model=8, num_heads=2, d_ff=16, dropout=0.2), dict(d_model=8, num_heads=2, d_ff=16, drop_rate=0.2)),
])
def test_old_argument_names_still_build_the_same_block(block, old, new):
    torch.manual_seed(0)
    with pytest.warns(FutureWarning, match='is now'):
        before = block(**old)
    torch.manual_seed(0)
    after = block(**new)
    assert repr(before) == repr(after)
    assert all(torch.equal(a, b) for a, b in zip(before.state_dict().values(), after.state_dict().values()))
    name, value = next((k, v) for k, v in old.items() if k not in new)
    with pytest.raises(ConfigurationError, match='give'):
        block(**new, **{name: value})



def test_blocks_name_misspelt_arguments():
    from tim_zoo.exceptions import UnknownArgumentError
    with pytest.raises(UnknownArgumentError, match='share_weight .did you mean share_weights'):
        BiTemporalEncoder(39, 8, share_weight=True)
    with pytest.raises(UnknownArgumentError, match='fusoin .did you mean fusion'):
        TIMEncoder(39, 8, fusoin='last')
    with pytest.raises(UnknownArgumentError, match='dilation'):
        TemporalStack(8, 2, dilation=3)
    with pytest.raises(TypeError):                                    # UnknownArgumentError is a TypeError too
        TIMEncoder(39, 8, dropout_rate=0.1)


def test_blocks_check_their_input_and_name_the_fix():
    """Issue 30: blocks fail with the layout they expect (as the models do), not with a conv or matmul error."""
    import torch
    from tim_zoo.exceptions import InputShapeError
    from tim_zoo.layers import (
        AFTLocalFusion, AttentionFusion, DeltaAggregation, FlattenHead, FrameScoreHead, GMMClusteringHead, PoolHead,
        TemporalAwareBlock, TemporalStack, TIMEncoder, TransformerEncoderStack,
    )
    cases = [
        (lambda: TIMEncoder(39)(torch.randn(2, 50, 39)), r'\[B, C=39, T\].*x.transpose\(1, 2\)'),
        (lambda: TIMEncoder(39, bidirectional=False)(torch.randn(2, 13, 50)), r'\[B, C=39, T\].*\(C=13\)'),
        (lambda: TemporalStack(16, 4)(torch.randn(2, 39, 50)), r'in_chans=39'),
        (lambda: AttentionFusion(39, 5)(torch.randn(2, 39, 50, 4)), r'\[B, F=39, T, n=5\].*\(n=4\)'),
        (lambda: AFTLocalFusion(39, 4, max_len=50)(torch.randn(2, 50, 39 * 4)), r'4-D input \[B, F=39, T, n=4\]'),
        (lambda: GMMClusteringHead(312, 7)(torch.randn(2, 50, 312)), r'\[B, D=312, T\].*transpose'),
        (lambda: DeltaAggregation('delta')(torch.randn(2, 3, 4)), r'list of levels'),
        (lambda: TemporalAwareBlock(39, 16, 1)(torch.randn(2, 16, 30)), r'TemporalAwareBlock expects \[B, C=39, T\]'),
        (lambda: FlattenHead(39, 50, 7)(torch.randn(2, 39, 60)), r'\(T=60\); for 60 frames build it with seq_len=60'),
        (lambda: FrameScoreHead(312, 50, 7)(torch.randn(2, 312, 40)), r'seq_len=40'),
        (lambda: PoolHead(39, 7)(torch.randn(2, 50, 39)), r'transpose'),
        (lambda: TransformerEncoderStack(32, 2, 64, 2)(torch.randn(2, 10, 16)), r'\[B, T, d=32\]'),
    ]
    for call, message in cases:
        with pytest.raises(InputShapeError, match=message):
            call()
    assert TemporalStack(16, 3, in_chans=39)(torch.randn(2, 39, 20))[-1].shape == (2, 16, 20)
    levels = [torch.randn(3, 5, 7) for _ in range(4)]
    for mode in ('delta', 'all', 'delta+all'):                     # the stacked layout [B, F, T, n] is the list's
        assert torch.equal(DeltaAggregation(mode)(torch.stack(levels, dim=-1)), DeltaAggregation(mode)(levels))


@pytest.mark.parametrize('align', [False, True])
def test_an_impulse_shows_what_frame_t_of_a_bidirectional_level_means(align):
    """Frame t of a level: with align_backward=False the backward direction's reversed frames (input frame
    T-1-t); with True, input frame t in both directions, so an impulse moves one neighbourhood of frames."""
    import torch
    from tim_zoo.layers import BiTemporalEncoder
    torch.manual_seed(0)
    encoder = BiTemporalEncoder(4, 4, depth=1, share_weights=True, align_backward=align).eval()
    x = torch.randn(1, 4, 50)
    moved = x.clone()
    moved[..., 10] += 5.0
    with torch.no_grad():
        changed = ((encoder(moved)[0] - encoder(x)[0]).abs().amax(dim=1)[0] > 1e-6).nonzero().flatten().tolist()
    # one level: two causal convs of kernel 2 each way, so an input frame reaches 2 frames on its causal side
    expected = [8, 9, 10, 11, 12] if align else [10, 11, 12, 39, 40, 41]     # 39 = T-1-10, reversed onwards
    assert changed == expected


def test_the_old_channels_attribute_reads_filters_with_a_warning_and_leaves_the_bases_alone():
    from torch import nn

    from tim_zoo.layers import AFTLocalFusion, AttentionFusion, BiTemporalEncoder
    blocks = [AttentionFusion(8, 3), AFTLocalFusion(8, 3, max_len=16), BiTemporalEncoder(4, 8, depth=2)]
    for block in blocks:
        assert type(block).__bases__ == (nn.Module,)             # the API page shows no helper class among bases
        with pytest.warns(FutureWarning, match='channels is now .filters'):
            assert block.channels == block.filters == 8
        assert isinstance(block.get_submodule(next(iter(dict(block.named_children())))), nn.Module)
        with pytest.raises(AttributeError):
            block.no_such_attribute


def test_block_inputs_a_user_gets_wrong_are_named():
    """A float mask was taken as bool (all zeros masked every frame), a mask of another length or without a valid
    frame reached torch; dilation 0 and levels of other lengths failed inside torch."""
    from tim_zoo.exceptions import ConfigurationError, InputShapeError
    from tim_zoo.layers import AttentionFusion, DeltaAggregation, TemporalAwareBlock
    fusion, s = AttentionFusion(8, 3), torch.randn(2, 8, 10, 3)
    with pytest.raises(InputShapeError, match='AttentionFusion: mask must be bool'):
        fusion(s, torch.zeros(2, 10))
    with pytest.raises(InputShapeError, match=r'mask must be \[B, T\] = \[2, 10\], got \[2, 9\]'):
        fusion(s, torch.ones(2, 9, dtype=torch.bool))
    with pytest.raises(InputShapeError, match=r'every sequence needs a valid frame; mask rows \[1\]'):
        fusion(s, torch.tensor([[True] * 10, [False] * 10]))
    assert fusion(s, torch.ones(2, 10, dtype=torch.bool)).shape == fusion(s).shape
    with pytest.raises(ConfigurationError, match='dilation must be a whole number of at least 1, got 0'):
        TemporalAwareBlock(8, 8, dilation=0)
    assert TemporalAwareBlock(8, 8, dilation=np.int64(2)).dilation == 2
    with pytest.raises(InputShapeError, match=r'every level must have one shape \[B, F, T\], got \[\[1, 8, 10\], '):
        DeltaAggregation()([torch.randn(1, 8, 10), torch.randn(1, 8, 9)])

    class Levels(torch.nn.Module):                       # the check is a call in the traced graph, on the list
        def __init__(self):
            super().__init__()
            self.agg = DeltaAggregation()

        def forward(self, a, b):
            return self.agg([a, b])

    traced = torch.fx.symbolic_trace(Levels())
    assert traced(torch.ones(1, 8, 10), torch.ones(1, 8, 10)).shape == (1, 8, 10, 2)
    with pytest.raises(InputShapeError, match='every level must have one shape'):
        traced(torch.randn(1, 8, 10), torch.randn(1, 8, 9))
    import tim_zoo                                       # a feature extractor's dead-code pass keeps the checks
    features = tim_zoo.create_model('at_deltatim', num_classes=3, depth=2, features_only=True, feature_cls='fx')
    with pytest.raises(InputShapeError, match='expects 39 channels'):
        features(torch.randn(1, 20, 40))
