"""Property-based checks over every registered model: any batch size, length and channel count in the
model's valid range gives finite outputs of the right shape."""
import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import tim_zoo

MODEL_NAMES = tim_zoo.list_models()
MIN_SEQ_LEN = {'set_official': 36}          # four pooling stages (2, 2, 3, 3); shorter seq_len is refused at build


@pytest.mark.parametrize('name', MODEL_NAMES)
@settings(max_examples=6, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(batch=st.integers(1, 4), frames=st.integers(1, 80), in_chans=st.sampled_from([13, 26, 39]),
       classes=st.integers(2, 8), seed=st.integers(0, 2 ** 16))
def test_any_valid_input_gives_finite_logits(name, batch, frames, in_chans, classes, seed):
    frames = max(frames, tim_zoo.create_model(name).min_len, MIN_SEQ_LEN.get(name, 1))
    torch.manual_seed(seed)
    model = tim_zoo.create_model_for_frames(name, frames, num_classes=classes, in_chans=in_chans).eval()
    x = torch.randn(batch, in_chans, frames) * 3
    with torch.no_grad():
        logits = model(x)
    assert logits.shape == (batch, classes)
    assert torch.isfinite(logits).all()
