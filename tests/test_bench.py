"Tests of attractor_nb.bench (benchmarks at their quick size, parallel seeds, the pytest-durations parser) and the fast paths of attractor_nb.train"
import json, math, warnings

import pytest
import torch
from torch import nn

warnings.filterwarnings('ignore', message='.*torch.jit.script.*is deprecated')
from attractor_nb import bench
from attractor_nb.bench import (parse_durations, run_seeds_parallel, seed_command, run_benchmarks, bench_table, median_ms,
                                bench_rman_overhead, bench_throughput, bench_sdrnn)
from attractor_nb.core import run_experiment, set_seed
from attractor_nb.train import make_learner, tensor_dls, fast_path_cbs, CompileModel, DeviceMixedPrecision, TensorBatches
from attractor_nb.rman import RMANCallback


# ---------------------------------------------------------------- fast paths in attractor_nb.train
def _conv_learner(cbs=None, **kw):
    set_seed(0)
    x, y = torch.randn(32, 3, 8, 8), torch.randint(0, 2, (32,))
    model = nn.Sequential(nn.Conv2d(3, 8, 3), nn.ReLU(), nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(8, 2))
    return make_learner(model, tensor_dls((x, y), (x, y), bs=16), lr=0.05, cbs=cbs, progress=False, log_epochs=False, **kw)


def test_fast_path_switches():
    assert fast_path_cbs() == []
    assert [type(c).__name__ for c in fast_path_cbs('fp16', True, True)] == ['ChannelsLast', 'CompileModel', 'DeviceMixedPrecision']
    with pytest.raises(ValueError, match="precision='int8'"): fast_path_cbs('int8')
    with pytest.raises(ValueError, match="precision='int8'"): _conv_learner(precision='int8')


@pytest.mark.parametrize('precision', ['bf16', 'fp16'])
def test_autocast_on_cpu(one_thread, precision):
    seen = []
    class Spy(DeviceMixedPrecision.__mro__[2]):  # fastai's Callback
        order = DeviceMixedPrecision.order - 1
        def after_pred(self): seen.append(self.pred.dtype)
    learn = _conv_learner(cbs=[Spy()], precision=precision)
    learn.fit(1)
    assert seen[0] == {'bf16': torch.bfloat16, 'fp16': torch.float16}[precision]
    assert all(p.dtype == torch.float32 for p in learn.model.parameters())
    assert math.isfinite(learn.history[0]['train_loss'])


def test_fp32_is_unchanged(one_thread):
    "precision='fp32' and no switches: exactly the plain learner"
    a, b = _conv_learner(), _conv_learner(precision='fp32', channels_last=False, compile=False)
    a.fit(1); b.fit(1)
    for p, q in zip(a.model.parameters(), b.model.parameters()): assert torch.equal(p, q)


def test_channels_last_and_compile_keep_names(one_thread):
    learn = _conv_learner(channels_last=True); learn.fit(1)
    assert learn.model[0].weight.is_contiguous(memory_format=torch.channels_last)
    eager = _conv_learner()
    comp = _conv_learner(cbs=[CompileModel(backend='eager')])
    eager.fit(1); comp.fit(1)
    assert list(comp.model.state_dict()) == list(eager.model.state_dict())
    for p, q in zip(eager.model.parameters(), comp.model.parameters()): torch.testing.assert_close(p, q)


def test_compile_with_rman_hook(one_thread):
    "The RMAN forward hook still taps the features inside a compiled model"
    cb = RMANCallback(4, layer='2')  # the avg-pool of the Sequential
    learn = _conv_learner(cbs=[cb, CompileModel(backend='eager')])
    learn.fit(1)
    assert cb.rman is not None and cb.energy_log[0]['train_energy'] > 0


def test_tensor_batches_no_per_item_work():
    x, y = torch.arange(10.).unsqueeze(1), torch.arange(10)
    calls = []
    class Counting(TensorBatches):
        def create_item(self, i): calls.append(i); return i
    dl = Counting(x, y, bs=4, shuffle=True)
    ys = torch.cat([b[1] for b in dl])
    assert calls == [] and sorted(ys.tolist()) == list(range(10))
    assert [len(b[1]) for b in Counting(x, y, bs=4, drop_last=True)] == [4, 4]


# ---------------------------------------------------------------- parallel seeds
def test_run_seeds_parallel_matches_sequential(tmp_path, one_thread):
    tiny = dict(model='rnn', replications=2, epochs=4)
    par = run_seeds_parallel('sdrnn-parity', [0, 1], jobs=2, device='cpu', out=tmp_path/'par', threads=1,
                             log_dir=tmp_path/'logs', **tiny)
    seq = [run_experiment('sdrnn-parity', seed=s, device='cpu', out=tmp_path/'seq', progress=False, **tiny) for s in (0, 1)]
    assert [r['path'].name for r in par] == ['sdrnn-parity-rnn-tanh-s0.json', 'sdrnn-parity-rnn-tanh-s1.json']
    for p, s in zip(par, seq):
        s = json.loads(s['path'].read_text())
        assert p['metrics'] == s['metrics']
        assert p['replications'] == s['replications']
        strip = lambda h: [{k: v for k, v in r.items() if k != 'seconds'} for r in h]
        assert strip(p['history']) == strip(s['history'])
        assert p['config'] == s['config']
    assert par[0]['metrics'] != par[1]['metrics']  # the seeds differ
    assert sorted(f.name for f in (tmp_path/'logs').iterdir()) == ['sdrnn-parity-rnn-tanh-s0.log', 'sdrnn-parity-rnn-tanh-s1.log']


