"""The `attractor-nb` command: listing, running, bad input (exit 2, no traceback), and resume after a real kill and a pause."""
import json, signal, subprocess, sys, time
import pytest, torch
from conftest import ROOT, run_cli

@pytest.mark.parametrize('args,msg', [
    (['run', 'no-such-experiment'], 'unknown experiment'),
    (['run', 'mnist-baseline', '--scale', 'huge'], '--scale huge'),
    (['run', 'mnist-baseline', '--hiden', '10'], 'unknown option --hiden'),
    (['run', 'mnist-baseline', '--epochs', 'many'], '--epochs'),
    (['run', 'mnist-baseline', '--seeds', '1,x'], '--seeds'),
    (['run', 'mnist-baseline', '--device', 'cuda:7'], 'device'),
    (['run', 'mnist-baseline', '--stop-after', '1'], '--checkpoints DIR'),  # quick scale: no checkpoints to continue from
    (['run', 'mnist-baseline', '--stop-after', '0', '--checkpoints', 'ck'], 'positive number of hours'),
    (['run', 'mnist-baseline', '--stop-after', '1', '--checkpoints', 'ck', '--seeds', '0,1', '--jobs', '2'], 'drop --jobs'),
    (['run'], 'experiment'),
    (['list', '--frob'], 'unrecognised arguments'),
    (['nonsense'], 'invalid choice'),
    (['download', 'no-such-data'], 'unknown data set'),
])
def test_bad_input_exits_2_without_traceback(args, msg, capsys):
    "In-process through `main` (the same code the console script runs), so the cases share one import of the library"
    from attractor_nb.cli import main
    code = main(args)
    err = capsys.readouterr().err
    assert code == 2, (code, err)
    assert msg in err and 'Traceback' not in err, err

def test_stop_after_takes_the_default_checkpoints(monkeypatch, capsys):
    "`--stop-after` is checked as `run_experiment` checks it: a quick run that resumes has the default checkpoints, so it is accepted"
    from attractor_nb import core
    from attractor_nb.cli import main
    seen = {}
    def fake_run(name, **kw):
        seen.update(kw); return dict(metrics={}, path='nowhere.json')
    monkeypatch.setattr(core, 'run_experiment', fake_run)
    assert main(['run', 'mnist-baseline', '--resume', '--stop-after', '2', '--no-progress']) == 0, capsys.readouterr().err
    assert seen['resume'] and seen['checkpoints'] is None and 1.99 < seen['stop_after'] <= 2, seen

def test_console_script_bad_input():
    "The real entry point, in a subprocess: an unknown experiment is one line on stderr and exit status 2"
    r = run_cli('run', 'no-such-experiment')
    assert r.returncode == 2 and 'unknown experiment' in r.stderr and 'Traceback' not in r.stderr, r.stderr

def test_missing_data_exits_2(tmp_path, monkeypatch, capsys):
    "A missing data set: one message naming the data set, where it looked and how to provide it; exit status 2"
    from attractor_nb import data
    from attractor_nb.cli import main
    empty = tmp_path/'empty'; empty.mkdir()
    monkeypatch.setenv('ATTRACTOR_NB_DATA', str(empty))
    monkeypatch.setenv('ATTRACTOR_NB_CACHE', str(tmp_path/'cache'))
    monkeypatch.setattr(data, '_shared_data_dirs', lambda: [])  # hide ../shared/data
    code = main(['run', 'mnist-baseline', '--out', str(tmp_path/'res'), '--no-progress'])
    err = capsys.readouterr().err
    assert code == 2, err
    assert 'mnist' in err and str(empty) in err and 'attractor-nb download mnist' in err and 'Traceback' not in err

def test_list_and_help():
    r = run_cli('list')
    assert r.returncode == 0 and 'mnist-baseline' in r.stdout and 'quick' in r.stdout
    r = run_cli('--help')
    assert r.returncode == 0 and 'run' in r.stdout

def test_run_two_seeds(tmp_path):
    r = run_cli('run', 'mnist-baseline', '--seeds', '0,1', '--epochs', '1', '--train-size', '2000', '--out', tmp_path, '--no-progress')
    assert r.returncode == 0, r.stderr
    recs = [json.loads((tmp_path/f'mnist-baseline-s{s}.json').read_text()) for s in (0, 1)]
    assert [r['seed'] for r in recs] == [0, 1]
    assert recs[0]['metrics'] != recs[1]['metrics']  # different seeds, different runs
    for rec in recs:
        assert rec['config']['epochs'] == 1 and rec['scale'] == 'quick'
        assert rec['wall_time_s'] > 0 and rec['versions']['torch'] and 'cpu_count' in rec['hardware']
        assert set(rec['git']) == {'revision', 'dirty'}

def test_run_seeds_as_concurrent_processes(tmp_path):
    "`--jobs 2` gives the same results as the seeds run one after the other (test_run_two_seeds's arguments)"
    args = ['run', 'mnist-baseline', '--seeds', '0,1', '--epochs', '1', '--train-size', '2000', '--no-progress']
    r = run_cli(*args, '--jobs', '2', '--out', tmp_path/'par')
    assert r.returncode == 0, r.stderr
    assert '2 concurrent processes' in r.stdout and r.stdout.count('results: ') == 2
    r1 = run_cli(*args[:3], '1', *args[4:], '--out', tmp_path/'seq')  # seed 1 alone, in this process's way
    assert r1.returncode == 0, r1.stderr
    par, seq = (json.loads((tmp_path/d/'mnist-baseline-s1.json').read_text()) for d in ('par', 'seq'))
    assert par['metrics'] == seq['metrics'] and par['seed'] == 1
    assert (tmp_path/'par'/'mnist-baseline-s0.json').exists()

