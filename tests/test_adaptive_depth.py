"Tests of `attractor_nb.adaptive_depth` (the criterion of Section 7 and the `AdaptiveDepth` callback)"
import pytest
import torch
from torch import nn
from fastai.callback.core import Callback

from attractor_nb.adaptive_depth import AdaptiveDepth, residual_changes, depth_after_pruning
from attractor_nb.core import RunContext, set_seed
from attractor_nb.residual import ResidualNet
from attractor_nb.train import Checkpoint, fit_run, last_checkpoint, make_learner, tensor_dls


def _blobs(n, seed):
    g = torch.Generator().manual_seed(seed)
    y = torch.randint(0, 3, (n,), generator=g)
    return torch.randn(n, 12, generator=g) + 2*torch.eye(3, 12)[y], y


def _still(n_layers=8):
    "A net whose residuals are the same in every layer: W = 0, so each layer adds sigmoid(b)"
    net = ResidualNet(n_in=12, n_hidden=10, n_layers=n_layers, n_classes=3)
    with torch.no_grad(): net.layers[0].weight.zero_()
    return net


def _moving(n_layers=6):
    "A per-layer net with large independent weights: residuals change a lot from layer to layer"
    torch.manual_seed(0)
    return ResidualNet(n_in=12, n_hidden=10, n_layers=n_layers, n_classes=3, shared=False, init='orthogonal', gain=8.)


def _learner(net, *cbs, lr=1e-9):
    set_seed(0)
    return make_learner(net, tensor_dls(_blobs(128, 0), _blobs(64, 1), bs=32), opt='adam', lr=lr, progress=False,
                        log_epochs=False, cbs=list(cbs))


@pytest.mark.parametrize('bad', [0, 0., -0.01, float('nan'), float('inf'), True, '0.01'])
def test_threshold_must_be_positive(bad):
    with pytest.raises(ValueError, match='threshold'): AdaptiveDepth(bad)


def test_other_bad_arguments():
    with pytest.raises(ValueError, match='min_depth=0'): AdaptiveDepth(min_depth=0)
    with pytest.raises(ValueError, match='max_remove=0'): AdaptiveDepth(max_remove=0)
    with pytest.raises(ValueError, match='n_samples'): AdaptiveDepth(n_samples=0)
    with pytest.raises(TypeError, match='depth'): _learner(nn.Linear(12, 3), AdaptiveDepth()).fit(1)


def test_criterion():
    ch = torch.tensor([.5, .2, .005, .001])  # changes between layers 1-2, 2-3, 3-4, 4-5
    assert depth_after_pruning(ch, 0.01) == 3
    assert depth_after_pruning(ch, 0.001) == 5  # strictly below the threshold
    assert depth_after_pruning(ch, 0.01, max_remove=1) == 4
    assert depth_after_pruning(ch, 1.0) == 1
    assert depth_after_pruning(ch, 1.0, min_depth=2) == 2
    net, x = _moving(), torch.randn(5, 12)
    _, ys = net.trajectory(x)
    torch.testing.assert_close(residual_changes(net, x), (ys[:, 1:] - ys[:, :-1]).abs().mean((0, 2)))


def test_removes_layers_when_residuals_stop_changing_but_never_the_last():
    net = _still()
    learn = _learner(net, AdaptiveDepth(0.01))
    learn.fit(3)
    assert [(h['depth'], h['new_depth']) for h in learn.history] == [(8, 1), (1, 1), (1, 1)]
    assert net.depth == 1
    assert learn.history[0]['residual_change'] < 1e-6 and learn.history[1]['residual_change'] is None
    assert [r['new_depth'] for r in learn.adaptive_depth.log] == [1, 1, 1]


def test_keeps_layers_while_residuals_change():
    net = _moving()
    learn = _learner(net, AdaptiveDepth(0.01))
    learn.fit(2)
    assert net.depth == 6 and all(h['residual_change'] > 0.01 for h in learn.history)


def test_one_layer_per_epoch_and_min_depth():
    net = _still()
    learn = _learner(net, AdaptiveDepth(0.01, max_remove=1, min_depth=5))
    learn.fit(4)
    assert [h['new_depth'] for h in learn.history] == [7, 6, 5, 5]


def test_explicit_probe_and_shared_net_trained_normally():
    set_seed(0)
    net = ResidualNet(n_in=12, n_hidden=10, n_layers=10, n_classes=3)
    probe = _blobs(32, 5)[0]
    cb = AdaptiveDepth(0.05, probe=probe)
    learn = _learner(net, cb, lr=1e-2)
    learn.fit(3)
    assert cb._probe is probe
    for h in learn.history: assert 1 <= h['new_depth'] <= h['depth'] <= 10
    last = learn.history[-1]
    if last['depth'] > 1:  # the logged change is the probe's, at the depth the epoch trained
        net.eval()
        assert residual_changes(net, probe, last['depth'])[-1].item() == pytest.approx(last['residual_change'])


class _Kill(Callback):
    order = Checkpoint.order + 1
    def after_epoch(self):
        if self.epoch == 0: raise RuntimeError('killed')


def test_depth_survives_checkpoint_and_resume(tmp_path):
    learn = _learner(_still(), AdaptiveDepth(0.01, max_remove=2))
    with pytest.raises(RuntimeError, match='killed'):
        fit_run(learn, 3, ctx=RunContext(ckpt_dir=tmp_path), cbs=[_Kill()])
    st = last_checkpoint(tmp_path)
    assert st['epoch'] == 0 and st['callbacks']['AdaptiveDepth']['depth'] == 6
    net = _still()
    learn = _learner(net, AdaptiveDepth(0.01, max_remove=2))
    hist = fit_run(learn, 3, ctx=RunContext(ckpt_dir=tmp_path, resume=True))
    assert [(h['epoch'], h['depth'], h['new_depth']) for h in hist] == [(0, 8, 6), (1, 6, 4), (2, 4, 2)]
    assert net.depth == 2
