"""Inputs and outputs of a restoring run: files, folders and globs in; names, formats and never over an input out;
then every image read, restored and written (:func:`restore_images`)."""
import glob
import os
import os.path as osp
import re
import time
from dataclasses import dataclass, field

from ..utils import is_image_file, why_not_writable
from .images import KEEP_FORMATS, ImageError, read_picture, write_picture
from .option_source import RestoreError

GLOB_CHARS = re.compile(r'[*?[]')


@dataclass
class Job:
    source: str
    target: str


@dataclass
class Report:
    written: list = field(default_factory=list)
    skipped: list = field(default_factory=list)  # outputs that existed (--skip-existing)
    failed: list = field(default_factory=list)  # (input, one-line reason)
    seconds: float = 0.

    @property
    def ok(self):
        return not self.failed


def _images_below(folder, recursive):
    if recursive:
        found = [osp.join(d, f) for d, _, files in os.walk(folder) for f in files]
    else:
        found = [osp.join(folder, f) for f in os.listdir(folder) if osp.isfile(osp.join(folder, f))]
    return sorted(p for p in found if is_image_file(p) and not osp.basename(p).startswith('.'))


def collect_inputs(inputs, recursive=False):
    """``[(file, root)]`` for each input: a file, a folder (``recursive``: and its subfolders) or a glob."""
    found = []
    for item in inputs:
        item = str(item)
        if osp.isfile(item):
            found.append((item, osp.dirname(item)))
        elif osp.isdir(item):
            images = _images_below(item, recursive)
            if not images:
                raise RestoreError(f'-i {item}: no image files in this folder' +
                                   ('' if recursive else ' (add --recursive for its subfolders)') + '.')
            found += [(p, item) for p in images]
        elif GLOB_CHARS.search(item):
            images = sorted(p for p in glob.glob(item, recursive=True) if osp.isfile(p) and is_image_file(p))
            if not images:
                raise RestoreError(f'-i {item}: the pattern matches no image file.')
            root = item[:GLOB_CHARS.search(item).start()]
            root = root if root.endswith(os.sep) else osp.dirname(root)
            found += [(p, root) for p in images]
        else:
            raise RestoreError(f'-i {item}: no such file or folder.')
    return found


def plan_outputs(inputs, output, suffix='', ext='auto'):
    """The jobs, refused before anything runs when an output would replace an input or two inputs share one."""
    if ext != 'auto' and not is_image_file(f'x.{ext.lstrip(".")}'):
        raise RestoreError(f'--ext {ext!r}: use auto, png, tif, jpg, webp or bmp.')
    jobs, by_target = [], {}
    input_files = {osp.realpath(p) for p, _ in inputs}
    for path, root in inputs:
        rel = osp.relpath(osp.dirname(path), root) if root else '.'
        stem, in_ext = osp.splitext(osp.basename(path))
        out_ext = (in_ext if in_ext.lower() in KEEP_FORMATS else '.png') if ext == 'auto' else f'.{ext.lstrip(".")}'
        target = osp.normpath(osp.join(output, rel, f'{stem}{suffix}{out_ext}'))
        if osp.realpath(target) in input_files:
            raise RestoreError(f'the output of {path} would be {target}, an input: never written over; give another '
                               f'-o folder or a --suffix.')
        if target in by_target:
            raise RestoreError(f'{by_target[target]} and {path} would both be written to {target}; give --ext or '
                               f'--suffix, or restore them separately.')
        by_target[target] = path
        jobs.append(Job(path, target))
    return jobs


def check_output_folder(output):
    problem = why_not_writable(osp.join(output, 'x.png'), make_folders=True)
    if problem:
        raise RestoreError(f'-o {output}: {problem}.')


def restore_images(inputs, output, restorer, suffix='', ext='auto', recursive=False, skip_existing=False,
                   dry_run=False, progress=False, log=print):
    """Restore every image of ``inputs`` (files, folders, globs) into the folder ``output`` (module doc). Returns a
    :class:`Report`; ``log`` gets one line per skipped or failed image (and, with ``dry_run``, per planned output)."""
    jobs = plan_outputs(collect_inputs(inputs, recursive), output, suffix, ext)
    if not dry_run:
        check_output_folder(output)
    report = Report()
    todo = []
    for job in jobs:
        if skip_existing and osp.exists(job.target):
            report.skipped.append(job.target)
        else:
            todo.append(job)
    if dry_run:
        for job in todo:
            log(f'{job.source} -> {job.target}')
        return report
    bar = _progress(len(todo)) if progress else None
    start = time.perf_counter()
    for job in todo:
        try:
            picture = read_picture(job.source)
        except ImageError as err:
            report.failed.append((job.source, str(err)))
            log(f'skipped: {err}')
        else:
            try:
                write_picture(restorer.restore(picture), job.target)
                report.written.append(job.target)
            except (ImageError, OSError) as err:
                report.failed.append((job.source, str(err)))
                log(f'not written: {job.target}: {err}')
        if bar is not None:
            bar.update(1)
    report.seconds = time.perf_counter() - start
    if bar is not None:
        bar.close()
    return report


def _progress(total):
    from tqdm import tqdm
    return tqdm(total=total, unit='img', dynamic_ncols=True)
