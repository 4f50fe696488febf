"""The package's imports flow one way: entry points -> runtime fixes -> model classes -> {history, losses, option
parsing, step helpers} -> leaf helpers. Imports inside functions count (an import placed there to dodge a cycle is
still a cycle); package ``__init__`` files, which only import their submodules to register them, do not."""
import ast
import os
import os.path as osp

from tests.conftest import ROOT

PKG = osp.join(ROOT, 'mclir_basicsr')

# Layer of each module (dotted name under mclir_basicsr; 'x.' means the package x): imports go to lower layers.
LAYERS = [
    (5, ('train', 'test', 'demo', 'cli', 'probe', 'fetch_vgg')),                       # entry points
    (4, ('runtime.',)),                                          # the BasicSR 1.4.2 fixes
    (3, ('preflight.', 'checks.')),                              # input checks the runtime runs after parsing
    (3, ('models.',)),                                           # model classes
    (2, ('history', 'losses.', 'train_options', 'precision', 'step_guard', 'progressive', 'optimizers',
         'lr_schedulers', 'data.', 'archs.', 'feature_hooks', 'dcpt_options', 'constyle_options', 'probe_features',
         'spn_diagnostics', 'spn_weight')),
    (1, ('options', 'option_file')),                             # option validation
    (0, ('shims', 'utils', 'dist', 'rng_state', 'experiment_files', 'vgg_weights', 'vgg_convert',
         'version')),  # leaf helpers
]


def layer(module):
    for rank, prefixes in LAYERS:
        if any(module.startswith(p) if p.endswith('.') else module == p for p in prefixes):
            return rank
    raise AssertionError(f'module mclir_basicsr.{module} has no layer in tests/test_architecture.py: add it')


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
