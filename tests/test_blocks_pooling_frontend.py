"""Blocks for variable-length batches (masked and attentive pooling, padding), frequency masking and the MFCC
front-end module."""
import logging
import os
import warnings
from pathlib import Path

import numpy as np
import pytest
import torch

import tim_zoo
from tim_zoo.data import MFCCExtractor, pad_collate, pad_sequences
from tim_zoo.exceptions import ConfigurationError, InputShapeError
from tim_zoo.layers import (
    MFCC, AttentiveStatsPool, FrequencyMask, GMMClusteringHead, MaskedStatsPool, lengths_to_mask,
)

SHARED = Path(os.environ.get('TIM_ZOO_SHARED', Path(__file__).resolve().parents[1] / '..' / 'shared')).resolve()
EMODB = SHARED / 'data' / 'emodb' / 'wav'


def _ragged(seed=0):
    g = torch.Generator().manual_seed(seed)
    return [torch.randn(6, t, generator=g) for t in (5, 12, 9)]


# --- masked and attentive pooling -----------------------------------------------------------------

def test_lengths_to_mask():
    assert lengths_to_mask(torch.tensor([1, 3]), 4).tolist() == [[True, False, False, False], [True, True, True, False]]


@pytest.mark.parametrize('mode', ['mean', 'mean_std'])
def test_masked_stats_pool_ignores_padding_and_matches_the_statistics(mode):
    seqs = _ragged()
    x, lengths = pad_sequences(seqs, pad_value=7.0)                   # padding with a value that would show
    pool = MaskedStatsPool(mode)
    out = pool(x, lengths=lengths)
    assert out.shape == (3, 6 if mode == 'mean' else 12)
    for row, s in zip(out, seqs):
        expected = s.mean(-1) if mode == 'mean' else torch.cat([s.mean(-1), s.std(-1, unbiased=False)])
        torch.testing.assert_close(row, expected, atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(pool(x, mask=lengths_to_mask(lengths, x.shape[-1])), out)
    torch.testing.assert_close(pool(seqs[1][None]), out[1:2])            # no lengths: every frame


def test_pooling_std_is_accurate_for_large_means_and_ignores_nan_padding():
    x = 300 + 0.1 * torch.randn(2, 4, 300, generator=torch.Generator().manual_seed(0))
    std = MaskedStatsPool('mean_std')(x)[:, 4:]
    torch.testing.assert_close(std, x.std(-1, unbiased=False), rtol=1e-3, atol=1e-4)
    seqs = _ragged(3)
    padded, lengths = pad_sequences(seqs, pad_value=float('nan'))
    for pool in (MaskedStatsPool('mean_std'), AttentiveStatsPool(6, hidden=4)):
        out = pool(padded, lengths=lengths)
        assert torch.isfinite(out).all()
        torch.testing.assert_close(out[0], pool(seqs[0][None])[0], atol=1e-5, rtol=1e-5)
    assert pad_sequences([np.ones((2, 3), np.float64)])[0].dtype == torch.float32
    torch.testing.assert_close(MaskedStatsPool()(padded, lengths=[5, 12, 9]), MaskedStatsPool()(padded, lengths=lengths))


def test_gmm_head_and_frequency_mask_check_their_inputs():
    head = GMMClusteringHead(4, 3, num_components=2)
    x = torch.randn(2, 4, 10)
    cases = [(lambda: head(x, mask=torch.tensor([[True] * 10, [False] * 10])), r'mask rows \[1\] have none'),
             (lambda: head(x, mask=torch.ones(1, 10, dtype=torch.bool)), r'mask must be \[B, T\] = \[2, 10\]'),
             (lambda: head(x, mask=torch.ones(2, 10)), 'mask must be bool'),
             (lambda: head(x, torch.ones(2, 10, dtype=torch.bool)), 'the mask is a keyword argument'),
             (lambda: head.init_from_data(torch.randn(2, 10, 4)), r'transpose it'),
             (lambda: FrequencyMask().train()(torch.ones(2, 1, 39, 50)), r'FrequencyMask expects a 3-D input')]
    for call, message in cases:
        with pytest.raises(InputShapeError, match=message):
            call()


def test_masked_stats_pool_std_of_a_constant_sequence_has_a_gradient():
    x = torch.ones(1, 3, 5, requires_grad=True)
    MaskedStatsPool('mean_std')(x).sum().backward()
    assert torch.isfinite(x.grad).all()


@pytest.mark.parametrize('per_channel', [False, True])
def test_attentive_stats_pool_ignores_padding_and_is_batch_independent(per_channel):
    torch.manual_seed(0)
    seqs = _ragged(1)
    x, lengths = pad_sequences(seqs, pad_value=-3.0)
    pool = AttentiveStatsPool(6, hidden=8, per_channel=per_channel)
    out = pool(x, lengths=lengths)
    assert out.shape == (3, 12)
    for row, s in zip(out, seqs):
        torch.testing.assert_close(row, pool(s[None])[0], atol=1e-5, rtol=1e-5)
    out.sum().backward()
    assert all(p.grad is not None and p.grad.abs().sum() > 0 for p in pool.parameters())


def test_attentive_stats_pool_weights_the_frames_it_scores_highest():
    pool = AttentiveStatsPool(2, hidden=4)
    with torch.no_grad():                                # the score is large where channel 0 is large
        pool.score[0].weight.zero_()
        pool.score[0].weight[:, 0, 0] = 5.0
        pool.score[0].bias.zero_()
        pool.score[2].weight.fill_(5.0)
    x = torch.tensor([[[0.0, 0.0, 3.0], [1.0, 2.0, 9.0]]])
    mean = pool(x)[0, :2]
    assert mean[1] > 8.5                                 # nearly all weight on the last frame


def test_pooling_refuses_bad_lengths_and_masks():
    x = torch.randn(2, 4, 6)
    pool = MaskedStatsPool()
    with pytest.raises(InputShapeError, match=r'lengths must be \[B=2\] valid frame counts in 1..6, got \[3, 7\]'):
        pool(x, lengths=torch.tensor([3, 7]))
    with pytest.raises(InputShapeError, match='give lengths or mask, not both'):
        pool(x, lengths=torch.tensor([3, 6]), mask=torch.ones(2, 6, dtype=torch.bool))
    with pytest.raises(InputShapeError, match=r'mask rows \[1\] have none'):
        pool(x, mask=torch.tensor([[True] * 6, [False] * 6]))
    with pytest.raises(InputShapeError, match=r'AttentiveStatsPool expects \[B, C=5, T\]'):
        AttentiveStatsPool(5)(x)
    with pytest.raises(ConfigurationError, match="mode"):
        MaskedStatsPool('max')


def test_the_gmm_head_pools_padded_batches_with_a_mask_from_lengths():
    torch.manual_seed(0)
    seqs = _ragged(2)
    head = GMMClusteringHead(6, 3, num_components=2).eval()
    x, lengths = pad_sequences(seqs)
    out = head(x, mask=lengths_to_mask(lengths, x.shape[-1]))
    for row, s in zip(out, seqs):
        torch.testing.assert_close(row, head(s[None])[0], atol=1e-5, rtol=1e-5)


# --- padding and collate --------------------------------------------------------------------------

def test_pad_collate_in_a_data_loader():
    seqs = [np.full((3, t), float(t), dtype=np.float32) for t in (4, 2, 7)]
    loader = torch.utils.data.DataLoader(list(zip(seqs, [0, 1, 2])), batch_size=3, collate_fn=pad_collate)
    x, lengths, labels = next(iter(loader))
    assert x.shape == (3, 3, 7) and lengths.tolist() == [4, 2, 7] and labels.tolist() == [0, 1, 2]
    assert x[1, :, :2].eq(2).all() and x[1, :, 2:].eq(0).all()
    x2, lengths2 = pad_collate([torch.ones(3, 2), torch.ones(3, 5)])
    assert x2.shape == (2, 3, 5) and lengths2.tolist() == [2, 5]
    with pytest.raises(InputShapeError, match=r'sequence 1 has shape \[4, 5\], the first \[3, 2\]'):
        pad_sequences([torch.ones(3, 2), torch.ones(4, 5)])


# --- frequency masking ----------------------------------------------------------------------------

def test_frequency_mask_zeroes_bands_of_channels_per_sample_in_training_only():
    torch.manual_seed(0)
    mask = FrequencyMask(max_width=5, num_masks=1)
    x = torch.ones(64, 39, 10)
    assert torch.equal(mask.eval()(x), x)
    out = mask.train()(x)
    zeroed = out[:, :, 0] == 0                                      # [B, C]
    assert torch.equal(out == 0, zeroed[:, :, None].expand_as(out))  # whole channels, every frame
    widths = zeroed.sum(1)
    assert widths.max() <= 5 and widths.min() == 0 and len(set(widths.tolist())) > 2
    for row in zeroed:                                              # one contiguous band
        idx = torch.nonzero(row).flatten()
        assert len(idx) == 0 or idx[-1] - idx[0] + 1 == len(idx)
    assert len({tuple(r.tolist()) for r in zeroed}) > 10            # drawn per sample
    assert FrequencyMask(0)(x) is x
    with pytest.raises(ConfigurationError, match='max_width and num_masks must be >= 0'):
        FrequencyMask(-1)


# --- the MFCC front-end ---------------------------------------------------------------------------

def _voice(seconds=2.0, rate=22050, f0=140.0, seed=0):
    t = np.arange(int(seconds * rate)) / rate
    rng = np.random.default_rng(seed)
    phase = 2 * np.pi * np.cumsum(f0 * (1 + 0.15 * np.sin(2 * np.pi * 1.3 * t))) / rate
    voice = sum(np.sin(k * phase) / k for k in range(1, 12)) * (0.5 - 0.5 * np.cos(2 * np.pi * t / 0.3)) ** 2
    return (0.3 * voice / np.abs(voice).max() + 0.003 * rng.normal(size=t.shape)).astype(np.float32)


def _waveforms():
    waves = [_voice(), _voice(1.3, f0=220, seed=1), 0.05 * np.random.default_rng(2).normal(size=30000).astype(np.float32)]
    if (EMODB / '03a01Wa.wav').is_file():
        from tim_zoo.data import load_audio
        waves += [load_audio(EMODB / name, 22050) for name in ('03a01Wa.wav', '16b10Td.wav')]
    return waves


@pytest.mark.parametrize('order, level, length', [(1, 'none', 96000), (3, 'peak', 44100), (1, 'peak', None)])
def test_the_mfcc_module_equals_the_extractor(order, level, length):
    """Within the documented tolerance, 1e-4 of each utterance's largest coefficient (on EMODB when ../shared is
    there, and on made-up voices and noise)."""
    pytest.importorskip('scipy')                              # the extractor's deltas
    extractor = MFCCExtractor(length, order=order, level=level)
    module = MFCC(order=order, level=level, length=length)
    for wave in _waveforms():
        expected = extractor(wave, 22050)
        with torch.no_grad():
            got = module(torch.as_tensor(wave)[None])[0].numpy()
        assert got.shape == expected.shape == (39, module.frames(len(wave)))
        assert np.abs(got - expected).max() <= 1e-4 * np.abs(expected).max()


def test_the_mfcc_module_is_batch_independent_and_has_no_state():
    module = MFCC(order=3, level='peak', length=22050)
    waves = torch.stack([torch.as_tensor(w[:22050]) for w in _waveforms()[:3]])
    with torch.no_grad():
        together = module(waves)
        for i in range(3):
            torch.testing.assert_close(module(waves[i:i + 1])[0], together[i])
    assert module.state_dict() == {}                           # constants are rebuilt from the arguments
    with pytest.raises(InputShapeError, match=r'MFCC expects a 2-D input \[B, N\]: mono waveforms at 22050 Hz.*squeeze'):
        module(waves[:, None])
    with pytest.raises(InputShapeError, match='needs at least 9 frames'):
        MFCC(order=3)(torch.randn(1, 2000))
    with pytest.raises(InputShapeError, match=r"at least 512 samples, got shape \(44100, 2\); this looks like \[N, "
                                              r"channels\]"):
        module(torch.randn(44100, 2))


def test_the_mfcc_module_scales_integer_pcm_as_the_extractor():
    wave = _waveforms()[0]
    pcm = np.round(wave * 32767).astype(np.int16)
    module, extractor = MFCC(length=44100), MFCCExtractor(44100)
    with torch.no_grad():
        got = module(torch.as_tensor(pcm)[None])[0].numpy()
    expected = extractor(pcm, 22050)
    assert np.abs(got - expected).max() <= 1e-4 * np.abs(expected).max()


def test_mfcc_from_settings_refuses_what_it_cannot_compute():
    assert MFCC.from_settings(dict(mean_signal_length=44100, level='peak', corpus='emodb')).frames(1) == 87
    for settings, message in [(dict(mean_signal_length=44100, gmm_select=40, frames=40), 'GMM-selected frames'),
                              (dict(normalize='speaker_mean'), 'normalised per speaker'),
                              (dict(sr=16000), 'sr are not MFCC settings'),
                              (dict(mean_signal_length=44100, frames=188), '188 frames for 44100 samples')]:
        with pytest.raises(ConfigurationError, match=message):
            MFCC.from_settings(settings)


@pytest.mark.parametrize('order', [1, 3])
def test_a_model_with_the_mfcc_front_end_trains_and_exports(order, tmp_path):
    """The front-end (with its centre pad / crop to the training length) in front of a registered model: gradients
    reach the model, and the whole exports with a dynamic batch and length (torch.export; ONNX when onnxruntime is
    installed), giving the eager outputs on inputs shorter and longer than the length, odd and even."""
    torch.manual_seed(0)
    settings = dict(sample_rate=22050, n_mfcc=39, order=order, level='peak', mean_signal_length=22050)
    model = torch.nn.Sequential(MFCC.from_settings(settings),
                                tim_zoo.create_model('timnet', num_classes=4, filters=8, depth=3))
    waves = torch.as_tensor(np.stack([w[:20000] for w in _waveforms()[:3]]))
    torch.nn.functional.cross_entropy(model(waves), torch.tensor([0, 1, 2])).backward()
    assert model[1].head.fc.weight.grad.abs().sum() > 0
    model.eval()
    dims = ({0: torch.export.Dim('batch', max=64), 1: torch.export.Dim('samples', min=8192, max=500000)},)
    exported = torch.export.export(model, (waves,), dynamic_shapes=dims).module()
    others = [torch.as_tensor(np.stack([w[:n] for w in _waveforms()[:2]])) for n in (9001, 25001, 28000)]
    with torch.no_grad():
        for x in [waves] + others:
            torch.testing.assert_close(exported(x), model(x), atol=1e-5, rtol=1e-5)
    ort = pytest.importorskip('onnxruntime')
    pytest.importorskip('onnxscript')
    path = tmp_path / 'with_front_end.onnx'
    logging.disable(logging.WARNING)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter('ignore')
            torch.onnx.export(model, (waves,), str(path), dynamo=True, input_names=['audio'], output_names=['logits'],
                              dynamic_shapes=dims)
    finally:
        logging.disable(logging.NOTSET)
    session = ort.InferenceSession(str(path), providers=['CPUExecutionProvider'])
    with torch.no_grad():
        for x in [waves] + others:
            (out,) = session.run(None, {'audio': x.numpy()})
            torch.testing.assert_close(torch.from_numpy(out), model(x), atol=1e-3, rtol=1e-3)
