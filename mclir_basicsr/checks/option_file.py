"""The option file and the ``--force_yml`` entries, read as BasicSR's ``parse_options`` will read them, and refused
before it runs when it would fail or pass on a value that fails after the experiment folder was written.

``parse_options`` (BasicSR 1.4.2) opens ``-opt``, loads it with BasicSR's own YAML loader, sets keys on the top
level, applies each ``--force_yml KEY:SUBKEY=VALUE`` with ``exec`` (the value through its
``_postprocess_yml_value``: digits become numbers, ``true``/``false``/``~`` their values, ``[...]`` is evaluated, the
rest stays text), then indexes ``name``, ``num_gpu``, ``datasets`` and ``path``. Every failure there is a traceback,
and text where the file has a number (``train:total_iter=abc``) is only found mid-run. :func:`check_option_file`
does the same reading on a copy and raises :class:`~mclir_basicsr.options.OptionError` naming the file (line and
column of a YAML error) or the flag.
"""
import argparse
import numbers
import os.path as osp
import yaml
from basicsr.utils.options import _postprocess_yml_value, ordered_yaml

from .options import OptionError, nearest

# top-level keys parse_options indexes, whatever the pipeline (training or test), and what they must hold
NEEDED_KEYS = {'name': 'the experiment name, its folder under experiments/ or results/',
               'num_gpu': 'the number of GPUs, 0 on CPU or auto', 'datasets': 'the dataset blocks: train, val ...',
               'path': 'the paths block: pretrain_network_g, resume_state ...'}
EXAMPLE = 'e.g. train:total_iter=1000 or train:optim_g:lr=!!float2e-4'


def read_option_file(path, flag='-opt', loader=None):
    """The mapping in the YAML file ``path``, loaded with ``loader`` (default: BasicSR's, as ``parse_options`` loads
    it; a tool that only reads options passes ``yaml.SafeLoader``); errors name ``flag`` and the file."""
    try:
        with open(path, mode='r') as f:
            opt = yaml.load(f, Loader=loader or ordered_yaml()[0])
    except FileNotFoundError:
        raise OptionError(f'{flag} {path}: no such file (looked for {osp.abspath(path)}). Give the path of a YAML '
                          f'option file.') from None
    except OSError as err:
        raise OptionError(f'{flag} {path}: cannot read it ({err.strerror or err}).') from None
    except yaml.MarkedYAMLError as err:
        mark = err.problem_mark or err.context_mark
        at = f' at line {mark.line + 1}, column {mark.column + 1}' if mark is not None else ''
        problem = ' '.join(str(err.problem or err.context or err).split())
        raise OptionError(f'{flag} {path}: YAML syntax error{at}: {problem}. Fix that line (indentation, a missing '
                          f'":" or an unclosed bracket or quote).') from None
    except (yaml.YAMLError, UnicodeDecodeError) as err:
        raise OptionError(f'{flag} {path} is not a YAML text file: {" ".join(str(err).split())}.') from None
    if opt is None:
        raise OptionError(f'{flag} {path} is empty: an option file is a YAML mapping (name: ..., model_type: ..., '
                          f'datasets: ..., path: ...).')
    if not isinstance(opt, dict):
        raise OptionError(f'{flag} {path} holds a {_kind(opt)}{_shown(opt)}, not a mapping '
                          f'of options: write one "key: value" per line at the top level (name: ..., model_type: '
                          f'...).')
    return opt


def _kind(value):
    if value is None:
        return 'null (~)'
    if isinstance(value, bool):
        return 'boolean'
    if isinstance(value, numbers.Number):
        return 'number'
    if isinstance(value, str):
        return 'string'
    if isinstance(value, dict):
        return 'mapping'
    if isinstance(value, (list, tuple)):
        return 'list'
    return type(value).__name__


def _compatible(old, new):
    """Can ``new`` (from ``--force_yml``) stand where the file has ``old``? Same kind, or ~ (BasicSR's "none": a
    block off, ``manual_seed: ~`` random), or the word auto for a number (BasicSR's ``num_gpu: auto``, SPN's
    ``loss_weight: auto``)."""
    if old is None or new is None or isinstance(old, str):
        return True
    if isinstance(old, bool):
        return isinstance(new, bool)
    if isinstance(old, numbers.Number):
        return (isinstance(new, numbers.Number) and not isinstance(new, bool)) or new == 'auto'
    if isinstance(old, dict):
        return isinstance(new, dict)
    if isinstance(old, (list, tuple)):
        return isinstance(new, (list, tuple))
    return True


def _value_hint(old, raw):
    if isinstance(old, bool):
        return 'Give true or false.'
    if isinstance(old, numbers.Number):
        try:
            float(raw)
        except ValueError:
            return 'Give a number.'
        return (f'BasicSR takes only plain digits (1000, 0.5) as numbers here: write !!float{raw} for this one (it '
                f'becomes {float(raw)!r}).')
    if isinstance(old, dict):
        return 'Set one key inside it (KEY:SUBKEY=VALUE), or ~ to remove the block.'
    return 'Give a list such as [100, 200], or ~.'


