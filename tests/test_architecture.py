"""The package's structure: imports go one way (docs/architecture.md), and every error raised is a TimZooError."""
import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parent.parent / 'tim_zoo'

#: layer of each top-level part of the package; a module may import only from its own layer or below
LAYERS = {
    'version': 0, 'exceptions': 0, '_validation': 0, '_utils': 0,
    'layers': 1,
    'weights': 2,
    'models': 3,
    '_factory': 4, 'complexity': 4, 'research': 4,
    'pretrained': 5, 'data': 5,
    'evaluation': 6, 'benchmark': 6,
    'train': 7, 'inference': 7,
    'cli': 8,
    '__init__': 9, '__main__': 9,
}

#: third-party packages that are optional extras: the only imports allowed inside functions
OPTIONAL = {'h5py', 'safetensors', 'soundfile', 'soxr', 'librosa', 'scipy', 'sklearn', 'matplotlib', 'tqdm',
            'huggingface_hub', 'onnx', 'onnxruntime', 'onnxscript',
            'yaml',                            # research config files (load_research_checkpoint)
            'torch._inductor'}                  # part of torch, but 2.3 s to import: only when a step is compiled


def _module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix('').parts
    return '.'.join(parts[:-1] if parts[-1] == '__init__' else parts)


def _part(module: str) -> str:
    """`tim_zoo.weights.load` -> `weights`; `tim_zoo` -> `__init__`; entry points (`python -m`) -> `__main__`."""
    parts = module.split('.')
    if parts[-1] == '__main__':
        return '__main__'
    return parts[1] if len(parts) > 1 else '__init__'


def _resolve(module: str, is_package: bool, node: ast.ImportFrom) -> list:
    base = module.split('.') if is_package else module.split('.')[:-1]
    if node.level:
        base = base[:len(base) - node.level + 1]
        target = '.'.join(base + ([node.module] if node.module else []))
    else:
        target = node.module or ''
    if not target.startswith('tim_zoo'):
        return []
    # `from . import layers` imports the submodule `tim_zoo.layers`
    return [f'{target}.{a.name}' if (PACKAGE.parent / (target + '.' + a.name).replace('.', '/')).exists()
            or (PACKAGE.parent / (target + '.' + a.name).replace('.', '/')).with_suffix('.py').exists()
            else target for a in node.names]


def _imports():
    """`(module, imported tim_zoo module, line, at module level)` for every import in the package."""
    edges, inner = [], []
    for path in sorted(PACKAGE.rglob('*.py')):
        module = _module_name(path)
        tree = ast.parse(path.read_text(), str(path))
        top_level = set(map(id, tree.body))
        for node in ast.walk(tree):
            if isinstance(node, ast.ImportFrom):
                names = _resolve(module, path.name == '__init__.py', node)
                external = [] if names or node.level else [node.module]
            elif isinstance(node, ast.Import):
                names = [a.name for a in node.names if a.name.startswith('tim_zoo')]
                external = [a.name for a in node.names if not a.name.startswith('tim_zoo')]
            else:
                continue
            at_top = id(node) in top_level or _guarded_top(tree, node)
            edges.extend((module, name, node.lineno, at_top) for name in names)
            if not at_top:
                inner.extend((module, name, node.lineno) for name in names + external)
    return edges, inner


def _guarded_top(tree, node) -> bool:
    """Imports inside a module-level `try:` / `if TYPE_CHECKING:` count as module level."""
    for stmt in tree.body:
        if isinstance(stmt, (ast.Try, ast.If)) and any(n is node for n in ast.walk(stmt)):
            return not any(isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef))
                           and any(m is node for m in ast.walk(n)) for n in ast.walk(stmt))
    return False


def test_every_part_of_the_package_has_a_layer():
    parts = {_part(_module_name(p)) for p in PACKAGE.rglob('*.py')}
    assert parts <= set(LAYERS), f'give these a layer in LAYERS and docs/architecture.md: {parts - set(LAYERS)}'


def test_no_import_goes_up_a_layer():
    edges, _ = _imports()
    upward = [f'{src}:{line} imports {dst} (layer {LAYERS[_part(dst)]} above {LAYERS[_part(src)]})'
              for src, dst, line, _ in edges if LAYERS[_part(dst)] > LAYERS[_part(src)]]
    assert not upward, '\n'.join(upward)


