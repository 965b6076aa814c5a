"Tests of `attractor_nb.attractor_net`: AttractorNet, the convergence criterion, Eq. 4 and replicated nets"
import math, random

import pytest
import torch

import attractor_nb.train  # imported up front: a first import inside a test would consume random state

from attractor_nb.attractor_net import (AttractorNet, AttractorCapacityConfig, attractor_data, attractor_loss_func,
                                        denoise_loss, fit_attractor, pct_removed, safe_atanh, symmetric)


pytestmark = pytest.mark.usefixtures('one_thread')  # conftest: small matrices run faster on one thread


def loop_reference(net, x):
    "The equations of Section 2, one input at a time, in float64"
    W, Wi, bi, Wo, bo = (t.detach().double() for t in (net.W, net.weight_in, net.bias_in, net.weight_out, net.bias_out))
    X = torch.atanh((1 - net.eps)*x.double().clamp(-1, 1))
    c, a = Wi @ X + bi, torch.zeros(net.n, dtype=torch.float64)
    for _ in range(net.iters): a = W @ torch.tanh(a) + c
    return torch.tanh(Wo @ a + bo)


# ---------------------------------------------------------------- shapes and weights
def test_shapes():
    net = AttractorNet(6, 12, iters=5, seed=0)
    assert net(torch.rand(4, 6)).shape == (4, 6)
    assert net(torch.rand(3, 7, 6)).shape == (3, 7, 6)  # (bs, T, m)
    assert net(torch.rand(6)).shape == (6,)
    assert net.W.shape == (12, 12)
    y, tr = net.run(torch.randn(2, 6), trace=True)
    assert tr.shape == (5, 2, 6) and torch.equal(tr[-1], y)
    rep = AttractorNet(6, 12, replications=3, seed=0)
    assert rep(torch.rand(3, 4, 6)).shape == (3, 4, 6) and rep.W.shape == (3, 12, 12)


@pytest.mark.parametrize('self_connections', [False, True])
def test_W_symmetric_with_valid_diagonal(self_connections):
    net = AttractorNet(5, 9, self_connections=self_connections, replications=2, seed=1)
    with torch.no_grad(): net.U.normal_()
    W = net.W.detach()
    assert torch.equal(W, W.transpose(-1, -2))
    d = W.diagonal(dim1=-2, dim2=-1)
    assert (d >= 0).all() and ((d == 0).all() if not self_connections else (d > 0).all())
    # stays symmetric after training steps (it is symmetric by construction)
    opt = torch.optim.Adam(net.parameters(), lr=0.1)
    for _ in range(3):
        opt.zero_grad(); net(torch.rand(2, 8, 5)*2 - 1).pow(3).sum().backward(); opt.step()
    assert torch.equal(net.W.detach(), net.W.detach().transpose(-1, -2))
    assert torch.equal(symmetric(net.U.detach(), self_connections), net.W.detach())


def test_initialisation_appendix_a():
    net = AttractorNet(4, 7, seed=0)
    Wi, Wo = net.weight_in.detach(), net.weight_out.detach()
    torch.testing.assert_close(Wi[:4, :4].diagonal(), torch.ones(4), atol=0.05, rtol=0)
    torch.testing.assert_close(Wo[:4, :4].diagonal(), torch.ones(4), atol=0.05, rtol=0)
    assert Wi[4:].abs().max() < 0.06 and net.U.abs().max() < 0.06
    # a fresh net is close to the identity (Section 2's short circuit)
    x = torch.rand(16, 4)*1.6 - 0.8
    torch.testing.assert_close(net(x), x, atol=0.1, rtol=0)


def test_matches_loop_reference():
    net = AttractorNet(6, 10, iters=9, seed=3)
    with torch.no_grad(): net.U.normal_(0, 0.5); net.bias_in.normal_()
    x = torch.rand(5, 6)*2 - 1
    torch.testing.assert_close(net(x).double(), torch.stack([loop_reference(net, xi) for xi in x]), atol=1e-5, rtol=1e-5)


def test_seeds_are_reproducible():
    a, b, c = AttractorNet(5, 8, seed=4), AttractorNet(5, 8, seed=4), AttractorNet(5, 8, seed=5)
    assert all(torch.equal(p, q) for p, q in zip(a.parameters(), b.parameters()))
    assert not torch.equal(a.U, c.U)


# ---------------------------------------------------------------- inputs at +-1
@pytest.mark.parametrize('dtype', [torch.float32, torch.float64, torch.float16, torch.bfloat16])
def test_safe_atanh_finite(dtype):
    x = torch.tensor([-5., -1., -0.999, 0., 0.999, 1., 5.], dtype=dtype)
    X = safe_atanh(x)
    assert torch.isfinite(X).all() and X.dtype == dtype
    assert X[0] == X[1] and X[-1] == X[-2]  # clipped
    assert safe_atanh(torch.tensor([1.]))[0] == pytest.approx(math.atanh(1 - 1e-6), rel=0.01)


