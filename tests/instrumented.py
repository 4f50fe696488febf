"""Run ``mclir-train`` with test-side instrumentation: kill points and structured reports. Product code has no
test hooks; this wrapper monkeypatches from the outside, then calls the entry point in this process.

    python -m tests.instrumented [--kill-at-iter N] [--kill-in-save NAME] [--kill-in-test K] [--kill-at-startup]
                                 [--report FILE] [--digests DIR] -- <mclir-train arguments>

* ``--kill-at-iter N``: SIGKILL when iteration N starts (any model class: at its learning-rate update, right before
  the step).
* ``--kill-in-save NAME``: SIGKILL half-way through writing the file NAME (``8.state``, ``net_g_6.pth``), after half
  of its bytes reached the disk (a torn write).
* ``--kill-in-test K``: SIGKILL in the K-th ``model.test()`` call (inside validation).
* ``--kill-at-startup``: SIGKILL after the options were parsed and the resume state was read, before training.
* ``--kill-rank R``: the kill points apply to global rank R only (under torchrun; default: every rank).
* ``--first-attempt``: the kill points apply only before torchrun's first restart (``TORCHELASTIC_RESTART_COUNT``
  0), so an elastic run restarted after the kill goes on to the end.
* ``--report FILE``: after a resume, write ``{"state": path, "iter": n, "digests": [hex per copy]}`` to
  ``FILE.rank<r>.json``.
* ``--digests DIR``: after every training step, append ``{"iter", "net_g", "copies"}`` (SHA-256 hex of the
  tensors; also ``"net_dc"`` for DCPT models, ``copies`` empty without history) to ``DIR/rank<r>.jsonl``.
"""
import argparse
import io
import json
import os
import signal
import sys

import mclir_basicsr  # noqa: F401  (before basicsr)
import basicsr.train as basicsr_train
import torch
from basicsr.models.base_model import BaseModel
from basicsr.models.sr_model import SRModel

from mclir_basicsr import train as mclir_train
from mclir_basicsr.training.ranks import tensor_digest
from mclir_basicsr.training.checkpoints import AtomicCheckpoints
from mclir_basicsr.methods.constyle.constyle_model import ConStyleModel
from mclir_basicsr.methods.dcpt.dcpt_model import DCPTModel
from mclir_basicsr.methods.dcpt.dcpt_transfer_model import DCPTTransferModel
from mclir_basicsr.methods.dsrir.dsrir_model import DSRIRModel
from mclir_basicsr.methods.mclir.mclir_model import MCLIRModel

# classes of ours that define a training step
STEPPING = (MCLIRModel, DCPTModel, DCPTTransferModel, DSRIRModel, ConStyleModel)


def _die():
    os.kill(os.getpid(), signal.SIGKILL)


def _rank():
    return int(os.environ.get('RANK', 0))


def _wrap(owner, name, make):
    setattr(owner, name, make(getattr(owner, name)))


def kill_at_iter(n):
    def make(update_lr):
        def wrapped(self, current_iter, *args, **kwargs):
            if current_iter == n:
                _die()
            return update_lr(self, current_iter, *args, **kwargs)
        return wrapped
    _wrap(BaseModel, 'update_learning_rate', make)


def kill_in_save(name):
    save = torch.save

    def torn_save(obj, f, *args, **kwargs):
        if f'.{name}.tmp-' in str(getattr(f, 'name', f)):
            buf = io.BytesIO()
            save(obj, buf, *args, **kwargs)
            f.write(buf.getvalue()[:len(buf.getvalue()) // 2])
            f.flush()
            os.fsync(f.fileno())
            _die()
        return save(obj, f, *args, **kwargs)
    torch.save = torn_save


def kill_in_test(k):
    calls = [0]

    def make(test):
        def wrapped(self):
            calls[0] += 1
            if calls[0] == k:
                _die()
            return test(self)
        return wrapped
    _wrap(SRModel, 'test', make)


def kill_at_startup():
    def make(create):
        def wrapped(opt, logger):
            _die()
        return wrapped
    _wrap(basicsr_train, 'create_train_val_dataloader', make)


def report_resume(path):
    def make(resume):
        def wrapped(self, state):
            resume(self, state)
            with open(f'{path}.rank{_rank()}.json', 'w') as f:
                json.dump({'state': self.opt['path'].get('resume_state'), 'iter': state['iter'],
                           'digests': [d.hex() for d in self.history.digests()] if hasattr(self, 'history') else []},
                          f)
        return wrapped
    _wrap(AtomicCheckpoints, 'resume_training', make)  # every model class of ours


def record_digests(folder):
    os.makedirs(folder, exist_ok=True)

    def make(step):
        def wrapped(self, current_iter):
            step(self, current_iter)
            with open(os.path.join(folder, f'rank{_rank()}.jsonl'), 'a') as f:
                line = {'iter': current_iter, 'net_g': tensor_digest(self.net_g.state_dict().values()).hex(),
                        'copies': [d.hex() for d in self.history.digests()] if hasattr(self, 'history') else []}
                if hasattr(self, 'net_dc'):
                    line['net_dc'] = tensor_digest(self.net_dc.state_dict().values()).hex()
                f.write(json.dumps(line) + '\n')
        return wrapped
    for cls in STEPPING:
        _wrap(cls, 'optimize_parameters', make)


def main(argv):
    ours, rest = (argv[:argv.index('--')], argv[argv.index('--') + 1:]) if '--' in argv else (argv, [])
    parser = argparse.ArgumentParser(prog='python -m tests.instrumented')
    parser.add_argument('--kill-at-iter', type=int)
    parser.add_argument('--kill-in-save')
    parser.add_argument('--kill-in-test', type=int)
    parser.add_argument('--kill-at-startup', action='store_true')
    parser.add_argument('--kill-rank', type=int)
    parser.add_argument('--first-attempt', action='store_true')
    parser.add_argument('--report')
    parser.add_argument('--digests')
    args = parser.parse_args(ours)
    if args.digests:
        record_digests(args.digests)
    if args.report:
        report_resume(args.report)
    restarted = int(os.environ.get('TORCHELASTIC_RESTART_COUNT', 0)) > 0
    if (args.kill_rank is not None and args.kill_rank != _rank()) or (args.first_attempt and restarted):
        return mclir_train.main(rest)
    if args.kill_at_iter:
        kill_at_iter(args.kill_at_iter)
    if args.kill_in_save:
        kill_in_save(args.kill_in_save)
    if args.kill_in_test:
        kill_in_test(args.kill_in_test)
    if args.kill_at_startup:
        kill_at_startup()
    return mclir_train.main(rest)


if __name__ == '__main__':
    sys.exit(main(sys.argv[1:]))
