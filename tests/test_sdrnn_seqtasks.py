"Tests of the SDRNN majority, Reber and symmetry experiments: configs, names, bad arguments, tiny end-to-end runs"
import json, math, warnings

import pytest
import torch

warnings.filterwarnings('ignore', message='.*torch.jit.script.*is deprecated')

from attractor_nb.core import get_experiment, run_experiment
from attractor_nb.tasks import majority
from attractor_nb.experiments.sdrnn_parity import MODELS, mean_sem, replication_errors
from attractor_nb.experiments.sdrnn_majority import (SDRNNMajorityConfig, SeqTaskConfig, train_replicated_task, split_errors,
                                                     error_reduction, run_sweep, seqtask_result_name)
from attractor_nb.experiments import sdrnn_majority, sdrnn_reber, sdrnn_symmetry
from attractor_nb.experiments.sdrnn_reber import SDRNNReberConfig
from attractor_nb.experiments.sdrnn_symmetry import SDRNNSymmetryConfig

pytestmark = pytest.mark.usefixtures('one_thread')


def test_paper_values():
    m = SDRNNMajorityConfig.at_scale('paper')
    assert (m.hidden, m.attractor, m.sigma, m.iters, m.replications, m.epochs) == (10, 20, 0.25, 5, 100, 2500)
    assert (m.n_train, m.n_noisy, m.noise, m.cell, m.task_trains_attractor, m.denoise_start) == (100, 3, 0.1, 'tanh', True, 0)
    r = SDRNNReberConfig.at_scale('paper')
    assert (r.hidden, r.attractor, r.sigma, r.iters, r.replications, r.epochs) == (20, 40, 0.25, 5, 100, 2500)
    assert (r.n_test, r.max_len, r.pad, r.denoise_start) == (2000, 20, 'left', 100)
    s = SDRNNSymmetryConfig.at_scale('paper')
    assert (s.n_train, s.n_test, s.half, s.n_symbols, s.iters, s.epochs) == (5000, 2000, 5, 8, 5, 2500)
    assert (s.learning_rate, s.replace(filler=10).learning_rate) == (0.003, 0.002)  # Appendix B.4
    assert SDRNNMajorityConfig.SWEEP == ('length', {'paper': (11, 17, 23, 29, 35), 'quick': (11, 23, 35)})
    assert SDRNNReberConfig.SWEEP[1]['paper'] == (50, 100, 200, 400, 800)
    assert SDRNNSymmetryConfig.SWEEP[1]['paper'] == (1, 10)


@pytest.mark.parametrize('cls', [SDRNNMajorityConfig, SDRNNReberConfig, SDRNNSymmetryConfig])
def test_quick_scales(cls):
    p, q = cls.at_scale('paper'), cls.at_scale('quick')
    assert 1 < q.replications <= 5 and q.epochs <= 100 < p.epochs
    assert q.models == MODELS and q.replace(model='sdrnn').models == ('sdrnn',)
    field, values = cls.SWEEP
    assert set(values['quick']) <= set(values['paper'])
    assert get_experiment({SDRNNMajorityConfig: 'sdrnn-majority', SDRNNReberConfig: 'sdrnn-reber',
                           SDRNNSymmetryConfig: 'sdrnn-symmetry'}[cls]).config is cls


def test_result_names():
    assert get_experiment('sdrnn-majority').name_for(SDRNNMajorityConfig(length=35)) == 'sdrnn-majority-L35'
    assert get_experiment('sdrnn-reber').name_for(SDRNNReberConfig(n_train=800)) == 'sdrnn-reber-N800'
    assert get_experiment('sdrnn-symmetry').name_for(SDRNNSymmetryConfig(filler=10)) == 'sdrnn-symmetry-f10'
    assert sdrnn_majority.result_name(SDRNNMajorityConfig(seed=2, model='rnn+a')) == 'sdrnn-majority-L11-rnna-s2'
    assert sdrnn_symmetry.result_name(SDRNNSymmetryConfig(cell='gru')) == 'sdrnn-symmetry-f1-gru'
    assert seqtask_result_name('x', SeqTaskConfig(seed=0)) == 'x'


