"Tests of the speech front end, data sets and models (attractor_nb.audio) and of the experiment `speech-rman`"
import json, warnings

import numpy as np
import pytest
import soundfile as sf
import torch

warnings.filterwarnings('ignore', message='.*torch.jit.script.*is deprecated')
from attractor_nb.audio import (spectrogram, load_utterance, folder_records, speech_commands_records, fsdd_records, speech_records,
                                spectrogram_tensors, speaker_of, hash_split, speech_resnet, SPEECH_ARCHS, FSDD_TEST_SPEAKERS,
                                SAMPLE_RATE, N_FREQ, N_FRAMES)
from attractor_nb.data import load_audio, CorruptDataError, DataNotFoundError, get_dataset, find_dataset
from attractor_nb.core import run_experiment
from attractor_nb.experiments.speech_rman import SpeechRMANConfig, result_name, speech_splits


def _has_fsdd():
    try: find_dataset('fsdd'); return True
    except (DataNotFoundError, CorruptDataError): return False

needs_fsdd = pytest.mark.skipif(not _has_fsdd(), reason='FSDD (shared/data/fsdd) not available')


def _tone(n, sr, f=440., amp=0.5):
    return (amp*np.sin(2*np.pi*f*np.arange(n)/sr)).astype('float32')


def fake_speech_commands(root, words=('yes', 'no', 'up'), speakers=('aaaa1111', 'bbbb2222', 'cccc3333', 'dddd4444'), n=4000):
    "A tiny copy of the Speech Commands layout: <word>/<speaker>_nohash_0.wav, _background_noise_, the two list files"
    rng = np.random.default_rng(0)
    for k, w in enumerate(words):
        (root/w).mkdir(parents=True, exist_ok=True)
        for s in speakers:  # a different tone per word, so the words are learnable
            sf.write(root/w/f'{s}_nohash_0.wav', _tone(n, 16000, 300 + 400*k) + 0.01*rng.standard_normal(n).astype('float32'), 16000)
    (root/'_background_noise_').mkdir(exist_ok=True)
    sf.write(root/'_background_noise_'/'noise.wav', np.zeros(1600, 'float32'), 16000)
    (root/'validation_list.txt').write_text(''.join(f'{w}/{speakers[0]}_nohash_0.wav\n' for w in words))
    (root/'testing_list.txt').write_text(''.join(f'{w}/{speakers[1]}_nohash_0.wav\n' for w in words))
    return root


@pytest.fixture
def private_cache(tmp_path, monkeypatch):
    "Spectrograms of fake data go to a throw-away cache"
    monkeypatch.setenv('ATTRACTOR_NB_CACHE', str(tmp_path/'cache'))
    return tmp_path/'cache'


# ---------------------------------------------------------------- front end
def test_spectrogram_shape_and_frames():
    s = spectrogram(torch.from_numpy(_tone(SAMPLE_RATE, SAMPLE_RATE)))
    assert s.shape == (1, N_FREQ, N_FRAMES) == (1, 160, 101)
    assert s.dtype == torch.float32
    assert abs(s.mean().item()) < 1e-4 and abs(s.std().item() - 1) < 1e-3
    assert s[0, :, 50].argmax().item() in (8, 9)  # 440 Hz in 50 Hz bins
    # 1 s is exactly 101 frames: nothing is padded, nothing is cut
    assert (s[0, :, -1] != 0).any()
    short = spectrogram(torch.from_numpy(_tone(4000, SAMPLE_RATE)))  # 0.25 s -> 26 frames, then zero padding
    assert (short[0, :, 26:] == 0).all() and (short[0, :, :26] != 0).any()
    long = spectrogram(torch.from_numpy(_tone(3*SAMPLE_RATE, SAMPLE_RATE)))
    assert long.shape == (1, 160, 101)


