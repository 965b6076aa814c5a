"Tests of `attractor_nb.sdrnn`: the SDRNN layer, its read-out, the denoising trainer and replicated models"
import random, warnings

import pytest
import torch
from torch import nn
from torch.nn.utils.rnn import pack_padded_sequence, pad_packed_sequence

warnings.filterwarnings('ignore', message='.*torch.jit.script.*is deprecated')
from fastai.callback.core import Callback

from attractor_nb.core import RunContext, set_seed
from attractor_nb.train import tensor_dls, make_learner, fit_run, last_checkpoint
from attractor_nb.sdrnn import (SDRNN, SDRNNClassifier, SDRNNTrainer, ReplicatedAdam, replicated_loss, replicated_metric,
                                sdrnn_modules, _set_slice)


pytestmark = pytest.mark.usefixtures('one_thread')  # conftest: small matrices run faster on one thread


def copy_from_torch(sd, ref):
    for d, sfx in enumerate(['', '_reverse'][:sd.num_directions]):
        _set_slice(sd.cells[d], 0, {k: getattr(ref, f'{k}_l0{sfx}') for k in ('weight_ih', 'weight_hh', 'bias_ih', 'bias_hh')})


# ---------------------------------------------------------------- the layer
@pytest.mark.parametrize('cell', ['tanh', 'gru'])
@pytest.mark.parametrize('bidirectional', [False, True])
def test_shapes(cell, bidirectional):
    D = 2 if bidirectional else 1
    m = SDRNN(3, 5, 10, cell=cell, bidirectional=bidirectional, seed=0)
    out, h = m(torch.randn(4, 7, 3))
    assert out.shape == (4, 7, D*5) and h.shape == (D, 4, 5)
    out2, _ = SDRNN(3, 5, 10, cell=cell, bidirectional=bidirectional, batch_first=False, seed=0)(torch.randn(7, 4, 3))
    assert out2.shape == (7, 4, D*5)
    rep = SDRNN(3, 5, 10, cell=cell, bidirectional=bidirectional, replications=2, seed=0)
    o, h = rep(torch.randn(4, 7, 3))
    assert o.shape == (2, 4, 7, D*5) and h.shape == (2, D, 4, 5)
    o, h = rep(torch.randn(2, 4, 7, 3), hx=torch.zeros(2, D, 4, 5))  # data per replication
    assert o.shape == (2, 4, 7, D*5)
    for att in m.attractors:
        assert att.W.shape == (10, 10) and torch.equal(att.W.detach(), att.W.detach().T)


