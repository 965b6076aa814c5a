"""Distributed data-parallel training on the CPU: two processes launched by `torchrun` with the gloo backend.

With Hugging Face Accelerate installed, the processes train through `make_learner` and `attractor_nb.train.fit_run`,
which wraps the fit in fastai's `distrib_ctx` (`attractor_nb.train.distrib_ctx`); without it, through plain
`DistributedDataParallel` (the test says which). Either way both ranks must see disjoint halves of every epoch and end
with identical weights. The CLI test runs a registered experiment under `torchrun` end to end."""
import importlib.util, json, os, re, socket, subprocess, sys, textwrap
from pathlib import Path

import pytest

HAS_ACCELERATE = importlib.util.find_spec('accelerate') is not None

SCRIPT = textwrap.dedent('''
    import json, os, sys, warnings
    warnings.simplefilter('ignore')
    import torch
    torch.set_num_threads(1)
    from torch import nn
    mode, out = sys.argv[1], sys.argv[2]
    n, bs, epochs = 48, 8, 2
    torch.manual_seed(0)
    x = torch.cat([torch.arange(n, dtype=torch.float32)[:, None], torch.randn(n, 3)], 1)  # column 0: the item index
    y = (x[:, 1] > 0).long()
    seen = []
    def model_fn():
        torch.manual_seed(0)  # the same initial weights on every rank (DDP also broadcasts rank 0's)
        return nn.Sequential(nn.Linear(4, 8), nn.ReLU(), nn.Linear(8, 2))
    extra, saves, ckpt = None, [], None
    if mode == 'fastai':
        from fastai.callback.core import Callback
        from attractor_nb.core import RunContext
        from attractor_nb.train import make_learner, tensor_dls, fit_run, last_checkpoint, exit_distributed
        rank = int(os.environ['RANK'])
        _save = torch.save
        def counting_save(*a, **k): saves.append(1); return _save(*a, **k)
        torch.save = counting_save  # count the checkpoint writes of this process
        class Seen(Callback):
            def after_batch(self):
                if self.training: seen.append(self.learn.xb[0][:, 0].long().tolist()); wrapped.add(type(self.learn.model).__name__)
        class Extra(Callback):
            "A trained parameter outside the model, like RMAN's attractors: it starts different on each rank"
            def before_fit(self):
                self.b = nn.Parameter(torch.full((2,), float(rank + 1)))
                self.learn.opt.param_lists[-1].append(self.b)
            def after_loss(self):  # its gradient depends on this rank's batch
                if self.training: self.learn.loss_grad = self.learn.loss_grad + ((self.learn.pred.mean(0) - self.b)**2).sum()
        torch.manual_seed(1)
        learn = make_learner(model_fn(), tensor_dls((x, y), (x, y), bs=bs), lr=0.1, cbs=[Seen(), Extra()], progress=False, log_epochs=False)
        wrapped = set()  # the model's class during training (fastai unwraps it after the fit)
        fit_run(learn, epochs, ctx=RunContext(ckpt_dir=f'{out}/ckpt'))
        model, wrapped = learn.model, ','.join(sorted(wrapped))
        extra = learn.extra.b.detach().tolist()
        if rank == 0:
            st = last_checkpoint(f'{out}/ckpt')
            ckpt = dict(epoch=st['epoch'], keys=sorted(st['model']), weights=[v.flatten().tolist() for v in st['model'].values()])
    else:
        import torch.distributed as dist
        from torch.nn.parallel import DistributedDataParallel as DDP
        from torch.utils.data import TensorDataset, DataLoader, DistributedSampler
        dist.init_process_group('gloo')
        model = model_fn(); ddp = DDP(model); wrapped = 'DistributedDataParallel'
        sampler = DistributedSampler(TensorDataset(x, y), shuffle=True, seed=0)
        dl = DataLoader(TensorDataset(x, y), batch_size=bs, sampler=sampler)
        opt = torch.optim.SGD(ddp.parameters(), lr=0.1, momentum=0.9)
        for ep in range(epochs):
            sampler.set_epoch(ep)
            for xb, yb in dl:
                seen.append(xb[:, 0].long().tolist())
                loss = nn.functional.cross_entropy(ddp(xb), yb); opt.zero_grad(); loss.backward(); opt.step()
        dist.destroy_process_group()
    rank = int(os.environ['RANK'])
    with open(f'{out}/rank{rank}.json', 'w') as f:
        json.dump(dict(rank=rank, world=int(os.environ['WORLD_SIZE']), wrapped=wrapped, seen=seen, extra=extra, saves=len(saves),
                       ckpt=ckpt, weights=[p.detach().flatten().tolist() for p in model.parameters()]), f)
    if mode == 'fastai': exit_distributed()  # as a script of the library's users would end (see train.exit_distributed)
''')


