"Tests of `attractor_nb.residual` (ResidualNet, MLPNet, the ODE reading, steady states, noise equations) and `residual-ode`"
import math, warnings

import pytest
import torch

from attractor_nb.residual import (ResidualConfig, PAPER_NUMBERS, ResidualNet, MLPNet, StateODE, ResidualODE, MLPODE,
                                   NoiseODE, integrate, shared_weights, continuous_residuals, ode_vs_discrete,
                                   residual_jacobian, fixed_points, stability, class_steady_states, error_rate_at,
                                   resnet_noise_rhs, mlp_noise_rhs, noise_evolution, noise_check)


def _net(cls=ResidualNet, seed=0, **kw):
    torch.manual_seed(seed)
    return cls(**{**dict(n_in=12, n_hidden=10, n_layers=6, n_classes=3), **kw})


def _blobs(n, seed, n_in=12, n_classes=3):
    g = torch.Generator().manual_seed(seed)
    y = torch.randint(0, n_classes, (n,), generator=g)
    return torch.randn(n, n_in, generator=g) + 2*torch.eye(n_classes, n_in)[y], y


# ---------------------------------------------------------------- models
@pytest.mark.parametrize('cls', [ResidualNet, MLPNet])
def test_shapes(cls):
    net = _net(cls)
    x = torch.randn(4, 12)
    with torch.no_grad():
        xs, ys = net.trajectory(x)
        assert xs.shape == (4, 7, 10) and ys.shape == (4, 6, 10)
        assert net(x).shape == (4, 3)
        xT, yT = net.final_state(x)
        torch.testing.assert_close(xT, xs[:, -1]); torch.testing.assert_close(yT, ys[:, -1])
        assert net(x.view(4, 3, 4)).shape == (4, 3)  # (bs, ...) with n_in values per sample is flattened
        xs, ys = net.trajectory(x, depth=1)
        assert xs.shape == (4, 2, 10) and ys.shape == (4, 1, 10)


def test_update_rules():
    res, mlp = _net(ResidualNet), _net(MLPNet)
    x = torch.randn(5, 12)
    with torch.no_grad():
        xs, ys = res.trajectory(x)
        torch.testing.assert_close(xs[:, 1:], xs[:, :-1] + ys)  # x(t+1) = x(t) + y(t+1)
        torch.testing.assert_close(ys, torch.sigmoid(res.layers[0](xs[:, :-1])))
        mx, my = mlp.trajectory(x)
        torch.testing.assert_close(mx[:, 1:], my)  # x(t+1) = sigmoid(W x(t) + b)
        torch.testing.assert_close(my, torch.sigmoid(mlp.layers[0](mx[:, :-1])))


@pytest.mark.parametrize('bad', [(4, 13), (12,), (4, 2, 5)])
def test_wrong_input_shape_names_the_expected_one(bad):
    with pytest.raises(ValueError, match=r'\(bs, 12\)'): _net()(torch.randn(*bad))


def test_bad_arguments():
    with pytest.raises(TypeError, match='floating-point'): _net()(torch.zeros(2, 12, dtype=torch.uint8))
    with pytest.raises(ValueError, match='n_hidden=0'): ResidualNet(n_hidden=0)
    with pytest.raises(ValueError, match="proj='conv'"): ResidualNet(proj='conv')
    with pytest.raises(ValueError, match='n_hidden >= n_in'): ResidualNet(n_in=784, n_hidden=64, proj='pad')
    with pytest.raises(ValueError, match="init='he'"): ResidualNet(init='he')
    net = _net()
    with pytest.raises(ValueError, match='depth=0'): net.depth = 0
    with pytest.raises(ValueError, match='depth'): net.depth = 2.5


def test_pad_projection_puts_the_input_in_x0():
    net = _net(n_hidden=16, proj='pad')
    x = torch.randn(3, 12)
    x0 = net.embed(x)
    torch.testing.assert_close(x0[:, :12], x); assert (x0[:, 12:] == 0).all()
    assert net.inp is None