@pytest.mark.parametrize('kind', ['gru', 'tanh'])
def test_without_attractor_equals_torch(kind):
    torch.manual_seed(0)
    ref = (nn.GRU if kind == 'gru' else nn.RNN)(3, 6, batch_first=True, bidirectional=True)
    sd = SDRNN(3, 6, 12, cell=kind, bidirectional=True, attractor=False)
    copy_from_torch(sd, ref)
    x, h0, lengths = torch.randn(5, 8, 3), torch.randn(2, 5, 6).tanh(), torch.tensor([8, 2, 5, 1, 7])
    for a, b in zip(sd(x, h0), ref(x, h0)): torch.testing.assert_close(a, b, atol=1e-5, rtol=1e-5)
    pk = pack_padded_sequence(x, lengths, batch_first=True, enforce_sorted=False)
    (po, ph), (ro, rh) = sd(pk, h0), ref(pk, h0)
    torch.testing.assert_close(po.data, ro.data, atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(ph, rh, atol=1e-5, rtol=1e-5)
    assert torch.equal(po.batch_sizes, ro.batch_sizes) and torch.equal(po.sorted_indices, ro.sorted_indices)


@pytest.mark.parametrize('cell', ['tanh', 'gru'])
def test_packed_and_padded_agree_on_valid_steps(cell):
    sd = SDRNN(3, 6, 12, cell=cell, bidirectional=True, seed=2)
    x, lengths = torch.randn(4, 7, 3), torch.tensor([7, 3, 5, 1])
    o_pad, h_pad = sd(x, lengths=lengths)
    o_pk, h_pk = sd(pack_padded_sequence(x, lengths, batch_first=True, enforce_sorted=False))
    o_unpk, l = pad_packed_sequence(o_pk, batch_first=True, total_length=7)
    torch.testing.assert_close(o_unpk, o_pad, atol=1e-6, rtol=1e-6)
    torch.testing.assert_close(h_pk, h_pad, atol=1e-6, rtol=1e-6)
    assert (o_pad[1, 3:] == 0).all()
    for i, L in enumerate(lengths.tolist()):  # each sequence alone, unpadded
        o_i, h_i = sd(x[i:i+1, :L])
        torch.testing.assert_close(o_pad[i:i+1, :L], o_i, atol=1e-5, rtol=1e-5)
        torch.testing.assert_close(h_pad[:, i:i+1], h_i, atol=1e-5, rtol=1e-5)
    # padded with lengths == padded without them when nothing is padded
    torch.testing.assert_close(sd(x, lengths=[7]*4)[0], sd(x)[0])


def test_no_nan_with_saturated_gru_states():
    sd = SDRNN(2, 4, 8, cell='gru', seed=0)
    with torch.no_grad():
        for p in sd.cells[0].parameters(): p.fill_(30.)  # drives every state to +-1 exactly in float32
    x = torch.ones(3, 6, 2, requires_grad=True)
    out, h = sd(x)
    out.sum().backward()
    assert torch.isfinite(out).all() and torch.isfinite(x.grad).all()
    assert all(torch.isfinite(p.grad).all() for p in sd.parameters())


def test_errors_name_the_argument():
    for kw, name in [(dict(input_size=0), 'input_size'), (dict(hidden_size=-1), 'hidden_size'),
                     (dict(attractor_size=0), 'attractor_size'), (dict(cell='lstm'), "cell='lstm'"),
                     (dict(sigma=-0.5), 'sigma'), (dict(iters=0), 'iters'), (dict(replications=0), 'replications')]:
        with pytest.raises(ValueError, match=name): SDRNN(**{**dict(input_size=1, hidden_size=4, attractor_size=8), **kw})
    sd = SDRNN(2, 4, 8, seed=0)
    with pytest.raises(ValueError, match='input_size=2'): sd(torch.randn(3, 5, 4))
    with pytest.raises(ValueError, match='lengths'): sd(torch.randn(3, 5, 2), lengths=[6, 1, 1])
    with pytest.raises(ValueError, match='hx'): sd(torch.randn(3, 5, 2), hx=torch.zeros(2, 3, 4))
    rep = SDRNN(2, 4, 8, replications=2, seed=0)
    with pytest.raises(ValueError, match='PackedSequence'): rep(pack_padded_sequence(torch.randn(3, 5, 2), [5, 2, 1], batch_first=True))
    with pytest.raises(ValueError, match='out_size'): SDRNNClassifier(2, 4, 8, 0)
    with pytest.raises(ValueError, match='max_steps'): SDRNNTrainer(max_steps=0)
    with pytest.raises(ValueError, match='reduction'): SDRNNTrainer(reduction='sum')


def test_classifier_shapes_and_packed_input():
    clf = SDRNNClassifier(3, 5, 10, 4, bidirectional=True, cell='gru', seed=0)
    x, lengths = torch.randn(6, 7, 3), torch.tensor([7, 1, 3, 7, 2, 5])
    y = clf(x, lengths)
    assert y.shape == (6, 4)
    torch.testing.assert_close(clf(pack_padded_sequence(x, lengths, batch_first=True, enforce_sorted=False)), y)
    assert SDRNNClassifier(3, 5, 10, 4, per_step=True, seed=0)(x).shape == (6, 7, 4)
    assert SDRNNClassifier(3, 5, 10, 4, replications=3, seed=0)(x).shape == (3, 6, 4)


# ---------------------------------------------------------------- the optimiser
def test_replicated_adam_is_adam_and_respects_active():
    torch.manual_seed(0)
    p1 = nn.Parameter(torch.randn(3, 4)); p2 = nn.Parameter(p1.detach().clone())
    o1, o2 = ReplicatedAdam([p1], lr=0.1), torch.optim.Adam([p2], lr=0.1)
    for _ in range(6):
        g = torch.randn(3, 4)
        o1.step([g]); p2.grad = g; o2.step()
    torch.testing.assert_close(p1, p2, atol=1e-6, rtol=1e-6)
    pr = nn.Parameter(torch.randn(2, 3)); before = pr.detach().clone()
    opt = ReplicatedAdam([pr], lr=0.1, replicated=True)
    opt.step([torch.ones(2, 3)], active=torch.tensor([False, True]))
    assert torch.equal(pr[0].detach(), before[0]) and not torch.equal(pr[1].detach(), before[1])
    sd = opt.state_dict()
    opt2 = ReplicatedAdam([nn.Parameter(before.clone())], lr=0.1, replicated=True); opt2.load_state_dict(sd)
    assert torch.equal(opt2.state[opt2.param_groups[0]['params'][0]]['count'], torch.tensor([0., 1.]))


# ---------------------------------------------------------------- training
def parity(L=5, n_train=16, seed=0):
    seqs = ((torch.arange(2**L)[:, None] >> torch.arange(L)) & 1).float()
    y = seqs.sum(1) % 2
    perm = torch.randperm(2**L, generator=torch.Generator().manual_seed(seed))
    return (seqs[perm[:n_train], :, None], y[perm[:n_train]]), (seqs[perm[n_train:], :, None], y[perm[n_train:]])


TRAIN, VALID = parity()
def mse(out, y): return (torch.sigmoid(out[..., 0]) - y).pow(2).mean()
def acc(out, y): return ((out[..., 0] > 0).float() == y).float().mean()


def learner(R=None, seed=0, cell='tanh', attractor=True, trainer=True, bs=8, iters=5, **kw):
    set_seed(0)  # the same data order for every model
    model = SDRNNClassifier(1, 6, 12, 1, cell=cell, sigma=0.5, iters=iters, attractor=attractor, replications=R, seed=seed)
    loss, met = (replicated_loss(mse), replicated_metric(acc)) if R else (mse, acc)
    cbs = [SDRNNTrainer(seed=seed, **kw)] if trainer else []
    return make_learner(model, tensor_dls(TRAIN, VALID, bs=bs), loss_func=loss, opt='adam', lr=0.01, metrics=[met],
                        cbs=cbs, progress=False, log_epochs=False)


def test_denoising_step_updates_only_attractor_weights():
    learn = learner()
    learn.fit(1)
    tr = learn.sdrnn_trainer
    att = {id(p) for m in sdrnn_modules(learn.model) for a in m.attractors for p in a.parameters()}
    assert att == {id(p) for p in tr._params} and len(att) == 5
    before = {n: p.detach().clone() for n, p in learn.model.named_parameters()}
    opt_state = {id(p): {k: v.clone() for k, v in learn.opt.state[p].items() if isinstance(v, torch.Tensor)}
                 for p in learn.model.parameters()}
    tr.denoise_batch((TRAIN[0],))
    for n, p in learn.model.named_parameters():
        assert torch.equal(before[n], p.detach()) != (id(p) in att), n
    for p in learn.model.parameters():
        for k, v in opt_state[id(p)].items(): assert torch.equal(learn.opt.state[p][k], v)


def test_task_step_can_leave_attractor_weights_alone():
    learn = learner(task_trains_attractor=False, start_epoch=100)  # no denoising steps: only the task step acts
    before = {n: p.detach().clone() for n, p in learn.model.named_parameters()}
    learn.fit(2)
    changed = {n for n, p in learn.model.named_parameters() if not torch.equal(before[n], p.detach())}
    assert changed and not any('attractors' in n for n in changed)
    assert learn.sdrnn_trainer.denoise_log == []


def test_denoising_loss_falls_below_one():
    learn = learner(R=2)
    learn.fit(40)
    h = learn.sdrnn_trainer.denoise_log
    assert h[0]['denoise_loss'] > 0.9
    assert h[-1]['denoise_loss'] < 0.8 and max(h[-1]['denoise_loss_per_replication']) < 1
    assert learn.history[-1]['denoise_loss'] == h[-1]['denoise_loss']


def test_repeated_denoising_steps_until_below_target():
    learn = learner(max_steps=8, target=0.5)
    learn.fit(1)
    h = learn.sdrnn_trainer.denoise_log[0]
    assert 1 < h['denoise_steps'] <= 8


def test_trainer_needs_an_sdrnn_with_attractors():
    learn = learner(attractor=False)
    with pytest.raises(ValueError, match='no SDRNN'): learn.fit(1)


@pytest.mark.parametrize('cell', ['tanh', 'gru'])
def test_replication_equals_single_run_with_seed_plus_r(cell):
    R, seed, ep = 3, 11, 3
    rep = learner(R=R, seed=seed, cell=cell); rep.fit(ep)
    x = VALID[0]
    for r in range(R):
        one = learner(seed=seed + r, cell=cell); one.fit(ep)
        for (n, p), (_, q) in zip(rep.model.named_parameters(), one.model.named_parameters()):
            torch.testing.assert_close(p.detach()[r], q.detach(), atol=2e-5, rtol=1e-4, msg=n)
        torch.testing.assert_close(rep.model(x)[r], one.model(x), atol=2e-5, rtol=1e-4)
        dr = [h['denoise_loss_per_replication'][r] for h in rep.sdrnn_trainer.denoise_log]
        torch.testing.assert_close(torch.tensor(dr), torch.tensor([h['denoise_loss'] for h in one.sdrnn_trainer.denoise_log]),
                                   atol=1e-5, rtol=1e-4)


def test_checkpoint_resume_restores_the_trainer(tmp_path):
    "A run killed after epoch 1 and resumed ends where an uninterrupted run ends (denoising optimiser and noise included)"
    class Kill(Callback):
        order = 100
        def after_epoch(self):
            if self.epoch == 1: raise RuntimeError('killed')
    learn = learner(R=2)
    full = fit_run(learn, 4, ctx=RunContext(ckpt_dir=tmp_path/'a'))
    w_full = [p.detach().clone() for p in learn.model.parameters()]
    d_full = [h['denoise_loss'] for h in learn.sdrnn_trainer.denoise_log]
    learn = learner(R=2)
    with pytest.raises(RuntimeError, match='killed'): fit_run(learn, 4, ctx=RunContext(ckpt_dir=tmp_path/'b'), cbs=[Kill()])
    assert 'SDRNNTrainer' in last_checkpoint(tmp_path/'b')['callbacks']
    learn = learner(R=2)
    resumed = fit_run(learn, 4, ctx=RunContext(ckpt_dir=tmp_path/'b', resume=True))
    for a, b in zip(w_full, learn.model.parameters()): torch.testing.assert_close(a, b.detach(), atol=1e-6, rtol=1e-6)
    assert [h['epoch'] for h in resumed] == [0, 1, 2, 3]
    assert [h['denoise_loss'] for h in learn.sdrnn_trainer.denoise_log] == pytest.approx(d_full, rel=1e-5)
