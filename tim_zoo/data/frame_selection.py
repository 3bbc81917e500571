"""GMM frame selection: shorten an utterance to its most representative frames (the seed's transform)."""
import dataclasses

import numpy as np

from .._utils import progress, require
from .feature_set import FeatureSet


def gmm_frame_selection(frames: np.ndarray, n_select: int = 100, n_fits: int = 8, seed: int = 0) -> np.ndarray:
    """Pick `n_select` representative frames of `frames` `[C, T]` and return them `[C, n_select]`.

    Fit `n_fits` diagonal Gaussian mixtures of `n_select` components (seeds `seed .. seed+n_fits-1`),
    take the first frame of each cluster label in each fit, rank frames by how many fits picked them
    (ties: earlier frame first), keep the top `n_select` in time order. If the fits pick fewer frames,
    the earliest unpicked frames fill up. Utterances with fewer distinct frames than `n_select`
    (`too_few_frames`) keep their first `n_select` frames (zero-padded at the end when shorter), counted from
    the end of a leading run of identical frames: the zero padding that centres a short recording (the research
    code selected from unpadded recordings, whose first frames are speech). Deterministic for a given `seed`.
    """
    mixture = require('sklearn.mixture', 'GMM frame selection')
    frames = np.asarray(frames, dtype=np.float64)
    c, t = frames.shape
    if too_few_frames(frames, n_select):
        frames = frames[:, _leading_run(frames):]
        out = np.zeros((c, n_select), dtype=np.float32)
        keep = min(frames.shape[1], n_select)
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


def too_few_frames(frames: np.ndarray, n_select: int) -> bool:
    """Whether `frames` `[C, T]` has fewer distinct frames than `n_select`, so that selection keeps its first ones."""
    return len(np.unique(np.asarray(frames).T, axis=0)) < n_select


def _leading_run(frames: np.ndarray) -> int:
    """The length of the leading run of frames identical to the first, when it is padding: at least 2 frames long
    (a single first frame is the recording's) and not every frame (an utterance all alike has no speech after it);
    else 0."""
    same = np.all(frames == frames[:, :1], axis=0)
    run = int(np.argmin(same))                            # 0 where every frame is alike
    return run if run >= 2 else 0


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
    `settings` record `gmm_select`, `gmm_fits` and `gmm_seed`, so checkpoints trained on them say what their inputs
    need."""
    x = np.stack([gmm_frame_selection(f, n_select, n_fits, seed=seed)
                  for f in progress(features.x, enabled=show_progress, desc='GMM frame selection')])
    settings = dict(features.settings, gmm_select=n_select, gmm_fits=n_fits, gmm_seed=seed)
    return dataclasses.replace(features, x=x.astype(np.float32), settings=settings)
