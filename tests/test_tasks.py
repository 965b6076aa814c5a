"""The four SDRNN sequence tasks (Section 4 of the paper) checked against their definitions (the notebook 32_tasks tests these too)."""
import itertools
import numpy as np
import pytest, torch
from attractor_nb.tasks import (SeqSplit, SequenceTask, parity, majority, reber, symmetry, make_task, is_reber, is_symmetric,
                                sample_reber, corrupt_reber, REBER_ALPHABET, MAJORITY_LENGTHS, TASKS)

def bits_of(split): return split.x.squeeze(-1).round().long()

# ---------- parity (Section 4.1) ----------
@pytest.fixture(scope='module')
def par(): return parity(seed=0)

def test_parity_is_parity(par):
    for split in par.splits().values():
        want = [float(sum(int(c) for c in s) % 2) for s in split.strings]
        assert split.y.tolist() == want
    assert torch.equal(par.train.y, (bits_of(par.train).sum(1) % 2).float())  # from the tensors too
    assert par.train.x.shape == (256, 10, 1) and par.train.lengths.eq(10).all()

def test_parity_train_and_novel_partition_all_sequences(par):
    tr, nv = set(par.train.strings), set(par.tests['novel'].strings)
    assert len(tr) == 256 and len(nv) == 768 and not tr & nv
    assert tr | nv == {''.join(b) for b in itertools.product('01', repeat=10)}

def test_parity_noisy_copies(par):
    noisy = par.tests['noisy']
    assert len(noisy) == 3 * 256
    d = noisy.x - par.train.x.repeat_interleave(3, 0)
    assert d.abs().max() <= 0.1 and d.abs().max() > 0.05 and d.std() > 0.03
    assert torch.equal(noisy.y, par.train.y.repeat_interleave(3))
    assert parity(n_noisy=0).tests.keys() == {'novel'}

def test_parity_seed(par):
    again = parity(seed=0)
    assert again.train.strings == par.train.strings and torch.equal(again.tests['noisy'].x, par.tests['noisy'].x)
    other = parity(seed=1)
    assert other.train.strings != par.train.strings
    assert not torch.equal(other.tests['noisy'].x, par.tests['noisy'].x)

def test_parity_encoding():
    assert parity(encoding='pm1').train.x.unique().tolist() == [-1., 1.]
    assert parity().train.x.unique().tolist() == [0., 1.]

@pytest.mark.parametrize('kwargs,msg', [
    (dict(n_train=1025), 'n_train=1025'), (dict(n_train=1000, n_test=25), '1024'), (dict(n_train=-1), 'n_train'),
    (dict(bits=0), 'bits'), (dict(noise=-1.), 'noise'), (dict(n_noisy=-1), 'n_noisy'), (dict(encoding='bipolar'), 'encoding'),
    (dict(seed=-2), 'seed'), (dict(n_test=2.5), 'n_test'),
])
def test_parity_bad_input(kwargs, msg):
    with pytest.raises(ValueError, match=msg): parity(**kwargs)

# ---------- majority (Section 4.2) ----------
@pytest.mark.parametrize('length', MAJORITY_LENGTHS)
def test_majority(length):
    t = majority(length, seed=0)
    for split in t.splits().values():
        assert split.y.tolist() == [float(s.count('1') > s.count('0')) for s in split.strings]
        assert split.x.shape[1:] == (length, 1)
    assert len(set(t.train.strings)) == 100 and len(t.tests['novel']) == 1948
    assert not set(t.train.strings) & set(t.tests['novel'].strings)
    assert (t.tests['noisy'].x - t.train.x.repeat_interleave(3, 0)).abs().max() <= 0.1
    assert 0.45 < t.tests['novel'].balance < 0.55

def test_majority_seed_and_errors():
    assert majority(17, seed=2).train.strings == majority(17, seed=2).train.strings
    assert majority(17, seed=2).train.strings != majority(17, seed=3).train.strings
    with pytest.raises(ValueError, match='length=12'): majority(12)
    with pytest.raises(ValueError, match='n_train=9'): majority(3, n_train=9)
    with pytest.raises(ValueError, match='n_test'): majority(11, n_test=-1)

# ---------- Reber grammar (Section 4.3) ----------
def test_is_reber_on_the_papers_examples():
    assert is_reber('btssxxttvpse') and not is_reber('bptvpxtspse')
    assert is_reber('BTXSE') and is_reber('BPVVE')
    for s in ['', 'BE', 'BTXS', 'TXSE', 'BTXSEE', 'BTXXE', 'BXTSE']: assert not is_reber(s), s

def one_substitution_from_reber(t):
    return any(is_reber(t[:i] + c + t[i+1:]) for i in range(len(t)) for c in REBER_ALPHABET if c != t[i])

@pytest.fixture(scope='module')
def rb(): return reber(400, seed=0)

def test_reber_definition(rb):
    for split in rb.splits().values():
        assert split.balance == 0.5
        for s, y, src in zip(split.strings, split.y.tolist(), split.info['source']):
            assert is_reber(s) == (y == 1.), s
            assert len(s) <= 20 and is_reber(src)
            if y == 0.:
                assert one_substitution_from_reber(s), s
                assert sum(a != b for a, b in zip(s, src)) == 1 and len(s) == len(src)
    assert len(rb.train) == 400 and len(rb.test) == 2000

