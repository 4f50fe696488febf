"""Import paths of modules that moved when the package was laid out by method and layer: the old path of each
still imports the same module object, so a user's ``from mclir_basicsr.models.mclir_model import MCLIRModel`` and a
benchmark script written against the flat layout keep working. New code uses the new paths."""
import importlib
import importlib.abc
import importlib.util
import sys
import types

# old module (under mclir_basicsr) -> new module
MOVED = {
    'history': 'methods.mclir.history',
    'losses.spn_loss': 'methods.mclir.spn_loss',
    'losses.uncertainty_loss': 'methods.mclir.uncertainty_loss',
    'spn_weight': 'methods.mclir.spn_weight',
    'spn_diagnostics': 'methods.mclir.spn_diagnostics',
    'models.mclir_model': 'methods.mclir.mclir_model',
    'models.mclir_authors_model': 'methods.mclir.mclir_authors_model',
    'train_options': 'methods.mclir.options',
    'models.dcpt_model': 'methods.dcpt.dcpt_model',
    'models.dcpt_transfer_model': 'methods.dcpt.dcpt_transfer_model',
    'archs.degradation_classifier_arch': 'methods.dcpt.degradation_classifier_arch',
    'losses.classification_loss': 'methods.dcpt.classification_loss',
    'feature_hooks': 'methods.dcpt.feature_hooks',
    'probe_features': 'methods.dcpt.probe_features',
    'dcpt_options': 'methods.dcpt.options',
    'archs.dsrir_arch': 'methods.dsrir.dsrir_arch',
    'archs.dsrir_authors_keys': 'methods.dsrir.dsrir_authors_keys',
    'losses.dsrir_loss': 'methods.dsrir.dsrir_loss',
    'models.dsrir_model': 'methods.dsrir.dsrir_model',
    'archs.constyle_arch': 'methods.constyle.constyle_arch',
    'archs.constyle_nafnet_arch': 'methods.constyle.constyle_nafnet_arch',
    'archs.constyle_authors_keys': 'methods.constyle.constyle_authors_keys',
    'losses.constyle_loss': 'methods.constyle.constyle_loss',
    'models.constyle_model': 'methods.constyle.constyle_model',
    'constyle_options': 'methods.constyle.options',
    'vgg_weights': 'losses.vgg_weights',
    'vgg_convert': 'losses.vgg_convert',
    'models.checkpoints': 'training.checkpoints',
    'models.guarded_step': 'training.step',
    'models.gt_losses': 'training.reconstruction',
    'models.compile_step': 'training.compile_step',
    'step_guard': 'training.step_guard',
    'precision': 'training.precision',
    'progressive': 'training.progressive',
    'optimizers': 'training.optimizers',
    'lr_schedulers': 'training.lr_schedulers',
    'rng_state': 'training.rng_state',
    'experiment_files': 'training.experiment_files',
    'dist': 'training.ranks',
    'options': 'checks.options',
    'option_file': 'checks.option_file',
    'preflight': 'checks.preflight',
    'shims': 'runtime.shims',
    'probe': 'cli.probe',
    'fetch_vgg': 'cli.fetch_vgg',
    'runtime.model_hooks': 'runtime.model_methods',
}
GONE_PACKAGES = ('models', )  # folders that no longer exist: their old submodules are aliased above


class OldPaths(importlib.abc.MetaPathFinder, importlib.abc.Loader):
    """Finds an old path only when it is imported, and answers with the new module itself (nothing is imported
    ahead: ``python -m mclir_basicsr.cli.probe`` must find its module not yet imported)."""

    def __init__(self, package_name):
        self.modules = {f'{package_name}.{old}': f'{package_name}.{new}' for old, new in MOVED.items()}
        self.packages = {f'{package_name}.{old}' for old in GONE_PACKAGES}

    def find_spec(self, fullname, path=None, target=None):
        if fullname in self.modules or fullname in self.packages:
            return importlib.util.spec_from_loader(fullname, self, is_package=fullname in self.packages)
        return None

    def create_module(self, spec):
        if spec.name in self.packages:
            package = types.ModuleType(spec.name, f'Old import path: its modules moved (see {__name__}).')
            package.__path__ = []
            return package
        return importlib.import_module(self.modules[spec.name])

    def exec_module(self, module):
        """Nothing to run: the module is the new one, already executed."""


def install(package_name):
    """Make every old path in :data:`MOVED` import its new module, when it is imported (idempotent)."""
    if not any(isinstance(f, OldPaths) for f in sys.meta_path):
        sys.meta_path.append(OldPaths(package_name))
