"""``DCPTTasksDataset``: the DCPT repository's ``datasets.train_1..N`` (and, for classification, ``val_1..M``) as one
dataset, the way their ``all_in_one_train.py`` builds it.

Each task block is a whole dataset block of its own type; the dataset is their concatenation in file order, task
``i`` repeated ``datasets.<task>.dataset_enlarge_ratio`` times (item ``idx`` of task ``i`` is item ``idx % len`` of its
dataset), and every item carries ``dataset_idx = i``: the degradation label is the task's position, not its name.
A DCPT file's ``train_N`` keys are gathered into ``datasets.train`` of this type when the file is read
(:mod:`.dcpt_files`); the messages of the checks keep the file's own keys (``datasets.train_3.dataroot_gt``).
"""
from basicsr.data import build_dataset
from basicsr.utils.registry import DATASET_REGISTRY

from ...checks.options import OptionError, check_int
from .dcpt_degradations import LabelledConcat


def task_blocks(ds, key):
    """``{task key: block}`` of a ``DCPTTasksDataset`` block, checked to be a non-empty mapping of blocks."""
    tasks = ds.get('tasks')
    if not isinstance(tasks, dict) or not tasks or any(not isinstance(b, dict) for b in tasks.values()):
        raise OptionError(f'{key}.tasks must be a mapping of dataset blocks, one per degradation (train_1, train_2, '
                          f'...), got {tasks!r}.')
    return tasks


@DATASET_REGISTRY.register()
class DCPTTasksDataset(LabelledConcat):
    """Task datasets concatenated in order, each item labelled with its task's position (module doc)."""

    dataroot_keys = ()  # each task's own are checked with its block

    @classmethod
    def check_options(cls, ds, key):
        """Every task block as the dataset it is (all pre-flight checks, named by its own key)."""
        from ...checks.preflight.datasets import check_dataset  # preflight imports the registered datasets
        for task_key, block in task_blocks(ds, key).items():
            check_int(block.get('dataset_enlarge_ratio', 1), f'datasets.{task_key}.dataset_enlarge_ratio', low=1)
            check_dataset({}, task_key, block)

    def __init__(self, opt):
        super().__init__()
        self.opt = opt  # BasicSR's validation reads the name from it
        tasks = task_blocks(opt, str(opt.get('name')))
        self.task_names = [block.get('name') or key for key, block in tasks.items()]
        self.concatenate([build_dataset(block) for block in tasks.values()],
                         [int(block.get('dataset_enlarge_ratio', 1)) for block in tasks.values()])
