"""Part-of-speech tagging (attractor_nb.pos, experiment sdrnn-pos, `attractor-nb tag`): data protocol, masking, GloVe
lookup, a tiny end-to-end run with its tagger file, and the `tag` command with and without a tagger."""
import json
import numpy as np
import pytest, torch
from attractor_nb import pos
from attractor_nb.pos import (CATCH_ALL, TagSet, derive_tagset, derive_vocab, split_corpus, training_subset, glove_lookup,
                              encode_sentences, masked_cross_entropy, token_counts, length_mask, POSTagger, Tagger)


@pytest.fixture(scope='module')
def corpus(): return pos.brown_corpus()


def test_tagset_derivation_and_compound_tags():
    ts = derive_tagset([['NN', 'NN-TL', 'NN', 'PPS+BEZ'], ['NN-TL', 'AT', 'NN', 'FW-NN']], n_tags=3)
    assert ts.names == [CATCH_ALL, 'NN', 'NN-TL', 'AT']  # counts 3, 2, then a tie broken alphabetically (AT < FW-NN < PPS+BEZ)
    # a compound tag is one class of its own, never split into its parts; rare compounds go to the catch-all
    assert ts.encode(['NN-TL', 'NN', 'PPS+BEZ', 'FW-NN', 'unseen']) == [2, 1, 0, 0, 0]
    assert ts.decode([0, 3]) == [CATCH_ALL, 'AT']
    with pytest.raises(ValueError, match='n_tags=0'): derive_tagset([['a']], n_tags=0)
    with pytest.raises(ValueError, match='catch-all'): TagSet([CATCH_ALL])


def test_brown_tagset_matches_appendix_b5(corpus):
    _, pool = split_corpus(len(corpus))
    ts = derive_tagset([corpus[i][1] for i in pool])
    assert len(ts) == 148 and 'NN-TL' in ts.index and 'PPS+BEZ' in ts.index
    tags = np.array(ts.encode([t for _, tt in corpus for t in tt]))
    assert abs((tags == 0).mean() - 0.0021) < 0.0003  # "the catch-all category contained only 0.21% of all words"
    uni = derive_tagset([t for _, t in pos.brown_corpus('universal')[:2000]])
    assert len(uni) == 13  # 12 universal tags + catch-all


def test_test_set_size_seeding_and_disjoint_training_sets(corpus):
    test, pool = split_corpus(len(corpus))
    assert len(test) == 17_202 and len(pool) == 40_138 and len(corpus) == pos.BROWN_SENTS
    assert np.array_equal(split_corpus(len(corpus))[0], test)  # fixed
    assert not np.array_equal(split_corpus(len(corpus), seed=1)[0], test)
    assert not set(test) & set(pool)
    fit, valid = training_subset(pool, 500, seed=3)
    assert (len(fit), len(valid)) == (400, 100)  # 20% held out for early stopping
    assert not set(fit) & set(valid) and not (set(fit) | set(valid)) & set(test)
    assert np.array_equal(training_subset(pool, 500, seed=3)[0], fit)
    assert not np.array_equal(training_subset(pool, 500, seed=4)[0], fit)
    with pytest.raises(ValueError, match='train_size=40139'): training_subset(pool, 40_139, seed=0)


def test_padding_never_enters_loss_or_accuracy():
    torch.manual_seed(0)
    pred, Y, L = torch.randn(4, 6, 9), torch.randint(0, 9, (4, 6)), torch.tensor([6, 1, 3, 4])
    loss, counts = masked_cross_entropy(pred, Y, L), token_counts(pred, Y, L)
    pad = ~length_mask(L, 6)
    p2, Y2 = pred.clone(), Y.clone()
    p2[pad], Y2[pad] = 50*torch.randn(int(pad.sum()), 9), 8
    assert torch.allclose(masked_cross_entropy(p2, Y2, L), loss) and token_counts(p2, Y2, L) == counts
    assert counts[1] == 14
    # and the model's outputs at real words do not depend on the padded inputs (both directions)
    E, known = torch.randn(12, 5), torch.ones(12, dtype=torch.bool)
    m = POSTagger(E, known, 9, hidden=4, attractor_size=8, iters=3, seed=0).eval()
    x = torch.randint(2, 12, (4, 6)); x2 = x.clone(); x2[pad] = 3
    mask = length_mask(L, 6)
    assert torch.allclose(m(x, L)[mask], m(x2, L)[mask], atol=1e-6)


