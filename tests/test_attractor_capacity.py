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
