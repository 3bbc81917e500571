"""Read the weights of a Keras `.hdf5` file, layer by layer, as numpy arrays.

This reader knows Keras' file layout, not any model: the model family whose published weights are
Keras files maps the layers onto its own state dict (`timnet`: `tim_zoo.models.timnet.read_keras_timnet`).
"""
import hashlib
import io
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Dict, List

import numpy as np

from .._utils import require
from ..exceptions import WeightFileError, WeightsNotFoundError


@dataclass
class KerasWeights:
    """The layers of a Keras weight file, in the file's (topological) order.

    Attributes:
        path: the file read.
        layer_names: every layer, in the root attribute `layer_names`' order.
        weights: `{layer: {short weight name: array}}`, e.g. `{"dense": {"kernel": ..., "bias": ...}}`.
        keras_version: the Keras version that wrote the file ('' if unrecorded).
        sha256: SHA-256 of the file's bytes (the file is read once: hashed, then parsed from memory).
    """
    path: Path
    layer_names: List[str]
    weights: Dict[str, Dict[str, np.ndarray]]
    keras_version: str
    sha256: str

    def layers(self, pattern: str) -> List[str]:
        """Names of the layers that fully match the regular expression `pattern`, in file order."""
        return [n for n in self.layer_names if re.fullmatch(pattern, n)]


def _text(value) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


def read_keras_weights(path) -> KerasWeights:
    """Read every layer's weights of a Keras `.hdf5`/`.h5` weight file.

    Raises:
        WeightsNotFoundError: no file at `path`.
        WeightFileError: unreadable (truncated, not HDF5) or not a Keras weight file.
    """
    h5py = require('h5py', 'reading Keras .hdf5 weights')
    path = Path(path)
    if not path.is_file():
        raise WeightsNotFoundError(f'no weight file at {path}')
    data = path.read_bytes()
    try:
        f = h5py.File(io.BytesIO(data), 'r')
    except OSError as e:
        raise WeightFileError(f'cannot read {path} as an HDF5 file (truncated or corrupted?): {e}') from e
    with f:
        try:
            group = f['model_weights'] if 'model_weights' in f else f
            if 'layer_names' not in group.attrs:
                raise WeightFileError(f'{path} is not a Keras weight file: it has no layer_names attribute')
            names = [_text(n) for n in group.attrs['layer_names']]
            weights = {}
            for layer in names:
                g = group[layer]
                weights[layer] = {_text(raw).split('/')[-1].split(':')[0]: np.asarray(g[_text(raw)])
                                  for raw in g.attrs.get('weight_names', [])}
        except (KeyError, OSError) as e:
            raise WeightFileError(f'{path} is not a readable Keras weight file ({type(e).__name__}: {e})') from e
        version = _text(f.attrs.get('keras_version', b''))
    return KerasWeights(path=path, layer_names=names, weights=weights, keras_version=version,
                        sha256=hashlib.sha256(data).hexdigest())
