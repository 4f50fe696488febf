"""DCPT: the classifier, the classification losses, feature hooks, DCPTModel / DCPTTransferModel steps, checkpoints,
option errors, and the composition DCPT pre-training -> SPN fine-tuning (in process, tiny NAFNet)."""
import math

import pytest
import torch
import torch.nn.functional as F

from basicsr.models import build_model
from basicsr.utils.registry import LOSS_REGISTRY
from mclir_basicsr.methods.dcpt.degradation_classifier_arch import DegradationClassifier, PromptIR_NoImg_DC
from mclir_basicsr.archs.nafnet_arch import NAFNet
from mclir_basicsr.methods.dcpt.options import check_classifier_fits
from mclir_basicsr.methods.dcpt.feature_hooks import FeatureHooks
from mclir_basicsr.methods.dcpt.classification_loss import ClassCrossEntropyLoss, ClassFocalLoss
from mclir_basicsr.checks.options import OptionError, check_options
from mclir_basicsr.methods.mclir.mclir_model import MCLIRModel
from tests.helpers import TINY_NAFNET, dcpt_opt, digest, labelled_batch, make_opt


# ---------------------------------------------------------------- classifier
def test_classifier_param_counts_equal_the_reference_layout():
    """Counts from the DCPT reference layout (PromptIR_NoImg_DC, 5 classes): per feature two bottlenecks of width
    2d (1x1, 3x3, 1x1 convs without bias, channel LayerNorm after each), a 1x1 conv to the next width, two more
    bottlenecks, the mixing weights and a linear layer."""
    def reference(dims, k, blocks=2):
        def bottleneck(d):
            return d * 2 * d + 4 * d * d * 9 + 2 * d * d + 2 * (2 * d) * 2 + 2 * d
        nxt = dims[1:] + dims[-1:]
        return (sum(blocks * bottleneck(d) + d * n for d, n in zip(dims, nxt)) + blocks * bottleneck(dims[-1])
                + len(dims) + dims[-1] * k + k)
    for dims in ([64, 128, 256, 512], [96, 192, 192], [180, 180, 180]):
        net = DegradationClassifier(dims, num_classes=5)
        assert sum(p.numel() for p in net.parameters()) == reference(dims, 5)
    assert sum(p.numel() for p in DegradationClassifier([64, 128, 256, 512], 5).parameters()) == 49_290_505


def test_classifier_reads_pyramids_same_size_features_and_tokens():
    net = DegradationClassifier([4, 8, 8], num_classes=3, num_res_blocks=1)
    pyramid = [torch.rand(2, 4, 16, 16), torch.rand(2, 8, 8, 8), torch.rand(2, 8, 4, 4)]
    assert net(pyramid).shape == (2, 3)
    same_size = [torch.rand(2, 4, 16, 16), torch.rand(2, 8, 16, 16), torch.rand(2, 8, 16, 16)]
    assert net(same_size).shape == (2, 3)
    tokens = [f.flatten(2).transpose(1, 2) for f in pyramid]  # (N, L, C)
    assert torch.allclose(net(tokens), net(pyramid))
    with pytest.raises(ValueError, match='expects 3 features'):
        net(pyramid[:2])
    authors = PromptIR_NoImg_DC([4, 8, 8], num_res_blocks=1, num_classes=3, downsample=True)
    assert authors(pyramid).shape == (2, 3)


# ---------------------------------------------------------------- losses
def naive_focal(logits, labels, gamma, alpha=None):
    total = 0.
    for row, y in zip(logits, labels.tolist()):
        p = math.exp(row[y]) / sum(math.exp(v) for v in row)
        total += -(alpha[y] if alpha else 1.) * (1 - p) ** gamma * math.log(p)
    return total / len(labels)