def test_parameter_counts_shared_vs_per_layer():
    n = lambda m: sum(p.numel() for p in m.parameters())
    N, T, I, C = 1064, 15, 784, 10
    shared, per_layer = ResidualNet(I, N, T, C), ResidualNet(I, N, T, C, shared=False)
    assert n(shared) == I*N + N + N*N + N + N*C + C
    assert n(per_layer) - n(shared) == (T - 1)*(N*N + N)
    assert len(shared.layers) == 1 and len(per_layer.layers) == T
    assert n(MLPNet(I, N, T, C)) == n(shared)


def test_mlp_starts_orthogonal():
    net = _net(MLPNet)
    W = net.layers[0].weight.detach()
    torch.testing.assert_close(W @ W.T, 25*torch.eye(10), atol=1e-4, rtol=0)
    assert (net.layers[0].bias == 0).all()


def test_depth_change_after_training_keeps_the_first_layers():
    "Train a shared net briefly, then run it 200 layers deep: the first T states and residuals are unchanged"
    from attractor_nb.train import tensor_dls, make_learner
    from attractor_nb.core import set_seed
    set_seed(0)
    net = _net()
    learn = make_learner(net, tensor_dls(_blobs(128, 0), _blobs(64, 1), bs=32), opt='adam', lr=1e-2, progress=False, log_epochs=False)
    learn.fit(2)
    net.eval()
    x = _blobs(16, 2)[0]
    with torch.no_grad():
        xs, ys = net.trajectory(x)
        out = net(x)
        dxs, dys = net.trajectory(x, depth=200)
        assert dxs.shape == (16, 201, 10) and dys.shape == (16, 200, 10)
        torch.testing.assert_close(dxs[:, :7], xs, rtol=0, atol=0)
        torch.testing.assert_close(dys[:, :6], ys, rtol=0, atol=0)
        net.depth = 200
        torch.testing.assert_close(net(x), net.head(dxs[:, -1]))
        torch.testing.assert_close(net(x, depth=6), out)
        net.depth = 6
        torch.testing.assert_close(net(x), out)
    xv, yv = _blobs(64, 1)
    assert error_rate_at(net, xv, yv) == pytest.approx(learn.history[-1]['error_rate'])


def test_per_layer_net_cannot_run_deeper_than_built():
    net = _net(shared=False)
    x = torch.randn(2, 12)
    with torch.no_grad():
        torch.testing.assert_close(net.trajectory(x, depth=3)[0], net.trajectory(x)[0][:, :4])
    with pytest.raises(ValueError, match='at most 6 layers'): net(x, depth=7)
    with pytest.raises(ValueError, match='shared'): shared_weights(net)


def test_config_holds_the_paper_values():
    c = ResidualConfig()
    assert (c.n_hidden, c.n_layers, c.shared, c.deep_depth, c.adaptive_threshold) == (1064, 15, True, 1000, 0.01)
    q = ResidualConfig.at_scale('quick')
    assert q.n_hidden < c.n_hidden and q.train_size < c.train_size and q.scale == 'quick'
    assert PAPER_NUMBERS['error_shared'] == 0.014 and PAPER_NUMBERS['adaptive_depth_per_layer'] == 3


# ---------------------------------------------------------------- the ODE reading (Eqs. 1-3)
def _trained_like(seed=0, N=10):
    "A shared net with weights large enough for interesting dynamics, in float64"
    net = _net(seed=seed, n_hidden=N).double()
    with torch.no_grad(): net.layers[0].weight.mul_(3)
    return net


def test_resnet_is_euler_with_step_one():
    net = _trained_like()
    x = torch.randn(8, 12, dtype=torch.float64)
    with torch.no_grad(): xs, _ = net.trajectory(x)
    euler = integrate(StateODE.from_net(net), xs[:, 0], torch.arange(7.), method='euler', step_size=1.)
    torch.testing.assert_close(euler, xs, rtol=0, atol=1e-12)


