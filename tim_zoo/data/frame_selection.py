"""GMM frame selection: shorten an utterance to its most representative frames (the seed's transform)."""
import numpy as np

from .._utils import progress, require
from .feature_set import FeatureSet


def gmm_frame_selection(frames: np.ndarray, n_select: int = 100, n_fits: int = 8, seed: int = 0) -> np.ndarray:
    """Pick `n_select` representative frames of `frames` `[C, T]` and return them `[C, n_select]`.

    Fit `n_fits` diagonal Gaussian mixtures of `n_select` components (seeds `seed .. seed+n_fits-1`),
    take the first frame of each cluster label in each fit, rank frames by how many fits picked them
    (ties: earlier frame first), keep the top `n_select` in time order. If the fits pick fewer frames,
    the earliest unpicked frames fill up. Utterances with fewer distinct frames than `n_select` keep their
    first `n_select` frames (zero-padded at the end when shorter). Deterministic for a given `seed`.
    """
    mixture = require('sklearn.mixture', 'GMM frame selection')
    frames = np.asarray(frames, dtype=np.float64)
    c, t = frames.shape
    distinct = len(np.unique(frames.T, axis=0))
    if distinct < n_select:
        out = np.zeros((c, n_select), dtype=np.float32)
        keep = min(t, n_select)
        out[:, :keep] = frames[:, :keep]
        return out
    counts = np.zeros(t, dtype=np.int64)
    for k in range(n_fits):
        gmm = mixture.GaussianMixture(n_components=n_select, covariance_type='diag', random_state=seed + k, reg_covar=1e-4)
        labels = gmm.fit(frames.T).predict(frames.T)
        _, first = np.unique(labels, return_index=True)
        counts[first] += 1
    order = np.lexsort((np.arange(t), -counts))          # most picked first, earlier frame on ties
    chosen = np.sort(order[:n_select])
    return frames[:, chosen].astype(np.float32)


class GMMFrameSelection:
    """Transform wrapper of `gmm_frame_selection` (`[C, T] -> [C, n_select]`)."""

    def __init__(self, n_select: int = 100, n_fits: int = 8, seed: int = 0):
        self.n_select, self.n_fits, self.seed = n_select, n_fits, seed

    def __call__(self, frames: np.ndarray) -> np.ndarray:
        return gmm_frame_selection(frames, self.n_select, self.n_fits, self.seed)

    def __repr__(self) -> str:
        return f'GMMFrameSelection(n_select={self.n_select}, n_fits={self.n_fits}, seed={self.seed})'


def select_frames(features: FeatureSet, n_select: int, n_fits: int = 8, seed: int = 0,
                  show_progress: bool = False) -> FeatureSet:
    """`features` with each utterance shortened to its `n_select` representative frames (`gmm_frame_selection`);
    `settings` record `gmm_select` and `gmm_fits`, so checkpoints trained on them say what their inputs need."""
    x = np.stack([gmm_frame_selection(f, n_select, n_fits, seed=seed)
                  for f in progress(features.x, enabled=show_progress, desc='GMM frame selection')])
    settings = dict(features.settings, gmm_select=n_select, gmm_fits=n_fits)
    return FeatureSet(x.astype(np.float32), features.y, features.label_names, features.paths, features.speakers,
                      settings)
