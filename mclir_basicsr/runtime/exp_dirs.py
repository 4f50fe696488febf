"""BasicSR's ``make_exp_dirs`` makes a folder of every ``path.*`` key whose name does not contain ``strict_load``,
``pretrain_network``, ``resume`` or ``param_key``. The file keys of this plugin's model classes (declared under
``plugin_option_keys['path']``, e.g. IRConStyleModel's ``path.pretrain_constyle``) must stay files."""
from ..checks.options import plugin_keys


def skip_plugin_file_keys(make_exp_dirs):
    """Wrap ``make_exp_dirs(opt)``: call it with the plugin's ``path`` keys left out (``opt`` itself unchanged)."""

    def make_exp_dirs_for_folders_only(opt):
        files = plugin_keys('path')
        path_opt = {k: v for k, v in opt['path'].items() if k not in files}
        return make_exp_dirs(dict(opt, path=path_opt))

    return make_exp_dirs_for_folders_only
