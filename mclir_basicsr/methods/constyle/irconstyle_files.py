"""How Dongqi-Fan/IRConStyle's option files are read (commit b3e193d; docs/repo_irconstyle.md).

A file is theirs when its ``model_type`` is ``ConStyle`` or ``Origin`` (their two model classes), or a dataset has
one of their dataset types. Then:

* ``type: NAFNet`` is their NAFNet (:class:`.irconstyle_nafnet_arch.IRConStyleNAFNet`, width 64), not megvii's;
* ``Datasets_Paired`` (a typo in two of their Restormer files, which their own code cannot build) is
  ``Dataset_Paired``;
* ``path.param_key_g`` defaults to ``params_ema``: their ``load_network`` always loads the EMA weights;
* the top-level ``save_img`` of their test files is what their ``test.py`` reads: it becomes ``val.save_img``.
"""
from ...checks.options import OptionError, check_bool
from ...checks.repository_names import RepositoryNames

MODEL_TYPES = ('ConStyle', 'Origin')
DATASET_TYPES = ('Dataset_Paired', 'Datasets_Paired', 'Dataset_Derain', 'Dataset_Dehaze', 'Dataset_Maxim',
                 'Dataset_Maxim_Dehaze', 'Dataset_Derain_Maxim', 'Dataset_GaussianDenoising',
                 'Dataset_Maxim_GaussianDenoising')


def _their_test_script_keys(opt):
    if 'save_img' in opt:
        save = check_bool(opt.pop('save_img'), 'save_img')
        val = opt.setdefault('val', {})
        if isinstance(val, dict):
            if 'save_img' in val and val['save_img'] != save:
                raise OptionError(f'save_img ({save}) and val.save_img ({val["save_img"]}) differ; IRConStyle\'s test '
                                  f'script reads the top-level one: keep one.')
            val['save_img'] = save


IRCONSTYLE = RepositoryNames(
    repository='Dongqi-Fan/IRConStyle', docs='docs/repo_irconstyle.md', model_types=MODEL_TYPES,
    dataset_types=DATASET_TYPES, networks={'NAFNet': 'IRConStyleNAFNet'},
    datasets={'Datasets_Paired': 'Dataset_Paired'}, path_defaults={'param_key_g': 'params_ema'},
    rewrite=_their_test_script_keys)
