"""Read the TIM-Net authors' Keras `.hdf5` weights into a `timnet` state dict.

Layout (MODELS.md): the root attribute `layer_names` lists layers in topological order, and layer
counters differ between files, so layers are matched by kind and position, never by number:
`conv1d*`: forward stem, backward stem, then per level forward conv1, backward conv1, forward conv2,
backward conv2; `batch_normalization*`: per level forward bn1, backward bn1, forward bn2, backward bn2;
`weight_layer` kernel `[n, 1]`; `dense` kernel `[F, classes]` and bias.
"""
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Dict, List

import numpy as np
import torch

from ..exceptions import WeightFileError

_BN_KEYS = {'gamma': 'weight', 'beta': 'bias', 'moving_mean': 'running_mean', 'moving_variance': 'running_var'}


@dataclass
class KerasTIMNet:
    """What a Keras TIM-Net file holds, converted to PyTorch layout."""
    state_dict: Dict[str, torch.Tensor]
    depth: int
    num_classes: int
    in_chans: int
    filters: int
    keras_version: str

    @property
    def model_args(self) -> dict:
        return dict(depth=self.depth, num_classes=self.num_classes, in_chans=self.in_chans, filters=self.filters)


def _h5py():
    try:
        import h5py
    except ImportError as e:
        raise ImportError('reading Keras .hdf5 weights needs h5py: pip install "tim_zoo[keras]"') from e
    return h5py


def _layers_of(group, names: List[str], pattern: str) -> List[str]:
    return [n for n in names if re.fullmatch(pattern, n)]


def _weights(group, layer: str) -> Dict[str, np.ndarray]:
    """`{short weight name: array}` of a layer, e.g. `{"kernel": ..., "bias": ...}`."""
    g = group[layer]
    out = {}
    for raw in g.attrs.get('weight_names', []):
        name = raw.decode() if isinstance(raw, bytes) else str(raw)
        short = name.split('/')[-1].split(':')[0]
        out[short] = np.asarray(g[name])
    return out


def read_keras_timnet(path) -> KerasTIMNet:
    """Read a Keras TIM-Net weight file (`10-fold_weights_best_i.hdf5`).

    Raises:
        WeightFileError: the file is missing, unreadable (truncated, not HDF5), or not a TIM-Net release.
    """
    h5py = _h5py()
    path = Path(path)
    if not path.is_file():
        raise WeightFileError(f'no weight file at {path}')
    try:
        f = h5py.File(path, 'r')
    except OSError as e:
        raise WeightFileError(f'cannot read {path} as an HDF5 file (truncated or corrupted?): {e}') from e
    with f:
        try:
            return _read(f, path)
        except (KeyError, OSError) as e:
            raise WeightFileError(f'{path} is not a readable TIM-Net Keras release ({type(e).__name__}: {e})') from e


def _read(f, path: Path) -> KerasTIMNet:
    group = f['model_weights'] if 'model_weights' in f else f
    if 'layer_names' not in group.attrs:
        raise WeightFileError(f'{path} is not a Keras weight file: it has no layer_names attribute')
    names = [n.decode() if isinstance(n, bytes) else str(n) for n in group.attrs['layer_names']]
    convs = _layers_of(group, names, r'conv1d(_\d+)?')
    bns = _layers_of(group, names, r'batch_normalization(_\d+)?')
    wls = _layers_of(group, names, r'weight_layer(_\d+)?')
    denses = _layers_of(group, names, r'dense(_\d+)?')
    depth = len(bns) // 4
    problems = []
    if depth < 1 or len(bns) != 4 * depth:
        problems.append(f'{len(bns)} batch_normalization layers (expected 4 per level)')
    if len(convs) != 2 + 4 * depth:
        problems.append(f'{len(convs)} conv1d layers (expected 2 stems + 4 per level = {2 + 4 * depth})')
    if len(wls) != 1:
        problems.append(f'{len(wls)} weight_layer layers (expected 1)')
    if len(denses) != 1:
        problems.append(f'{len(denses)} dense layers (expected 1)')
    if problems:
        raise WeightFileError(f'{path} is not a TIM-Net Keras release: it has ' + '; '.join(problems))

    # tim_zoo runs both directions as two channel groups: every encoder tensor is the forward
    # direction's followed by the backward direction's (BiTemporalEncoder).
    sd = {}
    prefix = 'tim.encoder.'

    def conv(fwd_layer, bwd_layer, key):
        fwd, bwd = _weights(group, fwd_layer), _weights(group, bwd_layer)
        kernel = np.concatenate([fwd['kernel'], bwd['kernel']], axis=2)          # [k, in, 2*out]
        sd[key + '.weight'] = torch.from_numpy(np.ascontiguousarray(kernel.transpose(2, 1, 0)))  # [2*out, in, k]
        sd[key + '.bias'] = torch.from_numpy(np.concatenate([fwd['bias'], bwd['bias']]))

    def bn(fwd_layer, bwd_layer, key):
        fwd, bwd = _weights(group, fwd_layer), _weights(group, bwd_layer)
        for k_name in fwd:
            sd[f'{key}.{_BN_KEYS[k_name]}'] = torch.from_numpy(np.concatenate([fwd[k_name], bwd[k_name]]))

    conv(convs[0], convs[1], prefix + 'stem.conv')
    for j in range(depth):
        c = convs[2 + 4 * j: 6 + 4 * j]
        b = bns[4 * j: 4 * j + 4]
        for unit in (0, 1):
            base = f'{prefix}stack.blocks.{j}.convs.{unit}'
            conv(c[2 * unit], c[2 * unit + 1], base + '.conv')
            bn(b[2 * unit], b[2 * unit + 1], base + '.norm')
    wl = _weights(group, wls[0])['kernel']
    if wl.shape != (depth, 1):
        raise WeightFileError(f'{path}: weight_layer kernel has shape {wl.shape}, expected ({depth}, 1)')
    sd['tim.weight_layer.weight'] = torch.from_numpy(wl[:, 0].copy())
    dense = _weights(group, denses[0])
    sd['head.fc.weight'] = torch.from_numpy(np.ascontiguousarray(dense['kernel'].T))
    sd['head.fc.bias'] = torch.from_numpy(dense['bias'])
    stem = sd[prefix + 'stem.conv.weight']
    version = f.attrs.get('keras_version', b'')
    return KerasTIMNet(
        state_dict=sd, depth=depth, num_classes=int(dense['kernel'].shape[1]), in_chans=int(stem.shape[1]),
        filters=int(stem.shape[0]) // 2, keras_version=version.decode() if isinstance(version, bytes) else str(version))
