"""The CIFAR models of RMAN's Table 1 (`attractor_nb.models`): sizes against the published counts, shapes, the
`avgpool` -> `fc` head RMAN taps, the LM-ResNet recurrence and its learnable k_n, and the errors for bad names and depths."""
import subprocess, sys, warnings

import pytest
import torch
import torch.nn.functional as F
from torch import nn

warnings.filterwarnings('ignore', message='.*torch.jit.script.*is deprecated')  # raised when fastai is imported
from attractor_nb.models import (CIFAR_ARCHS, PUBLISHED_PARAMS, LM_K_INIT, cifar_model, preact_resnet, lm_resnet,
                                 resnext29, resnet_units, pooled_features_dim, count_params, arch_params,
                                 PreActResNet, LMResNet, ResNeXt)

# Exact counts (CIFAR-10 head). Pinned so that an accidental change to an architecture shows up here.
EXACT = {'resnet20': 272_282, 'resnet32': 466_714, 'resnet44': 661_146, 'resnet56': 855_578, 'resnet110': 1_730_522,
         'lm-resnet110': 1_730_573, 'lm-resnet164': 1_703_309,
         'resnext29-8x64d': 34_426_698, 'resnext29-16x64d': 68_155_210}
SMALL = ['resnet20', 'resnet32', 'resnet44', 'resnet56', 'resnet110', 'lm-resnet110', 'lm-resnet164']


def test_archs_listed():
    assert CIFAR_ARCHS == ('resnet20', 'resnet32', 'resnet44', 'resnet56', 'resnet110', 'lm-resnet110',
                           'lm-resnet164', 'resnext29-8x64d', 'resnext29-16x64d')
    assert set(PUBLISHED_PARAMS) == set(CIFAR_ARCHS)


@pytest.mark.parametrize('arch', CIFAR_ARCHS)
def test_param_counts_match_published(arch):
    n = arch_params(arch)  # built on the meta device: no memory, no time
    pub, src = PUBLISHED_PARAMS[arch]
    assert abs(n/(pub*1e6) - 1) < 0.02, f"{arch}: {n:,} parameters vs {pub}M published ({src})"
    assert n == EXACT[arch]


def test_param_count_structure():
    # pre-activation ResNets = He et al.'s option-A networks + the two 1x1 projections (16*32 + 32*64 weights)
    assert EXACT['resnet20'] - 2560 == 269_722  # He et al. 2016a's ResNet-20, counted exactly
    # LM-ResNets = their ResNet + one k_n per unit except the first of each stage (3*(18-1) = 51)
    assert EXACT['lm-resnet110'] - EXACT['resnet110'] == 51
    with torch.device('meta'):
        assert count_params(lm_resnet(164)) - count_params(preact_resnet(164)) == 51
    # 100 classes add 90*C + 90 to the head
    assert arch_params('resnet20', 100) - arch_params('resnet20') == 90*64 + 90


@pytest.mark.parametrize('arch', SMALL)
def test_forward_shapes_and_avgpool(arch):
    torch.manual_seed(0)
    m = cifar_model(arch, num_classes=100).eval()
    seen = {}
    h = m.avgpool.register_forward_hook(lambda mod, i, o: seen.__setitem__('pool', o.shape))
    with torch.no_grad(): y = m(torch.randn(2, 3, 32, 32))
    h.remove()
    C = pooled_features_dim(m)
    assert y.shape == (2, 100)
    assert isinstance(m.avgpool, nn.AdaptiveAvgPool2d) and isinstance(m.fc, nn.Linear)
    assert seen['pool'] == (2, C, 1, 1)
    assert C == (256 if arch == 'lm-resnet164' else 64)
    assert [type(s).__name__ for s in m.stages] == (['LMStage']*3 if arch.startswith('lm') else ['Sequential']*3)


def test_resnext_real_and_meta():
    torch.manual_seed(0)
    m = resnext29(8, 64).eval()  # 34M parameters; a forward pass of two images takes about a second on 2 cores
    with torch.no_grad(): assert m(torch.randn(2, 3, 32, 32)).shape == (2, 10)
    assert pooled_features_dim(m) == 1024
    del m
    with torch.device('meta'):
        m = cifar_model('resnext29-16x64d', num_classes=100)
        assert m(torch.empty(2, 3, 32, 32)).shape == (2, 100)
        assert m.avgpool(m.forward_features(torch.empty(2, 3, 32, 32))).shape == (2, 1024, 1, 1)
    assert [b.conv2.groups for s in m.stages for b in s] == [16]*9
    assert [s[0].conv2.out_channels for s in m.stages] == [16*64, 16*128, 16*256]


@pytest.mark.filterwarnings('ignore:.*torch.jit.script.*is deprecated')
def test_rman_finds_the_pool_layer():
    from attractor_nb.rman import find_pool_layer
    for arch in CIFAR_ARCHS:
        with torch.device('meta'): m = cifar_model(arch)
        name, mod = find_pool_layer(m)
        assert name == 'avgpool' and mod is m.avgpool


