"""Option files of the methods' own repositories: which repository a file comes from, and what its names mean here.

Some names mean different things in different repositories, and their files rely on it: IRConStyle's bare
``type: NAFNet`` is a width-64 network with 7 middle blocks, megvii's (and BasicSR users') ``NAFNet`` defaults to
width 16 without blocks. A file is recognised by what it already says (its ``model_type``, or its dataset types),
never by a key added to it; its names are then rewritten to the names of this plugin that carry the repository's
meaning, right after parsing and before anything is checked or built. The log's copy of the options shows the
rewritten names. Each repository's table (:class:`RepositoryNames`) lives with its method (the runtime passes them
all, :mod:`mclir_basicsr.runtime.option_checks`), and its docs page lists every name.
"""
from dataclasses import dataclass, field

from .options import OptionError


@dataclass(frozen=True)
class RepositoryNames:
    """How one repository's option files are read.

    Args:
        repository: ``owner/name`` (for messages).
        docs: the docs page listing its names.
        model_types: a file with one of these ``model_type`` values comes from this repository.
        dataset_types: ... or with a dataset of one of these types.
        networks: their ``network_<x>.type`` -> ours, where the name means another network here.
        datasets: their ``datasets.<phase>.type`` -> ours.
        path_defaults: ``path`` keys their pipeline fixes (e.g. the checkpoint entry it always loads), set where the
            file does not set them.
        rewrite: a function ``(opt) -> None`` for what the tables cannot say (keys their scripts read elsewhere).
        recognise: a function ``(opt) -> bool`` recognising their files by what else they say (their layout).
    """

    repository: str
    docs: str
    model_types: tuple = ()
    dataset_types: tuple = ()
    networks: dict = field(default_factory=dict)
    datasets: dict = field(default_factory=dict)
    path_defaults: dict = field(default_factory=dict)
    rewrite: object = None
    recognise: object = None

    def recognises(self, opt):
        types = [ds.get('type') for ds in (opt.get('datasets') or {}).values() if isinstance(ds, dict)]
        return (opt.get('model_type') in self.model_types or any(t in self.dataset_types for t in types) or
                (self.recognise is not None and self.recognise(opt)))

    def apply(self, opt):
        for key, block in opt.items():
            if str(key).startswith('network_') and isinstance(block, dict) and block.get('type') in self.networks:
                block['type'] = self.networks[block['type']]
        for ds in (opt.get('datasets') or {}).values():
            if isinstance(ds, dict) and ds.get('type') in self.datasets:
                ds['type'] = self.datasets[ds['type']]
        if self.path_defaults:
            path = opt.setdefault('path', {})
            if isinstance(path, dict):
                for key, value in self.path_defaults.items():
                    path.setdefault(key, value)
        if self.rewrite is not None:
            self.rewrite(opt)


def use_repository_names(opt, known):
    """Rewrite ``opt`` in place to the names of this plugin if it comes from one of the ``known`` repositories
    (:class:`RepositoryNames`); returns that repository's, or None. Two repositories claiming one file is an error."""
    found = [r for r in known if r.recognises(opt)]
    if len(found) > 1:
        raise OptionError(f'model_type {opt.get("model_type")!r} and the dataset types of this file belong to '
                          f'{" and ".join(r.repository for r in found)}: use the model type and dataset types of '
                          f'one repository ({", ".join(r.docs for r in found)}).')
    if found:
        found[0].apply(opt)
        return found[0]
    return None
