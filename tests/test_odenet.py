"Tests of `attractor_nb.odenet` (ODEBlock, ODENet, NFECallback): numerics against known solutions, NFE counts, bad input"
import math, warnings

import pytest
import torch
from torch import nn
from torchdiffeq import odeint

warnings.filterwarnings('ignore', message='.*torch.jit.script.*is deprecated')
from attractor_nb.odenet import ODEBlock, ODEFunc, ODENet, NFECallback
from attractor_nb.train import tensor_dls, make_learner, fit_run
from attractor_nb.core import RunContext


class Decay(nn.Module):
    "dy/dt = -k y, y(t) = y0 exp(-k t)"
    def __init__(self, k=1.0):
        super().__init__()
        self.k = nn.Parameter(torch.tensor(float(k), dtype=torch.float64))
    def forward(self, t, y): return -self.k*y


def test_known_solution_and_count():
    b = ODEBlock(Decay(0.5), rtol=1e-8, atol=1e-10, t1=2.0)
    y = b(torch.ones(4, dtype=torch.float64))
    assert torch.allclose(y, torch.full((4,), math.exp(-1.0), dtype=torch.float64), atol=1e-7)
    n = [0]
    def f(t, y): n[0] += 1; return -0.5*y
    odeint(f, torch.ones(4, dtype=torch.float64), torch.tensor([0., 2.], dtype=torch.float64), rtol=1e-8, atol=1e-10)
    assert b.nfe_forward == n[0] and b.nfe_backward == 0


@pytest.mark.parametrize('method,per_step', [('rk4', 4), ('euler', 1), ('midpoint', 2)])
def test_fixed_step_counts(method, per_step):
    b = ODEBlock(Decay(), method=method, options=dict(step_size=0.125))
    b(torch.ones(2, dtype=torch.float64))
    assert b.nfe_forward == 8*per_step


def test_adjoint_matches_direct():
    res = {}
    for adj in (True, False):
        b = ODEBlock(Decay(0.3), rtol=1e-9, atol=1e-11, adjoint=adj)
        x0 = torch.tensor([1., -2., 0.5], dtype=torch.float64, requires_grad=True)
        (b(x0)**2).sum().backward()
        res[adj] = (b.func.k.grad.clone(), x0.grad.clone(), b.nfe_backward)
    # d/dk sum (x0 e^{-k})^2 = -2 e^{-2k} sum x0^2
    assert torch.allclose(res[True][0], torch.tensor(-2*math.exp(-0.6)*5.25, dtype=torch.float64), atol=1e-6)
    assert torch.allclose(res[True][0], res[False][0], atol=1e-6)
    assert torch.allclose(res[True][1], res[False][1], atol=1e-6)
    assert res[True][2] > 0 and res[False][2] == 0


def test_adjoint_matches_direct_odenet():
    # The dynamics contain ReLUs, so f is not smooth and the discrete gradient (direct) converges to the continuous one
    # (adjoint) only slowly as the tolerance shrinks: we ask for agreement to 1% of the largest gradient.
    torch.manual_seed(0)
    x = torch.randn(2, 3, 32, 32, dtype=torch.float64)
    grads = []
    for adj in (True, False):
        torch.manual_seed(1)
        m = ODENet(width=8, rtol=1e-6, atol=1e-6, adjoint=adj).double()
        m(x).sum().backward()
        grads.append(torch.cat([p.grad.flatten() for p in m.parameters()]))
    assert (grads[0] - grads[1]).abs().max() < 1e-2*grads[1].abs().max()


@pytest.mark.parametrize('kw,name', [(dict(rtol=0), 'rtol'), (dict(atol=-1.), 'atol'), (dict(rtol=float('inf')), 'rtol'),
                                     (dict(atol='1e-3'), 'atol'), (dict(method='rk45'), 'method'), (dict(t1=0), 't1')])
def test_bad_solver_settings(kw, name):
    with pytest.raises(ValueError, match=name): ODEBlock(Decay(), **kw)
    with pytest.raises(ValueError, match=name): ODENet(**kw)


def test_odenet_shapes_and_pool():
    m = ODENet(n_classes=100, width=8)
    x = torch.randn(3, 3, 32, 32)
    assert m(x).shape == (3, 100) and m.pooled(x).shape == (3, 8)
    assert isinstance(m.avgpool, nn.AdaptiveAvgPool2d) and isinstance(m.fc, nn.Linear)
    assert m.nfe_forward > 0
    with pytest.raises(ValueError, match='width'): ODENet(width=0)


def _dls():
    torch.manual_seed(0)
    x, y = torch.randn(48, 3, 32, 32), torch.randint(0, 10, (48,))
    return tensor_dls((x, y), (x[:24], y[:24]), bs=24)


def test_nfe_callback_history_and_rman():
    from attractor_nb.rman import RMANCallback
    cb = NFECallback()
    learn = make_learner(ODENet(width=8, rtol=1e-2, atol=1e-2, adjoint=True), _dls(), lr=0.05,
                         cbs=[cb, RMANCallback(4)], progress=False, log_epochs=False)
    h = fit_run(learn, 2)
    assert len(h) == 2 and len(cb.batch_log) == 4
    for r in h: assert r['nfe_forward'] > 0 and r['nfe_backward'] > 0 and r['nfe_valid'] > 0
    assert h[1]['nfe_forward'] == pytest.approx(sum(b['nfe_forward'] for b in cb.batch_log[2:])/2)
    cb2 = NFECallback(); cb2.load_state_dict(cb.state_dict())
    assert cb2.batch_log == cb.batch_log and cb2.epoch_log == cb.epoch_log


def test_nfe_callback_checkpoint_resume(tmp_path):
    def run(n_epoch, resume):
        torch.manual_seed(0)
        cb = NFECallback()
        learn = make_learner(ODENet(width=8, rtol=1e-2, atol=1e-2), _dls(), lr=0.05, cbs=[cb], progress=False, log_epochs=False)
        return fit_run(learn, n_epoch, ctx=RunContext(ckpt_dir=tmp_path, resume=resume, progress=False)), cb
    h1, cb1 = run(1, False)
    h2, cb2 = run(1, True)  # finished already: restores the logs from the checkpoint
    assert cb2.batch_log == cb1.batch_log and 'nfe_forward' in h2[0]


def test_nfe_callback_needs_odeblock():
    learn = make_learner(nn.Sequential(nn.Flatten(), nn.Linear(3*32*32, 10)), _dls(), cbs=[NFECallback()],
                         progress=False, log_epochs=False)
    with pytest.raises(ValueError, match='ODEBlock'): learn.fit(1)