def test_ode_matches_euler_with_small_steps():
    "dopri5 against Euler steps of h: the difference shrinks like h (Euler is first order)"
    net = _trained_like()
    with torch.no_grad(): x0 = net.embed(torch.randn(8, 12, dtype=torch.float64))
    f, t = StateODE.from_net(net), torch.arange(7.)
    exact = integrate(f, x0, t, rtol=1e-10, atol=1e-12)
    errs = [(integrate(f, x0, t, method='euler', step_size=h) - exact).abs().max().item() for h in (1e-2, 1e-3)]
    assert errs[1] < 1e-2
    assert 7 < errs[0]/errs[1] < 13, errs


def test_eq3_matches_the_state_flow():
    "Integrating Eq. 3 for y gives sigmoid(W x(t) + b) of the integrated Eq. 1"
    net = _trained_like()
    x = torch.randn(8, 12, dtype=torch.float64)
    t = torch.linspace(0, 6, 13)
    yx = continuous_residuals(net, x, t, form='x', rtol=1e-10, atol=1e-12)
    yy = continuous_residuals(net, x, t, form='y', rtol=1e-10, atol=1e-12)
    torch.testing.assert_close(yx, yy, rtol=0, atol=1e-8)
    assert ((yy > 0) & (yy < 1)).all()
    with pytest.raises(ValueError, match="form='z'"): continuous_residuals(net, x, t, form='z')


def test_ode_vs_discrete_starts_equal():
    net = _net()
    cmp = ode_vs_discrete(net, torch.randn(8, 12))
    assert cmp['discrete'].shape == cmp['continuous'].shape == (8, 6, 10)
    assert cmp['per_layer'][0] < 1e-6 and cmp['max_abs'] >= cmp['mean_abs'] >= 0
    assert next(net.parameters()).dtype == torch.float32  # restored after the float64 comparison


def test_mlp_is_euler_with_step_one():
    net = _net(MLPNet).double()
    x = torch.randn(4, 12, dtype=torch.float64)
    with torch.no_grad(): xs, _ = net.trajectory(x)
    euler = integrate(MLPODE.from_net(net), xs[:, 0], torch.arange(7.), method='euler', step_size=1.)
    torch.testing.assert_close(euler, xs, rtol=0, atol=1e-12)


def test_jacobian_and_fixed_points():
    W = torch.randn(5, 5, dtype=torch.float64, generator=torch.Generator().manual_seed(3))
    y = torch.rand(5, dtype=torch.float64)
    torch.testing.assert_close(residual_jacobian(W, y), torch.autograd.functional.jacobian(lambda v: ResidualODE(W)(None, v), y))
    for p in fixed_points(W):
        torch.testing.assert_close(ResidualODE(W)(None, p['y']), torch.zeros(5, dtype=torch.float64), rtol=0, atol=1e-10)
        assert ((p['y'] >= 0) & (p['y'] <= 1)).all()
    assert len(fixed_points(W)) <= 3**5
    comp = {tuple(p['y'].tolist()): p['kind'] for p in fixed_points(torch.tensor([[2., -3.], [-3., 2.]]))}
    assert comp == {(0., 0.): 'marginal', (0., 1.): 'stable', (1., 0.): 'stable', (1., 1.): 'unstable'}
    assert stability(torch.tensor([-1., 2.])) == 'saddle'
    with pytest.raises(ValueError, match='max_n'): fixed_points(torch.randn(11, 11))


def test_class_steady_states():
    net = _net()
    x, y = _blobs(60, 0)
    rows = class_steady_states(net, x, y, depth=300)
    assert [r['cls'] for r in rows] == [0, 1, 2] and sum(r['n'] for r in rows) == 60
    for r in rows:
        assert r['kind'] in ('stable', 'saddle', 'unstable', 'marginal')
        assert r['change'] >= 0 and 0 <= r['frac_zero'] + r['frac_one'] <= 1 and r['mean_residual'].shape == (10,)


# ---------------------------------------------------------------- noise (Eqs. 4-8)
def _slope(e, k, a=1e-3, b=1e-2): return math.log10(e[b][k]/e[a][k])


