"""Helpers every layer of the package uses: atomic file writes, optional extras, plain-text tables."""
import contextlib
import contextvars
import functools
import importlib
import importlib.util
import os
import sys
import sysconfig
import warnings
from pathlib import Path
from typing import Sequence

from .exceptions import ConfigurationError

_EXTRA = {'librosa': 'audio', 'soundfile': 'audio', 'soxr': 'audio', 'scipy': 'audio', 'sklearn': 'train',
          'tqdm': 'train', 'matplotlib': 'plot', 'h5py': 'keras', 'safetensors': 'checkpoint'}

_UMASK = os.umask(0)
os.umask(_UMASK)


_STDLIB = sysconfig.get_paths()['stdlib'] + os.sep
_INSTALLED = tuple({sysconfig.get_paths()[k] + os.sep for k in ('purelib', 'platlib')})
#: the code a warning of tim_zoo's is not about: the package, and timm's builder it is called through
_OWN_CODE = (str(Path(__file__).parent) + os.sep, str(Path(importlib.util.find_spec('timm').origin).parent) + os.sep)


def warn_caller(message: str, category=UserWarning) -> None:
    """`warnings.warn` at the caller's line: the first frame outside tim_zoo and timm, however deep in the package
    the warning is raised (a fixed `stacklevel` points inside it when the call path changes). Where the package was
    called by Python itself (`python -m tim_zoo`, a thread's target), at the package's frame it called."""
    frame, level = sys._getframe(1), 2               # stacklevel 2: the frame that called warn_caller
    while frame.f_back is not None and frame.f_code.co_filename.startswith(_OWN_CODE):   # the outermost, at most
        frame, level = frame.f_back, level + 1
    if not frame.f_code.co_filename.startswith(_OWN_CODE) and _is_pythons(frame.f_code.co_filename):
        level -= 1
    warnings.warn(message, category, stacklevel=level)


def _is_pythons(filename: str) -> bool:
    """Whether `filename` is Python's own code (`runpy`, `threading`, frozen modules), not a caller's."""
    return filename.startswith('<frozen') or (filename.startswith(_STDLIB) and not filename.startswith(_INSTALLED))


def atomic_write(path: Path, write) -> None:
    """Call `write(tmp_path)`, then rename the temporary file onto `path`: readers never see half a file.

    The file gets the permissions of an ordinary new file (safetensors writes owner-only files).
    """
    path = Path(path)
    if not path.parent.is_dir():
        raise ConfigurationError(f'cannot write {path}: the folder {path.parent} does not exist')
    tmp = path.with_name(f'.{path.name}.tmp-{os.getpid()}')
    try:
        write(tmp)
        os.chmod(tmp, 0o666 & ~_UMASK)
        os.replace(tmp, path)
    finally:
        if tmp.exists():
            tmp.unlink()


def require(module: str, feature: str):
    """Import `module` or raise ImportError saying which extra provides it."""
    try:
        return importlib.import_module(module)
    except ImportError as e:
        extra = _EXTRA.get(module.split('.')[0], 'dev')
        raise ImportError(f'{feature} needs {module.split(".")[0]}: pip install ".[{extra}]" in the tim_zoo '
                          f'checkout (the {extra} extra)') from e


def progress(iterable, enabled: bool = True, **kwargs):
    """Wrap `iterable` in a tqdm bar when tqdm is installed and `enabled`; otherwise return it."""
    if not enabled:
        return iterable
    try:
        from tqdm.auto import tqdm
    except ImportError:
        return iterable
    return tqdm(iterable, **kwargs)


def format_table(header: Sequence[str], body: Sequence[Sequence[str]], aligns: Sequence[str]) -> str:
    """Columns padded to their widest cell; `aligns` holds `"<"` or `">"` per column."""
    widths = [max([len(h)] + [len(row[i]) for row in body]) for i, h in enumerate(header)]
    line = '  '.join(f'{{:{a}{w}}}' for a, w in zip(aligns, widths))
    return '\n'.join([line.format(*header), '  '.join('-' * w for w in widths)] + [line.format(*row) for row in body])


def renamed_arguments(**renames):
    """Decorator: keyword arguments under their old names (`old="new"`) still work, with a `FutureWarning`."""
    def decorate(fn):
        @functools.wraps(fn)
        def wrapper(*args, **kwargs):
            for old, new in renames.items():
                if old in kwargs:
                    if new in kwargs:
                        raise ConfigurationError(f'{fn.__qualname__}: give {new}= only ({old}= is its old name)')
                    warnings.warn(f'{fn.__qualname__}: the argument {old}= is now {new}=; the old name will be removed',
                                  FutureWarning, stacklevel=2)
                    kwargs[new] = kwargs.pop(old)
            return fn(*args, **kwargs)
        return wrapper
    return decorate


def cpu_info() -> tuple:
    """`(model name, flags)` of this machine's CPU as Linux's /proc/cpuinfo gives them (the first processor);
    `('', [])` where there is none."""
    model, flags = '', []
    try:
        for line in Path('/proc/cpuinfo').read_text().splitlines():
            if line.startswith('model name') and not model:
                model = line.split(':', 1)[1].strip()
            if line.startswith('flags'):
                flags = line.split(':', 1)[1].split()
                break
    except OSError:
        pass
    return model, flags


def import_from_cwd() -> None:
    """Put the current folder on `sys.path`, as `python -m` does, so that `my_models:build` imports from it."""
    if '' not in sys.path and os.getcwd() not in sys.path:
        sys.path.insert(0, os.getcwd())


def filters_alias(cls):
    """Class decorator for the `nn.Module`s whose `filters` was once `channels`: the old name still reads it, with a
    FutureWarning. An attribute fallback, not a property, so tools that list a module's attributes (TorchScript)
    do not trip the warning; a decorator rather than a base class, so the class's bases stay its real ones."""
    fallback = cls.__getattr__

    def __getattr__(self, name: str):
        if name == 'channels':
            warnings.warn(f'{type(self).__name__}.channels is now .filters', FutureWarning, stacklevel=2)
            return self.filters
        return fallback(self, name)

    cls.__getattr__ = __getattr__
    return cls


#: while a model is built by a factory, or rebuilt from recorded arguments: the values not up to the caller
_CHOSEN_VALUES = contextvars.ContextVar('tim_zoo_chosen_values', default={})


@contextlib.contextmanager
def chosen_for_the_caller(values: dict):
    """Within: `values` are given to a model by its builder (a factory, a tag, the training engine's `seq_len`, the
    arguments a checkpoint records), not by the caller, so a model does not refuse them as arguments its configuration
    leaves unused (`SERModel._refuse_unused`)."""
    token = _CHOSEN_VALUES.set({**_CHOSEN_VALUES.get(), **values})
    try:
        yield
    finally:
        _CHOSEN_VALUES.reset(token)


def values_chosen_for_the_caller() -> dict:
    """The values `chosen_for_the_caller` holds now."""
    return _CHOSEN_VALUES.get()
