"Tests of `attractor_nb.residual_dynamics`: the residual probe, statistics, sensitivity, noise to signal, cosine matrices, embedding"
import math

import pytest
import torch

from attractor_nb.residual import ResidualNet, MLPNet, residual_jacobian, shared_weights
from attractor_nb.residual_dynamics import (TransientsConfig, record_residuals, ResidualProbe, residual_stats,
                                            sensitive_neurons, cumulative_residuals, settled, class_eigenvalues,
                                            layer_jacobians, layer_log_dets, log_det_sensitivity, sensitivity_matrix,
                                            noise_to_signal, cosine_similarity_matrix, embed_transients,
                                            transient_separation, _umap_available)


def _net(cls=ResidualNet, seed=0, **kw):
    torch.manual_seed(seed)
    return cls(**{**dict(n_in=12, n_hidden=8, n_layers=6, n_classes=3), **kw}).eval()


def _blobs(n, seed=0, n_in=12, n_classes=3):
    g = torch.Generator().manual_seed(seed)
    y = torch.randint(0, n_classes, (n,), generator=g)
    return torch.randn(n, n_in, generator=g) + 3*torch.eye(n_classes, n_in)[y], y


# ---------------------------------------------------------------- the probe
@pytest.mark.parametrize('cls', [ResidualNet, MLPNet])
def test_record_matches_trajectory(cls):
    net, (x, _) = _net(cls), _blobs(10)
    xs, ys = record_residuals(net, x, bs=3)
    assert xs.shape == (10, 7, 8) and ys.shape == (10, 6, 8)
    with torch.no_grad(): tx, ty = net.trajectory(x)
    torch.testing.assert_close(xs, tx); torch.testing.assert_close(ys, ty)
    assert record_residuals(net, x, depth=30)[1].shape == (10, 30, 8)


def test_record_bad_input():
    net = _net()
    with pytest.raises(ValueError, match=r'\(bs, 12\)'): record_residuals(net, torch.randn(4, 13))
    with pytest.raises(ValueError, match=r'\(bs, \.\.\.\)'): record_residuals(net, torch.randn(12))
    with pytest.raises(TypeError, match='trajectory'): record_residuals(torch.nn.Linear(12, 3), torch.randn(4, 12))
    with pytest.raises(ValueError, match='at most 6 layers'): record_residuals(_net(shared=False), torch.randn(4, 12), depth=7)


def test_probe_callback_records_each_epoch():
    from attractor_nb.train import tensor_dls, make_learner
    x, y = _blobs(64)
    probe = ResidualProbe(x=x[:16])
    learn = make_learner(_net().train(), tensor_dls((x, y), (x[:16], y[:16]), bs=16), opt='adam', lr=1e-2, cbs=[probe],
                         progress=False, log_epochs=False)
    learn.fit(2)
    assert [r['epoch'] for r in probe.records] == [-1, 0, 1]
    assert probe.residuals.shape == (16, 6, 8) and probe.states.shape == (16, 7, 8)
    torch.testing.assert_close(probe.residuals, record_residuals(learn.model, x[:16])[1])


# ---------------------------------------------------------------- statistics
def test_residual_stats_per_class():
    r = torch.rand(9, 4, 5)
    lab = torch.tensor([0, 0, 0, 2, 2, 1, 1, 1, 1])
    st = residual_stats(r, lab)
    assert st['mean'].shape == (4, 5) and st['class_mean'].shape == (3, 4, 5) and st['class_std'].shape == (3, 4, 5)
    torch.testing.assert_close(st['class_mean'][1], r[5:].mean(0))  # classes sorted: 0, 1, 2
    torch.testing.assert_close(st['class_std'][2], r[3:5].std(0, unbiased=False))
    torch.testing.assert_close(st['std'], r.std(0, unbiased=False))
    with pytest.raises(ValueError, match=r'\(n, T, N\)'): residual_stats(r[0])
    with pytest.raises(ValueError, match=r'labels must have shape \(9,\)'): residual_stats(r, lab[:5])


def test_cumulative_residuals():
    r = torch.rand(6, 5, 4)
    lab = torch.tensor([0, 1, 0, 1, 1, 0])
    cr = cumulative_residuals(r, lab, torch.tensor([3, 1]))
    assert cr['cumulative'].shape == (2, 2, 5)
    torch.testing.assert_close(cr['cumulative'][1, 0], r[lab == 1][:, :, 3].mean(0).cumsum(0))
    assert cr['winner'].shape == (2,)
    assert sensitive_neurons(torch.tensor([[0., 3., 1.], [2., 0., 1.]])).tolist() == [1, 0]
    with pytest.raises(ValueError, match='neuron indices'): cumulative_residuals(r, lab, torch.tensor([4]))


def test_settled_and_class_eigenvalues():
    net, (x, y) = _net(), _blobs(30)
    fp = settled(net, x, depth=200)
    assert fp['change'].shape == (30,) and fp['residual'].shape == (30, 8)
    _, ys = record_residuals(net, x, 201)
    torch.testing.assert_close(fp['residual'], ys[:, 199])
    ce = class_eigenvalues(net, fp['residual'], y)
    W, _ = shared_weights(net)
    ym = fp['residual'][y == 0].double().mean(0)
    ref = torch.linalg.eigvals(residual_jacobian(W, ym))
    torch.testing.assert_close(torch.sort(ce['eig'][0].real).values, torch.sort(ref.real).values)
    assert len(ce['kind']) == 3
    with pytest.raises(ValueError, match='shared'): class_eigenvalues(_net(shared=False), fp['residual'], y)


