"""Where published weights are found: a path, the weights directory, or the Hugging Face hub cache.

Nothing is downloaded unless a `hf_hub_id` names a repository and the file is not in its cache yet. A
pretrained tag names its file relative to the weights directory (`EMODB_46/10-fold_weights_best_1.hdf5`),
the same path as inside a hub repository that holds it.
"""
import os
from pathlib import Path
from typing import List, Optional

from .._utils import require
from ..exceptions import WeightsNotFoundError
from .load import KERAS_SUFFIXES

#: environment variable of tim_zoo's home; weights live in `$TIM_ZOO_HOME/weights`
HOME_ENV = 'TIM_ZOO_HOME'


def home_dir() -> Path:
    """`$TIM_ZOO_HOME`, else `$XDG_CACHE_HOME/tim_zoo`, else `~/.cache/tim_zoo`."""
    if os.environ.get(HOME_ENV):
        return Path(os.environ[HOME_ENV]).expanduser().resolve()
    cache = os.environ.get('XDG_CACHE_HOME') or Path.home() / '.cache'
    return Path(cache).expanduser().resolve() / 'tim_zoo'


def weights_dir() -> Path:
    """The folder published weight files are looked up in: `home_dir() / "weights"`."""
    return home_dir() / 'weights'


def _hub_offline() -> bool:
    """Whether the Hugging Face hub is set offline (`HF_HUB_OFFLINE` 1/true/yes/on, as huggingface_hub reads it)."""
    return os.environ.get('HF_HUB_OFFLINE', '').strip().lower() in ('1', 'true', 'yes', 'on')


def _hub_cached(repo_id: str, filename: str, cache_dir=None) -> Optional[Path]:
    hub = require('huggingface_hub', f'loading weights of the Hugging Face hub repository {repo_id}')
    found = hub.try_to_load_from_cache(repo_id, filename, cache_dir=cache_dir)
    return Path(found) if isinstance(found, str) else None


def _hub_download(repo_id: str, filename: str, cache_dir=None) -> Path:
    hub = require('huggingface_hub', f'downloading weights of the Hugging Face hub repository {repo_id}')
    return Path(hub.hf_hub_download(repo_id, filename, cache_dir=cache_dir))


def find_weight_file(
        file=None,
        hf_hub_id: Optional[str] = None,
        hf_hub_filename: Optional[str] = None,
        cache_dir=None,
        name: str = 'the model',
        published: str = '',
        download: bool = True,
        relative_to_cwd: bool = True,
) -> Path:
    """The weight file of a pretrained config, looked up in order:

    1. `file` as given (absolute, or, with `relative_to_cwd`, relative to the working directory: a file you name);
    2. `file` relative to `weights_dir()` (a registered tag's file is looked for only there);
    3. with `hf_hub_id`: `hf_hub_filename` (default: `file`) in the Hugging Face hub cache (`cache_dir`, or the
       hub's default), then, with `download` and the hub not offline, downloaded from the hub.

    Raises:
        WeightsNotFoundError: in none of these places; the message names each place and `published` (where the
            weights are published).
    """
    looked: List[str] = []
    if file:
        given = Path(file).expanduser()
        if given.is_absolute() or relative_to_cwd:
            if given.is_file():
                return given
            looked.append(str(given.resolve()))
        if not given.is_absolute():
            root = weights_dir()
            in_dir = root / given
            if in_dir.is_file():
                return in_dir
            problem = ' (not a folder!)' if root.exists() and not root.is_dir() else ''
            looked.append(f'{in_dir} (the weights directory, ${HOME_ENV}/weights{problem})')
    if hf_hub_id:
        filename = hf_hub_filename or (str(file) if file and not Path(file).is_absolute() else 'model.safetensors')
        cached = _hub_cached(hf_hub_id, filename, cache_dir)
        if cached is not None:
            return cached
        looked.append(f'{filename} of the Hugging Face hub repository {hf_hub_id} (not in the hub cache)')
        if download and not _hub_offline():
            try:
                return _hub_download(hf_hub_id, filename, cache_dir)
            except Exception as e:  # no network, no such repository or file: say where it was looked for
                looked[-1] += f'; download failed: {type(e).__name__}'
    if not looked:
        raise WeightsNotFoundError(f'{name} names no weight file (file or hf_hub_id in its pretrained config)')
    keras = Path(str(file or '')).suffix.lower() in KERAS_SUFFIXES
    elsewhere = ('pretrained_cfg_overlay=dict(file=PATH) in Python; on the command line, the file itself: tim-zoo '
                 'predict ' + ('--keras-weights PATH' if keras else '--checkpoint PATH or --model local-dir:FOLDER')
                 + ', tim-zoo train --init PATH')
    if file and not Path(file).is_absolute():
        where = (f'Put it at {weights_dir() / file} (`tim-zoo weights` lists what belongs where), or load a copy '
                 f'from elsewhere: {elsewhere}')
    else:
        where = f'Load a file from elsewhere: {elsewhere}'
    raise WeightsNotFoundError(
        f'no weights for {name}; looked for ' + ', '.join(looked) + '. ' + (published + ' ' if published else '') + where)
