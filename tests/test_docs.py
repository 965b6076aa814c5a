"""The documentation site (tools/docs.py): its conversion rules, the build as `make docs` runs it, and the built site
checked in a real browser (Chromium).

In the browser the site is served on a random loopback port; every request that would leave the machine is blocked
and fails the test, and so does a request the site answers with an error, or a JavaScript error. Set
ATTRACTOR_NB_DOCS_SHOTS to a folder to keep screenshots of the pages the tests visit."""
import functools, http.server, json, os, re, shutil, subprocess, sys, threading, time
from pathlib import Path
from urllib.parse import urlparse
import pytest
from conftest import ROOT, NBS

sys.path.insert(0, str(ROOT/'tools'))
import docs  # tools/docs.py

CHROMIUM = shutil.which('chromium') or ('/usr/bin/chromium' if Path('/usr/bin/chromium').exists() else None)
pytestmark = pytest.mark.xdist_group('docs')  # one worker builds the site once for every test here
browser_test = pytest.mark.skipif(CHROMIUM is None, reason='Chromium is not installed (Debian: apt-get install '
                                  'chromium): the documentation site is checked in a real browser')

def _notebooks():
    "Every notebook that must be a page, as nbdev finds them"
    return sorted(p for p in NBS.rglob('*.ipynb') if not any(x.startswith(('_', '.')) for x in p.relative_to(NBS).parts))

# ---------------------------------------------------------------------------------------------- conversion rules
def test_pandoc_ids():
    "Heading ids follow pandoc's rules, which nbdev's doc links assume"
    for text, want in [('RMAN.forward', 'rman.forward'), ('RMAN.__init__', 'rman.__init__'), ('relu_max', 'relu_max'),
                       ('Command line: `attractor-nb`', 'command-line-attractor-nb'), ('4.1 Parity task', 'parity-task'),
                       ('The [`RMAN`](rman.html#rman) module', 'the-rman-module'), ('**Bold** words', 'bold-words')]:
        assert docs.pandoc_id(text) == want, text
    ids = docs.Ids()
    md = docs.add_heading_ids('## Same\n\n## Same\n\n```python\n# not a heading\n```\n\n### Own {#mine .cls}', ids)
    assert md.split('\n\n')[:2] == ['## Same {#same}', '## Same {#same-1}']
    assert '# not a heading\n' in md and '### Own {#mine .cls}' in md and ids.used == {'same', 'same-1', 'mine'}

def test_quarto_callouts():
    md = docs.quarto_divs('::: {.callout-warning}\n## Careful\nText with $x$.\n\n```python\n:::\n```\n:::\n\n'
                          '::: {.column-margin}\nside\n:::\nafter')
    assert md.startswith('!!! warning "Careful"\n    Text with $x$.\n\n    ```python\n    :::\n    ```\n')
    assert 'side\n\nafter' in md and ':::' not in md.replace('    :::', '')
    assert docs.quarto_divs('::: {.callout-tip collapse="true" title="More"}\nx\n:::').startswith('??? tip "More"\n    x')

def test_title_cell_keeps_its_intro():
    "nbdev drops the whole title cell; the paper and claim written under the title stay on the page"
    from fastcore.nbio import dict2nb
    nb = dict2nb({'cells': [{'cell_type': 'markdown', 'metadata': {}, 'source': '# T\n\n> d\n\n**Paper:** P\n\n- a: b'}],
                  'metadata': {}, 'nbformat': 4, 'nbformat_minor': 5})
    docs.keep_intro(nb)
    assert [c.source for c in nb.cells] == ['# T\n\n> d', '**Paper:** P\n\n- a: b']

def test_doc_links_become_relative():
    ids = {'rman': {'rman', 'rmancallback'}, 'core': {'save_results'}, 'index': set()}
    notes = []
    md = docs.rewrite_links(f'[`RMAN`]({docs.site_base()}rman.html#rman) [a](rman.html#rmancallback.after_loss) '
                            '[b](00_core.ipynb#save_results) [c](https://pytorch.org/x.html#y)\n```\n[d](rman.html#no)\n```',
                            'core', ids, {'00_core.ipynb': 'core'}, notes)
    assert md.split('\n')[0] == ('[`RMAN`](rman.md#rman) [a](rman.md#rmancallback) [b](core.md#save_results) '
                                 '[c](https://pytorch.org/x.html#y)')
    assert '[d](rman.html#no)' in md and len(notes) == 1  # code is left alone; the method link lands on its class

