"""README.md and docs/ name tests, option files, commands and other pages: everything they name exists.
(benchmarks/README.md is checked for the tests it names.)

Tests are found by file name anywhere under tests/ (so a test file can move into a subfolder), option files and
folders by path, ``mclir-*`` commands among setup.py's console scripts, ``python -m mclir_basicsr.X`` as a file of
the package, and relative links (with their ``#anchor``) among the files and headings of the repository.
"""
import ast
import glob
import os
import os.path as osp
import pytest
import re

from tests.conftest import ROOT

README_MAX_LINES = 160


def _pages():
    return ['README.md'] + sorted(osp.relpath(p, ROOT) for p in glob.glob(osp.join(ROOT, 'docs', '*.md')))


def _text(page):
    with open(osp.join(ROOT, page), encoding='utf-8') as f:
        return f.read()


def _test_files():
    """File name -> paths of the test files under tests/, in any subfolder."""
    found = {}
    for folder, _, files in os.walk(osp.join(ROOT, 'tests')):
        for f in files:
            if f.startswith('test_') and f.endswith('.py'):
                found.setdefault(f, []).append(osp.join(folder, f))
    return found


def _test_functions(path):
    with open(path, encoding='utf-8') as f:
        tree = ast.parse(f.read())
    names = {n.name for n in tree.body if isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef))}
    for cls in (n for n in tree.body if isinstance(n, ast.ClassDef)):
        names |= {f'{cls.name}::{n.name}' for n in cls.body if isinstance(n, ast.FunctionDef)}
    return names


def _console_scripts():
    tree = ast.parse(_text('setup.py'))
    scripts = set()
    for node in ast.walk(tree):
        entry = node.value if isinstance(node, ast.Constant) and isinstance(node.value, str) else ''
        if re.match(r'^[\w-]+\s*=\s*[\w.]+:\w+$', entry):
            scripts.add(entry.split('=')[0].strip())
    return scripts


def _slug(heading):
    """GitHub's anchor of a Markdown heading: lower case, punctuation dropped (not - or _), spaces to hyphens."""
    text = re.sub(r'`|\*\*|\[([^\]]*)\]\([^)]*\)', r'\1', heading.strip()).lower()
    return re.sub(r'[^\w\- ]', '', text).replace(' ', '-')


def _anchors(path):
    """The anchors of a Markdown file's headings (outside code blocks), with GitHub's -1, -2 for repeats."""
    seen, anchors, fenced = {}, set(), False
    with open(path, encoding='utf-8') as f:
        for line in f:
            if line.lstrip().startswith('```'):
                fenced = not fenced
            elif not fenced and re.match(r'#{1,6} ', line):
                slug = _slug(line.lstrip('#'))
                anchors.add(slug if slug not in seen else f'{slug}-{seen[slug]}')
                seen[slug] = seen.get(slug, 0) + 1
    return anchors


@pytest.mark.parametrize('page', _pages() + [osp.join('benchmarks', 'README.md')])
def test_every_test_a_page_names_exists(page):
    files = _test_files()
    refs = set(re.findall(r'(?:tests/(?:[\w/]+/)?)?(test_\w+\.py)::(\w+(?:::\w+)?)', _text(page)))
    missing = []
    for name, func in sorted(refs):
        paths = files.get(name, [])
        if not paths:
            missing.append(f'{name}::{func} (no file {name} under tests/)')
        elif not any(func in _test_functions(p) for p in paths):
            missing.append(f'{name}::{func} (no such test in {", ".join(osp.relpath(p, ROOT) for p in paths)})')
    assert not missing, f'{page} names tests that do not exist: {missing}'


def test_the_pages_name_tests_at_all():
    refs = set()
    for page in _pages():
        refs |= set(re.findall(r'(test_\w+\.py)::(test_\w+)', _text(page)))
    assert len(refs) > 20


@pytest.mark.parametrize('page', _pages())
def test_every_option_file_a_page_names_exists(page):
    # a path with a pattern ({a,b}, *, <task>) is a family of files, not one: only whole paths are checked
    paths = set(re.findall(r'(?<![\w/.{}*<>-])(options/[\w./-]*\.yml)(?![\w{}*<>])', _text(page)))
    folders = set(re.findall(r'(?<![\w/.{}*<>-])(options/[\w/-]*/)(?![\w{}*<>.])', _text(page)))
    missing = [p for p in sorted(paths) if not osp.isfile(osp.join(ROOT, p))]
    missing += [p for p in sorted(folders) if not osp.isdir(osp.join(ROOT, p))]
    assert not missing, f'{page} names option files or folders that do not exist: {missing}'


