"""What ``mclir-train`` and ``mclir-test`` share: run a BasicSR pipeline with given arguments, turn the errors a user
can fix into one line and a non-zero exit code, and exit 0 on success."""
import contextlib
import os
import sys

from .options import OptionError
from .step_guard import TrainingDiverged


@contextlib.contextmanager
def command_line(argv):
    """BasicSR's ``parse_options`` reads ``sys.argv`` and takes no argument list: set it for the call only."""
    if argv is None:
        yield
        return
    saved = sys.argv
    sys.argv = [saved[0] if saved else 'mclir'] + list(argv)
    try:
        yield
    finally:
        sys.argv = saved


def run_pipeline(pipeline, argv, prog):
    """Run ``pipeline(root)`` (the experiment root is the current directory). Returns the exit code: 0 on success;
    an option, input or divergence error prints ``<prog>: <message>`` (no traceback) and returns 1."""
    try:
        with command_line(argv):
            pipeline(os.getcwd())
    except OptionError as err:
        print(f'{prog}: option error: {err}', file=sys.stderr)
        return 1
    except TrainingDiverged as err:
        print(f'{prog}: {err}', file=sys.stderr)
        return 1
    return 0