def test_results_page_sets_runs_beside_paper(tmp_path):
    from attractor_nb.core import save_results
    for seed, err in [(0, 0.080), (1, 0.082)]:
        save_results(f'rman-cifar10-resnet20-h0-s{seed}', metrics=dict(error=err), config=dict(seed=seed, scale='paper'),
                     experiment='rman-cifar', out=tmp_path, history=[dict(epoch=0, error=0.2), dict(epoch=1, error=err)])
    md, problems = docs.results_markdown(tmp_path/'site', folder=tmp_path)
    assert not problems, problems
    row = next(l for l in md.split('\n') if l.startswith('| CIFAR-10 ResNet-20 |'))
    assert '7.95 ± 0.08' in row and '8.10 ± 0.14 (n=2)' in row and row.count('not yet run') == 3
    assert '`rman-cifar10-resnet20-h0-s0`' in md and (tmp_path/'site'/'figures'/'results'/'rman-cifar.png').exists()
    # one file with nested per-model metrics and its own SEM over replications (sdrnn-parity)
    save_results('sdrnn-parity-tanh', metrics=dict(rnn=dict(hidden_entropy=4.2, hidden_entropy_sem=0.07),
                 sdrnn=dict(hidden_entropy=3.5, hidden_entropy_sem=0.05)), config=dict(seed=0, scale='paper'),
                 experiment='sdrnn-parity', out=tmp_path)
    md, problems = docs.results_markdown(tmp_path/'site', folder=tmp_path)
    assert not problems, problems
    rnn = next(l for l in md.split('\n') if l.startswith('| tanh RNN |'))
    sd = next(l for l in md.split('\n') if l.startswith('| tanh SDRNN |'))
    assert '4.03 ± 0.05' in rnn and '4.20 ± 0.07 (n=1)' in rnn and '3.50 ± 0.05 (n=1)' in sd
    md, _ = docs.results_markdown(tmp_path/'site', folder=tmp_path/'none')
    assert 'No paper-scale runs yet' in md and 'rman-cifar10-resnet20-h0-s*.json' in md


def test_results_page_null_metric_is_not_missing(tmp_path):
    "A run whose metric is null (residual-noise: no amplitude misclassifies) shows the table's null_means, not 'not yet run'"
    from attractor_nb.core import save_results
    save_results('residual-noise-cos-s0', metrics=dict(onset_resnet_input=None, onset_mlp_input=0.3, crossover_input=None),
                 config=dict(seed=0, scale='paper', lr_sched='cos'), experiment='residual-noise', out=tmp_path)
    md, problems = docs.results_markdown(tmp_path/'site', folder=tmp_path)
    assert not problems, problems
    row = lambda start: next(l for l in md.split('\n') if l.startswith(start))
    assert 'never, up to 1 (n=1)' in row('| ResNet, shared W') and 'not yet run' not in row('| ResNet, shared W')
    assert '0.30 (n=1)' in row('| MLP, shared W')
    assert 'not yet run' in row('| ResNet, constant rate')  # the constant-rate run (residual-noise-s0) is its own row
    assert md.count('`residual-noise-s*.json`') == 1  # a missing file is listed once, however many of its cells are missing

def exp_row(md:str, name:str) -> str:
    "The row of experiment `name` in the results page's experiments table"
    return next(l for l in md[md.index('## Experiments'):].split('\n') if l.startswith(f'| `{name}` |'))

