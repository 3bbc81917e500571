"""Lazy imports of optional dependencies with an install hint."""
import importlib

_EXTRA = {'librosa': 'audio', 'soundfile': 'audio', 'soxr': 'audio', 'scipy': 'audio', 'sklearn': 'train', 'tqdm': 'train', 'matplotlib': 'train'}


def require(module: str, feature: str):
    """Import `module` or raise ImportError saying which extra provides it."""
    try:
        return importlib.import_module(module)
    except ImportError as e:
        extra = _EXTRA.get(module.split('.')[0], 'dev')
        raise ImportError(f'{feature} needs {module.split(".")[0]}: pip install "tim_zoo[{extra}]"') from e


def progress(iterable, enabled: bool = True, **kwargs):
    """Wrap `iterable` in a tqdm bar when tqdm is installed and `enabled`; otherwise return it."""
    if not enabled:
        return iterable
    try:
        from tqdm.auto import tqdm
    except ImportError:
        return iterable
    return tqdm(iterable, **kwargs)