@pytest.mark.parametrize('cls', [ResidualNet, MLPNet])
def test_noise_equations_against_simulation(cls):
    "The exact noise equation matches simulation; truncations err like amplitude (1st order) and amplitude^2 (2nd)"
    net = _net(cls, seed=1)
    e = noise_check(net, torch.randn(6, 12), amps=(1e-3, 1e-2))
    assert all(v['exact'] < 1e-7 for v in e.values()), e
    assert abs(_slope(e, 'order1') - 1) < 0.15, e
    assert abs(_slope(e, 'order2') - 2) < 0.2, e
    assert e[1e-3]['order1'] < 1e-2, e


def test_noise_evolution_shapes_and_initial_noise():
    net = _net()
    r = noise_evolution(net, torch.randn(4, 12), 0.1, t=torch.arange(4.), orders=(None,))
    assert r['sim'].shape == r['exact'].shape == r['y'].shape == (4, 4, 10)
    torch.testing.assert_close(r['exact'][:, 0], r['sim'][:, 0])
    assert 'order1' not in r


def test_eq5_is_the_difference_of_eq3():
    W = torch.randn(6, 6, dtype=torch.float64)
    y, xi = torch.rand(3, 6, dtype=torch.float64)*0.8 + 0.1, 0.05*torch.randn(3, 6, dtype=torch.float64)
    f = ResidualODE(W)
    torch.testing.assert_close(resnet_noise_rhs(W, y, xi), f(None, y + xi) - f(None, y))
    with pytest.raises(ValueError, match='order=3'): resnet_noise_rhs(W, y, xi, order=3)


def test_paper_eqs_7_8_are_the_expansions_for_identity_W_only():
    b = torch.randn(6, dtype=torch.float64)
    y, xi = torch.randn(3, 6, dtype=torch.float64), 1e-2*torch.randn(3, 6, dtype=torch.float64)
    I = torch.eye(6, dtype=torch.float64)
    for o in (1, 2): torch.testing.assert_close(mlp_noise_rhs(I, b, y, xi, o, paper=True), mlp_noise_rhs(I, b, y, xi, o))
    W = torch.randn(6, 6, dtype=torch.float64)
    exact = mlp_noise_rhs(W, b, y, xi)
    assert (mlp_noise_rhs(W, b, y, xi, 1) - exact).norm() < 0.1*(mlp_noise_rhs(W, b, y, xi, 1, paper=True) - exact).norm()
    with pytest.raises(ValueError, match='MLP'): NoiseODE(W, kind='resnet', paper=True)
    with pytest.raises(ValueError, match="kind='cnn'"): NoiseODE(W, kind='cnn')


# ---------------------------------------------------------------- the registered experiment
def _have_mnist():
    from attractor_nb.data import find_dataset, DataNotFoundError, CorruptDataError
    try: find_dataset('mnist'); return True
    except (DataNotFoundError, CorruptDataError): return False


@pytest.mark.skipif(not _have_mnist(), reason='MNIST is not available here')
def test_residual_ode_experiment_tiny(tmp_path):
    import json
    from attractor_nb.core import run_experiment, get_experiment
    assert get_experiment('residual-ode').scales == ['paper', 'quick']
    rec = run_experiment('residual-ode', scale='quick', seed=0, out=tmp_path, device='cpu', progress=False,
                         train_size=300, valid_size=200, epochs=1, n_hidden=16, deep_depth=40, n_probe=10, noise_amps=(0.01,))
    saved = json.loads(rec['path'].read_text())
    m = saved['metrics']
    assert {'accuracy', 'error_rate', 'error_deep', 'ode_mean_abs', 'steady_max_re', 'mlp_error_rate'} <= set(m)
    assert len(saved['steady_states']) == 10 and saved['noise_resnet']['0.01']['exact'] < 1e-6
    assert set(saved['noise_mlp']['0.01']) == {'exact', 'order1', 'order2', 'paper_eq7', 'paper_eq8'}
