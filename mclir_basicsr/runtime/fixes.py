"""Every change this plugin makes to PyPI basicsr 1.4.2, in one list: what, why, and the test that proves it.

``import mclir_basicsr`` applies them (:func:`install`, idempotent), so they reach our entry points
(``mclir-train``, ``mclir-test``) and a project's own ``train.py`` that imports ``mclir_basicsr`` and calls
``basicsr.train.train_pipeline`` (HAT-style) alike. Each fix replaces one attribute of a BasicSR module or class;
the replacement is marked, so applying twice changes nothing. With another BasicSR version installed nothing is
patched and a warning lists what is then unsupported. The import-time shim for torchvision is listed here too; it
is applied earlier by :mod:`mclir_basicsr.shims`, before ``basicsr`` can be imported.
"""
import importlib
import warnings
from dataclasses import dataclass
from typing import Callable, Optional

from ..losses.vgg_weights import VGG_FACTORY, perceptual_loss_with_vgg_weights
from . import distributed, exp_dirs, model_methods, option_checks, resume

SUPPORTED_BASICSR = '1.4.2'
_MARK = '__mclir_fix__'


@dataclass(frozen=True)
class Fix:
    name: str
    target: str  # 'module:attribute' or 'module:Class.method'
    reason: str  # what goes wrong in stock BasicSR 1.4.2
    test: str  # the test that fails without the fix
    replace: Optional[Callable] = None  # original -> replacement; None: applied elsewhere (import time)


FIXES = (
    Fix('torchvision_shim', 'torchvision.transforms:functional_tensor',
        'basicsr imports torchvision.transforms.functional_tensor, removed in torchvision 0.17: import fails',
        'tests/e2e/test_runtime.py::test_import_basicsr_after_plugin_in_fresh_interpreter'),
    Fix('vgg_never_downloads', 'basicsr.archs.vgg_arch:vgg',
        'VGGFeatureExtractor (PerceptualLoss too) downloads ImageNet weights; offline it fails after a timeout',
        'tests/unit/runtime/test_runtime.py::test_basicsr_perceptual_loss_never_downloads', lambda _: VGG_FACTORY),
    Fix('perceptual_vgg_weights', 'basicsr.losses.basic_loss:PerceptualLoss.__init__',
        'PerceptualLoss cannot be given its VGG file (nor random features for a smoke run), unlike SPNLoss: '
        'vgg_weights under perceptual_opt (the MCLIR authors\' negative term included) is refused or ignored',
        'tests/unit/losses/test_vgg_weights_keys.py::test_perceptual_loss_loads_the_named_file',
        perceptual_loss_with_vgg_weights),
    Fix('dist_on_cpu', 'basicsr.utils.options:init_dist',
        '--launcher pytorch hard-codes nccl and torch.cuda.set_device: DDP cannot start without GPUs',
        'tests/e2e/test_reliability.py::test_ddp_two_cpu_processes_stay_identical_and_resume',
        lambda _: distributed.init_dist_any_device),
    Fix('ddp_without_device_ids', 'basicsr.models.base_model:BaseModel.model_to_device',
        'DDP is built with CUDA device_ids, which fails on CPU',
        'tests/e2e/test_reliability.py::test_ddp_two_cpu_processes_stay_identical_and_resume',
        lambda _: distributed.model_to_device),
    Fix('ddp_clean_exit', 'basicsr.train:train_pipeline',
        'ranks exit while gloo threads still run: a rank can abort with SIGABRT after training',
        'tests/e2e/test_reliability.py::test_ddp_two_cpu_processes_stay_identical_and_resume',
        distributed.finish_distributed_after),
    Fix('compiled_checkpoints_load', 'basicsr.models.base_model:BaseModel._print_different_keys_loading',
        'load_network strips module. only: checkpoints of torch.compile\'d networks (_orig_mod.*) do not load',
        'tests/unit/training/test_speed.py::test_checkpoint_saved_from_a_compiled_network_loads',
        model_methods.load_compiled_checkpoints),
    Fix('any_torch_optimizer', 'basicsr.models.base_model:BaseModel.get_optimizer',
        'only Adam is known (NotImplementedError "not supperted yet"); the papers of this family use AdamW',
        'tests/unit/training/test_optim.py::test_adamw_with_its_arguments_through_build_model',
        lambda _: model_methods.get_any_torch_optimizer),
    Fix('more_schedulers', 'basicsr.models.base_model:BaseModel.setup_schedulers',
        'only MultiStep(Restart)LR and CosineAnnealingRestartLR are known, and type is popped from the options',
        'tests/unit/training/test_optim.py::test_scheduler_state_resumes_exactly',
        lambda _: model_methods.setup_any_scheduler),
    Fix('resume_on_cpu', 'basicsr.train:load_resume_state',
        'resume calls torch.cuda.current_device() (crash on CPU); --auto_resume looks relative to the current '
        'directory and takes a torn latest state',
        'tests/e2e/test_runtime.py::test_auto_resume_on_cpu_through_basicsr_train_pipeline',
        lambda _: resume.load_resume_state),
    Fix('resume_mid_epoch_sampler', 'basicsr.train:EnlargedSampler',
        'a resumed run restarts its epoch from the first batch, so it differs from an uninterrupted run',
        'tests/e2e/test_reliability.py::test_sigkill_then_auto_resume_equals_uninterrupted_run',
        lambda _: resume.ResumableSampler),
    Fix('resume_mid_epoch_skip', 'basicsr.train:create_train_val_dataloader',
        'the resumed epoch must skip the batches trained on before the state was saved',
        'tests/e2e/test_reliability.py::test_sigkill_then_auto_resume_equals_uninterrupted_run',
        resume.fast_forward_after_create),
    Fix('loader_keeps_global_rng', 'basicsr.train:build_dataloader',
        'each epoch\'s loader iterator draws from torch\'s global generator, so a resumed run (one iterator more, '
        'right after the restore) continues another random stream: dropout/drop-path differ after resume',
        'tests/e2e/test_dcpt_e2e.py::test_dcpt_sigkill_then_auto_resume_equals_uninterrupted_run',
        resume.loader_with_own_generator),
    Fix('check_train_options', 'basicsr.train:parse_options',
        'options are read with silent defaults (a typo turns a feature off), bad data fails mid-run after the '
        'experiment folder was renamed; prefetch_mode cuda crashes without GPU and cpu with 0 workers hangs',
        'tests/e2e/test_pipeline.py::test_option_typo_fails_before_anything_is_written',
        option_checks.check_after_parse),
    Fix('check_test_options', 'basicsr.test:parse_options', 'as check_train_options, for the test pipeline',
        'tests/e2e/test_runtime.py::test_test_pipeline_refuses_missing_weights_cleanly',
        option_checks.check_after_parse),
    Fix('plugin_file_keys_train', 'basicsr.train:make_exp_dirs',
        'every path.* key not named like BasicSR\'s own file keys becomes a folder: path.pretrain_constyle (a file) '
        'fails with FileExistsError after experiments/<name> exists',
        'tests/e2e/test_every_model_class.py::test_every_model_class_trains_through_the_entry_point_with_a_log',
        exp_dirs.skip_plugin_file_keys),
    Fix('plugin_file_keys_test', 'basicsr.test:make_exp_dirs', 'as plugin_file_keys_train, for the test pipeline',
        'tests/unit/runtime/test_runtime.py::test_make_exp_dirs_leaves_plugin_file_keys_alone',
        exp_dirs.skip_plugin_file_keys),
    Fix('test_metrics_json', 'basicsr.models.sr_model:SRModel._log_validation_metric_values',
        'the test pipeline only logs its metrics; scripts need them as data (results/<name>/metrics.json)',
        'tests/e2e/test_pipeline.py::test_train_validate_save_resume_and_test', model_methods.write_test_metrics),
)