def test_focal_loss_equals_a_naive_reference_and_its_gradient():
    logits = torch.randn(7, 4, dtype=torch.float64, requires_grad=True)
    labels = torch.tensor([0, 1, 2, 3, 0, 1, 2])
    for gamma, alpha in ((2.0, None), (0.5, [1., 2., 0.5, 1.]), (0.0, None)):
        loss = ClassFocalLoss(gamma=gamma, alpha=alpha)(logits, labels)
        assert loss.item() == pytest.approx(naive_focal(logits.tolist(), labels, gamma, alpha), rel=1e-5)
    eps, base = 1e-6, logits.detach().clone()
    loss = ClassFocalLoss(gamma=2.0)(logits, labels)
    grad, = torch.autograd.grad(loss, logits)
    for i, j in ((0, 0), (3, 3), (6, 1)):
        plus, minus = base.clone(), base.clone()
        plus[i, j] += eps
        minus[i, j] -= eps
        numeric = (naive_focal(plus.tolist(), labels, 2.0) - naive_focal(minus.tolist(), labels, 2.0)) / (2 * eps)
        assert grad[i, j].item() == pytest.approx(numeric, rel=1e-4, abs=1e-8)


def test_focal_gamma_zero_is_cross_entropy_and_aliases_keep_the_authors_defaults():
    logits, labels = torch.randn(5, 3), torch.tensor([0, 2, 1, 1, 0])
    ce = F.cross_entropy(logits, labels)
    assert torch.allclose(ClassFocalLoss(gamma=0.)(logits, labels), ce)
    assert torch.allclose(ClassCrossEntropyLoss(loss_weight=2.)(logits, labels), 2 * ce)
    assert torch.allclose(LOSS_REGISTRY.get('FocalLoss')()(logits, labels), ce)  # the authors' default gamma 0
    assert torch.allclose(LOSS_REGISTRY.get('CrossEntropyLoss')()(logits, labels), ce)
    ignored = ClassFocalLoss(gamma=2., ignore_index=-1)(logits, torch.tensor([0, -1, 1, 1, 0]))
    assert torch.isfinite(ignored)
    with pytest.raises(ValueError, match='gamma'):
        ClassFocalLoss(gamma=-1)


# ---------------------------------------------------------------- hooks
def test_hooks_expand_module_lists_read_highest_resolution_first_and_ignore_wrappers():
    net = NAFNet(width=8, enc_blk_nums=[1, 1], dec_blk_nums=[1, 1])
    wrapped = torch.nn.DataParallel(net)  # names of the wrapper start with module.
    hooks = FeatureHooks(wrapped, 'decoders')
    assert hooks.names == ['decoders.0', 'decoders.1']
    with hooks.capture() as feats:
        wrapped(torch.rand(1, 3, 16, 16))
    assert [tuple(f.shape[1:]) for f in feats] == [(8, 16, 16), (16, 8, 8)]
    net(torch.rand(1, 3, 16, 16))  # outside capture(): nothing kept
    hooks.remove()


def test_features_only_capture_ends_the_pass_at_the_last_hooked_module():
    net = NAFNet(width=8, enc_blk_nums=[1, 1], dec_blk_nums=[1, 1])
    ran = []
    net.ending.register_forward_hook(lambda *args: ran.append('ending'))
    hooks = FeatureHooks(net, 'decoders')
    x = torch.rand(1, 3, 16, 16)
    with hooks.capture() as full:
        assert net(x) is not None
    assert ran == ['ending']
    with hooks.capture(features_only=True) as early:
        net(x)
        raise AssertionError('the pass should have ended at decoders.1')
    assert ran == ['ending'] and len(early) == 2
    assert all(torch.equal(a, b) for a, b in zip(full, early))


def test_dcpt_step_without_the_last_layers_of_the_classification_pass_trains_the_same_weights(tmp_path):
    """The classification pass stops at the hooked decoder (as the authors' hook=True pass); nothing after it is in
    that loss, so one step gives the same weights bit for bit."""
    stepped = []
    for reads_output in (False, True):
        torch.manual_seed(0)
        model = build_model(dcpt_opt(tmp_path))
        model.step_reads_output = reads_output
        model.feed_data(labelled_batch())
        model.optimize_parameters(1)
        assert (model.output is None) != reads_output
        stepped.append(digest(model.net_g) + digest(model.net_dc))
    assert all(torch.equal(a, b) for a, b in zip(*stepped))
    spn_on_dcpt = MCLIRModel.resolve_model_class({'model_type': 'MCLIRModel', 'base_model_type': 'DCPTModel'})
    assert spn_on_dcpt.step_reads_output  # SPN reads net_g(lq): that pass runs to the end


