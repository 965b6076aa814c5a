"Tests of `attractor_nb.experiments.attractor_capacity`: the registered Figure 2 sweep, its naming and resumable loop"
import json

from attractor_nb.core import get_experiment, run_experiment, load_results
from attractor_nb.attractor_net import AttractorCapacityConfig
from attractor_nb.experiments.attractor_capacity import conditions, condition_key


def test_registered_with_paper_grid():
    e = get_experiment('attractor-capacity')
    p = e.config.at_scale('paper')
    assert (p.m, p.test_sigma, p.kappa, p.replications) == (50, 0.25, 50, 10)
    assert len(conditions(p)) == 120 and e.name_for(p.replace(seed=3)) == 'attractor-capacity-s3'
    # a run on part of the grid is named for it, so that it cannot overwrite the results of another part
    assert e.name_for(p.replace(train_sigmas=(0.125,), n_units=(100,))) == 'attractor-capacity-s0-sigma0.125-n100'


def test_tiny_run_writes_results(tmp_path, one_thread):
    rec = run_experiment('attractor-capacity', scale='quick', out=tmp_path, progress=False,
                         n_attractors=(10, 120), replications=2)
    m = rec['metrics']
    assert set(m['pct_removed']) == {condition_key(0.25, 100, 10), condition_key(0.25, 100, 120)}
    assert all(v is not None and v > 0 for v in m['pct_removed_sem'].values())  # two replications: a real SEM
    assert m['pct_removed']['s0.25-n100-A10'] > m['pct_removed']['s0.25-n100-A120']  # fewer points, more noise removed
    saved = load_results('attractor-capacity-s0', out=tmp_path)[0]
    assert saved['metrics']['pct_removed'] == m['pct_removed'] and (tmp_path/saved['figures'][0]).exists()


def test_resume_skips_finished_conditions(tmp_path, one_thread):
    kw = dict(scale='quick', out=tmp_path, progress=False, n_attractors=(5,), epochs=2, replications=1, checkpoints=tmp_path/'ck')
    a = run_experiment('attractor-capacity', **kw)
    ck = list(tmp_path.rglob('conditions.json'))
    assert len(ck) == 1 and [d['key'] for d in json.loads(ck[0].read_text())] == ['s0.25-n100-A5']
    # tamper with the stored value: a resumed run must take it from the checkpoint, not retrain
    d = json.loads(ck[0].read_text()); d[0]['mean'] = 12.5; ck[0].write_text(json.dumps(d))
    b = run_experiment('attractor-capacity', resume=True, **kw)
    assert b['metrics']['pct_removed']['s0.25-n100-A5'] == 12.5 != a['metrics']['pct_removed']['s0.25-n100-A5']


def test_paused_condition_resumes_to_the_same_result(tmp_path, one_thread):
    "`stop_after` pauses inside a condition (after its first epoch); `resume` ends where an uninterrupted run ends"
    import pytest, torch
    from attractor_nb.core import RunPaused
    kw = dict(scale='quick', progress=False, n_attractors=(8,), epochs=3, replications=2)
    whole = run_experiment('attractor-capacity', out=tmp_path/'a', **kw)
    with pytest.raises(RunPaused, match='epoch 1 of 3'):
        run_experiment('attractor-capacity', out=tmp_path/'b', checkpoints=tmp_path/'ck', stop_after=1e-9, **kw)
    cond = next(tmp_path.joinpath('ck').rglob('s0.25-n100-A8'))
    st = torch.load(cond/'last.pth', weights_only=False)
    assert st['epoch'] == 0 and len(st['history']) == 1
    st['history'][0]['seconds'] = 1000.  # a mark: the resumed run must take epoch 0 from the checkpoint, not retrain it
    torch.save(st, cond/'last.pth')
    resumed = run_experiment('attractor-capacity', out=tmp_path/'b', checkpoints=tmp_path/'ck', resume=True, **kw)
    key = 's0.25-n100-A8'
    assert resumed['metrics']['pct_removed'][key] == pytest.approx(whole['metrics']['pct_removed'][key], abs=1e-5)
    assert not cond.exists()
    rec = resumed['conditions'][0]
    assert 1000 < rec['seconds'] < 1100 and len(rec['pct_removed']) == 2  # the first piece's time counts too


def test_one_replication_reruns_alone(tmp_path, one_thread):
    "`replications=1, first_replication=r` retrains replication r of a condition by itself, under its own name"
    import pytest
    kw = dict(scale='quick', out=tmp_path, progress=False, n_attractors=(8,), epochs=2)
    both = run_experiment('attractor-capacity', replications=2, **kw)['conditions'][0]['pct_removed']
    alone = run_experiment('attractor-capacity', replications=1, first_replication=1, **kw)
    assert alone['conditions'][0]['pct_removed'] == [pytest.approx(both[1], abs=1e-3)]
    assert load_results('attractor-capacity-s0-rep1', out=tmp_path)  # the whole-condition results stay untouched