ARGS = ['run', 'mnist-baseline', '--epochs', '6', '--train-size', '8000', '--valid-size', '1000', '--no-progress']

def _start_until_checkpoint(tmp_path, ck):
    "Start `ARGS` as a CLI process with checkpoints under tmp_path/ck; return it once its first checkpoint `ck` exists"
    p = subprocess.Popen([sys.executable, '-m', 'attractor_nb.cli', *ARGS, '--out', tmp_path/'a', '--checkpoints', tmp_path/'ck'],
                         cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    deadline = time.time() + 300
    while not ck.exists():
        assert p.poll() is None, f"the run ended before its first checkpoint: {p.stderr.read().decode()[-2000:]}"
        assert time.time() < deadline, "no checkpoint after 300 s"
        time.sleep(0.02)
    return p

def test_kill_pause_and_resume(tmp_path):
    "A run killed with SIGKILL, then paused by --stop-after, resumes from its last checkpoint and ends exactly where an uninterrupted run ends"
    ck = tmp_path/'ck'/'mnist-baseline-s0'/'last.pth'
    p = _start_until_checkpoint(tmp_path, ck)
    p.send_signal(signal.SIGKILL); p.wait()
    done = torch.load(ck, weights_only=False)['epoch']
    assert done < 5, "the run finished before it could be killed: the test did not test resume"
    assert not (tmp_path/'a'/'mnist-baseline-s0.json').exists()

    r = run_cli(*ARGS, '--out', tmp_path/'a', '--checkpoints', tmp_path/'ck', '--resume', '--stop-after', '1e-6')
    assert r.returncode == 3 and 'paused after epoch' in r.stderr and '--resume' in r.stderr and 'Traceback' not in r.stderr, r.stderr
    assert torch.load(ck, weights_only=False)['epoch'] == done + 1  # one more epoch, then the pause
    assert not (tmp_path/'a'/'mnist-baseline-s0.json').exists()

    r = run_cli(*ARGS, '--out', tmp_path/'a', '--checkpoints', tmp_path/'ck', '--resume')
    assert r.returncode == 0, r.stderr
    resumed = json.loads((tmp_path/'a'/'mnist-baseline-s0.json').read_text())
    assert [h['epoch'] for h in resumed['history']] == list(range(6))  # nothing lost, nothing repeated
    assert [s['ended'] for s in resumed['segments']] == ['killed', 'paused', 'finished'], resumed['segments']
    assert resumed['wall_time_total_s'] >= resumed['wall_time_s']

    r = run_cli(*ARGS, '--out', tmp_path/'b')
    assert r.returncode == 0, r.stderr
    straight = json.loads((tmp_path/'b'/'mnist-baseline-s0.json').read_text())
    assert resumed['metrics'] == straight['metrics'], (done, resumed['metrics'], straight['metrics'])
    assert [h['valid_loss'] for h in resumed['history']] == [h['valid_loss'] for h in straight['history']]


def test_data_lists_every_registered_data_set(cli):
    "`data` shows the data sets of `attractor_nb.data` and those other modules register (Speech Commands, in `audio`)"
    r = cli('data')
    assert r.returncode == 0, r.stderr
    names = {line.split()[0] for line in r.stdout.splitlines() if line.strip()}
    assert {'mnist', 'fashion-mnist', 'fsdd', 'speech-commands'} <= names, r.stdout
    assert 'attractor-nb download speech-commands' in r.stdout  # not offline here: it says how to get it


def test_bench_command_writes_results(cli, tmp_path):
    r = cli('bench', 'sdrnn', '--quick', '--device', 'cpu', '--out', tmp_path, env={'OMP_NUM_THREADS': '1'})
    assert r.returncode == 0, r.stderr
    assert f"results: {tmp_path/'bench_sdrnn.json'}" in r.stdout
    rec = json.loads((tmp_path/'bench_sdrnn.json').read_text())
    assert rec['config']['scale'] == 'quick' and rec['metrics']


def test_sigterm_stops_a_run_and_logs_its_piece(tmp_path):
    "SIGTERM (a batch queue's stop) ends a run with status 143 and one line; segments.json keeps the piece's seconds"
    ckdir, t_start = tmp_path/'ck'/'mnist-baseline-s0', time.time()
    p = _start_until_checkpoint(tmp_path, ckdir/'last.pth')
    p.send_signal(signal.SIGTERM)
    err = p.communicate(timeout=120)[1].decode()
    assert p.returncode == 143, (p.returncode, err)
    assert 'terminated (SIGTERM)' in err and '--resume' in err and 'Traceback' not in err, err
    assert not (tmp_path/'a'/'mnist-baseline-s0.json').exists()
    segs = json.loads((ckdir/'segments.json').read_text())
    assert [s['ended'] for s in segs] == ['interrupted'], segs  # not 'killed': its time is known
    assert 0 < segs[0]['seconds'] <= time.time() - t_start, segs