@pytest.mark.parametrize('cls,kw,needle', [
    (SDRNNMajorityConfig, dict(length=12), 'length=12'),
    (SDRNNMajorityConfig, dict(cell='lstm'), "cell='lstm'"),
    (SDRNNMajorityConfig, dict(model='gru'), "model='gru'"),
    (SDRNNMajorityConfig, dict(replications=0), 'replications=0'),
    (SDRNNMajorityConfig, dict(sigma=-0.5), 'sigma=-0.5'),
    (SDRNNMajorityConfig, dict(batch_size=0), 'batch_size=0'),
    (SDRNNReberConfig, dict(n_train=51), 'n_train=51'),
    (SDRNNReberConfig, dict(pad='middle'), "pad='middle'"),
    (SDRNNReberConfig, dict(lr=0.), 'lr=0.0'),
    (SDRNNReberConfig, dict(denoise_start=-1), 'denoise_start=-1'),
    (SDRNNSymmetryConfig, dict(filler=-2), 'filler=-2'),
    (SDRNNSymmetryConfig, dict(half=1), 'half=1'),
    (SDRNNSymmetryConfig, dict(n_test=3), 'n_test=3'),
    (SDRNNSymmetryConfig, dict(iters=0), 'iters=0'),
])
def test_bad_arguments(cls, kw, needle):
    with pytest.raises(ValueError, match=needle.replace('(', r'\(').replace('.', r'\.')): cls(**kw)


def test_bad_sweep_and_model_arguments(tmp_path):
    with pytest.raises(ValueError, match='length=11'): run_sweep('sdrnn-majority', length=11, out=tmp_path)
    with pytest.raises(ValueError, match="scale='huge'"): run_sweep('sdrnn-majority', scale='huge', out=tmp_path)
    with pytest.raises(ValueError, match="no SWEEP"): run_sweep('sdrnn-parity', out=tmp_path)
    task = majority(5, n_train=8, n_test=8, seed=0)
    with pytest.raises(ValueError, match="name='lstm'"): train_replicated_task('lstm', task, SDRNNMajorityConfig(length=5))


def test_split_errors_and_reduction():
    task = majority(7, n_train=16, n_test=40, seed=0)
    cfg = SDRNNMajorityConfig.at_scale('quick', length=7, n_train=16, replications=2, epochs=2)
    model, learn, best = train_replicated_task('sdrnn', task, cfg)
    novel = task.tests['novel']
    assert torch.allclose(split_errors(model, novel, bs=7), replication_errors(model, novel.x, novel.y), atol=1e-6)
    assert torch.allclose(1 - split_errors(model, task.train), best.best_acc, atol=1e-6)
    red = error_reduction({'rnn': {'e_error': 0.5}, 'rnn+a': {'e_error': 0.}, 'sdrnn': {'e_error': 0.15}})
    assert red['e_error']['rnn'] == pytest.approx(0.7) and math.isnan(red['e_error']['rnn+a'])


def _check_run(rec, stem, splits, R):
    assert rec['path'].name == f'{stem}.json'
    saved = json.loads(rec['path'].read_text())
    assert set(saved['metrics']) == set(MODELS) | {'reduction'}
    assert {r['model'] for r in saved['history']} == set(MODELS)
    assert (rec['path'].parent/saved['figures'][0]).exists()
    for name in MODELS:
        met, reps = saved['metrics'][name], saved['replications'][name]
        assert {'train_accuracy', 'solved', 'best_epoch'} <= set(met)
        for s in splits:
            k = f'{s}_error'
            assert len(reps[k]) == R and all(0 <= e <= 1 for e in reps[k])
            assert 0 <= met[k] <= 1 and math.isfinite(met[f'{k}_sem'])
            m, sem = mean_sem(torch.tensor(reps[k]))
            assert met[k] == pytest.approx(m) and met[f'{k}_sem'] == pytest.approx(sem)
    return saved


