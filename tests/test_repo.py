"""The repository's own invariants: the library matches the notebooks, README matches index.ipynb, imports are light."""
import filecmp, os, shutil, subprocess, sys
from pathlib import Path
from conftest import ROOT

def test_library_matches_notebooks(tmp_path):
    "nbdev-export of the committed notebooks reproduces the committed attractor_nb/ exactly"
    shutil.copytree(ROOT/'nbs', tmp_path/'nbs', ignore=shutil.ignore_patterns('_*', '.*'))
    shutil.copy(ROOT/'pyproject.toml', tmp_path)
    (tmp_path/'attractor_nb').mkdir()
    shutil.copy(ROOT/'attractor_nb'/'__init__.py', tmp_path/'attractor_nb')
    r = subprocess.run([sys.executable, '-c', 'from nbdev.doclinks import nbdev_export; nbdev_export.__wrapped__()'],
                       cwd=tmp_path, capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr
    made = sorted(p.relative_to(tmp_path) for p in (tmp_path/'attractor_nb').rglob('*.py'))
    have = sorted(p.relative_to(ROOT) for p in (ROOT/'attractor_nb').rglob('*.py'))
    assert made == have, f"modules differ: exported {made}, committed {have}"
    stale = [str(p) for p in made if (tmp_path/p).read_text() != (ROOT/p).read_text()]
    assert not stale, f"edit the notebooks and run `make export`: these differ from their notebooks: {stale}"

def test_readme_matches_index():
    r = subprocess.run([sys.executable, str(ROOT/'tools'/'make_readme.py'), '--check'], capture_output=True, text=True)
    assert r.returncode == 0, r.stdout + r.stderr

def _modules_after(stmt):
    code = f"import sys; {stmt}; print(' '.join(sorted(m for m in sys.modules)))"
    r = subprocess.run([sys.executable, '-c', code], capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr
    return set(r.stdout.split())

def test_import_is_light():
    "`import attractor_nb` loads no torch; the core loads no fastai, nltk, torchaudio or matplotlib"
    assert 'torch' not in _modules_after('import attractor_nb')
    heavy = {'fastai', 'nltk', 'torchaudio', 'matplotlib', 'umap', 'sklearn'}
    assert not heavy & _modules_after('import attractor_nb.core')
    assert not {'nltk', 'torchaudio', 'umap'} & _modules_after('import attractor_nb.data')

def test_cli_help_is_fast():
    "`attractor-nb --help` answers without importing torch"
    mods = _modules_after("import attractor_nb.cli")
    assert 'torch' not in mods

def test_carry_paused_runs(tmp_path, monkeypatch, capsys):
    "tools/carry.py: a paused run's checkpoints (last.pth files, a grid's finished conditions and the pieces' log, nothing else) go to runs/paused and back out"
    import json, torch
    sys.path.insert(0, str(ROOT/'tools'))
    try: import carry
    finally: sys.path.pop(0)
    monkeypatch.setattr(carry, 'PAUSED', tmp_path/'paused')
    monkeypatch.setattr(carry, 'ROOT', tmp_path)
    run = tmp_path/'ck'/'sdrnn-demo-s0'
    for m, ep in (('rnn', 4), ('sdrnn', 2)):
        (run/m).mkdir(parents=True)
        torch.save(dict(epoch=ep, n_epoch=5), run/m/'last.pth')
        (run/m/'.last.pth.123.tmp').write_text('a half-written checkpoint')
    (run/'segments.json').write_text(json.dumps([dict(seconds=1800.0, ended='paused'), dict(seconds=None, ended='killed')]))
    carry.save(tmp_path/'ck', 'sdrnn-demo-s0')
    kept = sorted(str(p.relative_to(tmp_path/'paused')) for p in (tmp_path/'paused').rglob('*') if p.is_file())
    assert kept == ['sdrnn-demo-s0/rnn/last.pth', 'sdrnn-demo-s0/sdrnn/last.pth', 'sdrnn-demo-s0/segments.json'], kept
    carry.list_()
    out = capsys.readouterr().out
    assert 'rnn: epoch 5 of 5; sdrnn: epoch 3 of 5; 2 pieces, 0.5 h' in out, out
    carry.drop('sdrnn-demo-s0')
    assert not (tmp_path/'paused'/'sdrnn-demo-s0').exists()
    try: carry.save(tmp_path/'ck', 'no-such-run'); assert False, 'saved a run without checkpoints'
    except SystemExit as e: assert 'nothing to carry' in str(e)
    # a grid run (attractor-capacity): finished conditions in conditions.json, the one in progress in its subfolder
    grid = tmp_path/'ck'/'attractor-capacity-s0'
    (grid/'s0.25-n100-A50').mkdir(parents=True)
    torch.save(dict(epoch=9, n_epoch=500), grid/'s0.25-n100-A50'/'last.pth')
    (grid/'conditions.json').write_text(json.dumps([dict(key='s0.25-n100-A25', mean=90.0)]))
    carry.save(tmp_path/'ck', 'attractor-capacity-s0')
    carry.list_()
    assert 's0.25-n100-A50: epoch 10 of 500; 1 conditions finished' in capsys.readouterr().out
    (grid/'s0.25-n100-A50'/'last.pth').unlink()  # between conditions: nothing in progress, the finished ones still carried
    carry.save(tmp_path/'ck', 'attractor-capacity-s0')
    assert [p.name for p in (tmp_path/'paused'/'attractor-capacity-s0').rglob('*') if p.is_file()] == ['conditions.json']

def test_gpu_piece_script(tmp_path):
    "tools/gpu_piece.sh (run on the GPU machine): a paper-scale run paused at its deadline, its checkpoints packed in ck.tgz, resumed by the next call"
    import json, subprocess, tarfile
    env = dict(os.environ, OUT=str(tmp_path/'out'), CK=str(tmp_path/'ck'), DEVICE='cpu', PYTHON=sys.executable)
    cmd = ['bash', str(ROOT/'tools'/'gpu_piece.sh'), '1e-9', 'sdrnn-symmetry', '--filler', '1', '--replications', '2',
           '--n-train', '40', '--n-test', '20', '--model', 'rnn']
    for piece in (1, 2):
        p = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=300)
        assert p.returncode == 3, p.stdout + p.stderr  # paused after one epoch of 2500, however fast the machine
        assert 'gpu_piece: exit status 3' in p.stdout, p.stdout
        with tarfile.open(tmp_path/'out'/'ck.tgz') as t: names = t.getnames()
        assert 'ck/sdrnn-symmetry-f1-rnn/rnn/last.pth' in names and 'ck/sdrnn-symmetry-f1-rnn/segments.json' in names, names
        segs = json.loads((tmp_path/'ck'/'sdrnn-symmetry-f1-rnn'/'segments.json').read_text())
        assert [s['ended'] for s in segs] == ['paused'] * piece, segs  # the second call resumed the first piece's run
    bad = subprocess.run(['bash', str(ROOT/'tools'/'gpu_piece.sh'), '1'], env=env, capture_output=True, text=True)
    assert bad.returncode == 2 and 'usage' in bad.stderr
    bad = subprocess.run(cmd, env=dict(env, CK=str(tmp_path/'other')), capture_output=True, text=True)
    assert bad.returncode == 2 and 'last folder name must be ck' in bad.stderr