def _free_port():
    with socket.socket() as s:
        s.bind(('127.0.0.1', 0)); return s.getsockname()[1]


ACCELERATE_CLI = Path(sys.executable).parent/'accelerate'


def _torchrun(tmp_path, *args, timeout=150, launcher='torchrun'):
    "Run `torchrun --nproc_per_node 2 ARGS` (as `python -m torch.distributed.run`, the same program) or `accelerate launch` in `tmp_path`"
    env = {**os.environ, 'OMP_NUM_THREADS': '1', 'PYTHONUNBUFFERED': '1', 'HF_HOME': str(tmp_path/'hf')}  # no user accelerate config
    for k in ('RANK', 'LOCAL_RANK', 'WORLD_SIZE', 'MASTER_ADDR', 'MASTER_PORT'): env.pop(k, None)
    if launcher == 'torchrun':
        cmd = [sys.executable, '-m', 'torch.distributed.run', '--nproc_per_node', '2', '--master_addr', '127.0.0.1',
               '--master_port', str(_free_port())]
    else:  # `--multi_gpu` hands the processes to torchrun; with `--device cpu` they train on CPUs with gloo
        cmd = [str(ACCELERATE_CLI), 'launch', '--multi_gpu', '--num_processes', '2', '--num_machines', '1', '--mixed_precision', 'no',
               '--dynamo_backend', 'no', '--main_process_port', str(_free_port())]
    r = subprocess.run([*cmd, *map(str, args)], capture_output=True, text=True, timeout=timeout, env=env, cwd=tmp_path)
    assert r.returncode == 0, f"{launcher} failed:\n{r.stdout[-3000:]}\n{r.stderr[-5000:]}"
    return r


def _launch(tmp_path, mode):
    script = tmp_path/'train_ddp.py'
    script.write_text(SCRIPT)
    _torchrun(tmp_path, script, mode, tmp_path)
    return [json.loads((tmp_path/f'rank{i}.json').read_text()) for i in (0, 1)]


def _check(ranks, n=48, epochs=2):
    r0, r1 = ranks
    assert (r0['world'], r1['world']) == (2, 2) and (r0['rank'], r1['rank']) == (0, 1)
    assert r0['wrapped'] == r1['wrapped'] == 'DistributedDataParallel'  # the model really was wrapped
    # every epoch is split into two disjoint halves that together cover the data set once
    per_epoch = len(r0['seen'])//epochs
    assert per_epoch == len(r1['seen'])//epochs == (n//2)//8
    for e in range(epochs):
        a = sum(r0['seen'][e*per_epoch:(e+1)*per_epoch], []); b = sum(r1['seen'][e*per_epoch:(e+1)*per_epoch], [])
        assert len(a) == len(b) == n//2 and not set(a) & set(b) and sorted(a + b) == list(range(n))
    # gradients were averaged: both ranks end with the same weights
    assert r0['weights'] == r1['weights']


@pytest.mark.skipif(not HAS_ACCELERATE, reason='fastai.distributed needs accelerate (pip install accelerate)')
def test_fastai_distrib_ctx_gloo(tmp_path):
    "`fit_run` under torchrun: DDP through fastai's distrib_ctx, extra parameters kept in step, checkpoints from rank 0 only"
    ranks = _launch(tmp_path, 'fastai')
    _check(ranks)
    r0, r1 = ranks
    # a parameter outside the model (started at 1 on rank 0 and 2 on rank 1) ends equal on both ranks, and it moved
    assert r0['extra'] == r1['extra'] and r0['extra'] != [1.0, 1.0], (r0['extra'], r1['extra'])
    # only rank 0 wrote checkpoints (one per epoch), holding the unwrapped model's final weights
    assert (r0['saves'], r1['saves']) == (2, 0)
    ck = r0['ckpt']
    assert ck['epoch'] == 1 and not any(k.startswith('module.') for k in ck['keys']), ck['keys']
    assert sorted(p for p in ck['weights']) == sorted(r0['weights'])


