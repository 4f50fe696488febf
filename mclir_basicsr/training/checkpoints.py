"""What every model class of this plugin shares: atomic checkpoints and training states that resume bit for bit."""
import os
from basicsr.utils import get_root_logger
from basicsr.utils.dist_util import master_only
from collections import OrderedDict

from ..utils import atomic_torch_save, bare_module
from .ranks import gather_objects, rank, world_size
from .rng_state import capture_rng_state, restore_rng_state


class AtomicCheckpoints:
    """Mixin placed before a BasicSR model class (``class M(AtomicCheckpoints, SRModel)``).

    * ``save_network``: BasicSR's, written atomically (a crash never leaves a half-written file), wrapper prefixes
      removed;
    * ``save_training_state``: BasicSR's entries (epoch, iter, optimizers, schedulers) plus ``state[state_key]``:
      :meth:`plugin_training_state` and the random-number states (``rng``), so a resumed run continues the same
      random stream; atomic;
    * ``resume_training``: BasicSR's, then :meth:`load_plugin_training_state` and the random-number states
      (each rank its own: :meth:`rank_local_state` of every rank is gathered into the file, so a DDP run restarted
      with the same world size continues every rank's streams exactly).

    Every rank calls ``save_training_state`` (the random states are gathered); rank 0 writes the file.
    """

    state_key = 'plugin'  # the training-state entry of the class (MCLIRModel: 'mclir')

    def plugin_training_state(self):
        """The class's own values in the training state (plain values and tensors)."""
        return {}

    def load_plugin_training_state(self, entry, source):
        """Restore :meth:`plugin_training_state` from ``entry`` (None for a state without one) read from
        ``source``."""

    def rank_local_state(self):
        """What differs between DDP ranks and must continue exactly: each rank's random streams (a class with a
        generator of its own per rank adds it)."""
        return {'rng': capture_rng_state()}

    def load_rank_local_state(self, state):
        restore_rng_state(state['rng'])

    @master_only
    def save_network(self, net, net_label, current_iter, param_key='params'):
        label = 'latest' if current_iter == -1 else current_iter
        nets = net if isinstance(net, list) else [net]
        keys = param_key if isinstance(param_key, list) else [param_key]
        assert len(nets) == len(keys), 'The lengths of net and param_key should be the same.'
        save_dict = {key: OrderedDict((k, v.cpu()) for k, v in bare_module(n).state_dict().items())
                     for n, key in zip(nets, keys)}
        atomic_torch_save(save_dict, os.path.join(self.opt['path']['models'], f'{net_label}_{label}.pth'))

    def save_training_state(self, epoch, current_iter):
        if current_iter == -1:
            return
        ranks = gather_objects(self.rank_local_state())  # a collective: before the rank-0-only part
        if rank() != 0:
            return
        entry = dict(self.plugin_training_state(), rng=ranks[0]['rng'], ranks=ranks)
        state = {
            'epoch': epoch,
            'iter': current_iter,
            'optimizers': [o.state_dict() for o in self.optimizers],
            'schedulers': [s.state_dict() for s in self.schedulers],
            self.state_key: entry,
        }
        path = os.path.join(self.opt['path']['training_states'], f'{current_iter}.state')
        atomic_torch_save(state, path)
        self.training_state_saved(path)

    def training_state_saved(self, path):
        """Called after a training state was written to ``path``."""

    def resume_training(self, resume_state):
        super().resume_training(resume_state)
        source = self.opt['path'].get('resume_state') or 'resume state'
        entry = resume_state.get(self.state_key)
        self.load_plugin_training_state(entry, source)
        if entry is None:
            return
        ranks = entry.get('ranks') or [{'rng': entry['rng']}]
        if len(ranks) == world_size():
            self.load_rank_local_state(ranks[rank()])  # the uninterrupted run's random streams continue exactly
        else:
            get_root_logger().warning(
                f'{source} holds the random states of {len(ranks)} rank(s) and this run has {world_size()}: each '
                f'rank continues from its seed, so this run will not repeat the uninterrupted one exactly.')
