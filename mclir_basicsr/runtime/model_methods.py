"""Methods of BasicSR's model classes that the fixes put in place of the originals, for every model (not only ours)."""
import json
import os.path as osp
from basicsr.utils import get_root_logger

from ..training.lr_schedulers import build_scheduler
from ..training.optimizers import build_optimizer
from ..utils import strip_wrapper_prefixes


def get_any_torch_optimizer(self, optim_type, params, lr, **kwargs):
    """``BaseModel.get_optimizer`` for every optimizer of ``torch.optim`` (1.4.2: ``Adam`` only)."""
    return build_optimizer(optim_type, params, lr, **kwargs)


def setup_any_scheduler(self):
    """``BaseModel.setup_schedulers`` for the schedulers of :mod:`mclir_basicsr.lr_schedulers`, one per optimizer,
    reading ``train.scheduler`` without popping its ``type`` (1.4.2 pops it, so building twice fails)."""
    for optimizer in self.optimizers:
        self.schedulers.append(build_scheduler(optimizer, self.opt['train']['scheduler']))


def load_compiled_checkpoints(print_different_keys):
    """Wrap ``BaseModel._print_different_keys_loading``. ``load_network`` strips ``module.`` only, so a checkpoint
    saved from a ``torch.compile``d network (keys ``_orig_mod.*``) would not load. This method is the one place
    where BasicSR hands over the loaded dict right before ``load_state_dict``; the keys are normalised there."""

    def normalise_then_print(self, crt_net, load_net, strict=True):
        for k in [k for k in load_net if strip_wrapper_prefixes(k) != k]:
            load_net[strip_wrapper_prefixes(k)] = load_net.pop(k)
        return print_different_keys(self, crt_net, load_net, strict)

    return normalise_then_print


def write_test_metrics(log_metric_values):
    """Wrap ``SRModel._log_validation_metric_values``: outside training (``mclir-test``, BasicSR's test pipeline)
    also write ``results/<name>/metrics.json`` = ``{dataset_name: {metric: value}}`` for scripts (BasicSR only logs
    them). Once every test set of the option file is done, with two or more (one per degradation, as all-in-one
    papers report), an ``average`` entry is added and the per-dataset table is logged."""

    def log_and_write(self, current_iter, dataset_name, tb_logger):
        if not self.opt.get('is_train', True) and getattr(self, 'metric_results', None):
            path = osp.join(self.opt['path']['results_root'], 'metrics.json')
            metrics = {}
            if osp.isfile(path):
                with open(path) as f:
                    metrics = json.load(f)
            metrics.pop(AVERAGE, None)
            metrics[dataset_name] = {k: float(v) for k, v in self.metric_results.items()}
            expected = [d.get('name') for d in (self.opt.get('datasets') or {}).values() if isinstance(d, dict)]
            if len(expected) > 1 and set(expected) <= set(metrics):
                metrics[AVERAGE] = average_metrics([metrics[n] for n in expected])
                get_root_logger().info('Per-dataset results:\n' + metrics_table(metrics))
            with open(path, 'w') as f:
                json.dump(metrics, f, indent=2)
        return log_metric_values(self, current_iter, dataset_name, tb_logger)

    return log_and_write


AVERAGE = 'average'


def average_metrics(rows):
    """Mean of each metric over the rows that have it."""
    names = list(dict.fromkeys(k for row in rows for k in row))
    return {k: sum(row[k] for row in rows if k in row) / sum(1 for row in rows if k in row) for k in names}


def metrics_table(metrics):
    """A Markdown table: one row per dataset (the average last), one column per metric."""
    names = list(dict.fromkeys(k for row in metrics.values() for k in row))
    lines = ['| dataset | ' + ' | '.join(names) + ' |', '|---|' + '---|' * len(names)]
    lines += [f'| {d} | ' + ' | '.join(f'{row[k]:.4f}' if k in row else '-' for k in names) + ' |'
              for d, row in metrics.items()]
    return '\n'.join(lines)