# ---------------------------------------------------------------- sensitivity (Appendix A)
@pytest.mark.parametrize('shared', [True, False])
def test_log_det_matches_direct_slogdet(shared):
    net, (x, _) = _net(shared=shared), _blobs(5)
    ld = log_det_sensitivity(net, x, s=(2, 4))
    for s in (2, 4):
        sign, logabs = torch.linalg.slogdet(sensitivity_matrix(net, x, s))
        torch.testing.assert_close(ld[s][1], logabs)
        assert torch.equal(ld[s][0], sign) and torch.isfinite(ld[s][1]).all()
    sg, la = layer_log_dets(net, x)
    torch.testing.assert_close(ld[2][1] - ld[4][1], la[:, 1:3].sum(1))  # the ratio is layers 2 and 3 alone


def test_exact_sensitivity_is_the_autograd_jacobian():
    net, (x, _) = _net(), _blobs(1)
    net.double(); s = 3
    def xT(delta):
        h = net.embed(x.double())
        for t in range(net.depth):
            y = net.residual(h, t)
            if t + 1 == s: y = y + delta
            h = h + y
        return h[0]
    J = torch.autograd.functional.jacobian(xT, torch.zeros(1, 8, dtype=torch.float64))[:, 0]
    torch.testing.assert_close(sensitivity_matrix(net, x.double(), s, exact=True)[0], J)


def test_sensitivity_bad_layer():
    net, (x, _) = _net(), _blobs(2)
    for bad in (0, 7, 2.5):
        with pytest.raises(ValueError, match='between 1 and T=6'): log_det_sensitivity(net, x, s=bad)


# ---------------------------------------------------------------- noise to signal
@pytest.mark.parametrize('cls', [ResidualNet, MLPNet])
def test_noise_to_signal_zero_then_growing(cls):
    net, (x, y) = _net(cls), _blobs(40)
    r = noise_to_signal(net, x, (1e-9, 1e-3, 1e-2, 1e-1, 1.), n_realisations=3, labels=y)
    assert r['nsr'][0] < 1e-6 and abs(r['cosine'][0] - 1) < 1e-6
    assert (r['nsr'].diff() > 0).all()
    assert r['accuracy'].shape == (5,) and abs(r['accuracy'][0] - r['clean_accuracy']) < 1e-6
    assert noise_to_signal(net, x, 0.1, n_realisations=1, at='input')['nsr'].shape == (1,)


def test_noise_to_signal_bad_input():
    net, (x, _) = _net(), _blobs(4)
    for amps in ((0.1, 0.), (-1.,), (), (float('nan'),)):
        with pytest.raises(ValueError, match='positive'): noise_to_signal(net, x, amps)
    with pytest.raises(ValueError, match='n_realisations=0'): noise_to_signal(net, x, 0.1, n_realisations=0)
    with pytest.raises(ValueError, match="at='y'"): noise_to_signal(net, x, 0.1, at='y')
    with pytest.raises(ValueError, match=r'\(bs, 12\)'): noise_to_signal(net, x[:, :5], 0.1)
    with pytest.raises(ValueError, match=r'labels must have shape \(4,\)'): noise_to_signal(net, x, 0.1, labels=torch.zeros(3))


# ---------------------------------------------------------------- cosine similarity
def test_cosine_similarity_matrix():
    same = torch.randn(1, 6).repeat(6, 1)
    S, cls = cosine_similarity_matrix(same, torch.tensor([0, 0, 1, 1, 2, 2]))
    torch.testing.assert_close(S, torch.ones(3, 3, dtype=torch.float64))  # identical inputs: similarity 1
    assert cls.tolist() == [0, 1, 2]
    h = torch.tensor([[1., 0], [1, 0], [0, 1], [0, 1]])
    S, _ = cosine_similarity_matrix(h, torch.tensor([0, 0, 1, 1]))
    torch.testing.assert_close(S, torch.eye(2, dtype=torch.float64))
    assert torch.allclose(S, S.T)
    with pytest.raises(ValueError, match='at least 2 samples'): cosine_similarity_matrix(h, torch.tensor([0, 0, 0, 1]))


# ---------------------------------------------------------------- embedding
def test_embedding_falls_back_to_tsne(monkeypatch):
    "Without umap-learn (simulated: the package looks missing), 'auto' embeds with t-SNE and 'umap' names the package"
    import attractor_nb.residual_dynamics as rd
    monkeypatch.setattr(rd, '_umap_available', lambda: False)
    x, y = _blobs(60)
    emb, how = rd.embed_transients(torch.stack([x, 2*x], 1), perplexity=10)
    assert how == 'tsne' and emb.shape == (60, 2)
    assert transient_separation(emb, y) > 0.8  # three well-separated blobs stay separated
    with pytest.raises(ImportError, match='umap-learn'): rd.embed_transients(x, method='umap')


@pytest.mark.skipif(not _umap_available(), reason='umap-learn is not installed (pip install attractor_nb[umap])')
def test_embedding_umap():
    x, y = _blobs(60)
    emb, how = embed_transients(torch.stack([x, 2*x], 1), seed=0)
    assert how == 'umap' and emb.shape == (60, 2)
    assert transient_separation(emb, y) > 0.8
    with pytest.raises(ValueError, match='more than 15 samples, got 10'): embed_transients(x[:10], method='umap')


def test_embedding_too_few_samples():
    with pytest.raises(ValueError, match='more than 30 samples, got 10'): embed_transients(torch.randn(10, 3, 4), method='tsne')
    with pytest.raises(ValueError, match="method='pca'"): embed_transients(torch.randn(40, 4), method='pca')
    with pytest.raises(ValueError, match=r'\(n, T, N\)'): embed_transients(torch.randn(40))


def test_config():
    assert (TransientsConfig().s1, TransientsConfig().s2, TransientsConfig().n_realisations) == (4, 10, 10)
    q = TransientsConfig.at_scale('quick')
    assert q.n_hidden == 64 and q.n_per_class < 200
