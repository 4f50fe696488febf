"""Pre-flight checks of the data and checkpoints an option file names, run before anything is written.

Called from our entry points right after the options are parsed (see ``compat._wrap_parse_options``), before
BasicSR creates or renames the experiment folder.
"""


def check_inputs(opt):
    """Raise a clear error (naming the option key or file, saying what to do) for bad data or checkpoints."""
    return None