def test_reduced_runs_are_shown_apart_from_the_paper_tables(tmp_path):
    "A CPU run on a reduced budget (results/reduced/) is listed in its own section and never fills a Table 1 cell"
    from attractor_nb.core import save_results
    save_results('rman-cifar10-resnet20-h0-s0', metrics=dict(error=0.2, error_sem=None), config=dict(seed=0, scale='paper', epochs=8),
                 experiment='rman-cifar', out=tmp_path/docs.REDUCED, history=[dict(epoch=0, error=0.3), dict(epoch=1, error=0.2)])
    md, problems = docs.results_markdown(tmp_path/'site', folder=tmp_path)
    assert not problems, problems
    row = next(l for l in md.split('\n') if l.startswith('| CIFAR-10 ResNet-20 |'))
    assert row.count('not yet run') == 4 and 'No paper-scale runs yet' in md
    red = md[md.index('## Reduced runs on the CPU'):]
    assert '`rman-cifar10-resnet20-h0-s0`' in red and 'error 0.2' in red
    assert 'error_sem —' in red  # a metric the run could not measure (one replication: no SEM) reads as none
    assert (tmp_path/'site'/'figures'/'results'/f'{docs.REDUCED}-rman-cifar.png').exists()
    assert exp_row(md, 'rman-cifar').endswith('*not yet run*<br>1 reduced run on the CPU ([above](#reduced-runs)) |')
    assert 'reduced' not in exp_row(md, 'speech-rman')
    md, _ = docs.results_markdown(tmp_path/'site', folder=tmp_path/'none')
    assert 'Reduced runs' not in md

def test_history_lines_split_models():
    "A run that trains several models one after the other (its history rows carry `model`) gets one line per model"
    rs = [dict(name='sdrnn-symmetry-f1', history=[dict(model=m, epoch=e, valid_loss=1.0 / (e + 1)) for m in ('rnn', 'sdrnn') for e in range(3)]),
          dict(name='rman-s0', history=[dict(epoch=0, valid_loss=0.5), dict(epoch=1), dict(epoch=2, valid_loss=0.4)])]
    lines = docs._history_lines(rs, 'valid_loss')
    assert [(n, m) for n, m, _ in lines] == [('sdrnn-symmetry-f1', 'rnn'), ('sdrnn-symmetry-f1', 'sdrnn'), ('rman-s0', None)]
    assert [[e for e, _ in pts] for *_, pts in lines] == [[0, 1, 2], [0, 1, 2], [0, 2]]

def test_unreadable_notebook_still_gets_a_page(tmp_path):
    "A notebook someone is still writing (not yet valid JSON) becomes a page that says so; the build goes on"
    src, dst = tmp_path/'12_half_written.ipynb', tmp_path/'proc'/'12_half_written.ipynb'
    src.write_text('{"cells": [')
    msgs = docs.proc_notebook(src, dst)
    assert 'could not be read' in msgs[0]
    pg = docs.Page(dst, docs.page_name(src), tmp_path/'site', None)
    md = pg.markdown()
    assert pg.title == '12 half written' and '!!! warning "Not built"' in md and 'half_written' in docs.page_name(src)

# ---------------------------------------------------------------------------------------------------- the build
@pytest.fixture(scope='module')
def site(tmp_path_factory):
    "The site, built as `make docs` builds it (after its nbdev-export) with `mkdocs build --strict`"
    out = tmp_path_factory.mktemp('site')
    t0 = time.time()
    r = subprocess.run([sys.executable, str(ROOT/'tools'/'docs.py'), 'build', '--out', str(out)], cwd=ROOT,
                       capture_output=True, text=True, timeout=600, env={**os.environ, 'PYTHONUNBUFFERED': '1'})
    assert r.returncode == 0, f'docs build failed:\n{r.stdout[-4000:]}\n{r.stderr[-4000:]}'
    print(f'built in {time.time() - t0:.1f} s\n{r.stdout}')
    return out

def test_site_is_built(site):
    for nb in _notebooks(): assert (site/f'{docs.page_name(nb)}.html').exists(), nb.name
    assert (site/'results.html').exists() and (site/'assets'/'mathjax'/'tex-chtml-full.js').exists()
    assert (site/'search'/'search_index.json').exists()
    for f in site.rglob('*.html'):  # nothing on any page points the browser at another host
        h = f.read_text()
        bad = re.findall(r'<(?:script|link|img|iframe)\b[^>]*\b(?:src|href)="((?:https?:)?//[^"]+)"', h)
        assert not bad, f'{f.name} loads {bad}'

# --------------------------------------------------------------------------------------------------- in Chromium
@pytest.fixture(scope='module')
def server(site):
    class Quiet(http.server.SimpleHTTPRequestHandler):
        def log_message(self, *a): pass
    srv = http.server.ThreadingHTTPServer(('127.0.0.1', 0), functools.partial(Quiet, directory=str(site)))
    threading.Thread(target=srv.serve_forever, daemon=True).start()
    yield f'http://127.0.0.1:{srv.server_port}'
    srv.shutdown()

