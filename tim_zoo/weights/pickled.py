"""Read a whole model saved with `torch.save(model)` without importing or running the code that defined it.

A pickled module is a tree of objects whose classes the pickle names (`baseline.TIM`, `torch.nn.modules.conv.Conv1d`);
normal unpickling imports those modules and calls their code. Here every class becomes an inert record
(`PickledObject`: the class name and the attributes the pickle stored); the only callables the pickle may reach
are copies of torch's tensor and parameter rebuilders and plain containers (`OrderedDict`, `set`, `torch.Size`);
attributes may be set only on the records. Anything else (a function call such as `os.system`, `builtins.eval`,
`copyreg` reconstructors, attributes set on a function or class) is refused with `UnsafeFileError`, and so is any
archive holding more than a pickle and tensors (a TorchScript archive, whose code `torch.load` would run).
"""
import collections
import pickle
import re
import types
import zipfile
from pathlib import Path
from typing import Dict, Iterator, List, Tuple

import torch

from ..exceptions import UnsafeFileError, WeightFileError

#: callables a pickled model may name: torch's rebuilders of tensors and parameters
_ALLOWED_CALLABLES = {
    ('torch._utils', '_rebuild_tensor_v2'), ('torch._utils', '_rebuild_parameter'),
    ('torch._utils', '_rebuild_parameter_with_state'),
}
#: plain containers the pickle may name (building them runs no user code)
_ALLOWED_TYPES = {('collections', 'OrderedDict'), ('__builtin__', 'set'), ('builtins', 'set'),
                  ('builtins', 'frozenset'), ('torch', 'Size')}
#: modules whose names are functions rather than classes: a pickle naming them would call code, so refused
_FUNCTION_MODULES = ('builtins', '__builtin__', 'os', 'posix', 'nt', 'subprocess', 'sys', 'copyreg', 'copy_reg',
                     'importlib', 'pickle', 'shutil', 'socket', 'runpy', 'functools', 'operator', 'codecs', 'io')
#: entries of a `torch.save` archive, after its top folder: the pickle, the tensors' bytes, format records
_ARCHIVE_ENTRY = re.compile(r'^[^/]+/(data\.pkl|data/\d+|version|byteorder|\.data/[\w.]+|\.format_version|'
                            r'\.storage_alignment)$')


class PickledObject:
    """An object of a class the pickle names, kept as data: `class_path` (`module.Class`) and the attributes the
    pickle stored (`state`). Nothing of the class's own code runs."""

    def __init__(self, *args):
        self.class_path = type(self).class_path
        self.state = {}
        self.args = args

    def __setstate__(self, state):
        if isinstance(state, tuple) and len(state) == 2:          # (dict, slots) from __reduce_ex__
            state = {**(state[0] or {}), **(state[1] or {})}
        self.state = state if isinstance(state, dict) else {'_state': state}

    def __repr__(self) -> str:
        return f'<pickled {self.class_path}>'


def _record_class(module: str, name: str) -> type:
    return type(name, (PickledObject,), dict(class_path=f'{module}.{name}', __module__='tim_zoo.pickled'))


def _forwarding(fn):
    """A fresh function calling `fn`: what the pickle gets instead of torch's own, so that nothing it does to the
    object it holds (a BUILD sets attributes) reaches torch."""
    def call(*args, **kwargs):
        return fn(*args, **kwargs)
    return call


def _restricted_pickle_module(path) -> types.ModuleType:
    classes: Dict[Tuple[str, str], type] = {}
    callables = {key: _forwarding(getattr(torch._utils, key[1])) for key in _ALLOWED_CALLABLES}
    containers = {'OrderedDict': collections.OrderedDict, 'set': set, 'frozenset': frozenset, 'Size': torch.Size}

    def refuse(what: str):
        raise UnsafeFileError(f'{path} {what} while loading; tim_zoo reads pickled models without running any code '
                              f'they name and refuses this one (only classes, kept as data, containers and torch\'s '
                              f'tensor rebuilders are allowed)')

    class RestrictedUnpickler(pickle._Unpickler):      # the Python unpickler: its BUILD can be checked
        def find_class(self, module, name):
            if (module, name) in callables:
                return callables[(module, name)]
            if (module, name) in _ALLOWED_TYPES:
                return containers[name]
            if module.split('.')[0] in _FUNCTION_MODULES or not name[:1].isupper():
                refuse(f'asks to call {module}.{name}')
            return classes.setdefault((module, name), _record_class(module, name))

        def load_build(self):
            if not isinstance(self.stack[-2], PickledObject):   # setting attributes of anything else: refused
                refuse(f'asks to set attributes of {type(self.stack[-2]).__name__} {self.stack[-2]!r:.60}')
            super().load_build()

        dispatch = dict(pickle._Unpickler.dispatch)
        dispatch[pickle.BUILD[0]] = load_build

    def load(file, **kwargs):                # torch's reader of the old (non-zip) format calls load itself
        return RestrictedUnpickler(file, **kwargs).load()

    module = types.ModuleType('tim_zoo_restricted_pickle')
    module.Unpickler = RestrictedUnpickler
    module.load = load
    module.__name__ = 'tim_zoo_restricted_pickle'
    return module