def _owner_and_name(target):
    module, _, attr = target.partition(':')
    owner = importlib.import_module(module)
    *path, name = attr.split('.')
    for part in path:
        owner = getattr(owner, part)
    return owner, name


def is_applied(fix):
    owner, name = _owner_and_name(fix.target)
    return getattr(getattr(owner, name, None), _MARK, None) == fix.name


def install(basicsr_version=None):
    """Apply every fix (idempotent). Returns the names of the fixes in place.

    Args:
        basicsr_version (str | None): the installed version (default: ``basicsr.__version__``). Another version
            than :data:`SUPPORTED_BASICSR` patches nothing and warns what is then unsupported.
    """
    if basicsr_version is None:
        basicsr_version = importlib.import_module('basicsr').__version__
    runtime_fixes = [f for f in FIXES if f.replace is not None]
    if basicsr_version != SUPPORTED_BASICSR:
        lost = '\n'.join(f'  - {f.name}: {f.reason}' for f in runtime_fixes)
        warnings.warn(f'mclir-basicsr fixes BasicSR {SUPPORTED_BASICSR}, but basicsr {basicsr_version} is installed: '
                      f'none of its runtime fixes is applied, so these are NOT supported:\n{lost}\n'
                      f'Install basicsr=={SUPPORTED_BASICSR} (pip install --no-build-isolation basicsr==1.4.2).')
        return []
    for fix in runtime_fixes:
        if not is_applied(fix):
            owner, name = _owner_and_name(fix.target)
            replacement = fix.replace(getattr(owner, name))
            _mark(replacement, fix.name)
            setattr(owner, name, replacement)
    return [f.name for f in runtime_fixes]


def _mark(obj, name):
    try:
        setattr(obj, _MARK, name)
    except (AttributeError, TypeError):  # an object that takes no attributes: mark its class
        setattr(type(obj), _MARK, name)