def test_models_do_not_import_fastai():
    code = "import sys, attractor_nb.models as m; m.cifar_model('resnet20'); assert 'fastai' not in sys.modules"
    r = subprocess.run([sys.executable, '-c', code], capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr


# ---------------------------------------------------------------- names and depths
def test_unknown_arch():
    with pytest.raises(ValueError, match='valid names: resnet20, resnet32'): cifar_model('resnet18')
    with pytest.raises(ValueError, match="did you mean 'resnet20'"): cifar_model('resnet-20')
    with pytest.raises(ValueError, match='unknown architecture'): cifar_model(None)
    assert isinstance(cifar_model(' ResNet20 '), PreActResNet)


@pytest.mark.parametrize('depth', [21, 19, 2, 0, -4, 111, 20.0, '20', True])
def test_bad_basic_depth(depth):
    with pytest.raises(ValueError, match=r'depth.*6n\+2'): preact_resnet(depth, block='basic')
    with pytest.raises(ValueError, match=r'depth.*6n\+2'): lm_resnet(depth, block='basic')
    if not isinstance(depth, int) or depth <= 110:  # 'auto' picks basic units up to depth 110
        with pytest.raises(ValueError, match=r'depth.*6n\+2'): preact_resnet(depth)


@pytest.mark.parametrize('depth', [165, 200 + 1, 30])
def test_bad_bottleneck_depth(depth):
    with pytest.raises(ValueError, match=r'depth.*9n\+2'): preact_resnet(depth, block='bottleneck')
    with pytest.raises(ValueError, match=r'depth.*9n\+2'): lm_resnet(depth, block='bottleneck')
    with pytest.raises(ValueError, match=r'depth.*9n\+2'): ResNeXt(8, 64, depth=depth)


def test_depth_rule_of_section_4_1():
    assert [resnet_units(d) for d in (20, 32, 44, 56, 110)] == [('basic', n) for n in (3, 5, 7, 9, 18)]
    assert resnet_units(164) == ('bottleneck', 18)
    assert resnet_units(164, 'basic') == ('basic', 27)
    with pytest.raises(ValueError, match='block'): resnet_units(20, 'wide')


def test_bad_arguments():
    with pytest.raises(ValueError, match='num_classes'): preact_resnet(20, num_classes=0)
    with pytest.raises(ValueError, match='cardinality'): resnext29(0, 64)
    with pytest.raises(ValueError, match='base_width'): resnext29(8, -1)
    with pytest.raises(ValueError, match='k_init'): lm_resnet(20, k_init=(0.1, -0.1))
    with pytest.raises(ValueError, match="no linear layer named 'fc'"): pooled_features_dim(nn.Linear(2, 3))


# ---------------------------------------------------------------- LM-ResNet
def test_lm_k_count_and_init():
    torch.manual_seed(0)
    for depth, block in ((110, 'basic'), (164, 'bottleneck')):
        with torch.device('meta'): m = lm_resnet(depth)
        assert m.block == block and len(m.ks) == 51
    m = lm_resnet(110)
    ks = torch.stack([k.detach() for k in m.ks])
    assert ((ks >= LM_K_INIT[0]) & (ks <= LM_K_INIT[1])).all() and ks.std() > 0
    assert all(isinstance(k, nn.Parameter) and k.shape == () for k in m.ks)
    assert all(s[0].k is None for s in m.stages)  # first unit of each stage: a plain residual step


def test_lm_k_learnable():
    torch.manual_seed(0)
    m = lm_resnet(20).train()
    x, y = torch.randn(4, 3, 32, 32), torch.randint(0, 10, (4,))
    before = [k.item() for k in m.ks]
    opt = torch.optim.SGD(m.parameters(), lr=0.1, momentum=0.9, weight_decay=5e-4)
    loss = F.cross_entropy(m(x), y)
    opt.zero_grad(); loss.backward()
    assert len(m.ks) == 6
    assert all(k.grad is not None and k.grad.abs() > 0 for k in m.ks)
    assert all(p.grad is not None for p in m.parameters())
    opt.step()
    assert all(k.item() != b for k, b in zip(m.ks, before))


def test_lm_with_k_zero_is_the_resnet():
    torch.manual_seed(0)
    lm = lm_resnet(20).eval()
    with torch.no_grad():
        for k in lm.ks: k.zero_()
    r = preact_resnet(20).eval()
    r.load_state_dict({n.replace('.unit.', '.'): v for n, v in lm.state_dict().items() if not n.endswith('.k')})
    x = torch.randn(2, 3, 32, 32)
    with torch.no_grad(): torch.testing.assert_close(lm(x), r(x), rtol=1e-5, atol=1e-5)


def test_lm_recurrence():
    "x_{n+1} = (1-k) x_n + k x_{n-1} + f(x_n), with the projected state as x_{n-1} after a stage's first unit"
    torch.manual_seed(0)
    lm = lm_resnet(20, k_init=(-0.5, 0.5)).eval()
    x = torch.randn(2, 3, 32, 32)
    with torch.no_grad():
        h, prev = lm.stem(x), None
        for stage in lm.stages:
            for j, step in enumerate(stage):
                f, s = step.unit.branches(h)
                h, prev = (s + f, s) if j == 0 else ((1 - step.k)*h + step.k*prev + f, h)
        expected = lm.fc(torch.flatten(F.adaptive_avg_pool2d(F.relu(lm.bn(h)), 1), 1))
        torch.testing.assert_close(lm(x), expected, rtol=1e-4, atol=1e-5)
