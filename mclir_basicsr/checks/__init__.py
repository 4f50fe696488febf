"""The option protocol: one check of the whole option file, run once, after BasicSR parses it and before it creates a
folder or a logger (:func:`mclir_basicsr.runtime.option_checks.check_parsed`, installed on ``parse_options``).

Every component that reads options declares its check the same way, ``check_options(block, path)``, where
``block`` is what its constructor receives and ``path`` the key path of the block; it raises
:class:`~mclir_basicsr.options.OptionError` whose message starts with the key path and says what to do:

* networks and losses (``network_<x>``, ``train.<x>_opt``): a classmethod receiving the block without ``type``;
  every typed block is also built (:mod:`.blocks`);
* datasets (``datasets.<phase>``): a classmethod receiving the whole block (BasicSR passes it whole), followed by
  the checks of the files it names (:mod:`mclir_basicsr.preflight`);
* model classes: a classmethod receiving the whole file (``path`` is ``''``); it calls the parsers of the parts it
  reads (``train.history``, ``train.progressive``, ``train.divergence_guard``, ``train.amp``, ``train.compile``, its
  loss blocks), which return the configuration the model is then built from, so what was checked is what runs.
  It runs for training; a model class whose test or validation reads keys of its own (NAFNet's
  ``ImageRestorationModel``: ``val.grids``) also declares ``check_eval_options(opt)``, run for training and testing;
* optimizers and schedulers (``train.optim_<x>``, ``train.scheduler``): torch's classes, checked against their
  signatures and built over a dummy parameter.

The walk, in order: numbers YAML left as text, optimizers and scheduler, every typed block built, the keys of ours
and the model class's check, then each dataset and the files, checkpoints and weights the file names. Nothing in it
touches BasicSR's root logger: a warning before ``init_loggers`` would leave the run without its log file.
"""