@pytest.fixture(scope='module')
def browser():
    from playwright.sync_api import sync_playwright
    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, args=['--no-sandbox', '--disable-gpu', '--disable-dev-shm-usage'])
        yield b
        b.close()

class Guard:
    "Blocks every request that is not to the loopback server; records those, failed local requests and page errors"
    def __init__(self, base):
        self.base, self.outside, self.failed, self.errors = urlparse(base), [], [], []
    def route(self, route):
        u = urlparse(route.request.url)
        if u.scheme in ('data', 'blob', 'about') or (u.scheme == 'http' and u.hostname == '127.0.0.1' and u.port == self.base.port):
            return route.continue_()
        self.outside.append(route.request.url)
        route.abort()
    def response(self, resp):
        if resp.status >= 400: self.failed.append(f'{resp.status} {resp.url}')
    def check(self):
        assert not self.outside, f'requests leaving the machine: {self.outside}'
        assert not self.failed, f'failed requests: {self.failed}'
        assert not self.errors, f'JavaScript errors: {self.errors}'

@pytest.fixture
def page(browser, server, site):
    ctx = browser.new_context(viewport={'width': 1400, 'height': 900}, service_workers='block')
    ctx.set_default_timeout(90_000)  # a loaded machine (notebooks running beside this test) can be slow
    g = Guard(server)
    ctx.route('**/*', g.route)
    pg = ctx.new_page()
    pg.on('response', g.response)
    pg.on('pageerror', lambda e: g.errors.append(str(e)))
    pg.base, pg.site = server, site
    yield pg
    shots = os.environ.get('ATTRACTOR_NB_DOCS_SHOTS')
    if shots:
        Path(shots).mkdir(parents=True, exist_ok=True)
        pg.screenshot(path=str(Path(shots)/(re.sub(r'[^\w.-]', '_', urlparse(pg.url).path.strip('/') or 'index') + '.png')))
    ctx.close()
    g.check()

def _path(href): return re.sub(r'^(\./)+', '', href.split('#')[0])

@browser_test
def test_nav_lists_every_notebook(page):
    page.goto(page.base + '/index.html')
    hrefs = [_path(h) for h in page.eval_on_selector_all('nav.md-nav--primary a.md-nav__link[href]',
                                                         'els => els.map(e => e.getAttribute("href"))')]
    want = [f'{docs.page_name(nb)}.html' for nb in docs.nb_pages()]
    assert {f'{docs.page_name(nb)}.html' for nb in _notebooks()} <= set(want)
    assert [h for h in dict.fromkeys(hrefs) if h in want] == want, 'every notebook a page, in notebook order'
    assert 'results.html' in hrefs
    sections = page.eval_on_selector_all('nav.md-nav--primary .md-nav__item--section > .md-nav__link',
                                         'els => els.map(e => e.textContent.trim())')
    groups = [docs.GROUPS[k] for k in sorted(docs.GROUPS) if any(docs.group_of(nb) == docs.GROUPS[k] for nb in _notebooks())]
    assert [s for s in sections if s in groups] == groups, f'grouped by paper: {sections}'

@browser_test
def test_rman_page(page):
    "The RMAN page: API blocks from show_doc, math typeset by the local MathJax, copy buttons on code"
    page.goto(page.base + '/rman.html')
    page.wait_for_function('() => window.MathJax && MathJax.startup && MathJax.startup.promise')
    page.evaluate('() => MathJax.startup.promise')
    api = page.locator('.nb-api', has=page.locator('h3#rman'))
    assert api.count() == 1 and api.is_visible() and 'n_attractors' in api.inner_text()
    assert page.locator('.nb-api').count() >= 5
    assert page.locator('article mjx-container').count() > 10, 'inline math typeset'
    assert page.locator('article mjx-container[display="true"]').count() >= 1, 'display math typeset'
    assert page.locator('article .arithmatex:not(:has(mjx-container))').count() == 0, 'math left as TeX'
    assert 'Paper:' in page.locator('article').inner_text(), 'the notebook names its paper under the title'
    fig = page.locator('article figure.nb-figure img').first
    fig.scroll_into_view_if_needed()
    assert fig.evaluate('e => e.complete && e.naturalWidth') > 0, 'a rendered figure on the RMAN page'
    assert page.locator('article button[data-md-type="copy"], article button.md-clipboard').count() > 5

