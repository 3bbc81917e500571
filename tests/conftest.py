import importlib
import os
import sys
from pathlib import Path

import pytest
import torch

BENCHMARKS = Path(__file__).resolve().parents[1] / 'benchmarks'
SHARED = Path(os.environ.get('TIM_ZOO_SHARED', Path(__file__).resolve().parents[1] / '..' / 'shared')).resolve()


def benchmark_script(name: str):
    """The module `benchmarks/NAME.py`, imported as running a script there would see it: with the benchmarks folder
    on `sys.path` (last, so it shadows nothing), where the scripts import each other by name."""
    if str(BENCHMARKS) not in sys.path:
        sys.path.append(str(BENCHMARKS))
    return importlib.import_module(name)


@pytest.fixture(autouse=True)
def _seed():
    torch.manual_seed(0)
    yield


@pytest.fixture
def shared_dir():
    if not SHARED.is_dir():
        pytest.skip(f'reference folder {SHARED} is absent (set TIM_ZOO_SHARED to point at it)')
    return SHARED


def synthetic_speech(seconds: float = 1.5, sr: int = 22050, f0: float = 140.0, seed: int = 0, gain: float = 0.3):
    """A speech-like test signal (float32 ``[N]``): harmonics of a gliding pitch around ``f0`` in syllables of
    about 0.2 s separated by short pauses, so the speech detector finds voiced speech in it (a steady tone or
    noise it would reject)."""
    import numpy as np

    rng = np.random.default_rng(seed)
    n = int(seconds * sr)
    t = np.arange(n) / sr
    pitch = f0 * (1 + 0.15 * np.sin(2 * np.pi * 1.3 * t + rng.uniform(0, 6)))
    phase = 2 * np.pi * np.cumsum(pitch) / sr
    voice = sum(np.sin(k * phase) / k for k in range(1, 12))
    syllable = 0.5 - 0.5 * np.cos(2 * np.pi * t / 0.3)                   # 0.3 s syllables, silent between
    signal = voice * syllable ** 2 + 0.002 * rng.standard_normal(n)
    return (gain * signal / np.abs(signal).max()).astype(np.float32)


@pytest.fixture
def speech_like():
    return synthetic_speech


def as_trained(model):
    """`model`, a random model standing in for a trained one: its head no longer counts as untrained (a model built
    without weights says so in every prediction's notes, `tim_zoo.weights.fresh_head`)."""
    model.__dict__.pop('_fresh_head', None)
    return model


def small_recognizer(**kwargs):
    """An `EmotionRecognizer` over a small random `tim` (3 classes a, b, c; depth 2) with 1.49 s windows (32768
    samples, level "peak"): fast and deterministic; `kwargs` go to the recognizer."""
    import torch

    import tim_zoo
    torch.manual_seed(0)
    model = as_trained(tim_zoo.create_model('tim', num_classes=3, depth=2))
    model.label_names = ['a', 'b', 'c']
    return tim_zoo.EmotionRecognizer(model, feature_settings=dict(mean_signal_length=32768, level='peak'), **kwargs)


@pytest.fixture(scope='session')
def make_small_recognizer():
    return small_recognizer


#: Transformer sizes that keep the Transformer models quick in tests
SMALL_TRANSFORMER = dict(d_model=40, d_ff=64, num_heads=4)


def small_model_args(name: str, frames: int, **kwargs) -> dict:
    """Arguments of a quick 4-class `name` for `[B, 39, frames]` input: small Transformers, and `seq_len=frames` where
    the model's head fixes the length."""
    import tim_zoo
    args = dict(num_classes=4)
    if any(t in name for t in ('transformer', 'set')):
        args.update(SMALL_TRANSFORMER)
    args.update(kwargs)
    fixed = tim_zoo.create_model(name, **args).fixed_len is not None
    return dict(args, **(dict(seq_len=frames) if fixed else {}))