def test_no_nan_at_plus_minus_one():
    net = AttractorNet(4, 8, iters=15, delta=0.01, seed=0)
    x = torch.tensor([[1., -1., 1., -1.], [2., -3., 0., 1.]], requires_grad=True)
    y = net(x)
    y.sum().backward()
    assert torch.isfinite(y).all() and torch.isfinite(x.grad).all()
    assert all(torch.isfinite(p.grad).all() for p in net.parameters())


# ---------------------------------------------------------------- convergence
def two_cycle_net():
    "Two units with strong mutual inhibition: a limit cycle of length 2"
    net = AttractorNet(2, 2, iters=60, delta=0.01, seed=0)
    with torch.no_grad():
        net.U.zero_(); net.U[0, 1] = -5.
        net.weight_in.copy_(torch.eye(2)); net.weight_out.copy_(torch.eye(2)/4)
        net.bias_in.fill_(1.); net.bias_out.zero_()
    return net


def test_convergence_criterion_accepts_two_cycles():
    net = two_cycle_net()
    y, tr = net.run(torch.zeros(1, 2), trace=True)
    k = int(net.last_steps)
    assert net.last_converged.all() and 3 <= k < 60
    assert len(tr) == k
    assert (tr[k-1] - tr[k-3]).abs().max() < 0.01       # max|y_k - y_{k-2}| < delta
    assert (tr[k-2] - tr[k-4]).abs().max() >= 0.01      # ... and not one step earlier
    assert (tr[k-1] - tr[k-2]).abs().max() > 0.5        # consecutive outputs still far apart: a 2-cycle
    torch.testing.assert_close(y, tr[-1])


def test_iteration_cap_and_fixed_mode():
    net = two_cycle_net()
    net.run(torch.zeros(1, 2))
    k = int(net.last_steps)
    net.iters = k - 1  # the cap comes first
    net.run(torch.zeros(3, 2))
    assert (net.last_steps == k - 1).all() and not net.last_converged.any()
    net.delta = None
    y, tr = net.run(torch.zeros(3, 2), trace=True)
    assert (net.last_steps == k - 1).all() and net.last_converged is None and len(tr) == k - 1


def test_converged_inputs_are_frozen_per_sample():
    net = AttractorNet(6, 12, iters=40, delta=0.01, seed=1)
    with torch.no_grad(): net.U.normal_(0, 0.3)
    x = torch.rand(8, 6)*2 - 1
    yb = net(x)
    steps = net.last_steps.clone()
    for i in range(8):
        torch.testing.assert_close(net(x[i:i+1]), yb[i:i+1], atol=1e-6, rtol=1e-6)
        assert net.last_steps[0] == steps[i]


# ---------------------------------------------------------------- Eq. 4
@pytest.mark.parametrize('reduction', ['mean', 'ratio'])
def test_denoise_loss_extremes(reduction):
    torch.manual_seed(0)
    xi = torch.rand(20, 7)*2 - 1
    noisy = torch.tanh(torch.atanh(xi) + 0.4*torch.randn(20, 7))
    assert denoise_loss(xi, xi, noisy, reduction=reduction) == 0           # complete denoising
    assert denoise_loss(xi, noisy, noisy, reduction=reduction) == pytest.approx(1., abs=1e-6)  # none
    assert denoise_loss(xi, xi + 2*(noisy - xi), noisy, reduction=reduction) == pytest.approx(4., rel=1e-5)  # worse: > 1
    assert denoise_loss(xi, (xi + noisy)/2, noisy, reduction=reduction) == pytest.approx(0.25, rel=1e-5)


def test_denoise_loss_is_eq4_mean_of_ratios():
    torch.manual_seed(1)
    xi, y, xn = torch.rand(3, 6, 5), torch.rand(3, 6, 5), torch.rand(3, 6, 5)
    want = torch.stack([((y[i, j]-xi[i, j])**2).sum()/((xn[i, j]-xi[i, j])**2).sum() for i in range(3) for j in range(6)]).mean()
    torch.testing.assert_close(denoise_loss(xi, y, xn), want)
    ratio = ((y - xi)**2).sum()/((xn - xi)**2).sum()
    torch.testing.assert_close(denoise_loss(xi, y, xn, reduction='ratio'), ratio)
    assert denoise_loss(xi, y, xn, reduction='none').shape == (3, 6)
    per = denoise_loss(xi, y, xn, per_replication=True)
    torch.testing.assert_close(per, torch.stack([denoise_loss(xi[i], y[i], xn[i]) for i in range(3)]))


def test_denoise_loss_mask():
    torch.manual_seed(2)
    xi, xn = torch.rand(4, 5, 3), torch.rand(4, 5, 3)
    y = xi.clone(); y[:, 3:] = -xi[:, 3:]  # wrong only on masked steps
    mask = torch.arange(5)[None].expand(4, 5) < 3
    for red in ('mean', 'ratio'):
        assert denoise_loss(xi, y, xn, mask=mask, reduction=red) == 0
        assert denoise_loss(xi, y, xn, reduction=red) > 0
    with pytest.raises(ValueError, match='reduction'): denoise_loss(xi, y, xn, reduction='sum')