def test_reber_encoding(rb):
    x = rb.train.x
    assert x.shape == (400, 20, 7) and (x.sum(-1) == 1).all()
    decoded = [''.join(REBER_ALPHABET[i] for i in row) for row in x.argmax(-1).tolist()]
    assert decoded == [s.rjust(20, 'B') for s in rb.train.strings]  # left padded with B
    assert rb.train.lengths.tolist() == [len(s) for s in rb.train.strings]
    right = reber(50, pad='right', seed=0)
    assert right.train.x.sum((1, 2)).long().tolist() == right.train.lengths.tolist()

def test_reber_seed_and_fixed_test_set(rb):
    assert reber(400, seed=0).train.strings == rb.train.strings
    assert reber(400, seed=1).train.strings != rb.train.strings
    assert reber(50, seed=0).test.strings == rb.test.strings  # the test set does not depend on the training size
    nv = reber(400, novel_test=True, seed=0)
    assert not set(nv.train.strings) & set(nv.test.strings) and nv.test.balance == 0.5

def test_reber_sampling_helpers():
    rng = np.random.default_rng(3)
    for _ in range(300):
        s = sample_reber(rng); t = corrupt_reber(s, rng)
        assert is_reber(s) and not is_reber(t) and t[0] == 'B' and t[-1] == 'E'
    with pytest.raises(ValueError, match='max_len=4'): sample_reber(rng, max_len=4)

@pytest.mark.parametrize('kwargs,msg', [(dict(n_train=51), 'n_train=51'), (dict(n_test=-2), 'n_test'),
                                        (dict(max_len=4), 'max_len'), (dict(pad='both'), 'pad')])
def test_reber_bad_input(kwargs, msg):
    with pytest.raises(ValueError, match=msg): reber(**kwargs)

# ---------- symmetry (Section 4.4) ----------
@pytest.mark.parametrize('filler', [1, 10])
def test_symmetry_definition(filler):
    t = symmetry(filler, seed=0)
    assert t.train.x.shape == (5000, 10 + filler, 9) and len(t.test) == 2000
    for split in t.splits().values():
        assert split.balance == 0.5
        assert [is_symmetric(s) for s in split.strings] == [y == 1. for y in split.y.tolist()]
        kinds = split.info['kind']
        assert kinds.count('swap') == kinds.count('substitution') == len(split) // 4
        for s, k, src in zip(split.strings, kinds, split.info['source']):
            assert is_symmetric(src) and s[5:5 + filler] == '0' * filler
            diff = [i for i in range(len(s)) if s[i] != src[i]]
            if k == 'positive': assert s == src
            if k == 'swap': assert len(diff) == 2 and diff[1] == diff[0] + 1 and (s[diff[0]], s[diff[1]]) == (src[diff[1]], src[diff[0]])
            if k == 'substitution': assert len(diff) == 1
        decoded = [''.join(t.alphabet[i] for i in row) for row in split.x.argmax(-1).tolist()]
        assert decoded == split.strings

def test_symmetry_seed_and_errors():
    a, b, c = symmetry(10, 400, 400, seed=4), symmetry(10, 400, 400, seed=4), symmetry(10, 400, 400, seed=5)
    assert a.train.strings == b.train.strings and torch.equal(a.train.x, b.train.x) and a.train.strings != c.train.strings
    nv = symmetry(1, 400, 400, novel_test=True, seed=0)
    assert not set(nv.train.strings) & set(nv.test.strings)
    assert is_symmetric('acafbbfaca') and not is_symmetric('acafbbafca') and not is_symmetric('ahafbbfaca')
    for kwargs, msg in [(dict(n_train=5001), 'n_train=5001'), (dict(filler=-1), 'filler'), (dict(n_symbols=27), 'n_symbols'),
                        (dict(half=1), 'half')]:
        with pytest.raises(ValueError, match=msg): symmetry(**kwargs)

# ---------- the common interface ----------
def test_make_task_and_containers():
    assert set(TASKS) == {'parity', 'majority', 'reber', 'symmetry'}
    t = make_task('reber', n_train=50, n_test=100, seed=2)
    assert isinstance(t, SequenceTask) and isinstance(t.test, SeqSplit) and t.params['seed'] == 2 and t.n_in == 7
    x, y, l = t.train.dataset(lengths=True)[0]
    assert x.shape == (20, 7) and y.dtype == torch.float32 and l.dtype == torch.int64
    assert list(t.summary().index) == ['train', 'test']
    with pytest.raises(ValueError, match="did you mean 'parity'"): make_task('parrity')
    with pytest.raises(ValueError, match="did you mean 'n_train'"): make_task('symmetry', n_trian=8)
    with pytest.raises(ValueError, match='inconsistent'):
        SeqSplit(torch.zeros(2, 3, 1), torch.zeros(3), torch.zeros(2, dtype=torch.long), ['a', 'b'])
