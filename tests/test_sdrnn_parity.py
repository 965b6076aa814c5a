"Tests of `attractor_nb.experiments.sdrnn_parity`: config and naming, a tiny run of the three models, the measures"
import json, math, warnings

import pytest
import torch

warnings.filterwarnings('ignore', message='.*torch.jit.script.*is deprecated')

from attractor_nb.core import get_experiment, run_experiment
from attractor_nb.tasks import parity
from attractor_nb.experiments.sdrnn_parity import (MODELS, SDRNNParityConfig, BestTrainAccuracy, result_name, mean_sem,
                                                   hidden_entropy, replication_errors, train_parity_model)
from attractor_nb.sdrnn import SDRNNClassifier


@pytest.fixture(autouse=True, scope='module')
def one_thread():
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)


def test_config_defaults_and_scales():
    p = SDRNNParityConfig.at_scale('paper')
    assert (p.hidden, p.attractor, p.sigma, p.iters, p.replications) == (10, 20, 0.5, 15, 100)
    assert (p.epochs, p.lr, p.n_train, p.n_noisy, p.noise, p.task_trains_attractor) == (5000, 0.008, 256, 3, 0.1, False)
    q = SDRNNParityConfig.at_scale('quick')
    assert q.replications <= 10 and q.epochs < p.epochs
    assert q.models == MODELS and q.replace(model='sdrnn').models == ('sdrnn',)
    with pytest.raises(ValueError, match="cell='lstm'"): SDRNNParityConfig(cell='lstm')
    with pytest.raises(ValueError, match='model'): SDRNNParityConfig(model='lstm')
    assert q.coerce('cell', 'gru') == 'gru'


def test_result_names():
    assert result_name(SDRNNParityConfig(cell='gru')) == 'sdrnn-parity-gru'
    assert result_name(SDRNNParityConfig(cell='tanh', seed=2)) == 'sdrnn-parity-tanh-s2'
    assert result_name(SDRNNParityConfig(model='sdrnn')) == 'sdrnn-parity-sdrnn-tanh-s0'  # paper_numbers.yml's runs
    assert result_name(SDRNNParityConfig(model='rnn', cell='gru', seed=1)) == 'sdrnn-parity-rnn-gru-s1'
    exp = get_experiment('sdrnn-parity')
    assert exp.scales == ['paper', 'quick'] and exp.name_for(SDRNNParityConfig(cell='gru')) == 'sdrnn-parity-gru'


def test_mean_sem():
    v = torch.tensor([0.1, 0.3, 0.2, 0.6])
    m, s = mean_sem(v)
    assert m == pytest.approx(0.3)
    assert s == pytest.approx(math.sqrt(((v - 0.3)**2).sum().item()/3)/2)
    assert math.isnan(mean_sem([0.2])[1])


def test_measures_shapes():
    m = SDRNNClassifier(1, 10, 20, 1, replications=3, seed=0)
    x = torch.randint(0, 2, (32, 10, 1)).float()
    y = x.sum((1, 2)) % 2
    err = replication_errors(m, x, y)
    assert err.shape == (3,) and ((err >= 0) & (err <= 1)).all()
    pred = (m(x)[..., 0] > 0).float()
    assert torch.allclose(err, (pred != y).float().mean(-1))
    e = hidden_entropy(m, x)
    assert e.shape == (3,) and (e >= 0).all() and (e <= math.log2(32*10) + 1e-5).all()
    # a constant state has zero entropy
    m0 = SDRNNClassifier(1, 10, 20, 1, replications=1, seed=0, attractor=False)
    with torch.no_grad():
        for p in m0.rnn.parameters(): p.zero_()
    assert hidden_entropy(m0, x).item() == pytest.approx(0.)