def test_spectrogram_bad_input():
    with pytest.raises(ValueError, match='mono'): spectrogram(torch.zeros(2, 100))
    with pytest.raises(ValueError, match='empty'): spectrogram(torch.zeros(0))
    with pytest.raises(ValueError, match='n_freq'): spectrogram(torch.zeros(100), n_freq=300)
    assert spectrogram(torch.zeros(1)).abs().max() == 0  # silence: no NaN from a zero std


def test_resampling_8k_to_16k(tmp_path):
    sf.write(tmp_path/'a8k.wav', _tone(4000, 8000, 300), 8000)
    wave, sr = load_audio(tmp_path/'a8k.wav', sr=SAMPLE_RATE)
    assert sr == 16000 and wave.shape == (1, 8000)
    sf.write(tmp_path/'a22k.wav', _tone(22050, 22050, 300), 22050)
    wave, sr = load_audio(tmp_path/'a22k.wav', sr=SAMPLE_RATE)
    assert sr == 16000 and wave.shape == (1, 16000)
    # the tone survives resampling: same peak bin as a tone generated at 16 kHz
    a = load_utterance(tmp_path/'a8k.wav')
    b = spectrogram(torch.from_numpy(_tone(8000, 16000, 300)))
    assert a.shape == (1, 160, 101) and a[0, :, 20].argmax() == b[0, :, 20].argmax()


def test_stereo_mixdown(tmp_path):
    left = _tone(16000, 16000)
    sf.write(tmp_path/'st.wav', np.stack([left, -left], 1), 16000)  # opposite channels cancel
    wave, _ = load_audio(tmp_path/'st.wav', sr=SAMPLE_RATE)
    assert wave.shape == (1, 16000) and wave.abs().max() < 1e-4
    sf.write(tmp_path/'st2.wav', np.stack([left, np.zeros_like(left)], 1), 16000)
    wave, _ = load_audio(tmp_path/'st2.wav', sr=SAMPLE_RATE)
    assert abs(wave.abs().max().item() - 0.25) < 1e-3  # mean of the channels
    assert load_utterance(tmp_path/'st2.wav').shape == (1, 160, 101)


def test_empty_and_corrupt_files_name_the_file(tmp_path):
    (tmp_path/'zero_bytes.wav').write_bytes(b'')
    sf.write(tmp_path/'no_samples.wav', np.zeros((0, 1), 'float32'), 16000)
    (tmp_path/'garbage.wav').write_bytes(b'RIFF\x10\x00\x00\x00WAVEfmt nonsense')
    for name in ('zero_bytes.wav', 'no_samples.wav', 'garbage.wav'):
        with pytest.raises(CorruptDataError, match=name): load_utterance(tmp_path/name)
    with pytest.raises(FileNotFoundError, match='missing.wav'): load_utterance(tmp_path/'missing.wav')


def test_bad_file_in_a_data_set_stops_before_training(tmp_path, private_cache):
    root = fake_speech_commands(tmp_path/'sc')
    (root/'yes'/'eeee5555_nohash_0.wav').write_bytes(b'not a wav')
    with pytest.raises(CorruptDataError, match='eeee5555_nohash_0.wav'): spectrogram_tensors(folder_records(root))


# ---------------------------------------------------------------- data sets
def test_empty_folder_errors(tmp_path):
    (tmp_path/'empty').mkdir()
    with pytest.raises(DataNotFoundError, match='no audio'): folder_records(tmp_path/'empty')
    (tmp_path/'notes'/'yes').mkdir(parents=True); (tmp_path/'notes'/'yes'/'readme.txt').write_text('hi')
    with pytest.raises(DataNotFoundError, match='no audio'): folder_records(tmp_path/'notes')
    with pytest.raises(DataNotFoundError, match='does not exist'): folder_records(tmp_path/'nowhere')
    # the experiment refuses before training: a folder of nothing, and a folder that is not there
    with pytest.raises(DataNotFoundError, match='no audio'): speech_splits(str(tmp_path/'empty'))
    with pytest.raises(ValueError, match='data='): SpeechRMANConfig(data=str(tmp_path/'nowhere'))