def test_run_seeds_parallel_errors(tmp_path):
    with pytest.raises(ValueError, match='distinct'): run_seeds_parallel('sdrnn-parity', [1, 1])
    with pytest.raises(ValueError, match='jobs=0'): run_seeds_parallel('sdrnn-parity', [0], jobs=0)
    with pytest.raises(ValueError, match='bogus'): run_seeds_parallel('sdrnn-parity', [0], bogus=3)
    # a failing process is reported with its log
    with pytest.raises(RuntimeError, match='seed 0 exited'):
        run_seeds_parallel('sdrnn-parity', [0], device='cpu', out=tmp_path, log_dir=tmp_path/'logs', cell='tanh', epochs=-1)
    cmd = seed_command('rman-cifar', 2, 'paper', 'cuda', h=64, milestones=(80, 120), augment=False)
    assert cmd[3:] == ['run', 'rman-cifar', '--scale', 'paper', '--seed', '2', '--device', 'cuda', '--no-progress',
                       '--h', '64', '--milestones', '80,120', '--augment', 'false']


# ---------------------------------------------------------------- the benchmarks at their quick size
def _check_record(path, name):
    rec = json.loads(path.read_text())
    assert path.name == f'bench_{name}.json' and rec['name'] == f'bench_{name}'
    assert rec['config']['scale'] == 'quick' and rec['hardware']['device'] == 'cpu' and rec['hardware']['cpu_count']
    assert rec['versions']['torch'] and 'revision' in rec['git'] and rec['wall_time_s'] > 0
    assert isinstance(rec['metrics']['goal_met'], bool)
    return rec


def test_bench_rman_overhead_quick(tmp_path, one_thread):
    rec = _check_record(bench_rman_overhead(quick=True, device='cpu', out=tmp_path), 'rman_overhead')
    r = rec['results']['resnet20']
    assert r['step_ms_h0'] > 0 and r['step_ms_h64'] > 0
    assert r['overhead'] == pytest.approx(r['step_ms_h64']/r['step_ms_h0'] - 1)
    assert rec['metrics']['resnet20_overhead'] == pytest.approx(r['overhead'])


def test_bench_throughput_quick(tmp_path, one_thread):
    rec = _check_record(bench_throughput(quick=True, device='cpu', out=tmp_path, variants=('fp32',)), 'throughput')
    res = rec['results']
    assert set(res) == {'plain', 'fp32'} and res['fp32']['speedup'] == pytest.approx(res['plain']['train_s']/res['fp32']['train_s'])
    assert res['fp32']['images_per_s'] == pytest.approx(256/res['fp32']['train_s'])
    assert rec['metrics']['best_variant'] == 'fp32' and rec['metrics']['projected_160_epoch_minutes'] > 0
    with pytest.raises(ValueError, match="variant='tf32'"): bench_throughput(quick=True, device='cpu', out=tmp_path, variants=('tf32',))


def test_bench_sdrnn_quick(tmp_path, one_thread):
    rec = _check_record(bench_sdrnn(quick=True, device='cpu', out=tmp_path), 'sdrnn')
    sps, rsps = rec['steps_per_s'], rec['replication_steps_per_s']
    assert set(sps) == {'R=1', 'R=10'} and rsps['R=10'] == pytest.approx(10*sps['R=10'])
    assert rec['metrics']['replication_throughput_gain'] == pytest.approx(rsps['R=10']/rsps['R=1'])
    tab = bench_table([rec])
    assert len(tab) == 1 and tab['size'][0] == 'quick'


def test_run_benchmarks_names():
    with pytest.raises(ValueError, match="'gpu_burn'"): run_benchmarks(['gpu_burn'], quick=True)
    assert bench.GPU_BENCHMARKS == ('rman_overhead', 'throughput', 'seeds', 'sdrnn')
    assert median_ms([0.002, 0.001, 0.003]) == pytest.approx(2.0)


# ---------------------------------------------------------------- the CPU suite parser
def test_parse_durations():
    text = """
============================ slowest durations ============================
61.20s call     tests/test_notebooks.py::test_notebook[13_rman_cifar.ipynb]
2.00s setup    tests/test_notebooks.py::test_notebook[13_rman_cifar.ipynb]
12.50s call     tests/test_train.py::test_resume[a-b]
0.01s teardown tests/test_train.py::test_resume[a-b]
========= 1 failed, 40 passed, 2 skipped, 3 warnings in 200.05s (0:03:20) =========
"""
    d = parse_durations(text)
    assert d['total_s'] == 200.05
    assert d['counts'] == {'failed': 1, 'passed': 40, 'skipped': 2, 'warnings': 3}
    assert d['notebooks'] == {'13_rman_cifar.ipynb': pytest.approx(63.2)}
    assert d['files'] == {'tests/test_notebooks.py': pytest.approx(63.2), 'tests/test_train.py': pytest.approx(12.51)}
    assert d['tests']['tests/test_train.py::test_resume[a-b]'] == pytest.approx(12.51)
    assert parse_durations('no pytest here')['total_s'] is None
    # `pytest -q` (what run_cpu_suite runs) ends with a bare summary line, without the ===== frame
    q = parse_durations('12.50s call     tests/test_x.py::test_a\n453 passed, 2 skipped, 7 warnings in 660.12s (0:11:00)\n')
    assert q['total_s'] == 660.12 and q['counts'] == {'passed': 453, 'skipped': 2, 'warnings': 7}
    assert parse_durations('=== warnings summary ===\ntests/x.py: 2 warnings in module\n')['total_s'] is None