def test_best_weights_kept(tmp_path):
    "The weights loaded for testing are those of the epoch of highest training accuracy, per replication"
    task = parity(n_train=64, n_test=32, seed=0)
    cfg = SDRNNParityConfig.at_scale('quick', model='rnn', replications=2, epochs=6, lr=0.05)
    model, learn = train_parity_model('rnn', task, cfg)
    best = next(cb for cb in learn.cbs if isinstance(cb, BestTrainAccuracy))
    acc = 1 - replication_errors(model, task.train.x, task.train.y)
    assert torch.allclose(acc, best.best_acc)
    per_epoch = torch.tensor([r['train_accuracy'] for r in learn.history])
    assert best.best_acc.mean() >= per_epoch.max() - 1e-6


def test_tiny_run(tmp_path):
    rec = run_experiment('sdrnn-parity', scale='quick', seed=0, out=tmp_path, device='cpu', progress=False,
                         replications=2, epochs=2)
    assert rec['path'] == tmp_path/'sdrnn-parity-tanh.json'
    saved = json.loads(rec['path'].read_text())
    assert set(saved['metrics']) == set(MODELS)
    assert (tmp_path/saved['figures'][0]).exists()
    assert {r['model'] for r in saved['history']} == set(MODELS) and len(saved['history']) == 3*2
    for name in MODELS:
        reps, met = saved['replications'][name], saved['metrics'][name]
        for k in ('novel_error', 'noisy_error', 'hidden_entropy', 'train_accuracy', 'best_epoch'):
            assert len(reps[k]) == 2, (name, k)
        for k in ('novel_error', 'noisy_error', 'hidden_entropy'):
            assert math.isfinite(met[k]) and math.isfinite(met[f'{k}_sem'])
            m, s = mean_sem(torch.tensor(reps[k]))
            assert met[k] == pytest.approx(m) and met[f'{k}_sem'] == pytest.approx(s)
        assert 0 <= met['novel_error'] <= 1 and 0 <= met['solved'] <= 1
    assert saved['config']['replications'] == 2 and saved['scale'] == 'quick'


def test_single_model_run_and_checkpoints(tmp_path):
    rec = run_experiment('sdrnn-parity', scale='quick', seed=1, out=tmp_path, device='cpu', progress=False,
                         checkpoints=tmp_path/'ck', model='sdrnn', cell='gru', replications=2, epochs=2)
    assert rec['path'].name == 'sdrnn-parity-sdrnn-gru-s1.json'
    assert set(rec['metrics']) >= {'sdrnn', 'hidden_entropy', 'novel_error'}  # flat copies for the docs' results page
    assert (tmp_path/'ck'/'sdrnn-parity-sdrnn-gru-s1'/'sdrnn'/'last.pth').exists()
    again = run_experiment('sdrnn-parity', scale='quick', seed=1, out=tmp_path, device='cpu', progress=False, resume=True,
                           checkpoints=tmp_path/'ck', model='sdrnn', cell='gru', replications=2, epochs=2)
    assert again['metrics']['novel_error'] == pytest.approx(rec['metrics']['novel_error'])


def test_stops_when_all_solved_and_resumes(tmp_path):
    "Appendix B.1: training ends once every replication is at 100% training accuracy; a resumed run gives the same result"
    kw = dict(scale='quick', out=tmp_path, device='cpu', progress=False, model='rnn', cell='gru', bits=3, n_train=4, lr=0.05,
              epochs=200, replications=3, checkpoints=tmp_path/'ck')
    rec = run_experiment('sdrnn-parity', **kw)
    assert rec['metrics']['solved'] == 1 and len(rec['history']) < 200
    assert rec['history'][-1]['solved'] == 3
    assert max(rec['replications']['rnn']['best_epoch']) == len(rec['history']) - 1
    again = run_experiment('sdrnn-parity', resume=True, **kw)
    assert len(again['history']) == len(rec['history'])
    assert again['replications'] == rec['replications']


