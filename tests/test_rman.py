"Tests of `attractor_nb.rman` (RMAN, RMANCallback) and the 2-D toy experiment `rman-toy2d`"
import json, math, warnings

import pytest
import torch
from torch import nn
from torch.utils.data import TensorDataset

warnings.filterwarnings('ignore', message='.*torch.jit.script.*is deprecated')
from fastai.learner import Learner
from fastai.data.core import DataLoaders
from fastai.data.load import DataLoader
from fastai.optimizer import SGD, OptimWrapper
from fastai.callback.core import Callback
import fastai.callback.progress  # adds Learner.no_bar
import fastai.callback.schedule  # adds Learner.lr_find

from attractor_nb.rman import RMAN, RMANCallback, relu_max, get_layer, as_feature_vectors


# ---------------------------------------------------------------- RMAN module
def test_shapes():
    torch.manual_seed(0)
    r = RMAN(16, 4)
    x = torch.randn(5, 16)
    assert r.m.shape == (4, 16) and isinstance(r.m, nn.Parameter)
    assert r.attention(x).shape == (5, 4)
    assert r(x).shape == (5, 16)
    assert r.energy(x).shape == (5,)
    assert r.energy(torch.randn(2, 3, 16)).shape == (2, 3)  # leading dims are kept


def _loop_energy(m, x):
    out = []
    for xi in x:
        w = [max(float(mj @ xi), 0.) for mj in m]
        g = sum((wj/sum(w))*mj for wj, mj in zip(w, m)) if sum(w) > 0 else torch.zeros_like(xi)
        out.append(((g - xi)**2).sum())
    return torch.stack(out)


def test_matches_loop():
    torch.manual_seed(1)
    r, x = RMAN(7, 5), torch.randn(9, 7)
    torch.testing.assert_close(r.energy(x), _loop_energy(r.m.detach(), x), rtol=1e-5, atol=1e-5)
    a = r.attention(x)
    active = (x @ r.m.T > 0).any(-1).float()
    torch.testing.assert_close(a.sum(-1), active)


