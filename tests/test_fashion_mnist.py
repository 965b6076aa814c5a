"Tests of Fashion-MNIST in attractor_nb.data: the registry entry, the search path with Debian's folder, the reader, errors"
import gzip, hashlib, shutil, struct
from pathlib import Path

import pytest
import torch

import attractor_nb.data as D
from attractor_nb.data import (CorruptDataError, DATASETS, DataFile, DataNotFoundError, FASHION_MNIST_CLASSES, IDX_IMAGES,
                               IDX_LABELS, data_search_paths, download_dataset, find_dataset, get_dataset, load_fashion_mnist,
                               read_idx, register_dataset)

NAMES = ['train-images-idx3-ubyte.gz', 'train-labels-idx1-ubyte.gz', 't10k-images-idx3-ubyte.gz', 't10k-labels-idx1-ubyte.gz']
README_MD5 = {'train-images-idx3-ubyte.gz': '8d4fb7e6c68d591d4c3dfef9ec88bf0d', 'train-labels-idx1-ubyte.gz': '25c81989df183df01b3e8a0aad5dffbe',
              't10k-images-idx3-ubyte.gz': 'bef4ecab320f06d8554ea6380940ec79', 't10k-labels-idx1-ubyte.gz': 'bb300cfdad3c16e7a12a480ee83cd310'}


def _found():
    try: return find_dataset('fashion-mnist')
    except (DataNotFoundError, CorruptDataError): return None

FOLDER = _found()
needs_data = pytest.mark.skipif(FOLDER is None, reason="Fashion-MNIST is not available here: apt-get install dataset-fashion-mnist")


@pytest.fixture
def registry():
    saved = dict(DATASETS)
    yield DATASETS
    DATASETS.clear(); DATASETS.update(saved)

@pytest.fixture
def nowhere(tmp_path, monkeypatch):
    "A look-up that finds nothing: no environment folders, no shared/data, no system folders, an empty cache"
    monkeypatch.delenv('ATTRACTOR_NB_DATA', raising=False)
    monkeypatch.setenv('ATTRACTOR_NB_CACHE', str(tmp_path/'cache'))
    monkeypatch.setattr(D, '_shared_data_dirs', lambda: [])
    monkeypatch.setattr(D, 'SYSTEM_DATA_DIRS', [])
    return tmp_path


def test_registered_with_official_files():
    ds = get_dataset('fashion-mnist')
    assert ds.folder == 'fashion-mnist' and ds.reader is load_fashion_mnist and ds.downloadable
    assert [f.path for f in ds.files] == NAMES
    for f in ds.files:
        assert f.md5 == README_MD5[f.path] and len(f.sha256) == 64 and f.size > 0
        assert f.url.startswith('https://raw.githubusercontent.com/zalandoresearch/fashion-mnist/') and f.url.endswith('/data/fashion/' + f.path)
        (deb,) = f.also  # Debian's re-compressed copy: same name, its own size and sha256
        assert deb.path == f.path and deb.size in (f.size - 23, f.size - 24) and deb.sha256 != f.sha256
    assert ds.size == 26421880 + 29515 + 4422102 + 5148
    assert len(FASHION_MNIST_CLASSES) == 10 and FASHION_MNIST_CLASSES[9] == 'Ankle boot'


def test_system_dirs_in_search_order(monkeypatch, tmp_path):
    monkeypatch.setenv('ATTRACTOR_NB_CACHE', str(tmp_path/'cache'))
    monkeypatch.setattr(D, 'SYSTEM_DATA_DIRS', [tmp_path/'sys', tmp_path/'missing'])
    (tmp_path/'sys').mkdir()
    paths = data_search_paths(tmp_path/'r')
    assert paths[0] == tmp_path/'r' and paths[-1] == tmp_path/'cache'/'data'
    assert paths[-2] == tmp_path/'sys'  # after shared/data, before the download cache
    assert tmp_path/'missing' not in paths  # only folders that exist


