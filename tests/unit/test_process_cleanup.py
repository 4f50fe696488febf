"""The tests' own launcher helpers: a command that overruns is killed with every process it started, including
workers that lead sessions of their own (as torchrun's do)."""
import os
import subprocess
import sys

import pytest

from tests.helpers import kill_tree, run_bounded

SPAWNS_A_SESSION_LEADER = ('import subprocess, sys, time\n'
                           'child = subprocess.Popen(["sleep", "60"], start_new_session=True)\n'
                           'print(child.pid, flush=True)\n'
                           'time.sleep(60)\n')


def _alive(pid):
    try:
        with open(f'/proc/{pid}/stat') as f:
            return f.read().split()[2] != 'Z'
    except OSError:
        return False


def test_kill_tree_reaches_workers_in_their_own_sessions():
    proc = subprocess.Popen([sys.executable, '-c', SPAWNS_A_SESSION_LEADER], stdout=subprocess.PIPE, text=True)
    worker = int(proc.stdout.readline())
    assert _alive(worker)
    kill_tree(proc)
    assert proc.returncode is not None
    for _ in range(50):
        if not _alive(worker):
            break
        os.sched_yield()
    assert not _alive(worker)


def test_run_bounded_kills_an_overrun():
    with pytest.raises(subprocess.TimeoutExpired):
        run_bounded([sys.executable, '-c', 'import time; time.sleep(30)'], '.', dict(os.environ), timeout=1)