# ---------------------------------------------------------------- option errors
@pytest.mark.parametrize('change, message', [
    (lambda o: o.update(hook_names='decoderz'),
     r"(?s)'decoderz' is no module of network_g.*decoders\.1: 8 channels, 32x32"),
    (lambda o: o['network_dc'].update(feature_dims=[8, 32]), r'feature_dims is \[8, 32\] but .* \[8, 16\]'),
    (lambda o: o['network_dc'].update(num_classes=5), 'num_classes is 5 but datasets.train has 3 tasks'),
    (lambda o: o['train'].pop('optim_dc'), 'train.optim_dc is required'),
    (lambda o: o['train'].update(classify_opt={'type': 'FocalLos'}), 'Did you mean FocalLoss'),
    (lambda o: o['train'].update(classify_opt={'type': 'ClassFocalLoss', 'gama': 2}),
     'Did you mean train.classify_opt.gamma'),
    (lambda o: o.update(val={'val_freq': 5, 'metrics': {}}), 'val.metrics: DCPTModel validates'),
    (lambda o: o.update(val={'val_freq': 5, 'save_img': True}), 'val.save_img: DCPTModel validation classifies'),
    (lambda o: o['datasets'].update(val_1={'type': 'AllInOneDataset', 'name': 'v', 'tasks': [
        {'kind': 'lowlight', 'dataroot': 'w'}]}), "task 'lowlight' is not a training task"),
    (lambda o: o.pop('network_dc'), 'network_dc is required'),
])
def test_dcpt_option_errors_name_the_key(tmp_path, change, message):
    opt = dcpt_opt(tmp_path)
    change(opt)
    with pytest.raises(OptionError, match=message):
        check_options(opt)


def test_dcpt_keys_are_refused_on_other_models_and_transfer_needs_its_classifier(tmp_path):
    opt = make_opt(tmp_path, hook_names='decoders')
    with pytest.raises(OptionError, match='hook_names set, but model_type MCLIRModel does not use it'):
        check_options(opt)
    transfer = dcpt_opt(tmp_path, model_type='DCPTTransferModel')
    transfer['train'].pop('optim_dc')
    with pytest.raises(OptionError, match='path.pretrain_network_dc is required'):
        check_options(transfer)
    transfer['path']['pretrain_network_dc'] = 'dc.pth'
    transfer['transfer_label'] = 3
    with pytest.raises(OptionError, match='transfer_label is 3 but network_dc has 3 classes'):
        check_options(transfer)


def test_fit_check_leaves_the_random_stream_alone(tmp_path):
    torch.manual_seed(5)
    expected = torch.rand(3)
    torch.manual_seed(5)
    check_classifier_fits(dcpt_opt(tmp_path, hook_names=['decoders', 'ending']) | {'network_dc': {
        'type': 'DegradationClassifier', 'feature_dims': [3, 8, 16], 'num_classes': 3}})
    assert torch.equal(torch.rand(3), expected)


def test_transfer_model_keeps_the_classifier_frozen_and_uses_the_fixed_label(tmp_path):
    torch.manual_seed(0)
    pre = build_model(dcpt_opt(tmp_path))
    pre.save_network(pre.net_dc, 'net_dc', 1)
    opt = dcpt_opt(tmp_path, model_type='DCPTTransferModel', transfer_label=1)
    opt['train'].pop('optim_dc')
    opt['path']['pretrain_network_dc'] = str(tmp_path / 'models' / 'net_dc_1.pth')
    check_options(opt)
    model = build_model(opt)
    assert len(model.optimizers) == 1 and not model.net_dc.training
    dc0, g0 = digest(model.net_dc), digest(model.net_g)
    batch = labelled_batch()
    batch.pop('label')
    model.feed_data(batch)
    model.optimize_parameters(1)
    assert all(torch.equal(a, b) for a, b in zip(dc0, digest(model.net_dc)))
    assert not torch.equal(g0[0], digest(model.net_g)[0])
    assert set(model.log_dict) == {'l_pix', 'l_cls'}