def test_imports_form_no_circle():
    edges, _ = _imports()
    graph = {}
    for src, dst, _, _ in edges:
        if src != dst and not src.startswith(dst + '.'):     # a package importing its own submodules is fine
            graph.setdefault(src, set()).add(dst)
    state, stack, circles = {}, [], []

    def visit(node):
        state[node] = 'open'
        stack.append(node)
        for nxt in sorted(graph.get(node, ())):
            if state.get(nxt) == 'open':
                circles.append(stack[stack.index(nxt):] + [nxt])
            elif nxt not in state:
                visit(nxt)
        stack.pop()
        state[node] = 'done'

    for node in sorted(graph):
        if node not in state:
            visit(node)
    assert not circles, '\n'.join(' -> '.join(c) for c in circles)


def test_function_level_imports_only_for_optional_extras():
    _, inner = _imports()
    hidden = [f'{src}:{line} imports {dst} inside a function' for src, dst, line in inner
              if not any(dst == name or dst.startswith(name + '.') for name in OPTIONAL)]
    assert not hidden, '\n'.join(hidden)


def _builtin_errors() -> set:
    """Every exception class Python defines as a builtin, but ImportError (a missing optional extra says which
    extra to install) and NotImplementedError (abstract methods)."""
    import builtins
    return {name for name, obj in vars(builtins).items() if isinstance(obj, type) and issubclass(obj, BaseException)
            and not issubclass(obj, (ImportError, NotImplementedError, Warning))}


def _bare_raises(root: Path) -> list:
    errors = _builtin_errors()
    bare = []
    for path in sorted(root.rglob('*.py')):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Raise) and node.exc is not None:
                call = node.exc.func if isinstance(node.exc, ast.Call) else node.exc
                name = call.id if isinstance(call, ast.Name) else getattr(call, 'attr', '')
                if name in errors:
                    bare.append(f'{path.relative_to(root.parent)}:{node.lineno} raises {name}')
    return bare


def test_every_raise_is_a_tim_zoo_error():
    """docs/errors.md promises `except tim_zoo.TimZooError` catches whatever tim_zoo raises (ImportError for a
    missing optional extra aside, and `NotImplementedError` of abstract methods)."""
    bare = _bare_raises(PACKAGE)
    assert not bare, '\n'.join(bare)


def test_the_scans_find_what_they_look_for(tmp_path, monkeypatch):
    """The scans above can fail: a package with an upward import, a circle, a hidden import and bare raises."""
    pkg = tmp_path / 'tim_zoo'
    (pkg / 'weights').mkdir(parents=True)
    (pkg / 'models').mkdir()
    (pkg / '__init__.py').write_text('')
    (pkg / 'weights' / '__init__.py').write_text('')
    (pkg / 'models' / '__init__.py').write_text('')
    (pkg / 'weights' / 'load.py').write_text('from ..models import timnet\n\ndef f():\n    raise PermissionError("x")\n')
    (pkg / 'models' / 'timnet.py').write_text('from ..weights import load\n\ndef g():\n    from ..weights import load\n'
                                              '    raise ValueError("y")\n')
    monkeypatch.setitem(globals(), 'PACKAGE', pkg)
    edges, inner = _imports()
    assert ('tim_zoo.weights.load', 'tim_zoo.models.timnet', 1, True) in edges
    assert any(src == 'tim_zoo.models.timnet' and dst == 'tim_zoo.weights.load' for src, dst, _ in inner)
    with pytest.raises(AssertionError, match='imports tim_zoo.models.timnet'):
        test_no_import_goes_up_a_layer()
    with pytest.raises(AssertionError, match='tim_zoo.models.timnet -> tim_zoo.weights.load -> tim_zoo.models.timnet'):
        test_imports_form_no_circle()
    with pytest.raises(AssertionError, match='inside a function'):
        test_function_level_imports_only_for_optional_extras()
    assert [b.split(' raises ')[1] for b in _bare_raises(pkg)] == ['ValueError', 'PermissionError']


def test_tim_zoo_errors_are_the_builtin_errors_callers_catch():
    import tim_zoo
    assert issubclass(tim_zoo.WeightsNotFoundError, FileNotFoundError)
    assert issubclass(tim_zoo.UnknownArgumentError, TypeError) and issubclass(tim_zoo.InputDtypeError, TypeError)
    for error in (tim_zoo.ConfigurationError, tim_zoo.InputShapeError, tim_zoo.WeightFileError, tim_zoo.AudioError,
                  tim_zoo.UnknownModelError, tim_zoo.DatasetError):
        assert issubclass(error, ValueError) and issubclass(error, tim_zoo.TimZooError)