def check_torch_archive(path: Path) -> None:
    """A `torch.save` archive holds one pickle, tensor bytes and format records; anything else (a TorchScript
    archive's code and constants, which `torch.load` would hand to the TorchScript loader) is refused."""
    with zipfile.ZipFile(path) as archive:
        names = archive.namelist()
    others = [n for n in names if not _ARCHIVE_ENTRY.match(n) and not n.endswith('/')]
    pickles = [n for n in names if n.endswith('/data.pkl')]
    if others or len(pickles) != 1:
        what = 'a TorchScript archive' if any(n.endswith(('constants.pkl', '.py')) or '/code/' in n for n in names) \
            else 'not a plain torch.save archive'
        raise UnsafeFileError(f'{path} is {what} ({", ".join((others or names)[:4])}); tim_zoo reads only the pickle '
                              f'and tensors of a torch.save file (a TorchScript archive would run its code)')


def read_pickled_model(path) -> PickledObject:
    """The object tree of a `torch.save(model)` file (a zip archive with `data.pkl`), read with no class imported.

    Raises:
        WeightFileError: not a readable PyTorch archive, or it holds no module.
        UnsafeFileError: the pickle asks to call a function (code would run).
    """
    path = Path(path)
    if not path.is_file():
        raise WeightFileError(f'no file at {path}')
    if not zipfile.is_zipfile(path):
        raise WeightFileError(f'{path} is not a torch.save archive (a zip file, PyTorch 1.6 and later); re-save the '
                              f'model with a current PyTorch, or save its state_dict()')
    check_torch_archive(path)
    try:
        obj = torch.load(str(path), map_location='cpu', weights_only=False,
                         pickle_module=_restricted_pickle_module(path))
    except UnsafeFileError:
        raise
    except Exception as e:  # zip, unpickling and storage errors all mean: not a readable archive
        raise WeightFileError(f'cannot read {path} as a PyTorch file (torch.save): {type(e).__name__}: {e}') from e
    if not isinstance(obj, PickledObject) or '_modules' not in obj.state:
        raise WeightFileError(f'{path} holds no pickled model (torch.save(model)); a state dict is read as such')
    return obj


def pickled_modules(root: PickledObject, prefix: str = '', _inside: Tuple[int, ...] = ()
                    ) -> Iterator[Tuple[str, PickledObject]]:
    """`(name, module)` for `root` and every submodule, depth first, as `nn.Module.named_modules` (a module held
    under several names is listed under each).

    Raises:
        WeightFileError: a module contains itself (no model saved by torch does).
    """
    if id(root) in _inside:
        raise WeightFileError(f'the pickled model holds {prefix} inside itself: not a model torch saved')
    yield prefix, root
    for name, child in (root.state.get('_modules') or {}).items():
        if isinstance(child, PickledObject):
            yield from pickled_modules(child, f'{prefix}.{name}' if prefix else name, _inside + (id(root),))


def pickled_state_dict(root: PickledObject) -> Dict[str, torch.Tensor]:
    """The state dict `root.state_dict()` would give: parameters and persistent buffers of every module."""
    out = {}
    for name, module in pickled_modules(root):
        state = module.state
        skip = state.get('_non_persistent_buffers_set') or set()
        items: List[Tuple[str, object]] = list((state.get('_parameters') or {}).items())
        items += [(k, v) for k, v in (state.get('_buffers') or {}).items() if k not in skip]
        for key, tensor in items:
            if isinstance(tensor, torch.Tensor):
                out[f'{name}.{key}' if name else key] = tensor.detach()
    return out


def class_name(obj: PickledObject) -> str:
    """The bare class name (`TIM` of `baseline.TIM`)."""
    return obj.class_path.rsplit('.', 1)[-1]


__all__ = ['PickledObject', 'check_torch_archive', 'class_name', 'pickled_modules', 'pickled_state_dict', 'read_pickled_model']
