"""What ``mclir-train`` and ``mclir-test`` share: import third-party registries (``--import``), check the option file
and ``--force_yml`` as BasicSR will read them, run a BasicSR pipeline with the remaining arguments, turn the errors a
user can fix into one line and a non-zero exit code, and exit 0 on success."""
import argparse
import contextlib
import importlib
import os
import sys

from ..checks.options import OptionError
from ..training.step_guard import TrainingDiverged


@contextlib.contextmanager
def command_line(argv):
    """BasicSR's ``parse_options`` reads ``sys.argv`` and takes no argument list: set it for the call only."""
    saved = sys.argv
    sys.argv = [saved[0] if saved else 'mclir'] + list(argv)
    try:
        yield
    finally:
        sys.argv = saved


def split_imports(argv):
    """``(modules, rest)``: the modules named by ``--import X`` (repeatable, or comma-separated) and the arguments
    left for BasicSR's own parser, which refuses unknown flags."""
    parser = argparse.ArgumentParser(add_help=False, allow_abbrev=False)
    parser.add_argument('--import', dest='modules', action='append', default=[])
    known, rest = parser.parse_known_args(argv)
    return [m.strip() for group in known.modules for m in group.split(',') if m.strip()], rest


def import_registries(modules, prog):
    """Import each module so that its decorators register archs, datasets, losses and models (e.g. ``hat.archs``,
    ``hat.models``) before the options are checked. Returns an error message, or None."""
    for name in modules:
        try:
            importlib.import_module(name)
        except ImportError as err:
            return (f'{prog}: --import {name}: {err}. Install that package, or put the folder that holds it on '
                    f'PYTHONPATH.')
    return None


def run_pipeline(pipeline, argv, prog):
    """Run ``pipeline(root)`` (the experiment root is the current directory). Returns the exit code: 0 on success;
    an import, option, input or divergence error prints ``<prog>: <message>`` (no traceback) and returns 1. BasicSR's
    pipelines check the command line, the option file and the options before writing anything (the fixes
    ``check_train_options``/``check_test_options``)."""
    modules, rest = split_imports(sys.argv[1:] if argv is None else list(argv))
    error = import_registries(modules, prog)
    if error:
        print(error, file=sys.stderr)
        return 1
    try:
        with command_line(rest):
            pipeline(os.getcwd())
    except OptionError as err:
        print(f'{prog}: option error: {err}', file=sys.stderr)
        return 1
    except TrainingDiverged as err:
        print(f'{prog}: {err}', file=sys.stderr)
        return 1
    return 0
