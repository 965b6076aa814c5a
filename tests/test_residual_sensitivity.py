"Tests of attractor_nb.experiments.residual_sensitivity (Appendix A) and residual_classify (Figure 6)"
import json, math

import pytest
import torch

from attractor_nb.core import run_experiment
from attractor_nb.residual import ResidualNet, MLPNet
from attractor_nb.residual_dynamics import log_det_sensitivity, sensitivity_matrix
from attractor_nb.experiments.residual_ode import image_data
from attractor_nb.experiments.residual_sensitivity import (SensitivityConfig, probe_set, log_det_profile,
                                                           output_sensitivity, perturbation_effect, sensitivity_report)
from attractor_nb.experiments.residual_classify import (ClassifyConfig, transient_features, separation_scores,
                                                        readout_accuracy, cosine_contrast)


def _have_fashion():
    from attractor_nb.data import find_dataset, DataNotFoundError, CorruptDataError
    try: find_dataset('fashion-mnist'); return True
    except (DataNotFoundError, CorruptDataError): return False

needs_fashion = pytest.mark.skipif(not _have_fashion(), reason='Fashion-MNIST is not available here: apt-get install dataset-fashion-mnist')


@pytest.fixture(scope='module')
def tiny():
    torch.manual_seed(0)
    return ResidualNet(n_in=12, n_hidden=6, n_layers=5, n_classes=3).double()

@pytest.fixture(scope='module')
def u(): return torch.randn(7, 12, generator=torch.Generator().manual_seed(1), dtype=torch.float64)


def test_log_det_profile_matches_products(tiny, u):
    for exact in (False, True):
        sg, lg = log_det_profile(tiny, u, exact=exact)
        assert sg.shape == lg.shape == (7, 5)
        for s in (1, 3, 5):
            psg, pla = torch.linalg.slogdet(sensitivity_matrix(tiny, u, s, exact=exact))
            assert torch.allclose(lg[:, s - 1], pla/math.log(10), atol=1e-9) and torch.equal(sg[:, s - 1], psg)


def test_output_sensitivity_is_the_jacobian(tiny, u):
    _, S = output_sensitivity(tiny, u[:1], matrices=True)
    def logits(delta, s):
        x = tiny.embed(u[:1])
        for t in range(tiny.depth):
            y = tiny.residual(x, t) + (delta if t + 1 == s else 0)
            x = x + y
        return tiny.head(x)[0]
    for s in (1, 2, 5):
        J = torch.autograd.functional.jacobian(lambda d: logits(d, s), torch.zeros(1, 6, dtype=torch.float64))[:, 0]
        assert torch.allclose(S[0, s - 1], J, atol=1e-10)
    n_eq10 = output_sensitivity(tiny, u, exact=False)
    ref = torch.stack([(tiny.head.weight @ sensitivity_matrix(tiny, u, s)).norm(dim=(1, 2)) for s in range(1, 6)], 1)
    assert torch.allclose(n_eq10, ref, atol=1e-9)


def test_perturbation_effect_linear_and_errors(tiny, u):
    pe = perturbation_effect(tiny, u, eps=(1e-7, 1e-3), n_realisations=2)
    assert pe['change'].shape == (2, 5) and (pe['flipped'] == 0).all()
    assert torch.allclose(pe['change'][1]/pe['change'][0], torch.full((5,), 1e4), rtol=1e-3)  # linear for small eps
    with pytest.raises(ValueError, match='eps='): perturbation_effect(tiny, u, eps=(0.,))
    with pytest.raises(ValueError, match=r'layers=\[6\]'): perturbation_effect(tiny, u, layers=(6,))
    with pytest.raises(ValueError, match='n_realisations'): perturbation_effect(tiny, u, n_realisations=0)


def test_report_and_bad_layers(tiny, u):
    r = sensitivity_report(tiny, u, s1=2, s2=4, eps=(0.1,), n_realisations=1)
    ref = log_det_sensitivity(tiny, u, s=(2, 4))
    assert torch.allclose(r['ratio'], (ref[2][1] - ref[4][1])/math.log(10), atol=1e-9)
    assert set(r['summary']) >= {'median_log10_det_ratio', 'sens_norm_ratio', 'perturb_change_ratio'}
    with pytest.raises(ValueError, match='s2 > s1'): sensitivity_report(tiny, u, s1=3, s2=3)
    with pytest.raises(ValueError, match='s1=0'): sensitivity_report(tiny, u, s1=0, s2=3)


@needs_fashion
def test_image_data_and_probe_set():
    c = SensitivityConfig.at_scale('quick', train_size=200, valid_size=100, data='fashion-mnist')
    (xt, yt), (xv, yv) = image_data(c)
    assert xt.shape == (200, 784) and xv.shape == (100, 784) and yt.dtype == torch.int64
    with pytest.raises(ValueError, match="data='svhn'"): image_data(c.replace(data='svhn'))
    x, y = probe_set(torch.arange(40.)[:, None], torch.arange(40) % 4, 8)
    assert torch.bincount(y).tolist() == [2]*4
    with pytest.raises(ValueError, match='at least one sample per class'): probe_set(x, y, 3)


def test_classify_helpers():
    torch.manual_seed(0)
    net = ResidualNet(n_in=10, n_hidden=8, n_layers=4, n_classes=2)
    x, y = torch.randn(60, 10), torch.arange(60) % 2
    f = transient_features(net, x)
    assert [v.shape for v in f.values()] == [(60, 32), (60, 8), (60, 8)]
    acc = readout_accuracy(net, x, y, (1, 4, 20))
    assert list(acc) == [1, 4, 20] and all(0 <= a <= 1 for a in acc.values())
    lab = torch.arange(60) % 2
    blobs = torch.randn(60, 5) + 8*lab[:, None].float()
    sc, em = separation_scores({'blobs': blobs}, lab, method='tsne')
    assert sc['blobs']['knn_full'] == 1. and sc['blobs']['knn_2d'] == 1. and em['blobs'].shape == (60, 2)
    cc = cosine_contrast(torch.tensor([[1., .5], [.6, .8]], dtype=torch.float64))
    assert cc['rows_with_diagonal_max'] == 2 and abs(cc['contrast'] - (0.9 - 0.55)) < 1e-12
    with pytest.raises(ValueError, match='square'): cosine_contrast(torch.ones(3, 2))


@needs_fashion
@pytest.mark.parametrize('name,over,stem', [
    ('residual-sensitivity', dict(with_per_layer=False, n_sens=50), 'residual-sensitivity-fashion-mnist-s0'),
    ('residual-classify', dict(n_embed=120, n_per_class=10, deep_depth=30), 'residual-classify-fashion-mnist-s0')])
def test_tiny_end_to_end_on_fashion(tmp_path, one_thread, name, over, stem):
    rec = run_experiment(name, scale='quick', seed=0, out=tmp_path, device='cpu', progress=False, save=True,
                         data='fashion-mnist', epochs=1, train_size=500, valid_size=200, **over)
    assert rec['path'].name == stem + '.json'
    saved = json.loads(rec['path'].read_text())
    assert 'Fashion-MNIST' in saved['data'] and saved['metrics']
    for fig in saved['figures']: assert (rec['path'].parent/fig).is_file()