def test_fake_speech_commands_split(tmp_path):
    root = fake_speech_commands(tmp_path/'sc')
    recs = speech_commands_records(folder=root)
    assert len(recs) == 12 and sorted({r['label'] for r in recs}) == ['no', 'up', 'yes']  # _background_noise_ is no class
    split = {(r['label'], r['speaker']): r['split'] for r in recs}
    for w in ('yes', 'no', 'up'):
        assert split[(w, 'aaaa1111')] == 'valid' and split[(w, 'bbbb2222')] == 'test'
        assert split[(w, 'cccc3333')] == split[(w, 'dddd4444')] == 'train'
    assert speech_records(str(root)) == recs  # a folder path takes the same path
    (root/'testing_list.txt').write_text('yes/nobody_nohash_0.wav\n')  # lists that match no file: not Speech Commands
    with pytest.raises(CorruptDataError, match='testing_list'): speech_commands_records(folder=root)


def test_folder_without_lists_splits_by_speaker(tmp_path):
    rng = np.random.default_rng(1)
    for w in ('a', 'b'):
        (tmp_path/w).mkdir()
        for s in range(30):
            for i in range(2): sf.write(tmp_path/w/f'spk{s}_nohash_{i}.wav', rng.standard_normal(800).astype('float32')*0.1, 16000)
    recs = folder_records(tmp_path)
    by_spk = {}
    for r in recs: by_spk.setdefault(r['speaker'], set()).add(r['split'])
    assert all(len(v) == 1 for v in by_spk.values())  # a speaker is in one split only
    assert {r['split'] for r in recs} >= {'train'}
    assert speaker_of('x/abc_nohash_3.wav') == 'abc' and hash_split('abc') == hash_split('abc')


def test_speech_commands_registered():
    ds = get_dataset('speech-commands')
    (f,) = ds.files
    assert ds.downloadable and f.url.endswith('speech_commands_v0.01.tar.gz')
    assert f.sha256 == '743935421bb51cccdb6bdd152e04c5c70274e935c82119ad7faeec31780d811d'


@needs_fsdd
def test_fsdd_speaker_split_is_disjoint():
    recs = fsdd_records()
    train = {r['speaker'] for r in recs if r['split'] == 'train'}
    test = {r['speaker'] for r in recs if r['split'] == 'test'}
    assert not train & test and test == set(FSDD_TEST_SPEAKERS) and len(train) == 4
    assert len(recs) == 3000 and sorted({r['label'] for r in recs}) == [str(d) for d in range(10)]
    other = fsdd_records(('george',))
    assert {r['speaker'] for r in other if r['split'] == 'test'} == {'george'}
    with pytest.raises(ValueError, match='nobody'): fsdd_records(('nobody',))
    sp = speech_splits('fsdd', train_size=50, test_size=30)
    assert not set(sp['speakers']['train']) & set(sp['speakers']['test'])
    assert sp['train'][0].shape == (50, 1, 160, 101) and sp['train'][0].dtype == torch.float16 and sp['valid'] is None


def test_spectrogram_cache(tmp_path, private_cache):
    root = fake_speech_commands(tmp_path/'sc')
    recs = folder_records(root)
    a = spectrogram_tensors(recs)
    assert a['x'].shape == (12, 1, 160, 101) and a['classes'] == ['no', 'up', 'yes']
    assert len(list(private_cache.rglob('spect-*.pt'))) == 1
    b = spectrogram_tensors(recs)
    assert torch.equal(a['x'], b['x']) and torch.equal(a['y'], b['y'])
    sf.write(root/'yes'/'cccc3333_nohash_0.wav', np.zeros(3000, 'float32'), 16000)  # a changed file is a new key
    spectrogram_tensors(folder_records(root))
    assert len(list(private_cache.rglob('spect-*.pt'))) == 2