def _train(compact, ckpt=None, resume=False, kill_at=None, cell='tanh', model='sdrnn'):
    from fastai.callback.core import Callback
    task = parity(bits=3, n_train=6, n_noisy=1, seed=0)
    cfg = SDRNNParityConfig.at_scale('quick', model=model, cell=cell, bits=3, n_train=6, n_noisy=1, replications=6,
                                     epochs=60, lr=0.05, iters=3)
    import attractor_nb.experiments.sdrnn_parity as sp
    orig = sp.BestTrainAccuracy
    class BTA(orig):
        def __init__(self, *a, **k): super().__init__(*a, compact=compact, **k)
        def after_epoch(self):
            super().after_epoch()
            self.sizes = getattr(self, 'sizes', []) + [self.learn.model.replications]
            if kill_at is not None and self.epoch == kill_at: raise RuntimeError('killed')
    sp.BestTrainAccuracy = BTA
    try:
        from attractor_nb.core import RunContext
        ctx = None if ckpt is None else RunContext(ckpt_dir=ckpt, resume=resume)
        model_, learn = train_parity_model(model, task, cfg, ctx)
    finally: sp.BestTrainAccuracy = orig
    best = next(cb for cb in learn.cbs if isinstance(cb, BTA))
    return model_, learn, best, task


@pytest.mark.parametrize('cell', ['tanh', 'gru'])
def test_dropping_stopped_replications_changes_nothing(cell):
    "compact=True drops replications as they reach 100% and puts them back at the end: same weights, epochs and accuracies"
    m0, l0, b0, task = _train(False, cell=cell)
    m1, l1, b1, _ = _train(True, cell=cell)
    assert b0.sizes[0] == 6 and min(b1.sizes) < 6, b1.sizes  # replications were dropped during the fit...
    assert 0 < int(b1.solved.sum()) and m1.replications == 6  # ...and are all back after it
    assert torch.equal(b0.best_epoch, b1.best_epoch) and torch.equal(b0.best_acc, b1.best_acc)
    for (n, p), q in zip(m0.named_parameters(), m1.parameters()): torch.testing.assert_close(p, q, atol=1e-5, rtol=1e-4, msg=n)
    assert [h['train_accuracy'] for h in l0.history] == pytest.approx([h['train_accuracy'] for h in l1.history])
    d0 = [h['denoise_loss'] for h in l0.history]
    d1 = [h['denoise_loss'] for h in l1.history]
    assert len(d0) == len(d1) and d0[0] == pytest.approx(d1[0])  # later epochs average over fewer replications
    tr = l1.sdrnn_trainer.denoise_log[-1]['denoise_loss_per_replication']
    assert sum(math.isnan(v) for v in tr) == 6 - min(b1.sizes)


def test_dropped_replications_resume(tmp_path):
    "A compacting run killed after some replications were dropped resumes to the uninterrupted result"
    m0, l0, b0, _ = _train(True, ckpt=tmp_path/'a', cell='gru')
    kill = next(i for i, s in enumerate(b0.sizes) if s < 6) + 2
    assert kill < len(b0.sizes) - 1
    with pytest.raises(RuntimeError, match='killed'): _train(True, ckpt=tmp_path/'b', kill_at=kill, cell='gru')
    from attractor_nb.train import last_checkpoint
    ck = last_checkpoint(tmp_path/'b'/'sdrnn')
    assert ck['callbacks']['BTA']['active'] is not None and ck['model']['weight'].shape[0] == 6  # full-size model state
    m1, l1, b1, _ = _train(True, ckpt=tmp_path/'b', resume=True, cell='gru')
    assert torch.equal(b0.best_epoch, b1.best_epoch)
    for p, q in zip(m0.parameters(), m1.parameters()): torch.testing.assert_close(p, q, atol=1e-5, rtol=1e-4)
    done = _train(True, ckpt=tmp_path/'a', resume=True, cell='gru')[0]  # a finished run: loaded, not retrained, at full size
    for p, q in zip(m0.parameters(), done.parameters()): torch.testing.assert_close(p, q)
