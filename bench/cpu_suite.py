#!/usr/bin/env python
"""Benchmark 5: wall time of the whole test suite and of each notebook on this (CPU) machine.

Run it on a quiet machine, from the repository root:  .venv/bin/python bench/cpu_suite.py [--workers 2] [--out results]
It runs `pytest -n WORKERS --dist loadgroup --durations=0 tests` (as `make test` does) and writes results/bench_cpu_suite.json."""
import argparse, json, sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from attractor_nb.bench import run_cpu_suite

if __name__ == '__main__':
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument('--workers', type=int, default=2, help='pytest-xdist workers (0: none); default 2, as `make test`')
    p.add_argument('--out', default=None, help='results folder (default results/)')
    p.add_argument('args', nargs='*', default=['tests'], help='what pytest runs (default: tests)')
    a = p.parse_args()
    path = run_cpu_suite(out=a.out, workers=a.workers, args=tuple(a.args))
    rec = json.loads(Path(path).read_text())
    m = rec['metrics']
    print(f"suite: {m['suite_wall_s']:.0f} s wall, {m['passed']} passed, {m['failed']} failed (pytest exit {rec['exit_code']})")
    for nb, s in rec['notebooks'].items(): print(f"  {s:7.1f} s  {nb}")
    print(f"results: {path}")
