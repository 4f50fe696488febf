"""The DSRIR authors' checkpoint keys (xfwang23/DSRIR, ``model/DSRIR.py``) -> ours, so their weights load.

Their training script saves ``{'epoch', 'state_dict', 'optimizer'}``: with ``path.param_key_g: state_dict`` BasicSR's
``load_network`` hands the state dict to ``DSRIR.load_state_dict``, whose pre-hook renames the keys below. A
converted authors' model gives bit-identical outputs to theirs (checked against their code, see the closing note
of the DSRIR issue).
"""
import re

_SUBNET3_BODY = re.compile(r'^SN3\.PAG(\d+)\.body\.(\d+)\.(.*)$')
_PREFIXES = [  # (authors' prefix pattern, ours); numbers in their names count from 1
    (re.compile(r'^ebd\.'), lambda m: 'embed.'),
    (re.compile(r'^SN([12])\.encoder(\d+)\.'), lambda m: f'subnet{m[1]}.encoders.{int(m[2]) - 1}.'),
    (re.compile(r'^SN([12])\.decoder(\d+)\.'), lambda m: f'subnet{m[1]}.decoders.{int(m[2]) - 1}.'),
    (re.compile(r'^SN([12])\.down(\d+)\.down\.1\.'), lambda m: f'subnet{m[1]}.downs.{int(m[2]) - 1}.conv.'),
    (re.compile(r'^SN([12])\.up(\d+)\.up\.1\.'), lambda m: f'subnet{m[1]}.ups.{int(m[2]) - 1}.conv.'),
    (re.compile(r'^SN([12])\.skipatt(\d+)\.'), lambda m: f'subnet{m[1]}.skips.{int(m[2]) - 1}.'),
    (re.compile(r'^PRU(\d+)\.conv\.'), lambda m: f'refine.{int(m[1]) - 1}.conv.'),
    (re.compile(r'^PRU(\d+)\.fr\.'), lambda m: f'refine.{int(m[1]) - 1}.gate.'),
    (re.compile(r'^usau_(\d+)\.'), lambda m: f'usau.{int(m[1]) - 1}.'),
    (re.compile(r'^channel_comp(\d+)\.'), lambda m: f'merge.{int(m[1]) - 1}.'),
]
_BLOCK_PARTS = {'conv1.': 'body.0.', 'conv2.': 'body.2.', 'PA.conv_du.': 'attention.weigh.'}
_USAU_PARTS = {'conv_in.': 'image_in.', 'conv_out.': 'image_out.', 'conv1.': 'fuse.', 'conv2.': 'feature_proj.',
               'var_est.': 'variance.', 'var_map.': 'log_var.', 'att_map.': 'attention.'}


def is_authors_state_dict(state):
    return any(k.startswith(('ebd.', 'SN1.', 'usau_1.')) for k in state)


def authors_to_ours(key, blocks_per_group):
    """Our name of the authors' parameter ``key``."""
    m = _SUBNET3_BODY.match(key)
    if m:
        group, index, rest = int(m[1]) - 1, int(m[2]), m[3]
        if index == blocks_per_group:  # the group's closing convolution
            return f'subnet3.{group}.body.1.{rest}'
        return f'subnet3.{group}.body.0.{index}.' + _replace_part(rest, _BLOCK_PARTS)
    for pattern, ours in _PREFIXES:
        m = pattern.match(key)
        if m:
            head, rest = ours(m), key[m.end():]
            parts = _USAU_PARTS if head.startswith('usau.') else _BLOCK_PARTS
            return head + (_replace_part(rest, parts) if re.search(r'coders|skips|usau', head) else rest)
    return key


def _replace_part(rest, parts):
    """``rest`` after a block's own prefix (``0.conv1.weight`` or ``conv1.weight``) with the part renamed."""
    m = re.match(r'^((?:\d+\.)?)(.*)$', rest)
    for theirs, ours in parts.items():
        if m[2].startswith(theirs):
            return m[1] + ours + m[2][len(theirs):]
    return rest
