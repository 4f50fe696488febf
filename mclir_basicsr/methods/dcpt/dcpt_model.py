"""DCPTModel: degradation-classification pre-training (DCPT, Hu et al., ICLR 2025) for any registered network.

One iteration, as the DCPT authors train (two forward passes, one backward, both optimizers step):

1. generation: ``net_g(gt)`` must reproduce the clean image: ``train.pixel_opt`` (and ``perceptual_opt``);
2. classification: forward hooks on ``hook_names`` collect features of ``net_g(lq)``; ``net_dc`` (``network_dc``)
   predicts the degradation label from them: ``train.classify_opt``;
3. the sum is backpropagated; ``optim_g`` and ``optim_dc`` step; the scheduler (``train.scheduler``) is built for
   each optimizer.

Fine-tune afterwards with any restoration model class (``SRModel``, ``MCLIRModel`` for SPN) from
``path.pretrain_network_g: experiments/<name>/models/net_g_<iter>.pth``. Validation reports the classification
accuracy (%) of each validation set (labels matched by task name, :mod:`mclir_basicsr.dcpt_options`).
"""
import torch
from basicsr.archs import build_network
from basicsr.losses import build_loss
from basicsr.models.sr_model import SRModel
from basicsr.utils import get_root_logger
from basicsr.utils.registry import MODEL_REGISTRY

from ...checks.options import OptionError
from ...training.step import STEP_KEYS, TrainingStep
from .feature_hooks import FeatureHooks, can_stop_early
from .options import DCPT_TOP_KEYS, DCPT_TRAIN_KEYS, DEFAULT_NUM_CLASSES, check_dcpt_options, task_names

STATE_FORMAT = 1