def test_dcpt_pretraining_then_spn_fine_tuning_compose(tmp_path):
    """The chain of the option files: DCPTModel's net_g file loads strictly into MCLIRModel (SPN) and trains."""
    torch.manual_seed(0)
    pre = build_model(dcpt_opt(tmp_path))
    pre.feed_data(labelled_batch())
    pre.optimize_parameters(1)
    pre.save_network(pre.net_g, 'net_g', 1)
    fine = make_opt(tmp_path / 'fine', network=TINY_NAFNET, scale=1)
    fine['path']['pretrain_network_g'] = str(tmp_path / 'models' / 'net_g_1.pth')
    model = build_model(fine)
    assert all(torch.equal(a, b) for a, b in zip(digest(pre.net_g), digest(model.net_g)))
    batch = labelled_batch()
    model.feed_data({'lq': batch['lq'], 'gt': batch['gt']})
    model.optimize_parameters(1)
    assert 'l_spn' in model.log_dict


# ---------------------------------------------------------------- probe
def test_knn_probe_splits_per_class_and_votes_by_cosine_neighbours():
    from mclir_basicsr.methods.dcpt.probe_features import knn_predict, knn_report, stratified_split
    labels = torch.tensor([0] * 6 + [1] * 6 + [2] * 3)
    train, test = stratified_split(labels, 0.33, seed=0)
    assert sorted(train.tolist() + test.tolist()) == list(range(15))
    assert [int((labels[test] == c).sum()) for c in range(3)] == [2, 2, 1]
    train_x = F.normalize(torch.tensor([[1., 0.], [0.9, 0.1], [0., 1.], [0.1, 0.9], [0.8, 0.2]]), dim=1)
    train_y = torch.tensor([0, 0, 1, 1, 1])
    test_x = F.normalize(torch.tensor([[1., 0.05], [0.05, 1.]]), dim=1)
    assert knn_predict(train_x, train_y, test_x, k=1).tolist() == [0, 1]
    assert knn_predict(train_x, train_y, test_x, k=5).tolist() == [1, 1]  # majority of all five
    assert knn_predict(train_x, train_y, test_x[:1], k=4).tolist() == [0]  # 2-2 tie: the nearest's class
    noise = 0.01 * torch.randn(15, 3, generator=torch.Generator().manual_seed(0))
    clusters = F.normalize(torch.eye(3)[labels] + noise, dim=1)
    report = knn_report(clusters, labels, ['a', 'b', 'c'], k=3, splits=3)
    assert report['accuracy']['mean'] == 100. and report['chance'] == pytest.approx(100 / 3)
    shuffled = knn_report(clusters, labels[torch.randperm(15, generator=torch.Generator().manual_seed(1))],
                          ['a', 'b', 'c'], k=3, splits=3)
    assert shuffled['accuracy']['mean'] < 100.


def test_fit_check_falls_back_to_real_tensors_for_networks_the_meta_device_cannot_build(tmp_path):
    """The fit check runs on the meta device (shapes only); a network whose constructor needs real values (here
    ``.item()``) is checked on the CPU instead, with the same verdicts."""
    from basicsr.utils.registry import ARCH_REGISTRY

    from mclir_basicsr.methods.dcpt.options import _fit_on

    @ARCH_REGISTRY.register()
    class NeedsRealValuesNet(torch.nn.Module):

        def __init__(self, width=8):
            super().__init__()
            self.scale = float(torch.ones(1).item())  # fails on the meta device
            self.head = torch.nn.Conv2d(3, width, 3, padding=1)
            self.blocks = torch.nn.ModuleList([torch.nn.Conv2d(width, width, 3, padding=1)])
            self.tail = torch.nn.Conv2d(width, 3, 3, padding=1)

        def forward(self, x):
            feat = self.head(x) * self.scale
            for block in self.blocks:
                feat = block(feat)
            return x + self.tail(feat)

    opt = dcpt_opt(tmp_path, network_g={'type': 'NeedsRealValuesNet', 'width': 8}, hook_names='blocks',
                   network_dc={'type': 'DegradationClassifier', 'feature_dims': [8], 'num_classes': 3})
    with pytest.raises(RuntimeError, match='meta'):
        _fit_on(opt, 'meta')
    check_classifier_fits(opt)  # falls back to the CPU and passes
    opt['network_dc']['feature_dims'] = [16]
    with pytest.raises(OptionError, match=r'give 1 features with channels \[8\]'):
        check_classifier_fits(opt)
