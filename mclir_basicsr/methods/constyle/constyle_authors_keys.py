"""The ConStyle authors' checkpoint names (Dongqi-Fan/ConStyle_v2, ``archs/ConStyle_NAFNet_arch.py`` and
``archs/ConStyle_arch.py``; Dongqi-Fan/IRConStyle, ``archs/ConStyle_Restormer_arch.py``) -> ours, so their weights
load into ``ConStyleNAFNet`` and ``ConStyleRestormer`` as they are.

Their ConStyleNAFNet names its parts ``ConStyle`` (the prompter), ``Preprocess_Module``, ``Process_Module_l1..3``,
``DC1..3``, ``Process_Module_bottom``, ``mlp``, ``local_fusion``, ``UC1..3``, ``Process_Module_r1..3``,
``Finetune_Module`` and ``AffineTransform0..2``; the NAFBlocks inside keep their names. Their queue is stored as
(dim, K), ours as (K, dim); their queue pointer has shape [1], ours none. Their ConStyle v2 pre-training checkpoint
holds the prompter alone (``encoder_q.*``, ``encoder_k.*``, ``queue``, ``queue_ptr``) plus a classifier head that
no restorer uses. A model converted with these rules gives bit-identical outputs to theirs (checked against their
code at commit 7960cee; see the closing note of the ConStyle follow-up).

Their ConStyleRestormer uses the same part names; its ``Preprocess_Module`` is a patch embedding (``.proj``) and its
``Finetune_Module`` holds the refinement blocks then the output conv (the only tensors directly under it, as in
ConStyleNAFNet, whose ``Finetune_Module`` is that conv alone).
"""
import re

_RULES = [  # (their prefix, ours); numbers in their module names count from 1 (except AffineTransform)
    (r'ConStyle\.encoder_([qk])\.stage(\d)\.', lambda m: f'prompter.encoder_{m[1]}.stages.{int(m[2]) - 1}.'),
    (r'ConStyle\.encoder_([qk])\.mlp([12])\.', lambda m: f'prompter.encoder_{m[1]}.head{m[2]}.'),
    (r'ConStyle\.(queue|queue_ptr)$', lambda m: f'prompter.{m[1]}'),
    (r'Preprocess_Module\.(?:0|proj)\.', lambda m: 'embed.'),  # NAFNet's conv, Restormer's patch embedding
    (r'AffineTransform(\d)\.', lambda m: f'prompts.{m[1]}.'),
    (r'Process_Module_l(\d)\.', lambda m: f'encoders.{int(m[1]) - 1}.'),
    (r'DC(\d)\.down\.', lambda m: f'downs.{int(m[1]) - 1}.body.'),
    (r'Process_Module_bottom\.', lambda m: 'bottleneck.'),
    (r'mlp\.0\.', lambda m: 'gate.'),
    (r'local_fusion\.', lambda m: 'fuse.'),
    (r'UC(\d)\.up\.', lambda m: f'ups.{int(m[1]) - 1}.body.'),
    (r'UC(\d)\.down\.', lambda m: f'ups.{int(m[1]) - 1}.fuse.'),
    (r'Process_Module_r(\d)\.', lambda m: f'decoders.{int(m[1]) - 1}.'),
    (r'Finetune_Module\.\d+\.(?=(?:weight|bias)$)', lambda m: 'ending.'),  # the output conv
    (r'Finetune_Module\.(\d+)\.', lambda m: f'refinement.{m[1]}.'),  # Restormer's refinement blocks
]
_RULES = [(re.compile('^' + pattern), ours) for pattern, ours in _RULES]
_PROMPTER_ALONE = re.compile(r'^(encoder_[qk]\.|queue$|queue_ptr$)')  # their pre-training checkpoint


def is_authors_state_dict(state):
    return any(k.startswith(('ConStyle.', 'Preprocess_Module.', 'Process_Module_')) or _PROMPTER_ALONE.match(k)
               for k in state)


def authors_to_ours(key):
    """Our name of the authors' tensor ``key`` (a ConStyleNAFNet's or, without ``ConStyle.``, a lone prompter's);
    other names (ours, their pre-training classifier's) come back unchanged."""
    full = 'ConStyle.' + key if _PROMPTER_ALONE.match(key) else key
    for pattern, ours in _RULES:
        m = pattern.match(full)
        if m:
            return ours(m) + full[m.end():]
    return key


def _queue_part(their_key):
    return their_key.rsplit('.', 1)[-1] if their_key in ('queue', 'queue_ptr', 'ConStyle.queue',
                                                         'ConStyle.queue_ptr') else None


def authors_tensor(their_key, tensor):
    """The authors' queue (dim, K) and pointer [1] in our layout (K, dim) and []; other tensors unchanged."""
    part = _queue_part(their_key)
    return tensor.t().contiguous() if part == 'queue' else tensor.reshape(()) if part == 'queue_ptr' else tensor


def authors_shape(their_key, shape):
    """:func:`authors_tensor` for a shape (the checks before training compare shapes only)."""
    part = _queue_part(their_key)
    return tuple(shape)[::-1] if part == 'queue' else () if part == 'queue_ptr' else tuple(shape)


def rename_authors_state(state, prefix='', convert=authors_tensor):
    """``state`` (a state dict, or ``{name: shape}`` with ``convert=authors_shape``), renamed in place if it holds
    the authors' names under ``prefix``."""
    own = {k[len(prefix):]: k for k in state if k.startswith(prefix)}
    if is_authors_state_dict(own):
        for key, full in own.items():
            state[prefix + authors_to_ours(key)] = convert(key, state.pop(full))
    return state
