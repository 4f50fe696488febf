"""``train.compile`` for an MCLIR model: compiled callables for the training step only."""
import torch


def compile_training_step(model, cfg, logger):
    """Compile the parts of ``model``'s step that ``cfg.targets`` names (``net_g``, ``history``, ``vgg``); return
    ``cfg``. ``model.net_g``, the copies' modules and the losses keep their plain modules, so checkpoints, averaging
    and validation never see ``_orig_mod``."""
    if not cfg.enabled:
        return cfg
    kwargs = dict(backend=cfg.backend, dynamic=cfg.dynamic, fullgraph=cfg.fullgraph)
    if cfg.mode is not None:
        kwargs['mode'] = cfg.mode
    if 'net_g' in cfg.targets:
        model.train_net_g = torch.compile(model.net_g, **kwargs)
    if 'history' in cfg.targets:
        model.history.compile(lambda module: torch.compile(module, **kwargs))
    if 'vgg' in cfg.targets:
        if model.shared_vgg is not None:
            model.shared_vgg.extractor = torch.compile(model.shared_vgg.extractor, **kwargs)
        elif hasattr(model.cri_spn, 'vgg'):
            model.cri_spn.vgg = torch.compile(model.cri_spn.vgg, **kwargs)
    logger.info(f'torch.compile (backend {cfg.backend}, mode {cfg.mode or "default"}) for the training step of: '
                f'{", ".join(cfg.targets)}. The first steps include compilation time.')
    return cfg
