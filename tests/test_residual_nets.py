"The residual experiments share their trained nets (train_net's net store) and take `data`; residual-adaptive's config"
import json
import pytest
import torch

from attractor_nb.core import run_experiment
from attractor_nb.residual import ResidualConfig
from attractor_nb.experiments.residual_ode import net_id, image_data, result_name
from attractor_nb.experiments.residual_adaptive import AdaptiveConfig

TINY = dict(n_hidden=16, epochs=1, train_size=300, valid_size=200, deep_depth=30, n_probe=20)


def test_net_id_depends_on_training_fields_only():
    c = ResidualConfig.at_scale('quick')
    assert net_id(c) == net_id(c.replace(n_probe=3, deep_depth=50, noise_amps=(0.5,)))
    ids = {net_id(c.replace(**{k: v})) for k, v in dict(lr=1e-2, bs=32, seed=1, data='fashion-mnist', shared=False).items()}
    assert len(ids | {net_id(c)}) == 6
    assert net_id(c, 'mlp').startswith('mlp-shared-mnist-s0-')
    assert net_id(c.replace(lr_sched='cos')) != net_id(c)
    # the constant rate adds nothing to the hash: nets trained before `lr_sched` existed keep their ids
    assert net_id(ResidualConfig(shared=False)) == 'resnet-per-layer-mnist-s0-4b6aab7abd'
    with pytest.raises(ValueError, match="kind='cnn'"): net_id(c, 'cnn')


def test_result_names():
    assert result_name(ResidualConfig()) == 'residual-ode-s0'
    assert result_name(ResidualConfig(shared=False, data='fashion-mnist', seed=4), 'residual-noise') == 'residual-noise-per-layer-fashion-mnist-s4'
    assert result_name(ResidualConfig(lr_sched='cos'), 'residual-adaptive') == 'residual-adaptive-cos-s0'


def test_lr_sched_is_checked():
    with pytest.raises(ValueError, match="lr_sched='linear'"): ResidualConfig(lr_sched='linear')
    with pytest.raises(ValueError, match="lr_sched='step'"): AdaptiveConfig(lr_sched='step')  # subclasses keep the check


def test_paper_scale_decays_the_rate():
    "every residual experiment's paper scale uses the cosine rate (so they all share residual-ode's paper nets), its quick scale the constant one"
    from attractor_nb.residual_dynamics import TransientsConfig
    from attractor_nb.experiments.residual_classify import ClassifyConfig
    from attractor_nb.experiments.residual_sensitivity import SensitivityConfig
    for C in (ResidualConfig, TransientsConfig, AdaptiveConfig, ClassifyConfig, SensitivityConfig):
        assert (C.at_scale('paper').lr_sched, C.at_scale('quick').lr_sched) == ('cos', 'const'), C.__name__
    c = ResidualConfig.at_scale('paper')
    assert result_name(c) == 'residual-ode-cos-s0'
    assert net_id(c) == net_id(ClassifyConfig.at_scale('paper'))  # residual-classify reuses residual-ode's paper net


def test_experiments_share_nets(tmp_path):
    "residual-noise loads the nets residual-ode trained (same seed and recipe): same weights, no second training"
    kw = dict(scale='quick', out=tmp_path/'results', checkpoints=tmp_path/'ck', device='cpu', progress=False, **TINY)
    a = run_experiment('residual-ode', **kw)
    b = run_experiment('residual-noise', n_per_class=5, n_realisations=2, noise_amplitudes=(0.01, 0.5), **kw)
    ra, rb = (json.loads(r['path'].read_text()) for r in (a, b))
    assert {k: v['loaded'] for k, v in ra['nets'].items()} == {'resnet': False, 'mlp': False}
    assert {k: v['loaded'] for k, v in rb['nets'].items()} == {'resnet': True, 'mlp': True}
    assert ra['nets']['resnet']['id'] == rb['nets']['resnet']['id']
    assert rb['metrics']['error_rate_resnet'] == ra['metrics']['error_rate']
    assert sorted(p.name for p in (tmp_path/'ck'/'residual-nets').iterdir()) == sorted(v['id'] for v in ra['nets'].values())


def test_fashion_mnist_runs_through_residual_ode(tmp_path):
    rec = run_experiment('residual-ode', scale='quick', out=tmp_path, device='cpu', progress=False, data='fashion-mnist',
                         with_mlp=False, **TINY)
    assert rec['path'].name == 'residual-ode-fashion-mnist-s0.json'
    assert 'Fashion-MNIST' in json.loads(rec['path'].read_text())['data']
    assert 0 <= rec['metrics']['error_rate'] < 0.9


def test_adaptive_config_and_data_errors():
    with pytest.raises(ValueError, match='max_remove=-1'): AdaptiveConfig(max_remove=-1)
    with pytest.raises(ValueError, match='no net'): AdaptiveConfig(with_shared=False, with_per_layer=False)
    with pytest.raises(ValueError, match="data='svhn'"): image_data(ResidualConfig.at_scale('quick', data='svhn'))


def test_adaptive_run_tiny(tmp_path):
    rec = run_experiment('residual-adaptive', scale='quick', out=tmp_path, device='cpu', progress=False, epochs=2,
                         with_per_layer=False, compare_full=False, n_hidden=16, train_size=300, valid_size=200)
    assert rec['path'].name == 'residual-adaptive-shared-s0.json'
    h = rec['histories']['shared']
    assert len(h) == 2 and h[1]['depth'] == h[0]['new_depth'] and 1 <= h[-1]['new_depth'] <= 15
    assert rec['metrics']['final_depth_shared'] == h[-1]['new_depth']


def test_residual_ode_per_layer(tmp_path):
    "With one W per layer only the errors are measured (such a net cannot run 1000 layers)"
    rec = run_experiment('residual-ode', scale='quick', out=tmp_path, device='cpu', progress=False, shared=False, **TINY)
    assert rec['path'].name == 'residual-ode-per-layer-s0.json'
    assert 'error_deep' not in rec['metrics'] and 0 <= rec['metrics']['mlp_error_rate'] <= 1
    assert 'steady_states' not in rec
