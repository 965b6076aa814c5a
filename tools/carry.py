"""Carry paused paper-scale runs from one working session to the next (developers' tool).

Checkpoints live outside git (`checkpoints/` is ignored), and a working session's machine does not outlive it. A run too
long for one session is done in pieces (`attractor-nb run ... --stop-after HOURS`); between pieces its checkpoint
folder is kept in the repository under `runs/paused/<results name>/`:

    python tools/carry.py save CKPT_ROOT NAME   # copy CKPT_ROOT/NAME (last.pth, conditions.json, segments.json) to runs/paused/NAME
    python tools/carry.py list                  # the paused runs kept here: epoch of each checkpoint, pieces so far
    python tools/carry.py drop NAME             # remove runs/paused/NAME (once the run has finished and its results are in)

The next piece runs straight from there (or from a copy): the same command as before, with
`--checkpoints runs/paused --resume --stop-after HOURS`.
"""
import json, shutil, sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PAUSED = ROOT/'runs'/'paused'
KEEP = ('last.pth', 'conditions.json', 'segments.json')  # conditions.json: the finished conditions of a grid run

def save(ckpt_root, name):
    src, dst = Path(ckpt_root)/name, PAUSED/name
    files = [f for f in src.rglob('*') if f.name in KEEP]
    if not any(f.name in ('last.pth', 'conditions.json') for f in files):
        raise SystemExit(f"{src}: no last.pth or conditions.json below it, nothing to carry")
    if dst.exists(): shutil.rmtree(dst)
    for f in files:
        (dst/f.relative_to(src)).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(f, dst/f.relative_to(src))
    print(f"{name}: {len(files)} files, {sum(f.stat().st_size for f in files)/2**20:.1f} MiB -> {dst.relative_to(ROOT)}")

def status(folder:Path) -> str:
    import torch
    parts = []
    for f in sorted(folder.rglob('last.pth')):
        st = torch.load(f, map_location='cpu', weights_only=False)
        parts.append(f"{f.parent.relative_to(folder) or '.'}: epoch {st['epoch'] + 1} of {st['n_epoch']}")
    conds = folder/'conditions.json'
    if conds.exists(): parts.append(f"{len(json.loads(conds.read_text()))} conditions finished")
    segs = folder/'segments.json'
    if segs.exists(): parts.append(pieces_text(json.loads(segs.read_text())))
    return '; '.join(parts)

def pieces_text(segs:list) -> str:
    "A run's pieces so far (its `segments.json`), e.g. '2 pieces, 1.7 h' (a killed piece's time is unknown: not counted)"
    from attractor_nb.core import pieces_seconds
    return f'{len(segs)} piece{"s" if len(segs) != 1 else ""}, {pieces_seconds(segs)/3600:.1f} h'

def list_():
    runs = sorted(p for p in PAUSED.iterdir() if p.is_dir()) if PAUSED.exists() else []
    if not runs: print('no paused runs')
    for p in runs: print(f"{p.name}: {status(p)}")

def drop(name):
    shutil.rmtree(PAUSED/name); print(f"removed {(PAUSED/name).relative_to(ROOT)}")

if __name__ == '__main__':
    cmd, *args = sys.argv[1:] or ['list']
    {'save': save, 'list': list_, 'drop': drop}[cmd](*args)