def test_gradcheck_float64():
    torch.manual_seed(2)
    r = RMAN(4, 3).double()
    x = torch.randn(6, 4, dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(lambda x, m: (relu_max(x @ m.T) @ m - x).pow(2).sum(-1), (x, r.m))
    assert torch.autograd.gradcheck(r.energy, (x,))


@pytest.mark.parametrize('dtype', [torch.float32, torch.float16, torch.bfloat16, torch.float64])
def test_all_zero_case_is_finite(dtype):
    "No attractor pulls: strengths 0, target 0, energy ||x||^2; finite values and gradients in every dtype"
    r = RMAN(2, 2)
    with torch.no_grad(): r.m.copy_(torch.eye(2))
    x = torch.tensor([[-1., -1.], [0., 0.], [-2., -.5]], dtype=dtype, requires_grad=True)
    a, g, e = r.attention(x), r(x), r.energy(x)
    assert a.dtype == (torch.float64 if dtype == torch.float64 else torch.float32)
    assert (a == 0).all() and (g == 0).all()
    torch.testing.assert_close(e.double(), (x.detach().double()**2).sum(-1), rtol=1e-2, atol=1e-2)
    e.sum().backward()
    assert torch.isfinite(x.grad).all() and torch.isfinite(r.m.grad).all()
    torch.testing.assert_close(x.grad.double(), 2*x.detach().double(), rtol=1e-2, atol=1e-2)
    assert (r.m.grad == 0).all()


def test_relu_max_zero_rows():
    s = torch.zeros(3, 4, requires_grad=True)
    a = relu_max(s)
    a.sum().backward()
    assert (a == 0).all() and torch.isfinite(s.grad).all()


def test_computes_in_float32_under_autocast():
    torch.manual_seed(3)
    r, x = RMAN(8, 4), torch.randn(5, 8)
    with torch.autocast('cpu', dtype=torch.bfloat16):
        e = r.energy(x)
    assert e.dtype == torch.float32
    torch.testing.assert_close(e, r.energy(x))


def test_errors():
    with pytest.raises(ValueError, match='n_attractors'): RMAN(16, 0)
    with pytest.raises(ValueError, match='n_attractors'): RMAN(16, 2.5)
    with pytest.raises(ValueError, match='n_attractors'): RMAN(16, -3)
    with pytest.raises(ValueError, match='dim'): RMAN(0, 4)
    with pytest.raises(ValueError, match='dim'): RMAN('16', 4)
    with pytest.raises(ValueError, match=r'dim=16.*size 16'): RMAN(16, 4)(torch.randn(3, 8))
    with pytest.raises(ValueError, match='n_attractors'): RMANCallback(0)
    with pytest.raises(ValueError, match='alpha'): RMANCallback(4, alpha=-1e-4)
    with pytest.raises(ValueError, match='alpha_step'): RMANCallback(4, alpha_step=-1.)


# ---------------------------------------------------------------- the callback
def tiny_net():
    return nn.Sequential(nn.Conv2d(3, 8, 3, padding=1), nn.ReLU(), nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(8, 10))


def rand_dls(n=16, bs=8, seed=0):
    g = torch.Generator().manual_seed(seed)
    ds = lambda k: TensorDataset(torch.randn(k, 3, 32, 32, generator=g), torch.randint(0, 10, (k,), generator=g))
    return DataLoaders(DataLoader(ds(n), bs=bs, shuffle=True), DataLoader(ds(n//2), bs=bs))


def fit(model, cbs, epochs=1, n=16, **kw):
    learn = Learner(rand_dls(n), model, loss_func=nn.CrossEntropyLoss(), opt_func=kw.pop('opt_func', SGD), lr=0.05, cbs=cbs, **kw)
    with learn.no_logging(), learn.no_bar(): learn.fit(epochs)
    return learn


class Record(Callback):
    "Records the loss terms and alpha of each training batch, after RMANCallback"
    order = RMANCallback.order + 1
    def __init__(self): self.rows = []
    def after_loss(self):
        if not self.training: return
        cb = self.learn.rman
        feats = self.learn.model[:3](self.learn.xb[0]).flatten(1)  # the pooled features, recomputed
        self.rows.append(dict(epoch=self.epoch, alpha=cb.cur_alpha, diff=(self.learn.loss_grad - self.learn.loss).item(),
                              want=(cb.cur_alpha*cb.rman.energy(feats).mean()).item()))


def test_callback_adds_alpha_energy_and_schedule():
    torch.manual_seed(0)
    rec = Record()
    cb = RMANCallback(6, alpha=1e-2, alpha_step=2e-2)
    learn = fit(tiny_net(), [cb, rec], epochs=3)
    assert cb.rman.dim == 8 and cb.layer_name == '2'
    for r in rec.rows:
        assert r['diff'] == pytest.approx(r['want'], rel=1e-4, abs=1e-7)
        assert r['alpha'] == pytest.approx(1e-2 + 2e-2*r['epoch'])
    assert sorted({r['epoch'] for r in rec.rows}) == [0, 1, 2]
    assert [h['alpha'] for h in cb.energy_log] == pytest.approx([0.01, 0.03, 0.05])
    assert all(math.isfinite(h['train_energy']) and math.isfinite(h['valid_energy']) for h in cb.energy_log)
    assert cb.alpha_at(160) == pytest.approx(0.01 + 160*0.02)
    assert learn.recorder.values[-1][0] > 0  # recorded losses stay the task loss: finite and positive


def test_paper_defaults():
    cb = RMANCallback(16)
    assert (cb.alpha, cb.alpha_step) == (1e-4, 1e-4)
    assert [cb.alpha_at(e) for e in range(3)] == pytest.approx([1e-4, 2e-4, 3e-4])
    assert cb.rman is None and RMANCallback(16, dim=32).rman.m.shape == (16, 32)


def test_attractors_are_trained_and_in_optimizer_once():
    torch.manual_seed(0)
    cb = RMANCallback(4, alpha=1., dim=8)
    m0 = cb.rman.m.detach().clone()
    learn = fit(tiny_net(), [cb], epochs=1)
    assert not torch.equal(cb.rman.m.detach(), m0)
    with learn.no_logging(), learn.no_bar(): learn.fit(1)  # a second fit with the same optimizer
    n = sum(p is cb.rman.m for pl in learn.opt.param_lists for p in pl)
    assert n == 1


def test_pytorch_optimizer_wrapper():
    from functools import partial
    torch.manual_seed(0)
    cb = RMANCallback(4, alpha=1.)
    learn = fit(tiny_net(), [cb], opt_func=partial(OptimWrapper, opt=torch.optim.SGD))
    assert any(p is cb.rman.m for g in learn.opt.opt.param_groups for p in g['params'])


def test_model_unchanged_state_dict_and_outputs(tmp_path):
    torch.manual_seed(0)
    keys = list(tiny_net().state_dict())
    cb = RMANCallback(8)
    learn = fit(tiny_net(), [cb], epochs=2)
    assert list(learn.model.state_dict()) == keys
    assert cb._handle is None  # the hook is gone
    learn.path = tmp_path
    saved = torch.load(learn.save('m', with_opt=False), weights_only=True)
    assert list(saved) == keys
    plain = tiny_net(); plain.load_state_dict(saved)
    x = torch.randn(4, 3, 32, 32)
    learn.model.eval(); plain.eval()
    assert torch.equal(learn.model(x), plain(x))


def test_resnet18_avgpool_by_name():
    torchvision = pytest.importorskip('torchvision')
    torch.manual_seed(0)
    r18 = torchvision.models.resnet18(num_classes=10)
    keys = list(r18.state_dict())
    assert get_layer(r18)[0] == 'avgpool'
    cb = RMANCallback(16, layer='avgpool')
    learn = fit(r18, [cb], epochs=1)
    assert cb.rman.dim == 512 and cb.layer_name == 'avgpool'
    assert list(learn.model.state_dict()) == keys
    assert math.isfinite(cb.energy_log[0]['train_energy'])


def test_layer_as_module_and_feature_maps():
    net = tiny_net()
    assert get_layer(net, net[2]) == ('2', net[2])
    fm = torch.randn(2, 3, 4, 5)
    assert as_feature_vectors(fm).shape == (40, 3)
    assert torch.equal(as_feature_vectors(fm)[7], fm[0, :, 1, 2])
    torch.manual_seed(0)
    cb = RMANCallback(4, layer='0')  # an unpooled conv feature map: one vector per position (Eq. 6)
    fit(net, [cb])
    assert cb.rman.dim == 8


def test_callback_errors():
    with pytest.raises(ValueError, match="layer='avgpol' is not a module"):
        fit(tiny_net(), [RMANCallback(4, layer='avgpol')])
    mlp = nn.Sequential(nn.Flatten(), nn.Linear(3*32*32, 10))
    with pytest.raises(ValueError, match='no global-average-pooling'):
        fit(mlp, [RMANCallback(4)])
    with pytest.raises(ValueError, match='not a submodule'):
        fit(tiny_net(), [RMANCallback(4, layer=nn.AdaptiveAvgPool2d(1))])


def test_nan_loss_stops_with_message():
    class NaNNet(nn.Module):
        def __init__(self): super().__init__(); self.net = tiny_net()
        def forward(self, x): return self.net(x*float('nan'))
    cb = RMANCallback(4)
    with pytest.raises(FloatingPointError, match='NaN'):
        fit(NaNNet(), [cb])
    assert cb._handle is None


# ---------------------------------------------------------------- the 2-D toy experiment
def test_toy_experiment_runs(tmp_path):
    from attractor_nb.core import run_experiment, get_experiment
    assert get_experiment('rman-toy2d').scales == ['paper', 'quick']
    rec = run_experiment('rman-toy2d', scale='quick', seed=0, out=tmp_path, device='cpu', progress=False)
    saved = json.loads(rec['path'].read_text())
    m = saved['metrics']
    for k in ('accuracy', 'last_step', 'output_norm'):
        assert {f'{k}_plain', f'{k}_rman'} <= set(m)
    assert m['accuracy_plain'] > 0.8 and m['accuracy_rman'] > 0.8
    assert m['last_step_rman'] < m['last_step_plain']  # the paper's claim (Section 3)
    assert len(saved['figures']) == 2 and all((tmp_path/'figures').joinpath(p.split('/')[-1]).exists() for p in saved['figures'])
    assert {h['model'] for h in saved['history']} == {'plain', 'rman'}


def test_resume_and_lr_find_keep_history_clean():
    torch.manual_seed(0)
    cb = RMANCallback(4, alpha=1e-3, alpha_step=1e-3)
    learn = fit(tiny_net(), [cb], epochs=1)
    with learn.no_logging(), learn.no_bar(): learn.fit(3, start_epoch=1)  # fastai's resume: epoch 0 is skipped
    assert [h['epoch'] for h in cb.energy_log] == [0, 1, 2]
    assert [h['alpha'] for h in cb.energy_log] == pytest.approx([1e-3, 2e-3, 3e-3])
    n = len(cb.energy_log)
    with learn.no_logging(), learn.no_bar(): learn.lr_find(num_it=5, show_plot=False)
    assert len(cb.energy_log) == n and cb._handle is None