def test_tiny_majority(tmp_path):
    rec = run_experiment('sdrnn-majority', scale='quick', out=tmp_path, device='cpu', progress=False,
                         length=7, n_train=32, replications=2, epochs=2)
    saved = _check_run(rec, 'sdrnn-majority-L7', ('novel', 'noisy'), 2)
    assert saved['config']['length'] == 7 and saved['scale'] == 'quick'


def test_tiny_reber_delayed_denoising(tmp_path):
    rec = run_experiment('sdrnn-reber', scale='quick', out=tmp_path, device='cpu', progress=False,
                         n_train=20, n_test=40, replications=2, epochs=3, denoise_start=2, hidden=4, attractor=8)
    _check_run(rec, 'sdrnn-reber-N20', ('test',), 2)
    sd = [r for r in rec['history'] if r['model'] == 'sdrnn']
    assert ['denoise_loss' in r for r in sd] == [False, False, True]  # Appendix B.3: L_denoise starts late


def test_tiny_symmetry_sweep(tmp_path):
    recs = run_sweep('sdrnn-symmetry', scale='quick', out=tmp_path, device='cpu', progress=False,
                     n_train=16, n_test=16, replications=2, epochs=1, hidden=4, attractor=8)
    assert list(recs) == [1, 10]
    for f, rec in recs.items():
        _check_run(rec, f'sdrnn-symmetry-f{f}', ('test',), 2)
        assert rec['config'].learning_rate == {1: 0.003, 10: 0.002}[f]


def test_single_model_and_resume(tmp_path):
    kw = dict(scale='quick', out=tmp_path, device='cpu', progress=False, checkpoints=tmp_path/'ck', model='sdrnn',
              length=5, n_train=16, replications=2, epochs=2)
    rec = run_experiment('sdrnn-majority', **kw)
    assert rec['path'].name == 'sdrnn-majority-L5-sdrnn.json'
    assert set(rec['metrics']) >= {'sdrnn', 'novel_error', 'noisy_error'} and 'reduction' not in rec['metrics']
    assert (tmp_path/'ck'/'sdrnn-majority-L5-sdrnn'/'sdrnn'/'last.pth').exists()
    again = run_experiment('sdrnn-majority', resume=True, **kw)
    assert again['replications'] == rec['replications']


def test_models_side_by_side(tmp_path):
    "runs/paused/README: single-model runs whose checkpoint folders link to the run's own, then the run resumed, give one run's results"
    kw = dict(scale='quick', device='cpu', progress=False, length=5, n_train=16, replications=2, epochs=2)
    whole = run_experiment('sdrnn-majority', out=tmp_path/'whole', **kw)
    ck = tmp_path/'ck'; (ck/'sdrnn-majority-L5').mkdir(parents=True)
    for m in ('rnn', 'rnn+a', 'sdrnn'):
        (ck/f"sdrnn-majority-L5-{m.replace('+', '')}").symlink_to(ck/'sdrnn-majority-L5', target_is_directory=True)
        run_experiment('sdrnn-majority', out=tmp_path/'parts', checkpoints=ck, resume=True, model=m, **kw)
    assert sorted(p.name for p in (ck/'sdrnn-majority-L5').iterdir() if p.is_dir()) == ['rnn', 'rnna', 'sdrnn']
    rec = run_experiment('sdrnn-majority', out=tmp_path/'joined', checkpoints=ck, resume=True, **kw)
    assert rec['replications'] == whole['replications'] and rec['metrics'] == whole['metrics']
    assert [s['ended'] for s in rec['segments']] == ['finished'] * 4  # three single-model pieces and the evaluation
    assert {r['model'] for r in rec['history']} == {'rnn', 'rnn+a', 'sdrnn'}
