"""The package's imports flow one way: entry points -> runtime fixes -> methods and input checks -> training
machinery, shared networks, losses and data -> option validators -> leaf helpers. Imports inside functions count (an
import placed there to dodge a cycle is still a cycle); package ``__init__`` files do not. The old import paths of
moved modules still import the same module."""
import ast
import importlib
import os
import os.path as osp

from tests.helpers import ROOT

PKG = osp.join(ROOT, 'mclir_basicsr')

# Layer of each module, by package prefix ('x.' means the package x; the first match wins): imports go to lower
# layers. A new module of a package gets its package's layer with no edit here.
LAYERS = [
    (5, ('train', 'test', 'demo', 'cli.')),                      # entry points
    (4, ('runtime.', 'inference.')),                             # the BasicSR 1.4.2 fixes; restoring images
    (3, ('methods.', 'checks.preflight.', 'checks.blocks')),     # the methods; the checks that build and read inputs
    (2, ('training.', 'archs.', 'losses.', 'data.')),            # what every method uses
    (1, ('checks.',)),                                           # option validators, the option file
    (0, ('utils', 'version')),                                   # leaf helpers
]


def layer(module):
    for rank, prefixes in LAYERS:
        if any(module.startswith(p) if p.endswith('.') else module == p for p in prefixes):
            return rank
    raise AssertionError(f'module mclir_basicsr.{module} has no layer in tests/unit/test_architecture.py: add it')


def modules():
    found = {}
    for folder, _, files in os.walk(PKG):
        for f in files:
            if f.endswith('.py') and f != '__init__.py':
                rel = osp.relpath(osp.join(folder, f), PKG)[:-3].replace(os.sep, '.')
                found[rel] = osp.join(folder, f)
    return found


def package_imports(name, path, known):
    """Modules of the package that ``name`` imports (anywhere in the file)."""
    out = set()
    base = name.split('.')[:-1]
    for node in ast.walk(ast.parse(open(path).read())):
        if isinstance(node, ast.ImportFrom):
            if node.level:
                parts = base[:len(base) - node.level + 1] + (node.module.split('.') if node.module else [])
            elif node.module and node.module.startswith('mclir_basicsr'):
                parts = node.module.split('.')[1:]
            else:
                continue
            target = '.'.join(parts)
            for alias in node.names:
                sub = f'{target}.{alias.name}' if target else alias.name
                out.add(sub if sub in known else target)
        elif isinstance(node, ast.Import):
            out |= {a.name.split('.', 1)[1] for a in node.names if a.name.startswith('mclir_basicsr.')}
    return {m for m in out if m in known and m != name}


def test_imports_flow_one_way():
    known = modules()
    upward = [(m, t) for m, path in known.items() for t in package_imports(m, path, known) if layer(t) > layer(m)]
    assert not upward, 'imports against the layering: ' + ', '.join(f'{m} -> {t}' for m, t in upward)


def test_no_import_cycles():
    known = modules()
    graph = {m: package_imports(m, p, known) for m, p in known.items()}
    state, cycles = {}, []

    def visit(m, stack):
        state[m] = 'open'
        for t in graph[m]:
            if state.get(t) == 'open':
                cycles.append(stack[stack.index(t):] + [t])
            elif t not in state:
                visit(t, stack + [t])
        state[m] = 'done'

    for m in graph:
        if m not in state:
            visit(m, [m])
    assert not cycles, cycles


def test_modules_are_small():
    big = {m: n for m, p in modules().items() if (n := sum(1 for _ in open(p))) > 300}
    assert not big, f'split these modules (over 300 lines): {big}'


def test_old_import_paths_import_the_moved_modules():
    from mclir_basicsr.runtime.moved import MOVED
    for old, new in MOVED.items():
        assert importlib.import_module(f'mclir_basicsr.{old}') is importlib.import_module(f'mclir_basicsr.{new}'), old
    from mclir_basicsr.models.mclir_model import MCLIRModel  # the path the README's HAT-style example used
    assert MCLIRModel.__module__ == 'mclir_basicsr.methods.mclir.mclir_model'


def test_a_method_folder_registers_its_classes_by_file_name():
    """No list of modules to keep: every ``*_arch.py``, ``*_loss.py``, ``*_model.py``, ``*_dataset.py`` registers."""
    from basicsr.utils.registry import ARCH_REGISTRY, DATASET_REGISTRY, LOSS_REGISTRY, MODEL_REGISTRY
    registries = {'_arch': ARCH_REGISTRY, '_loss': LOSS_REGISTRY, '_model': MODEL_REGISTRY,
                  '_dataset': DATASET_REGISTRY}
    for name, path in modules().items():
        suffix = next((s for s in registries if name.endswith(s)), None)
        if suffix is None:
            continue
        module = importlib.import_module(f'mclir_basicsr.{name}')
        classes = [v for v in vars(module).values() if isinstance(v, type) and v.__module__ == module.__name__]
        assert any(c.__name__ in registries[suffix] for c in classes), name