def test_absent_is_a_clear_error(nowhere):
    with pytest.raises(DataNotFoundError) as e: load_fashion_mnist('train', root=nowhere/'empty')
    msg = str(e.value)
    assert "data set 'fashion-mnist'" in msg and 'fashion-mnist/train-images-idx3-ubyte.gz' in msg
    assert 'apt-get install dataset-fashion-mnist' in msg and 'attractor-nb download fashion-mnist' in msg
    assert str(nowhere/'empty') in msg
    assert e.value.dataset == 'fashion-mnist'


def test_bad_split():
    with pytest.raises(ValueError, match="split='valid'"): load_fashion_mnist('valid')


def test_damaged_copy_names_the_file(nowhere):
    root = nowhere/'bad'; (root/'fashion-mnist').mkdir(parents=True)
    for n in NAMES: (root/'fashion-mnist'/n).write_bytes(gzip.compress(b'not fashion'))
    with pytest.raises(CorruptDataError, match='train-images-idx3-ubyte.gz is damaged'): load_fashion_mnist('train', root=root)


@needs_data
@pytest.mark.parametrize('split,n', [('train', 60000), ('test', 10000)])
def test_shapes_labels_balance(split, n):
    x, y = load_fashion_mnist(split)
    assert x.shape == (n, 28, 28) and x.dtype == torch.uint8
    assert y.shape == (n,) and y.dtype == torch.int64
    assert y.min() == 0 and y.max() == 9
    assert torch.bincount(y).tolist() == [n//10]*10  # exactly balanced
    assert x.max() == 255 and x.min() == 0


@needs_data
def test_same_types_as_mnist_and_different_images():
    x, y = load_fashion_mnist('test')
    xm, ym = D.load_mnist('test')
    assert (x.dtype, y.dtype, x.shape) == (xm.dtype, ym.dtype, xm.shape)
    assert not torch.equal(x[:100], xm[:100])
    assert abs(x.float().mean().item()/255 - 0.2860) < 2e-3  # Fashion-MNIST's published test mean is 0.2868


@needs_data
def test_found_in_a_system_folder(nowhere, monkeypatch):
    sysdir = nowhere/'usr-share-datasets'; sysdir.mkdir()
    (sysdir/'fashion-mnist').symlink_to(FOLDER, target_is_directory=True)
    monkeypatch.setattr(D, 'SYSTEM_DATA_DIRS', [sysdir])
    assert find_dataset('fashion-mnist') == sysdir/'fashion-mnist'
    assert load_fashion_mnist('test')[1].shape == (10000,)


@needs_data
def test_labels_are_the_official_bytes():
    "Whichever copy is installed, its label files decompress to the official files' contents (first labels of each split)"
    y = read_idx(FOLDER/'train-labels-idx1-ubyte.gz', IDX_LABELS)
    yt = read_idx(FOLDER/'t10k-labels-idx1-ubyte.gz', IDX_LABELS)
    assert y[:10].tolist() == [9, 0, 0, 3, 0, 2, 7, 2, 5, 5]
    assert yt[:10].tolist() == [9, 2, 1, 1, 6, 1, 4, 6, 5, 7]
    with pytest.raises(CorruptDataError, match='magic number 2049, expected 2051'): read_idx(FOLDER/'t10k-labels-idx1-ubyte.gz', IDX_IMAGES)


@needs_data
def test_download_from_file_urls(registry, nowhere):
    "`download_dataset` with the registry's checksums, served from file:// URLs: lands in the cache and is found there"
    ds = get_dataset('fashion-mnist')
    register_dataset('fashion-mnist', ds.folder, [DataFile(f.path, f.sha256, f.size, (FOLDER/f.path).as_uri(), f.md5, f.also) for f in ds.files],
                     ds.title, ds.reader, ds.how)
    got = download_dataset('fashion-mnist', quiet=True)
    assert got == nowhere/'cache'/'data'/'fashion-mnist'
    assert find_dataset('fashion-mnist') == got
    assert sorted(p.name for p in got.iterdir()) == sorted(NAMES)