@browser_test
def test_figures_render(page):
    "Every page whose notebook saved a figure shows it, loaded; the RMAN section has figures"
    with_figs = [nb for nb in _notebooks() if '"image/png"' in nb.read_text()]
    assert any(docs.group_of(nb) == docs.GROUPS['1'] for nb in with_figs), 'an RMAN notebook with a figure'
    for nb in with_figs:
        page.goto(f'{page.base}/{docs.page_name(nb)}.html', wait_until='domcontentloaded')
        imgs = page.locator('article figure.nb-figure img')
        assert imgs.count() >= 1, nb.name
        page.wait_for_function('() => [...document.querySelectorAll("article figure img")].every(e => e.complete)')
        widths = imgs.evaluate_all('els => els.map(e => e.naturalWidth)')
        assert all(w > 0 for w in widths), (nb.name, widths)
    page.goto(page.base + '/rman_toy2d.html' if (NBS/'11a_rman_toy2d.ipynb').exists() else
              f'{page.base}/{docs.page_name(next(nb for nb in with_figs if docs.group_of(nb) == docs.GROUPS["1"]))}.html')
    page.locator('article figure.nb-figure img').first.scroll_into_view_if_needed()

@browser_test
def test_doc_link_lands_on_anchor(page):
    page.goto(page.base + '/rman.html')
    hrefs = page.eval_on_selector_all('article a[href*=".html#"]:has(code)', 'els => els.map(e => e.getAttribute("href"))')
    for h in hrefs:  # every doc link points at an anchor that exists on its page
        pg, frag = h.split('#', 1)
        assert f'id="{frag}"' in (page.site/_path(pg)).read_text(), f'{h}: no such anchor'
    other = [h for h in hrefs if _path(h) != 'rman.html']
    assert other, f'no doc link from the RMAN page to another page: {hrefs}'
    page.locator(f'article a[href="{other[0]}"]').first.click()
    page.wait_for_load_state('load')
    frag = other[0].split('#', 1)[1]
    assert urlparse(page.url).path.endswith('/' + _path(other[0])) and urlparse(page.url).fragment == frag, page.url
    box = page.locator(f'[id="{frag}"]').bounding_box()
    assert box is not None and 0 <= box['y'] < 300, f'#{frag} is not at the top of the window: {box}'

@browser_test
def test_search(page):
    page.goto(page.base + '/index.html')
    page.locator('label.md-search__icon, .md-search__input').first.click()
    page.locator('input.md-search__input').focus()
    page.keyboard.type('attractor', delay=30)
    items = page.locator('.md-search-result__item')
    items.first.wait_for()
    hrefs = page.eval_on_selector_all('.md-search-result__item > a', 'els => els.map(e => e.getAttribute("href"))')
    assert len({_path(h) for h in hrefs}) >= 3, hrefs
    assert any('rman' in h for h in hrefs), hrefs

@browser_test
def test_results_page(page):
    page.goto(page.base + '/results.html')
    text = page.locator('article').inner_text()
    assert 'Table 1' in text and '7.95 ± 0.08' in text, 'paper numbers from results/paper_numbers.yml'
    recs = sorted((ROOT/'results').glob('*.json'))
    if not recs: assert 'No paper-scale runs yet' in text and 'not yet run' in text
    for f in recs: assert f.stem in text