def test_the_readme_names_shipped_option_files():
    assert len(re.findall(r'options/[\w./-]*\.yml', _text('README.md'))) >= 5


@pytest.mark.parametrize('page', _pages())
def test_every_command_a_page_names_exists(page):
    text = _text(page)
    scripts = _console_scripts()
    unknown = sorted({c for c in re.findall(r'(?<![\w/.-])(mclir-[a-z][a-z-]*[a-z])\b', text)
                      if c not in scripts and c != 'mclir-basicsr'})
    pkg = osp.join(ROOT, 'mclir_basicsr')
    modules = set(re.findall(r'python\s+-m\s+mclir_basicsr\.([\w.]+\w)', text))
    no_file = sorted(m for m in modules
                     if not osp.isfile(osp.join(pkg, *m.split('.')) + '.py')
                     and not osp.isfile(osp.join(pkg, *m.split('.'), '__main__.py')))
    no_file = [f'mclir_basicsr.{m}' for m in no_file]
    assert not unknown and not no_file, (f'{page} names commands that are no console script in setup.py: {unknown}, '
                                         f'and python -m modules with no file: {no_file}')


@pytest.mark.parametrize('page', _pages())
def test_every_relative_link_of_a_page_resolves(page):
    text = re.sub(r'```.*?```', '', _text(page), flags=re.S)  # links inside code blocks are not links
    here = osp.dirname(osp.join(ROOT, page))
    broken = []
    for target in re.findall(r'\]\(([^)\s]+)\)', text):
        if re.match(r'^[a-z][a-z0-9+.-]*:', target) or target.startswith('//'):
            continue  # http:, https:, mailto:
        path, _, anchor = target.partition('#')
        full = osp.normpath(osp.join(here, path)) if path else osp.join(ROOT, page)
        if not osp.exists(full):
            broken.append(f'{target} (no file {osp.relpath(full, ROOT)})')
        elif anchor and full.endswith('.md') and anchor not in _anchors(full):
            broken.append(f'{target} (no heading #{anchor} in {osp.relpath(full, ROOT)})')
    assert not broken, f'{page} has broken links: {broken}'


def test_the_readme_is_a_newcomers_page():
    lines = _text('README.md').count('\n')
    assert lines <= README_MAX_LINES, f'README.md has {lines} lines, at most {README_MAX_LINES}: move detail to docs/'


def test_the_readme_links_every_docs_page():
    text = _text('README.md') + _text(osp.join('docs', 'README.md'))
    unlinked = [p for p in _pages()[1:] if osp.basename(p) != 'README.md' and f'{osp.basename(p)})' not in text]
    assert not unlinked, f'docs pages reachable from neither README.md nor docs/README.md: {unlinked}'


def test_ci_runs_the_test_command_the_readme_gives():
    assert 'make test' in _text('README.md')
    assert re.search(r'^make test$', _text(osp.join('.ci', 'run')), flags=re.M)
    assert re.search(r'^test:.*\n\t.*pytest.*tests', _text('Makefile'), flags=re.M)


@pytest.mark.parametrize('page', _pages())
def test_every_package_path_a_page_names_exists(page):
    """``mclir_basicsr/...`` paths (a module, a folder) and ``mclir_basicsr.x.y`` module names point at the package as
    it is laid out now."""
    text = _text(page)
    paths = set(re.findall(r'mclir_basicsr/[\w/]*[\w]+(?:\.py)?/?', text))
    missing = [p for p in sorted(paths) if not osp.exists(osp.join(ROOT, p.rstrip('/')))]
    modules = set(re.findall(r'\bmclir_basicsr(?:\.\w+)+', text))
    for name in sorted(modules):  # a module or package, or a name defined in a module (mclir_basicsr.x.y.Name)
        path = osp.join(ROOT, *name.split('.'))
        module, _, attr = name.rpartition('.')
        module_file = osp.join(ROOT, *module.split('.')) + '.py'
        if not (osp.isfile(path + '.py') or osp.isdir(path) or
                (osp.isfile(module_file) and re.search(rf'\b{attr}\b', open(module_file).read()))):
            missing.append(name)
    assert not missing, f'{page} names what the package does not have: {missing}'
