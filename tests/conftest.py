import os, sys, subprocess
from pathlib import Path
import pytest

ROOT = Path(__file__).resolve().parent.parent
NBS = ROOT/'nbs'

def run_cli(*args, timeout=600, env=None, **kw):
    "Run `attractor-nb ARGS` in a subprocess (no network needed) and return the CompletedProcess"
    e = {**os.environ, 'PYTHONUNBUFFERED': '1', **(env or {})}
    return subprocess.run([sys.executable, '-m', 'attractor_nb.cli', *map(str, args)], capture_output=True,
                          text=True, timeout=timeout, env=e, cwd=kw.pop('cwd', ROOT), **kw)

@pytest.fixture
def cli():
    return run_cli

@pytest.fixture(scope='module')
def one_thread():
    "Small matrices on a shared CPU: one thread is much faster"
    import torch
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)
