"""Any optimizer of ``torch.optim`` by name in ``train.optim_*`` (BasicSR 1.4.2 knows only ``Adam``).

The papers of this plugin's family train with AdamW (NAFNet, PromptIR, DCPT, DSRIR, ConStyle). The runtime fix
``any_torch_optimizer`` (:mod:`mclir_basicsr.runtime.fixes`) makes ``BaseModel.get_optimizer`` build
``torch.optim.<type>(params, lr, **kwargs)``; :func:`check_optimizer_options` checks the type and every argument
against the optimizer's signature before anything is written.
"""
import inspect
import torch
import warnings

from ..checks.options import OptionError, nearest


def optimizer_classes():
    """``{name: class}`` of every optimizer in ``torch.optim``."""
    return {name: obj for name, obj in vars(torch.optim).items()
            if inspect.isclass(obj) and issubclass(obj, torch.optim.Optimizer) and obj is not torch.optim.Optimizer}


def check_arguments(cls, args, path, skip=('params', 'self')):
    """Raise a key-named :class:`OptionError` for an argument ``cls`` does not take, or a required one missing."""
    sig = inspect.signature(cls.__init__ if inspect.isclass(cls) else cls)
    kinds = (inspect.Parameter.POSITIONAL_OR_KEYWORD, inspect.Parameter.KEYWORD_ONLY)
    takes = [n for n, p in sig.parameters.items() if n not in skip and p.kind in kinds]
    any_keyword = any(p.kind == inspect.Parameter.VAR_KEYWORD for p in sig.parameters.values())
    for key in args:
        if key not in takes:
            hint = nearest(key, takes)
            message = (f'unknown key {path}.{key} for {cls.__name__}.' +
                       (f' Did you mean {path}.{hint}?' if hint else '') + f' Valid keys: {", ".join(takes)}.')
            if not any_keyword:
                raise OptionError(message)
            # **kwargs may read it, or drop it unread: say so, and leave the decision to the user
            warnings.warn(f'{message} ({cls.__name__} also takes **kwargs, so it is passed on.)')
    required = [n for n in takes if sig.parameters[n].default is inspect.Parameter.empty and n not in args]
    if required:
        raise OptionError(f'{path} needs {", ".join(required)} for {cls.__name__}.')


def check_optimizer_options(opt):
    """Check every ``train.optim_*`` block: a ``torch.optim`` type and arguments it takes."""
    classes = optimizer_classes()
    for key, block in (opt.get('train') or {}).items():
        if not key.startswith('optim_') or block is None:
            continue
        path = f'train.{key}'
        if not isinstance(block, dict) or 'type' not in block:
            raise OptionError(f'{path} must be a mapping with a type, such as {{type: AdamW, lr: 3e-4}}.')
        name = block['type']
        if name not in classes:
            hint = nearest(name, classes)
            raise OptionError(f'{path}.type {name!r} is not an optimizer of torch.optim.' +
                              (f' Did you mean {hint}?' if hint else '') + ' E.g. Adam, AdamW, SGD.')
        if 'lr' not in block:  # BasicSR's get_optimizer takes it as a required argument
            raise OptionError(f'{path}.lr is required (the learning rate), e.g. lr: 3.0e-4.')
        check_arguments(classes[name], {k: v for k, v in block.items() if k != 'type'}, path)


def build_optimizer(optim_type, params, lr, **kwargs):
    """``torch.optim.<optim_type>(params, lr=lr, **kwargs)``; what ``BaseModel.get_optimizer`` becomes."""
    classes = optimizer_classes()
    if optim_type not in classes:
        raise NotImplementedError(f'optimizer {optim_type} is not in torch.optim.')
    return classes[optim_type](params, lr=lr, **kwargs)