# ---------------------------------------------------------------- models
@pytest.mark.parametrize('arch', list(SPEECH_ARCHS))
def test_param_counts_match_torchvision(arch):
    import torchvision
    from torch import nn
    tv = getattr(torchvision.models, arch)(num_classes=30)
    tv.conv1 = nn.Conv2d(1, 64, 7, 2, 3, bias=False)
    n = lambda m: sum(p.numel() for p in m.parameters())
    assert n(speech_resnet(arch, 30)) == n(tv)
    assert n(speech_resnet('resnet18', 30)) == 11_185_630 and n(speech_resnet('resnet34', 30)) == 21_293_790


def test_forward_shapes_and_pool_layer():
    from attractor_nb.rman import find_pool_layer
    x = torch.randn(3, 1, 160, 101)
    for arch in SPEECH_ARCHS:
        for stem in ('imagenet', 'cifar'):
            m = speech_resnet(arch, 10, width=4, stem=stem).eval()
            assert m(x).shape == (3, 10) and m.pooled(x).shape == (3, 32)
    assert find_pool_layer(speech_resnet('resnet18', 10, width=4))[0] == 'avgpool'
    with pytest.raises(ValueError, match='arch'): speech_resnet('resnet50')


# ---------------------------------------------------------------- the experiment
def test_config_and_names(tmp_path):
    q = SpeechRMANConfig.at_scale('quick')
    assert result_name(q) == 'rman-speech-fsdd-resnet18-h64-s0'
    assert result_name(q.replace(arch='resnet34', h=0, seed=2)) == 'rman-speech-fsdd-resnet34-h0-s2'
    p = SpeechRMANConfig.at_scale('paper')
    assert (p.epochs, p.lr, p.bs, p.opt, p.milestones, p.width) == (30, 3e-3, 100, 'adam', (10, 20), 64)
    with pytest.raises(ValueError, match='h='): q.replace(h=-1)
    with pytest.raises(ValueError, match='resnet50'): q.coerce('arch', 'resnet50')
    assert q.coerce('milestones', '5,8') == (5, 8) and q.coerce('test_speakers', 'george') == ('george',)


def test_tiny_run_on_a_folder(tmp_path, private_cache):
    torch.set_num_threads(1)
    root = fake_speech_commands(tmp_path/'words', n=2000)
    rec = run_experiment('speech-rman', scale='quick', seed=0, out=tmp_path/'out', device='cpu', progress=False,
                         data=str(root), h=4, width=4, epochs=2, bs=4)
    path = tmp_path/'out'/'rman-speech-folder-words-resnet18-h4-s0.json'
    assert rec['path'] == path and path.exists()
    saved = json.loads(path.read_text())
    m = saved['metrics']
    assert 0 <= m['error'] <= 1 and m['n_train'] == 6 and m['n_test'] == 3 and m['effective_attractors'] <= 4
    assert len(saved['history']) == 2 and saved['history'][0]['alpha'] == pytest.approx(1e-4)
    assert saved['speakers']['test'] == ['bbbb2222'] and 'audio folder' in saved['data']
    assert (tmp_path/'out'/saved['figures'][0]).exists()


@needs_fsdd
def test_tiny_run_on_fsdd(tmp_path):
    torch.set_num_threads(1)
    rec = run_experiment('speech-rman', scale='quick', seed=1, out=tmp_path, device='cpu', progress=False,
                         h=0, width=4, epochs=1, train_size=60, test_size=40, bs=20)
    saved = json.loads((tmp_path/'rman-speech-fsdd-resnet18-h0-s1.json').read_text())
    assert saved['metrics']['n_test'] == 40 and 'effective_attractors' not in saved['metrics']
    assert 'Free Spoken Digit' in saved['data'] and saved['config']['test_speakers'] == list(FSDD_TEST_SPEAKERS)


def test_cli_refuses_bad_data_before_running(cli):
    r = cli('run', 'speech-rman', '--data', 'no-such-folder', '--no-progress', timeout=300)
    assert r.returncode != 0 and 'data=' in r.stderr