def test_results_page_reads_one_model_files(tmp_path):
    "sdrnn-parity --model M writes one file per model: each fills its own rows, and another model's file leaves a row empty"
    from attractor_nb.core import save_results
    for m, err in [('rnn', 0.3), ('sdrnn', 0.2)]:
        save_results(f'sdrnn-parity-{m}-tanh-s0', metrics={m: dict(novel_error=err, novel_error_sem=0.01, hidden_entropy=4 - err),
                     'novel_error': err}, config=dict(seed=0, scale='paper', model=m), experiment='sdrnn-parity', out=tmp_path)
    md, problems = docs.results_markdown(tmp_path/'site', folder=tmp_path)
    assert not problems, problems
    part = md[md.index('### Parity, test error'):]
    row = lambda start: next(l for l in part.split("\n") if l.startswith(start))
    assert '30.00 ± 1.00 (n=1)' in row('| RNN |') and '20.00 ± 1.00 (n=1)' in row('| SDRNN |')
    assert row('| RNN+A |').count('not yet run') == 2 and row('| RNN |').count('not yet run') == 1  # no RNN+A file; no GRU
    ent = md[md.index('### Entropy'):]
    assert '3.70 (n=1)' in next(l for l in ent.split("\n") if l.startswith('| tanh RNN |'))
    save_results('sdrnn-parity-rnna-tanh-s0-torchinit', metrics={'rnn+a': dict(novel_error=0.5, novel_error_sem=0.01)},
                 config=dict(seed=0, scale='paper', init='torch'), experiment='sdrnn-parity', out=tmp_path)
    md, _ = docs.results_markdown(tmp_path/'site', folder=tmp_path)
    part = md[md.index('### Parity, test error'):]
    assert row('| RNN+A |').count('not yet run') == 2  # another recipe (PyTorch's initialisation) fills no paper cell
    assert '50.00 ± 1.00 (n=1)' in row('| RNN+A, PyTorch') and row('| SDRNN, PyTorch').count('not run') == 2  # its own rows
    assert 'torchinit.json' not in md[md.index('Not yet run'):]  # comparison rows are not to-dos
    # the sigma sweep (Figure 4e,f): its own table, with the paper recipe's SDRNN as its sigma = 0.5 column; never in the tables above
    save_results('sdrnn-parity-sdrnn-tanh-s0-sigma2', metrics={'sdrnn': dict(novel_error=0.45, novel_error_sem=0.02, hidden_entropy=5.)},
                 config=dict(seed=0, scale='paper', model='sdrnn', sigma=2.0), experiment='sdrnn-parity', out=tmp_path)
    md, _ = docs.results_markdown(tmp_path/'site', folder=tmp_path)
    part = md[md.index('### Parity, test error'):]
    assert '20.00 ± 1.00 (n=1)' in row('| SDRNN |')  # not averaged with the sigma = 2 run
    assert '3.80 (n=1)' in next(l for l in md[md.index('### Entropy'):].split('\n') if l.startswith('| tanh SDRNN |'))
    part = md[md.index('### Parity, SDRNN test error by the denoising noise'):]
    cells = row('| SDRNN (novel sequences) |').split('|')
    assert '20.00 ± 1.00 (n=1)' in cells[4] and '45.00 ± 2.00 (n=1)' in cells[6] and cells[2].count('not yet run') == 1, cells
    # a run done in pieces (tools/carry.py keeps it in runs/paused/ between sessions) is listed as in progress, still to do
    paused = tmp_path/'paused'/'sdrnn-parity-rnna-tanh-s0'; paused.mkdir(parents=True)
    (paused/'segments.json').write_text(json.dumps([dict(seconds=5400.0, ended='paused'), dict(seconds=None, ended='killed')]))
    md, _ = docs.results_markdown(tmp_path/'site', folder=tmp_path, paused=tmp_path/'paused')
    tanh = [l for l in md.split('\n') if l.startswith('    - `sdrnn-parity-*tanh*.json`')]
    assert tanh and all('(in progress: `sdrnn-parity-rnna-tanh-s0` paused after 2 pieces, 1.5 h so far' in l for l in tanh), tanh
    gru = [l for l in md.split('\n') if l.startswith('    - `sdrnn-parity-*gru*.json`')]
    assert gru and not any('in progress' in l for l in gru), gru
    # the experiments table says so too, also for an experiment without a paper table (the capacity study, Figure 2)
    grid = tmp_path/'paused'/'attractor-capacity-s0'; grid.mkdir()
    (grid/'segments.json').write_text(json.dumps([dict(seconds=3600.0, ended='paused')]))
    md, _ = docs.results_markdown(tmp_path/'site', folder=tmp_path, paused=tmp_path/'paused')
    assert exp_row(md, 'attractor-capacity').endswith('*not yet run*<br>`attractor-capacity-s0` in progress (1 piece, 1.0 h so far, `runs/paused/`) |')
    assert 'in progress (2 pieces, 1.5 h so far' in exp_row(md, 'sdrnn-parity') and 'in progress' not in exp_row(md, 'sdrnn-majority')