def test_glove_lookup_and_unknown_words():
    words, vecs = pos.load_glove_vectors(50, vocab={'the', 'do', "n't", 'cat'})
    assert vecs.shape[1] == 50 and set(words) == {'the', 'do', "n't", 'cat'}
    E, how = glove_lookup(['cat', "don't", 'qqzzxq'], words, vecs)
    assert how == ['glove', 'pieces', 'unknown']
    assert torch.equal(E[0], vecs[words.index('cat')]) and torch.equal(E[2], torch.zeros(50))
    assert torch.allclose(E[1], (vecs[words.index('do')] + vecs[words.index("n't")])/2)
    voc = derive_vocab([['The', 'cat', 'qqzzxq'], ['the']], size=2)
    assert voc.words == ['<pad>', '<unk>', 'the', 'cat'] and voc.encode(['THE', 'qqzzxq']) == [2, 1]
    # unknown words: one learned vector each (starting at zero), or zeros that never train
    known = torch.tensor([True, False, True, False])
    emb = pos.TaggerEmbedding(torch.ones(4, 3), known)
    assert torch.equal(emb(torch.tensor([[0, 1, 2, 3]]))[0, [1, 3]], torch.zeros(2, 3)) and emb.unknown.requires_grad
    assert not pos.TaggerEmbedding(torch.ones(4, 3), known, learn_unknown=False).unknown.requires_grad
    with pytest.raises(ValueError, match='glove_dim=64'): pos.load_glove_vectors(64)


def test_out_of_vocabulary_words_get_the_catch_all_tag():
    voc, ts = derive_vocab([['the']]), derive_tagset([['AT', 'NN']])
    X, Y, L = encode_sentences([(['The', 'zebra'], ['AT', 'NN'])], voc, ts)
    assert X[0].tolist() == [2, 1] and Y[0].tolist() == [ts.index['AT'], 0]
    assert encode_sentences([(['The', 'zebra'], ['AT', 'NN'])], voc, ts, oov_catchall=False)[1][0].tolist() == [1, 2]


@pytest.fixture(scope='module')
def tiny_run(tmp_path_factory, one_thread):
    from attractor_nb.core import run_experiment
    out = tmp_path_factory.mktemp('pos')
    rec = run_experiment('sdrnn-pos', scale='quick', out=out, progress=False, train_size=20, replications=2,
                         max_epochs=1, n_test_eval=40)
    return out, rec


def test_tiny_run_writes_results_and_tagger(tiny_run):
    out, rec = tiny_run
    f = out/'sdrnn-pos-sdrnn-n20.json'
    saved = json.loads(f.read_text())
    m = saved['metrics']
    assert m['embedding_dim'] == 50 and m['n_test_sentences'] == 40 and m['replications'] == 2 and m['n_classes'] == 148
    assert (m['n_fit'], m['n_valid']) == (16, 4)
    accs = [r['accuracy'] for r in saved['replications']]
    assert abs(m['accuracy'] - np.mean(accs)) < 1e-9 and abs(m['accuracy_sem'] - np.std(accs, ddof=1)/np.sqrt(2)) < 1e-9
    assert 0 <= m['nltk_default'] <= m['nltk_unigram'] <= 1 and '50-d' in saved['data']
    tg = Tagger(saved['tagger'])
    assert tg.info['model'] == 'sdrnn' and tg.info['train_size'] == 20
    tags = tg.tag(['The', 'dog', 'runs', '.'])
    assert len(tags) == 4 and all(t in tg.tagset.index for t in tags)


