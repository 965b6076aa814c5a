"""Config, seeding, devices and results files (the notebook 00_core tests these too, cell by cell)."""
import json
from dataclasses import dataclass
from typing import ClassVar
import pytest, torch
from attractor_nb.core import (ExpConfig, set_seed, get_device, save_results, load_results, summarise, results_dir,
                               register_experiment, run_experiment, get_experiment, EXPERIMENTS)

@dataclass
class Cfg(ExpConfig):
    epochs:int = 100
    width:float = 1.0
    SCALES: ClassVar[dict] = {'paper': {}, 'quick': dict(epochs=2)}

def test_scales_and_overrides():
    assert Cfg.at_scale('quick').epochs == 2 and Cfg.at_scale('paper').epochs == 100
    with pytest.raises(ValueError, match='scale'): Cfg.at_scale('medium')
    with pytest.raises(ValueError, match="did you mean 'epochs'"): Cfg().replace(epoch=3)

def test_same_seed_same_cpu_training():
    def train(seed):
        set_seed(seed)
        m = torch.nn.Sequential(torch.nn.Linear(4, 8), torch.nn.Tanh(), torch.nn.Linear(8, 1))
        opt = torch.optim.Adam(m.parameters(), 1e-2)
        x = torch.randn(32, 4)
        for _ in range(20):
            loss = m(x).pow(2).mean(); opt.zero_grad(); loss.backward(); opt.step()
        return torch.cat([p.flatten() for p in m.parameters()])
    assert torch.equal(train(5), train(5))
    assert not torch.equal(train(5), train(6))

def test_device():
    assert get_device('cpu') == torch.device('cpu')
    with pytest.raises(ValueError, match='device'): get_device('quantum')

def test_results_roundtrip(tmp_path):
    for s in range(3): save_results(f'x-s{s}', metrics=dict(err=0.1*s), config=Cfg(seed=s), experiment='x', out=tmp_path)
    recs = load_results('x-*', out=tmp_path)
    assert [r['seed'] for r in recs] == [0, 1, 2]
    t = summarise(recs, 'err', by=['experiment'])
    assert t['n'].item() == 3 and abs(t['mean'].item() - 0.1) < 1e-12
    (tmp_path/'x-bad.json').write_text('{')
    with pytest.raises(ValueError, match='x-bad.json'): load_results('x-*', out=tmp_path)

def test_quick_results_never_land_in_paper_folder(monkeypatch, tmp_path):
    monkeypatch.setenv('ATTRACTOR_NB_RESULTS', str(tmp_path))
    assert results_dir('quick') == tmp_path/'quick' and results_dir('paper') == tmp_path

def test_run_experiment_seeds_and_saves(tmp_path):
    register_experiment('t-exp', Cfg, lambda cfg, ctx: dict(metrics=dict(v=torch.rand(1).item()), data='noise'))
    try:
        a = run_experiment('t-exp', seed=1, out=tmp_path, device='cpu')
        b = run_experiment('t-exp', seed=1, out=tmp_path, device='cpu')
        c = run_experiment('t-exp', seed=2, out=tmp_path, device='cpu')
        assert a['metrics'] == b['metrics'] != c['metrics']
        rec = json.loads((tmp_path/'t-exp-s1.json').read_text())
        assert rec['data'] == 'noise' and rec['experiment'] == 't-exp' and rec['config']['epochs'] == 2
    finally: del EXPERIMENTS['t-exp']
    with pytest.raises(KeyError, match='unknown experiment'): get_experiment('t-exp')


def test_results_record_the_revision_the_run_started_from(tmp_path, monkeypatch):
    "A long run must not claim the commit the checkout moved to while it trained"
    import attractor_nb.core as core
    revs = iter([dict(revision='a'*40, dirty=False), dict(revision='b'*40, dirty=True)])
    monkeypatch.setattr(core, 'git_revision', lambda path=None: next(revs))
    register_experiment('test-git-rev', Cfg, lambda cfg, ctx: dict(metrics=dict(x=1.0)))
    try: rec = run_experiment('test-git-rev', scale='quick', out=tmp_path, progress=False)
    finally: EXPERIMENTS.pop('test-git-rev', None)
    saved = json.loads(rec['path'].read_text())
    assert saved['git'] == dict(revision='a'*40, dirty=False)
