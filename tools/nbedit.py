"""Small helpers for editing the notebooks in nbs/ from scripts (developers' tool; the notebooks stay the source of truth).

    python tools/nbedit.py grep 20a_residual_ode_experiment 'def train_net'   # cells that contain a string
    python tools/nbedit.py show 20a_residual_ode_experiment 12                # one cell's source
    python tools/nbedit.py run 20a_residual_ode_experiment                    # execute in place (outputs kept), then nbdev-clean

From Python: `sub(nb, old, new)` replaces one occurrence in exactly one cell; `insert(nb, after, source)` adds a cell.
After editing exported cells run `nbdev-export` (or `make export`).
"""
import json, subprocess, sys, time, uuid
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
NBS = ROOT/'nbs'

def path(nb) -> Path:
    p = Path(nb)
    if p.exists(): return p
    p = NBS/(nb if str(nb).endswith('.ipynb') else f'{nb}.ipynb')
    if not p.exists(): raise FileNotFoundError(p)
    return p

def load(nb) -> dict: return json.loads(path(nb).read_text())

def save(nb, d:dict):
    path(nb).write_text(json.dumps(d, indent=1, ensure_ascii=False) + '\n')

def src(cell) -> str: return ''.join(cell['source'])

def _set(cell, text:str): cell['source'] = text.splitlines(keepends=True)

def grep(nb, pattern:str) -> list[int]:
    d = load(nb)
    hits = [i for i, c in enumerate(d['cells']) if pattern in src(c)]
    for i in hits: print(f"[{i}] {d['cells'][i]['cell_type']}: {src(d['cells'][i]).splitlines()[0][:100]}")
    return hits

def show(nb, i:int): print(src(load(nb)['cells'][int(i)]))

def sub(nb, old:str, new:str, count:int=1):
    "Replace `old` by `new` in the one cell that holds it (`count` occurrences expected there)"
    d = load(nb)
    hits = [c for c in d['cells'] if old in src(c)]
    if len(hits) != 1: raise ValueError(f"{nb}: {len(hits)} cells contain {old[:60]!r}; expected 1")
    s = src(hits[0])
    if s.count(old) != count: raise ValueError(f"{nb}: {s.count(old)} occurrences of {old[:60]!r}; expected {count}")
    _set(hits[0], s.replace(old, new))
    save(nb, d)

def insert(nb, after:str, source:str, cell_type:str='code'):
    "Insert a new cell after the one cell containing `after`"
    d = load(nb)
    idx = [i for i, c in enumerate(d['cells']) if after in src(c)]
    if len(idx) != 1: raise ValueError(f"{nb}: {len(idx)} cells contain {after[:60]!r}; expected 1")
    cell = dict(cell_type=cell_type, id=uuid.uuid4().hex[:8], metadata={}, source=[])
    if cell_type == 'code': cell.update(execution_count=None, outputs=[])
    _set(cell, source)
    d['cells'].insert(idx[0] + 1, cell)
    save(nb, d)

def run(nb):
    "Execute the notebook in nbs/ (as the docs show it, outputs saved), then nbdev-clean it"
    from fastcore.nbio import read_nb, write_nb
    from execnb.shell import CaptureShell
    p = path(nb)
    t = time.time()
    d = read_nb(p)
    sh = CaptureShell(path=p.parent)
    sh.run_all(d, exc_stop=True)
    write_nb(d, p)
    subprocess.run([str(Path(sys.executable).parent/'nbdev-clean'), '--fname', str(p)], check=True)
    print(f'{p.name}: executed in {time.time() - t:.0f} s')

if __name__ == '__main__':
    cmd, *args = sys.argv[1:]
    {'grep': grep, 'show': show, 'run': run}[cmd](*args)