@pytest.mark.skipif(not HAS_ACCELERATE, reason='fastai.distributed needs accelerate (pip install accelerate)')
@pytest.mark.parametrize('launcher', ['torchrun', 'accelerate'])
def test_cli_run_distributed(tmp_path, launcher):
    "`torchrun --nproc_per_node 2 -m attractor_nb.cli run mnist-baseline ...`: one results file, sane and equal metrics"
    if launcher == 'accelerate' and not ACCELERATE_CLI.exists(): pytest.skip(f'no accelerate command at {ACCELERATE_CLI}')
    out = tmp_path/'res'
    r = _torchrun(tmp_path, '-m', 'attractor_nb.cli', 'run', 'mnist-baseline', '--epochs', '1', '--train-size', '2000',
                  '--valid-size', '500', '--out', out, '--no-progress', '--device', 'cpu', timeout=300, launcher=launcher)
    files = sorted(p.relative_to(out).as_posix() for p in out.rglob('*') if p.is_file())
    assert files == ['figures/mnist-baseline-s0.png', 'mnist-baseline-s0.json'], files  # written once, by rank 0
    rec = json.loads((out/'mnist-baseline-s0.json').read_text())
    assert rec['hardware']['processes'] == 2
    assert len(rec['history']) == 1 and rec['config']['train_size'] == 2000
    err = rec['metrics']['error_rate']
    assert 0 < err < 0.8, rec['metrics']  # one epoch (8 steps of 2x128 images): better than chance (0.9), not perfect
    assert abs(rec['metrics']['accuracy'] + err - 1) < 1e-6
    # both processes printed the same metrics: fastai gathers the validation values across ranks
    lines = [m.group(1) for m in re.finditer(r'^ +(valid_loss=.*?) +\(', r.stdout, re.M)]
    assert len(lines) == 2 and lines[0] == lines[1], r.stdout
    assert f"{rec['metrics']['error_rate']:.4g}" in lines[0]
    assert r.stdout.count(f"results: {out/'mnist-baseline-s0.json'}") == 2  # each rank names the one file


@pytest.mark.skipif(HAS_ACCELERATE, reason='accelerate is installed: the fastai path above is tested instead')
def test_plain_ddp_gloo(tmp_path):
    ranks = _launch(tmp_path, 'ddp')
    _check(ranks)


RMAN_SCRIPT = textwrap.dedent('''
    import json, os, sys, warnings
    warnings.simplefilter('ignore')
    import torch
    torch.set_num_threads(1)
    from torch import nn
    from attractor_nb.train import make_learner, tensor_dls, fit_run, exit_distributed
    from attractor_nb.rman import RMANCallback
    out, rank = sys.argv[1], int(os.environ['RANK'])
    torch.manual_seed(0)
    x, y = torch.randn(64, 3, 8, 8), torch.randint(0, 2, (64,))
    net = nn.Sequential(nn.Conv2d(3, 8, 3, padding=1), nn.ReLU(), nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(8, 2))
    cb = RMANCallback(4, layer=net[2])
    learn = make_learner(net, tensor_dls((x, y), (x, y), bs=8), lr=0.05, cbs=[cb], progress=False, log_epochs=False)
    fit_run(learn, 2)
    with open(f'{out}/rman{rank}.json', 'w') as f: json.dump(dict(log=cb.energy_log, m=cb.rman.m.detach().flatten().tolist()), f)
    exit_distributed()  # skips the interpreter's finalisation, where gloo's threads can abort a finished process
''')


@pytest.mark.skipif(not HAS_ACCELERATE, reason='fastai.distributed needs accelerate (pip install accelerate)')
def test_rman_energies_are_over_all_ranks(tmp_path):
    "RMANCallback's per-epoch energies add up the shards of every process, so each rank logs the same numbers"
    script = tmp_path/'rman_ddp.py'
    script.write_text(RMAN_SCRIPT)
    _torchrun(tmp_path, script, tmp_path)
    r0, r1 = (json.loads((tmp_path/f'rman{i}.json').read_text()) for i in (0, 1))
    assert len(r0['log']) == 2 and r0['log'] == r1['log'], (r0['log'], r1['log'])
    assert all(h['train_energy'] > 0 and h['valid_energy'] > 0 for h in r0['log'])
    assert r0['m'] == r1['m']  # the attractors themselves stay in step (train.SyncExtraParams)