def _shown(value):
    """`` (6)``: a scalar value for a message; nothing for a block or list."""
    return '' if isinstance(value, (dict, list, tuple)) else f' ({" ".join(repr(value).split())[:60]})'


def apply_force_yml(opt, entries, source):
    """Apply ``--force_yml`` ``entries`` to ``opt`` (in place) as BasicSR does, after checking each entry: one ``=``,
    existing mappings on the way, a value BasicSR can parse and of the kind the file has there (``source``: the
    file, for messages). Returns ``opt``."""
    for entry in entries:
        flag = f'--force_yml {entry}'
        if entry.count('=') != 1:
            raise OptionError(f'{flag}: each entry is KEY:SUBKEY=VALUE with exactly one "=" ({EXAMPLE}); BasicSR '
                              f'splits it at "=", so a value cannot contain one: edit the option file instead.')
        keys, raw = (part.strip() for part in entry.split('='))
        parts = keys.split(':')
        if any(not p or any(c in p for c in '"\\[]\n') for p in parts):
            raise OptionError(f'{flag}: {keys!r} is not a key path: give option names joined by ":" ({EXAMPLE}).')
        target, where = opt, ''
        for part in parts[:-1]:
            where = f'{where}:{part}' if where else part
            if part not in target:
                hint = nearest(part, [str(k) for k in target])
                hint = f' Did you mean {where[:-len(part)]}{hint}?' if hint else ''
                raise OptionError(f'{flag}: {source} has no {where} (BasicSR creates no new blocks, only a key in an '
                                  f'existing one).{hint}')
            target = target[part]
            if not isinstance(target, dict):
                raise OptionError(f'{flag}: {where} is a {_kind(target)} in {source}, not a block with keys; give '
                                  f'the path of a key inside a block ({EXAMPLE}).')
        try:
            value = _postprocess_yml_value(raw)
        except Exception as err:  # noqa: BLE001 - BasicSR evaluates "[..." with eval: any error is the user's input
            raise OptionError(f'{flag}: BasicSR evaluates a value starting with "[" as a Python list, and {raw!r} '
                              f'fails ({type(err).__name__}: {err}). Write a list such as [100, 200].') from None
        leaf = parts[-1]
        if leaf in target and not _compatible(target[leaf], value):
            old = target[leaf]
            raise OptionError(f'{flag}: {keys} is a {_kind(old)} in {source}{_shown(old)}, and BasicSR reads '
                              f'{raw!r} as a {_kind(value)}. {_value_hint(old, raw)}')
        target[leaf] = value
    return opt


def check_parse_needs(opt, source):
    """The top-level keys ``parse_options`` indexes are there and of the kind it uses."""
    for key, what in NEEDED_KEYS.items():
        if key not in opt:
            raise OptionError(f'{source} has no top-level key {key} ({what}); BasicSR needs it: add it.')
    if not isinstance(opt['name'], str) or not opt['name']:
        raise OptionError(f'name must be text (the folder name of the experiment), got {opt["name"]!r} in {source}; '
                          f'quote it.')
    for key in ('datasets', 'path'):
        if not isinstance(opt[key], dict):
            raise OptionError(f'{key} must be a block of keys in {source}, got a {_kind(opt[key])}{_shown(opt[key])}.')
    for phase, block in opt['datasets'].items():
        if not isinstance(block, dict):
            raise OptionError(f'datasets.{phase} must be a block of keys (type, dataroot_gt, ...) in {source}, got '
                              f'a {_kind(block)}{_shown(block)}.')


def check_option_file(path, force_yml=None):
    """Everything BasicSR's ``parse_options`` would trip on, checked on a copy: the file reads as a YAML mapping,
    every ``--force_yml`` entry applies and keeps the kind of the value it replaces, and the keys parse_options
    indexes are there. Returns the options as BasicSR will have them after its ``--force_yml`` step (nothing
    is written; BasicSR reads the file again).

    Raises:
        OptionError: the first problem, naming the file (and line) or the ``--force_yml`` entry.
    """
    opt = read_option_file(path)
    apply_force_yml(opt, force_yml or [], path)
    check_parse_needs(opt, path)
    return opt


def basicsr_option_arguments(argv):
    """``(-opt, --force_yml entries)`` as BasicSR's ``parse_options`` will take them from ``argv``, or None when
    they cannot be read (no ``-opt``, a flag without its value): BasicSR's own parser then says what is wrong."""
    parser = argparse.ArgumentParser(add_help=False, exit_on_error=False)
    parser.add_argument('-opt')
    parser.add_argument('--force_yml', nargs='+')
    try:
        known, _ = parser.parse_known_args(argv)
    except argparse.ArgumentError:
        return None
    return None if known.opt is None else (known.opt, known.force_yml)


def check_basicsr_arguments(argv):
    """Refuse, before BasicSR reads them, an option file or ``--force_yml`` entry its ``parse_options`` would fail
    on with a traceback or let through to fail mid-run (:func:`mclir_basicsr.option_file.check_option_file`)."""
    found = basicsr_option_arguments(argv)
    if found is not None:
        check_option_file(*found)
