"""Read a whole model saved with `torch.save(model)` without importing or running the code that defined it.

A pickled module is a tree of objects whose classes the pickle names (`baseline.TIM`, `torch.nn.modules.conv.Conv1d`);
normal unpickling imports those modules and calls their code. Here every class becomes an inert record
(`PickledObject`: the class name and the attributes the pickle stored), and the only callables the pickle may
reach are torch's tensor and parameter rebuilders and `collections.OrderedDict`; anything else (a function call
such as `os.system`, `builtins.eval`, `copyreg` reconstructors) is refused with `UnsafeFileError`.
"""
import pickle
import types
import zipfile
from pathlib import Path
from typing import Dict, Iterator, List, Tuple

import torch

from ..exceptions import UnsafeFileError, WeightFileError

#: callables a pickled model may name: torch's rebuilders of tensors and parameters, and ordered dicts
_ALLOWED_CALLABLES = {
    ('torch._utils', '_rebuild_tensor_v2'), ('torch._utils', '_rebuild_parameter'),
    ('torch._utils', '_rebuild_parameter_with_state'), ('collections', 'OrderedDict'),
}
#: plain containers the pickle may name (building them runs no user code)
_ALLOWED_TYPES = {('__builtin__', 'set'), ('builtins', 'set'), ('builtins', 'frozenset'), ('torch', 'Size')}
#: modules whose names are functions rather than classes: a pickle naming them would call code, so refused
_FUNCTION_MODULES = ('builtins', '__builtin__', 'os', 'posix', 'nt', 'subprocess', 'sys', 'copyreg', 'copy_reg',
                     'importlib', 'pickle', 'shutil', 'socket', 'runpy', 'functools', 'operator', 'codecs', 'io')


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


def _restricted_pickle_module(path) -> types.ModuleType:
    classes: Dict[Tuple[str, str], type] = {}

    class RestrictedUnpickler(pickle.Unpickler):
        def find_class(self, module, name):
            if (module, name) in _ALLOWED_CALLABLES:
                return super().find_class(module, name)
            if (module, name) in _ALLOWED_TYPES:
                return {'set': set, 'frozenset': frozenset, 'Size': torch.Size}[name]
            if module.split('.')[0] in _FUNCTION_MODULES or not name[:1].isupper():
                raise UnsafeFileError(
                    f'{path} asks to call {module}.{name} while loading; tim_zoo reads pickled models without running '
                    f'any code they name and refuses this one (only classes, kept as data, and torch\'s tensor '
                    f'rebuilders are allowed)')
            return classes.setdefault((module, name), _record_class(module, name))

    def load(file, **kwargs):                # torch's reader of the old (non-zip) format calls load itself
        return RestrictedUnpickler(file, **kwargs).load()

    module = types.ModuleType('tim_zoo_restricted_pickle')
    module.Unpickler = RestrictedUnpickler
    module.load = load
    module.__name__ = 'tim_zoo_restricted_pickle'
    return module


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


def pickled_modules(root: PickledObject, prefix: str = '') -> Iterator[Tuple[str, PickledObject]]:
    """`(name, module)` for `root` and every submodule, depth first, as `nn.Module.named_modules` (a module held
    under several names is listed under each)."""
    yield prefix, root
    for name, child in (root.state.get('_modules') or {}).items():
        if isinstance(child, PickledObject):
            yield from pickled_modules(child, f'{prefix}.{name}' if prefix else name)


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


__all__ = ['PickledObject', 'class_name', 'pickled_modules', 'pickled_state_dict', 'read_pickled_model']
