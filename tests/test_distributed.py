"""Distributed data-parallel training on the CPU: two processes launched by `torchrun` with the gloo backend.

With Hugging Face Accelerate installed, the processes train through `make_learner` and fastai's `distrib_ctx`
(`attractor_nb.train.distrib_ctx`); without it, through plain `DistributedDataParallel` (the test says which).
Either way both ranks must see disjoint halves of every epoch and end with identical weights."""
import importlib.util, json, os, socket, subprocess, sys, textwrap

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
    if mode == 'fastai':
        from fastai.callback.core import Callback
        from attractor_nb.train import make_learner, tensor_dls, distrib_ctx
        class Seen(Callback):
            def after_batch(self):
                if self.training: seen.append(self.learn.xb[0][:, 0].long().tolist()); wrapped.add(type(self.learn.model).__name__)
        torch.manual_seed(1)
        learn = make_learner(model_fn(), tensor_dls((x, y), (x, y), bs=bs), lr=0.1, cbs=[Seen()], progress=False, log_epochs=False)
        wrapped = set()  # the model's class during training (fastai unwraps it after the fit)
        with distrib_ctx(learn): learn.fit(epochs)
        model, wrapped = learn.model, ','.join(sorted(wrapped))
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
    json.dump(dict(rank=rank, world=int(os.environ['WORLD_SIZE']), wrapped=wrapped, seen=seen,
                   weights=[p.detach().flatten().tolist() for p in model.parameters()]), open(f'{out}/rank{rank}.json', 'w'))
''')


def _free_port():
    with socket.socket() as s:
        s.bind(('127.0.0.1', 0)); return s.getsockname()[1]


def _launch(tmp_path, mode):
    script = tmp_path/'train_ddp.py'
    script.write_text(SCRIPT)
    env = {**os.environ, 'OMP_NUM_THREADS': '1', 'PYTHONUNBUFFERED': '1'}
    cmd = [sys.executable, '-m', 'torch.distributed.run', '--nproc_per_node', '2', '--master_addr', '127.0.0.1',
           '--master_port', str(_free_port()), str(script), mode, str(tmp_path)]
    r = subprocess.run(cmd, capture_output=True, text=True, timeout=150, env=env, cwd=tmp_path)
    assert r.returncode == 0, f"torchrun failed:\n{r.stdout[-3000:]}\n{r.stderr[-5000:]}"
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
    ranks = _launch(tmp_path, 'fastai')
    _check(ranks)


@pytest.mark.skipif(HAS_ACCELERATE, reason='accelerate is installed: the fastai path above is tested instead')
def test_plain_ddp_gloo(tmp_path):
    ranks = _launch(tmp_path, 'ddp')
    _check(ranks)
