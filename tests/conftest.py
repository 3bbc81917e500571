import os
from pathlib import Path

import pytest
import torch

SHARED = Path(os.environ.get('TIM_ZOO_SHARED', Path(__file__).resolve().parents[1] / '..' / 'shared')).resolve()


@pytest.fixture(autouse=True)
def _seed():
    torch.manual_seed(0)
    yield


@pytest.fixture
def shared_dir():
    if not SHARED.is_dir():
        pytest.skip(f'reference folder {SHARED} is absent (set TIM_ZOO_SHARED to point at it)')
    return SHARED