@MODEL_REGISTRY.register()
class DCPTModel(TrainingStep, SRModel):
    """SRModel's network, EMA, losses and checkpoints plus the degradation classifier ``net_dc`` (see module doc)."""

    plugin_option_keys = {'train': DCPT_TRAIN_KEYS + STEP_KEYS, 'top': DCPT_TOP_KEYS}
    state_key = 'dcpt'
    trains_classifier = True

    @classmethod
    def check_options(cls, opt, path=''):
        check_dcpt_options(opt)

    def __init__(self, opt):
        super().__init__(opt)  # SRModel: net_g, pretrain_network_g, then init_training_settings when training
        self._build_classifier()

    # ------------------------------------------------------------------ set-up
    def _build_classifier(self):
        """``net_dc`` (loaded from ``path.pretrain_network_dc``) and the hooks on ``net_g`` (and its EMA). Once."""
        if hasattr(self, 'net_dc'):
            return
        self.net_dc = self.model_to_device(build_network(self.opt['network_dc']))
        self.print_network(self.net_dc)
        path_opt = self.opt['path']
        if path_opt.get('pretrain_network_dc') is not None:
            self.load_network(self.net_dc, path_opt['pretrain_network_dc'], path_opt.get('strict_load_dc', True),
                              path_opt.get('param_key_dc', 'params'))
        self.hooks = FeatureHooks(self.net_g, self.opt['hook_names'])
        self.train_task_names = task_names((self.opt.get('datasets') or {}).get('train'))

    def init_training_settings(self):
        self._build_classifier()
        self.net_dc.train(self.trains_classifier)
        super().init_training_settings()  # EMA, pixel/perceptual losses, optimizers (ours), schedulers
        if hasattr(self, 'net_g_ema'):
            self.ema_hooks = FeatureHooks(self.net_g_ema, self.opt['hook_names'])
        self.cri_classify = build_loss(dict(self.opt['train']['classify_opt'])).to(self.device)

    def setup_optimizers(self):
        super().setup_optimizers()  # optimizer_g
        cfg = dict(self.opt['train']['optim_dc'])
        params = [p for p in self.net_dc.parameters() if p.requires_grad]
        self.optimizer_dc = self.get_optimizer(cfg.pop('type'), params, **cfg)
        self.optimizers.append(self.optimizer_dc)

    def feed_data(self, data):
        super().feed_data(data)
        label = data.get('label', data.get('dataset_idx'))  # dataset_idx: the DCPT authors' datasets
        self.label = None if label is None else torch.as_tensor(label).to(self.device)

    # ------------------------------------------------------------------ the method (hooks of the one training step)
    def training_losses(self, current_iter):
        """Generation (``net_g(gt)`` against GT) and classification of ``net_g(lq)``'s features; both optimizers
        step on the sum."""
        if self.label is None:
            raise OptionError('DCPTModel needs a degradation label per sample (the key label, as AllInOneDataset '
                              'gives): use type: AllInOneDataset for datasets.train.')
        losses = self.reconstruction_losses(self.train_net_g(self.gt))
        self.logits = self.classify(self.train_net_g, self.hooks, self.lq, features_only=not self.step_reads_output)
        losses['l_cls'] = self.cri_classify(self.logits, self.label)
        return losses

    def step_diagnostics(self):
        return {'acc': float((self.logits.argmax(1) == self.label).float().mean() * 100)}

    def classify(self, net, hooks, lq, features_only=False):
        """Logits of ``net_dc`` on the hooked features of ``net(lq)``; ``self.output`` is the restored ``lq`` unless
        ``features_only`` (the pass then ends at the last hooked module where it can, as the authors' ``hook=True``
        pass does)."""
        self.output = None
        with hooks.capture(features_only=features_only and can_stop_early(net)) as features:
            self.output = net(lq)
        return self.net_dc(features)

    def save(self, epoch, current_iter):
        self.save_network(self.net_dc, 'net_dc', current_iter)  # networks before the state that names them
        super().save(epoch, current_iter)

    def plugin_training_state(self):
        return dict(super().plugin_training_state(), format=STATE_FORMAT)

    def load_plugin_training_state(self, entry, source):
        if entry is not None and entry.get('format') != STATE_FORMAT:
            raise ValueError(f'{source} was written by another version of mclir-basicsr (DCPT state format '
                             f'{entry.get("format")}, expected {STATE_FORMAT}). Resume with the version that wrote it.')
        super().load_plugin_training_state(entry, source)

    # ------------------------------------------------------------------ validation: classification accuracy
    def test(self):
        use_ema = hasattr(self, 'net_g_ema')
        net, hooks = (self.net_g_ema, self.ema_hooks) if use_ema else (self.net_g, self.hooks)
        net.eval()
        self.net_dc.eval()
        with torch.no_grad():
            self.logits = self.classify(net, hooks, self.lq, features_only=True)
        self.net_dc.train(self.trains_classifier)
        if not use_ema:
            self.net_g.train()

    def nondist_validation(self, dataloader, current_iter, tb_logger, save_img):
        name = dataloader.dataset.opt['name']
        to_train = self._label_map(dataloader.dataset)
        if to_train is None:
            get_root_logger().warning(f'Validation set {name} gives no degradation labels: skipped by DCPTModel.')
            return
        classes = self.opt['network_dc'].get('num_classes', DEFAULT_NUM_CLASSES)
        confusion = torch.zeros(classes, classes, dtype=torch.long)
        for data in dataloader:
            self.feed_data(data)
            self.test()
            truth = torch.as_tensor([to_train[int(j)] for j in self.label.view(-1).cpu()])
            for t, p in zip(truth.tolist(), self.logits.argmax(1).cpu().tolist()):
                confusion[t, p] += 1
        self.confusion = confusion
        accuracy = float(confusion.diag().sum() * 100. / confusion.sum().clamp(min=1))
        names = self.train_task_names or [str(c) for c in range(classes)]
        rows = confusion.sum(1)
        get_root_logger().info(f'Degradation classification on {name}, accuracy per true class: ' + ', '.join(
            f'{names[c]} {float(confusion[c, c] * 100. / rows[c]):.1f}% of {int(rows[c])}' for c in range(classes)
            if rows[c]))
        self.metric_results = {'accuracy': accuracy}
        if not hasattr(self, 'best_metric_results'):
            self.best_metric_results = {}
        self.best_metric_results.setdefault(name, {'accuracy': {'better': 'higher', 'val': float('-inf'),
                                                                'iter': -1}})
        self._update_best_metric_result(name, 'accuracy', accuracy, current_iter)
        self._log_validation_metric_values(current_iter, name, tb_logger)

    def _label_map(self, dataset):
        """Local label -> training label for a validation dataset (by task name), or None without labels."""
        local = getattr(dataset, 'task_names', None)
        if local is None:
            return None
        if self.train_task_names is None:
            return list(range(len(local)))
        return [self.train_task_names.index(n) for n in local]