def test_cli_tag_with_checkpoint(tiny_run, cli, monkeypatch, capsys):
    out, rec = tiny_run
    r = cli('tag', 'The quick brown fox jumps', '--checkpoint', out/'taggers'/'sdrnn-pos-sdrnn-n20.pt', timeout=120)
    assert r.returncode == 0, r.stderr
    pairs = r.stdout.split()
    assert [p.rsplit('/', 1)[0] for p in pairs] == ['The', 'quick', 'brown', 'fox', 'jumps'] and all('/' in p for p in pairs)
    assert 'sdrnn' in r.stderr and '50-d' in r.stderr
    # without --checkpoint it finds the tagger under $ATTRACTOR_NB_RESULTS/quick/taggers
    import shutil
    shutil.copytree(out/'taggers', out/'res'/'quick'/'taggers')
    from attractor_nb.cli import main
    monkeypatch.setenv('ATTRACTOR_NB_RESULTS', str(out/'res'))
    assert main(['tag', 'Dogs', 'bark']) == 0
    o = capsys.readouterr()
    assert o.out.split()[0].startswith('Dogs/') and 'sdrnn-pos-sdrnn-n20.pt' in o.err


def test_cli_tag_without_checkpoint(tmp_path, cli, capsys):
    r = cli('tag', 'The quick brown fox jumps', env={'ATTRACTOR_NB_RESULTS': str(tmp_path)}, timeout=60)
    assert r.returncode == 2 and 'Traceback' not in r.stderr
    assert 'no trained part-of-speech tagger' in r.stderr and 'attractor-nb run sdrnn-pos --scale quick' in r.stderr
    r = cli('tag', 'Hi', '--checkpoint', tmp_path/'nope.pt', timeout=60)
    assert r.returncode == 2 and 'nope.pt' in r.stderr and 'attractor-nb run sdrnn-pos' in r.stderr
    (tmp_path/'bad.pt').write_text('not a tagger')
    from attractor_nb.cli import main
    assert main(['tag', 'Hi', '--checkpoint', str(tmp_path/'bad.pt')]) == 1
    err = capsys.readouterr().err
    assert 'not a readable tagger file' in err and 'Traceback' not in err


def test_paused_run_resumes_to_the_same_result_with_small_checkpoints(tmp_path, one_thread):
    "A run paused by `stop_after` and resumed ends where an uninterrupted run ends; checkpoints leave the word vectors out"
    from attractor_nb.core import run_experiment, RunPaused
    kw = dict(scale='quick', device='cpu', progress=False, train_size=20, replications=2, max_epochs=2, n_test_eval=40,
              baselines=False, save_tagger=False)
    whole = run_experiment('sdrnn-pos', out=tmp_path/'a', checkpoints=tmp_path/'cka', **kw)
    with pytest.raises(RunPaused):
        run_experiment('sdrnn-pos', out=tmp_path/'b', checkpoints=tmp_path/'ckb', stop_after=1e-9, **kw)
    ck = tmp_path/'ckb'/'sdrnn-pos-sdrnn-n20'/'rep0'/'last.pth'
    st = torch.load(ck, map_location='cpu', weights_only=False)
    assert st['epoch'] == 0 and not (tmp_path/'ckb'/'sdrnn-pos-sdrnn-n20'/'rep1').exists()
    assert 'emb.unknown' in st['model'] and not [k for k in st['model'] if k in ('emb.vectors', 'emb.slot')]
    assert ck.stat().st_size < 20_002*50*4  # smaller than the GloVe matrix alone (it was 5 MB for the RNN with it)
    resumed = run_experiment('sdrnn-pos', out=tmp_path/'b', checkpoints=tmp_path/'ckb', resume=True, **kw)
    acc = lambda rec: [r['accuracy'] for r in rec['replications']]
    assert acc(resumed) == pytest.approx(acc(whole), abs=1e-6) and len(resumed['history']) == len(whole['history'])
