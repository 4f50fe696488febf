"""What a user watches while training with SPN, logged with the losses (console and tensorboard) by MCLIR models.

* ``spn_ratio``: ``|l_spn| / (l_pix + l_percep + l_style + l_unc)``, from the rank-averaged losses. The authors' rule
  of thumb is 0.01-0.1; a run that stays outside that band for :data:`PATIENCE` steps in a row gets one warning
  (again after each return into the band) with the ``loss_weight`` that would bring the ratio to its middle.
* ``spn_dist_copy<k>``: the layer-weighted VGG feature distance from the output to copy ``k``'s output (this rank's
  batch; with ``negatives: round_robin`` only the copy used at that step), ``spn_dist_lq`` for ``lq_negative``;
* ``refreshes_copy<k>``: refreshes of copy ``k`` so far (periodic and adaptive), kept in the training state.
"""
import math
from basicsr.utils import get_root_logger

from .spn_weight import RECONSTRUCTION

AUTHORS_BAND = (0.01, 0.1)
PATIENCE = 200


class SPNDiagnostics:

    def __init__(self, n_copies, round_robin=False, lq_negative=False, band=AUTHORS_BAND, patience=PATIENCE):
        self.n_copies, self.round_robin, self.lq_negative = n_copies, round_robin, lq_negative
        self.band, self.patience = band, patience
        self.refreshes = [0] * n_copies
        self.outside = 0  # consecutive steps with the ratio outside the band

    def record_refreshes(self, indices):
        for i in indices:
            self.refreshes[i] += 1

    def _copies_used(self, current_iter):
        return [current_iter % self.n_copies] if self.round_robin else list(range(self.n_copies))

    def step(self, log_dict, spn_loss, current_iter):
        """Values to add to ``log_dict`` (the step's rank-averaged losses); warns when the ratio stays outside."""
        l_rec = sum(v for k, v in log_dict.items() if k in RECONSTRUCTION)
        out = {}
        if 'l_spn' in log_dict and l_rec > 0:
            ratio = abs(float(log_dict['l_spn'])) / float(l_rec)
            out['spn_ratio'] = ratio
            self._watch(ratio, float(getattr(spn_loss, 'loss_weight', 1.0)), current_iter)
        distances = getattr(spn_loss, 'last_distances', None)
        if distances is not None:
            values = [float(d) for d in distances]
            names = [f'spn_dist_copy{k}' for k in self._copies_used(current_iter)]
            names += ['spn_dist_lq'] if self.lq_negative else []
            out.update(zip(names, values))
        out.update({f'refreshes_copy{k}': float(n) for k, n in enumerate(self.refreshes)})
        return out

    def _watch(self, ratio, loss_weight, current_iter):
        low, high = self.band
        if low <= ratio <= high or not math.isfinite(ratio):
            self.outside = 0
            return
        self.outside += 1
        if self.outside == self.patience:
            middle = math.sqrt(low * high)
            get_root_logger().warning(
                f'SPN: |l_spn| / reconstruction loss has been {ratio:.3g} (outside the authors\' band {low:g}-{high:g})'
                f' for {self.patience} steps up to iter {current_iter}; the negative term is '
                f'{"too weak to matter" if ratio < low else "strong enough to swamp the reconstruction loss"}. '
                f'train.spn_opt.loss_weight {loss_weight:g} -> about {loss_weight * middle / ratio:.2g} would put it '
                f'at {middle:.2g}.')

    def state_dict(self):
        return {'refreshes': list(self.refreshes), 'outside': self.outside}

    def load_state_dict(self, state):
        if state:
            self.refreshes = [int(n) for n in state.get('refreshes', self.refreshes)]
            self.outside = int(state.get('outside', 0))
