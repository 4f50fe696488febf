"""Pre-flight checks of the data and checkpoints an option file names, run before anything is written.

Called from our entry points right after the options are parsed
(:func:`mclir_basicsr.runtime.option_checks.check_after_parse`), before BasicSR creates or renames the experiment
folder. Every problem raises :class:`~mclir_basicsr.options.OptionError` (a ``ValueError``) whose message starts with
the option key (``datasets.train.dataroot_gt: ...``, never the dataset's ``name``), names the file and says what to
do; the entry points print it without a traceback.

What is checked (cheap enough for every start: no dataset is decoded in full; 10,000 pairs of 512x512 PNGs take
about 1 s from the page cache, 2 s (folders) / 5 s (lmdb) from this machine's disk, against 43 s to decode them:
``benchmarks/preflight_cost.py``, ``benchmarks/results/preflight_cost_cpu.json``):

* every dataset with ``dataroot_*`` keys: the type is registered and the paths exist (:mod:`.datasets`);
* ``PairedImageDataset`` (and subclasses): both dataroots, ``io_backend``, an integer ``scale``, and the GT/LQ pairs
  listed by BasicSR's own ``paired_paths_from_lmdb`` / ``_meta_info_file`` / ``_folder``, their failures turned
  into key-named messages (:mod:`.pairs`); beyond what those check:

  - lmdb: ``data.mdb``, ``meta_info.txt`` lines BasicSR reads correctly (``<key>.png (h,w,c) <level>``), no key
    listed twice (BasicSR would train on it once per line), every key present in the lmdb (read-only transaction,
    no value copied);
  - disk: only image files (BasicSR reads every file of the folder), or the ``meta_info_file`` names existing, none
    twice;
  - every image readable (:mod:`.images`): its header and its end are read, not its pixels: 0-byte files, files
    that are no image (a text file renamed ``.png``), a PNG without its final ``IEND`` chunk, a JPEG not ending with
    the EOI marker ``FF D9`` (OpenCV decodes it with the missing part grey), BMP / WebP shorter than their header
    says; lmdb values likewise, in place, and their sizes must be those of ``meta_info.txt``;
  - not empty; image sizes (every image; lmdb: from the stored values, checked against ``meta_info.txt``) satisfy
    ``GT = LQ * scale`` (train) or ``GT // scale = LQ`` (val/test: BasicSR crops GT to ``LQ * scale``), the same
    size at scale 1, and the LQ fits the training patch ``gt_size // scale``; the first ``N_DECODE`` pairs are
    decoded in full with OpenCV (:mod:`.sizes`);
  - colour: a pair whose GT is grayscale and LQ colour (or the reverse) is an error (BasicSR reads both as
    3-channel colour, so the network would learn to add or remove colour); consistent grayscale pairs in a colour
    dataset only warn (they are valid colourless samples once BasicSR replicates the channel);

* hooks a dataset class may define to say what it reads (:mod:`.datasets`; IRConStyle's ``Dataset_*`` types use
  them): ``check_options(ds_opt, key)`` (its own option check, raising ``OptionError`` starting with ``key``);
  ``dataroot_keys`` (the only ``dataroot_*`` keys checked as paths: their Gaussian types read ``dataroot_gt`` and
  ignore ``dataroot_lq: none``; without ``dataroot_lq`` each GT image is its own partner, folders and lmdb, at
  scale 1); ``paired_files(ds_opt, key)`` (``{name: {'gt': path, 'lq': path}}``, the pairs it builds from folders,
  e.g. by sorted position, or None for BasicSR's pairing by name; raising ``OptionError`` for folders it cannot
  pair): its folders and pairs then get every check above in place of BasicSR's name matching, also for a class
  that is no ``PairedImageDataset``; ``default_scale`` (the scale when neither the block nor the top level sets one);
* ``AllInOneDataset`` (:mod:`.all_in_one`): the dataset's own option check, then each task as GT/LQ pairs at scale 1
  with the checks above (denoising: its clean images), no image listed twice (a repeated ``meta_info_file`` line, a
  folder given twice), every image at least ``gt_size`` for training; messages name the task
  (``datasets.train.tasks[1].dataroot: ...``);
* the switch ``datasets.<phase>.check_images`` (true or false, default true; any dataset above, training or
  validation): ``false`` skips reading every image; sizes are then read from the headers of up to
  ``MAX_HEADER_PAIRS`` pairs spread over the dataset (lmdb: ``meta_info.txt``), and the first ``N_DECODE`` pairs are
  still decoded. For a set on slow storage, or images the check refuses wrongly. Repeated lines and missing lmdb
  keys are refused either way;
* ``path.resume_state`` (without ``--auto_resume``): a readable training state whose network files exist;
  ``path.pretrain_network_<x>`` (skipped when a resume will replace it): exists, loads with
  ``torch.load(weights_only=True)``, has ``path.param_key_<x>``, and fits ``network_<x>`` (keys and shapes with
  ``strict_load_<x>: true``; at least one tensor with ``false``) (:mod:`.checkpoints`);
* VGG weights that training will load (:mod:`.vgg`): ``train.spn_opt.vgg_weights`` (SPNLoss: found, and a
  torchvision state dict of that ``vgg_type``), the same for ``vgg_weights`` under ``train.pocl_opt`` and every
  ``train.<x>_opt`` of BasicSR's PerceptualLoss, whose VGG without ``vgg_weights`` must be found in the standard
  places; a missing file's message names ``mclir-fetch-vgg`` and ``vgg_weights: random``.
"""
from ..options import OptionError
from .checkpoints import check_pretrained, check_pretrained_prompter, check_resume_state
from .datasets import check_dataset
from .sizes import MAX_HEADER_PAIRS, N_DECODE
from .vgg import check_vgg_weights

__all__ = ('MAX_HEADER_PAIRS', 'N_DECODE', 'check_inputs')


def check_inputs(opt):
    """Raise a clear error (naming the option key or file, saying what to do) for bad data or checkpoints.

    Args:
        opt (dict): options as parsed by BasicSR's ``parse_options`` (after ``check_options``).
    Raises:
        OptionError: the first problem found; the message starts with the key path.
    """
    datasets = opt.get('datasets') or {}
    if not isinstance(datasets, dict):
        raise OptionError('datasets must be a mapping of phase -> dataset options.')
    for phase_key, ds in datasets.items():
        check_dataset(opt, str(phase_key), ds)
    check_resume_state(opt)
    check_pretrained(opt)
    check_pretrained_prompter(opt)
    if opt.get('is_train', True):
        check_vgg_weights(opt)
