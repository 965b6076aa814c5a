"""Every notebook in nbs/ is a test: its cells run top to bottom (as `nbdev-test` runs them, `#| notest` skipped)."""
import subprocess, sys
import pytest
from conftest import NBS

NOTEBOOKS = sorted(p.name for p in NBS.glob('*.ipynb'))
_RUN = """
import sys
from nbdev.test import test_nb
ok, secs = test_nb(sys.argv[1], do_print=False)
print(f'{sys.argv[1]}: {"ok" if ok else "FAILED"} in {secs:.1f} s')
sys.exit(0 if ok else 1)
"""

def test_notebooks_found():
    assert {'index.ipynb', '00_core.ipynb', '02_train.ipynb', '03_cli.ipynb'} <= set(NOTEBOOKS)

@pytest.mark.notebook
@pytest.mark.parametrize('nb', NOTEBOOKS)
def test_notebook(nb):
    r = subprocess.run([sys.executable, '-c', _RUN, nb], cwd=NBS, capture_output=True, text=True, timeout=1200)
    if r.returncode != 0:
        pytest.fail(f"notebook {nb} failed:\n{r.stdout[-3000:]}\n{r.stderr[-6000:]}", pytrace=False)