def test_denoising_loss_method_and_noise_argument():
    net = AttractorNet(5, 10, seed=0)
    X = torch.randn(6, 5)
    noise = torch.randn(6, 5)
    Xn = X + 0.3*noise
    want = denoise_loss(torch.tanh(X), net.run(Xn), torch.tanh(Xn))
    torch.testing.assert_close(net.denoising_loss(X, 0.3, noise=noise), want)
    assert net.denoising_loss(X, 0.3, noise=noise).item() == pytest.approx(1., abs=0.3)  # a fresh net hardly denoises
    with pytest.raises(ValueError, match='sigma'): net.denoising_loss(X, -0.1)


# ---------------------------------------------------------------- errors
def test_errors_name_the_argument():
    for kw, name in [(dict(m=0, n=4), 'm='), (dict(m=4, n=0), 'n='), (dict(m=4, n=-2), 'n='), (dict(m=4, n=2.5), 'n='),
                     (dict(m=4, n=4, iters=0), 'iters='), (dict(m=4, n=4, delta=0.), 'delta='),
                     (dict(m=4, n=4, replications=0), 'replications='), (dict(m=4, n=4, eps=1.), 'eps=')]:
        with pytest.raises(ValueError, match=name): AttractorNet(**kw)
    with pytest.raises(ValueError, match='m=4'): AttractorNet(4, 4)(torch.zeros(2, 3))
    with pytest.raises(ValueError, match='replications=2'): AttractorNet(4, 4, replications=2)(torch.zeros(3, 4))
    with pytest.raises(ValueError, match='A='): attractor_data(0, 5, 5, 0.1)


# ---------------------------------------------------------------- replications
def test_replication_equals_single_net_with_seed_plus_r():
    R, seed = 3, 7
    rep = AttractorNet(6, 12, iters=8, delta=0.01, replications=R, seed=seed)
    singles = [AttractorNet(6, 12, iters=8, delta=0.01, seed=seed + r) for r in range(R)]
    x = torch.rand(R, 5, 6)*2 - 1
    noise = torch.randn(R, 5, 6)
    losses = rep.denoising_loss(safe_atanh(x), 0.3, noise=noise)
    losses.sum().backward()
    y = rep(x)
    for r, s in enumerate(singles):
        assert all(torch.equal(p[r], q) for p, q in zip(rep.parameters(), s.parameters()))
        torch.testing.assert_close(y[r], s(x[r]), atol=1e-6, rtol=1e-6)
        l = s.denoising_loss(safe_atanh(x[r]), 0.3, noise=noise[r]); l.backward()
        torch.testing.assert_close(losses[r], l, atol=1e-6, rtol=1e-6)
        for p, q in zip(rep.parameters(), s.parameters()): torch.testing.assert_close(p.grad[r], q.grad, atol=1e-6, rtol=1e-5)


def test_training_with_the_learner_denoises_and_replicates():
    "A few epochs through the project's Learner: noise removed on held-out copies; replication 1 == single net seed+1"
    g = torch.Generator().manual_seed(0)
    x, c, xi = attractor_data(8, 10, 20, 0.25, generator=g)
    xt, ct, _ = attractor_data(8, 10, 20, 0.25, targets=xi, generator=g)
    assert attractor_loss_func(x, c, x) == pytest.approx(1.)
    torch.manual_seed(0); random.seed(0)
    rep = AttractorNet(10, 20, iters=6, replications=2, seed=3)
    res = fit_attractor(rep, (x, c), (xt, ct), epochs=12, lr=0.01, bs=40)
    assert len(res['pct_removed']) == 2 and min(res['pct_removed']) > 30, res['pct_removed']
    torch.manual_seed(0); random.seed(0)
    one = AttractorNet(10, 20, iters=6, seed=4)
    res1 = fit_attractor(one, (x, c), (xt, ct), epochs=12, lr=0.01, bs=40)
    assert res1['pct_removed'] == pytest.approx(res['pct_removed'][1], abs=1e-3)
    torch.testing.assert_close(rep.U.detach()[1], one.U.detach(), atol=1e-5, rtol=1e-4)
    assert torch.equal(pct_removed(one, xt, ct), pct_removed(one, xt, ct))


def test_capacity_config_grid_is_the_papers():
    cfg = AttractorCapacityConfig()
    assert cfg.n_attractors == tuple(range(25, 251, 25)) and cfg.n_units == (50, 100, 150, 200)
    assert cfg.train_sigmas == (0.125, 0.25, 0.5) and cfg.test_sigma == 0.25 and cfg.m == 50 and cfg.kappa == 50
    assert cfg.replications == 10 and cfg.delta == 0.01
    q = AttractorCapacityConfig.at_scale('quick')
    assert q.m == 50 and q.scale == 'quick'
