"""Test with BasicSR's test pipeline: ``python -m mclir_basicsr.test -opt Y.yml`` or ``mclir-test -opt Y.yml``.

Reports the metrics of the option file (PSNR/SSIM ...) in the log as BasicSR does, saves images under
``results/<name>/visualization``, and also writes ``results/<name>/metrics.json``
(``{dataset_name: {metric: value}}``) for scripts.
"""
import json
import os
import os.path as osp
import sys

import mclir_basicsr  # noqa: F401  (compat shims + registration, before basicsr)
from mclir_basicsr.compat import patch_basicsr_runtime
from mclir_basicsr.options import OptionError


def _recording_build_model(build_model, results):
    """Wrap ``build_model`` so the model's validation metrics are recorded per dataset into ``results``."""

    def build(opt):
        model = build_model(opt)
        log_metrics = model._log_validation_metric_values

        def record(current_iter, dataset_name, tb_logger):
            results['metrics'][dataset_name] = {k: float(v) for k, v in model.metric_results.items()}
            results['results_root'] = model.opt['path']['results_root']
            return log_metrics(current_iter, dataset_name, tb_logger)

        model._log_validation_metric_values = record
        return model

    return build


def main(argv=None):
    if argv is not None:
        sys.argv = [sys.argv[0]] + list(argv)
    patch_basicsr_runtime()
    import basicsr.test as bsr_test
    results = {'metrics': {}}
    build_model = bsr_test.build_model
    bsr_test.build_model = _recording_build_model(build_model, results)
    try:
        bsr_test.test_pipeline(os.getcwd())
    except OptionError as err:
        sys.exit(f'mclir-test: option error: {err}')
    finally:
        bsr_test.build_model = build_model
    if 'results_root' in results:
        with open(osp.join(results['results_root'], 'metrics.json'), 'w') as f:
            json.dump(results['metrics'], f, indent=2)
    return results['metrics']


if __name__ == '__main__':
    main()
