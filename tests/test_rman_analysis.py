"Tests of `attractor_nb.rman_analysis`: effective attractors, Figure 4 matrices, solely attracted share, norms, gap"
import warnings

import pytest
import torch

warnings.filterwarnings('ignore', message='.*torch.jit.script.*is deprecated')
from attractor_nb.rman import RMAN
from attractor_nb.rman_analysis import (effective_attractors, attractor_dots, attraction_matrix, solely_attracted,
                                        output_norms, generalisation_gap, load_rman_run, plot_attractor_norms,
                                        plot_attractor_circles, plot_solely_attracted, plot_output_norms,
                                        plot_generalisation_gap)


def test_effective_attractors():
    m = torch.tensor([[0., 0.009], [2., 0.], [0., -5.], [0.02, 0.]])
    idx, eff = effective_attractors(m)
    assert idx.tolist() == [2, 1, 3] and torch.equal(eff, m[[2, 1, 3]])
    assert len(effective_attractors(m, thresh=1.)[0]) == 2
    with pytest.raises(ValueError, match='n_attractors'): effective_attractors(torch.ones(4))


def test_dots_and_attraction():
    m = torch.tensor([[1., 0.], [-1., 1.]])
    torch.testing.assert_close(attractor_dots(m), torch.tensor([[1., -1.], [-1., 2.]]))
    a = torch.tensor([[1., 0.], [.6, .4], [0., 0.]])  # the last output is attracted by nobody
    A = attraction_matrix(a)
    torch.testing.assert_close(A.diag(), torch.tensor([1.6/3, .4/3]))
    torch.testing.assert_close(A[0, 1], torch.tensor(.4/3))
    assert torch.equal(A, A.T)


def test_attraction_of_real_rman_sums_to_one():
    torch.manual_seed(0)
    r = RMAN(8, 5)
    x = torch.randn(200, 8)
    a = r.attention(x).detach()
    attracted = (a.sum(-1) > 0).float().mean()
    torch.testing.assert_close(attraction_matrix(a).diag().sum(), attracted)


def test_solely_attracted():
    a = torch.tensor([[.95, .05, 0.], [.5, .5, 0.], [0., .01, .99], [0., 0., 0.]])
    share, per = solely_attracted(a)
    assert share == 0.5 and per.tolist() == [.25, 0., .25]


def test_norms_and_gap():
    torch.testing.assert_close(output_norms(torch.tensor([[3., 4.], [1., 0.]])), torch.tensor([5., 1.]))
    assert generalisation_gap([dict(train_loss=1., valid_loss=1.25)]) == [0.25]


def test_plots_run():
    import matplotlib; matplotlib.use('Agg')
    import matplotlib.pyplot as plt
    torch.manual_seed(1)
    r = RMAN(4, 3); x = torch.randn(50, 4); a = r.attention(x).detach()
    plot_attractor_norms(r.m); plot_attractor_circles(attractor_dots(r.m), attraction_matrix(a))
    plot_solely_attracted(a); plot_output_norms({'x': x}); plot_generalisation_gap({'run': [dict(epoch=0, train_loss=1., valid_loss=1.1)]})
    plt.close('all')


def test_load_rman_run_missing(tmp_path):
    with pytest.raises(FileNotFoundError, match='no checkpoint'): load_rman_run(tmp_path, 'resnet20')
