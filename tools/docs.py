"""Build the documentation site offline: notebooks -> nbdev's processing -> Markdown -> MkDocs (Material) -> `_docs/`.

nbdev renders its site with Quarto, which cannot be installed on this project's machines. This tool keeps nbdev's own
pre-processing (frontmatter, a `show_doc` for every exported name, hidden and export cells removed, backticked names
linked to their docs) and hands the result to MkDocs instead of Quarto. Nothing is fetched while building except, once,
the MathJax package from the npm registry into a cache outside the checkout; after that the build works offline and
the site makes no request beyond its own host.

    python tools/docs.py build [--out _docs] [--jobs 2] [--force]   # `make docs` runs nbdev-export first
    python tools/docs.py serve [--port 8000] [--dir _docs]           # `make serve-docs`

Stages, each in a function below:
1. `nbs/sidebar.yml` from `nbdev_sidebar` gives the pages and their order.
2. `process`: nbdev's notebook processors run on every notebook in a forked worker, cached in `_mkdocs/proc/` by the
   notebook's content. nbdev's `exec_show_docs` is replaced by `exec_docs`, which runs exported cells, imports and
   `show_doc` calls but never a test or an experiment (nbdev also runs any cell that contains an import).
3. `page_markdown`: each processed notebook becomes a Markdown page (show_doc blocks, figures written beside the page,
   `#|` cell options honoured, Quarto callouts as admonitions, pandoc-style heading ids so nbdev's doc links resolve).
4. `results_markdown`: the results overview, generated from `results/*.json` and `results/paper_numbers.yml`.
5. `rewrite_links`: nbdev's doc links become relative links that `mkdocs build --strict` checks, anchors included.
6. MkDocs builds `_docs/` with the Material theme, local MathJax, no web fonts and no calls to GitHub's API.
"""
from __future__ import annotations
import argparse, ast, base64, contextlib, fnmatch, hashlib, html, io, json, logging, math, os, re, shutil, subprocess
import sys, tarfile, tempfile, time, urllib.request, warnings
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
NBS = ROOT/'nbs'
WORK = ROOT/'_mkdocs'  # processed-notebook cache, generated Markdown and mkdocs.yml (git-ignored)
OUT = ROOT/'_docs'
PAPER_NUMBERS = ROOT/'results'/'paper_numbers.yml'
MATHJAX_VERSION = '3.2.2'
MATHJAX_SHA256 = '1b9c0a1c44df864e915690558e72adb9cc5203360daefd385084ced3b6c64c09'  # of `npm pack mathjax@3.2.2`
SITE_NAME = 'attractor_nb'
SOURCE_URL = 'https://github.com/attractor-nb/attractor_nb'
# Sidebar sections: notebooks are grouped by the first digit of their number (see DESIGN.md)
GROUPS = {'0': 'Foundation', '1': 'RMAN (Deng et al. 2020)', '2': 'Residual dynamics (Lagzi 2018)',
          '3': 'SDRNN (ICLR 2019 submission)', '9': 'Speed'}
# other nbdev libraries whose names (`fastai.learner.Learner`) link to their docs
LINKED_LIBS = ('fastai', 'fastcore', 'fastprogress', 'nbdev', 'execnb')
PROC_TIMEOUT = 300  # seconds one notebook may take to process before its page is built without executing show_doc
CELL_TIMEOUT = 120

def say(*args): print('docs:', *args, flush=True)

def first_line(e: BaseException) -> str: return f"{type(e).__name__}: {(str(e).splitlines() or [''])[0]}"

@contextlib.contextmanager
def working_dir(d: Path):
    "Like `contextlib.chdir` (Python 3.11+)"
    old = os.getcwd(); os.chdir(d)
    try: yield
    finally: os.chdir(old)

# ----------------------------------------------------------------------------------------------------- pages and nav
def nb_pages() -> list[Path]:
    "Notebooks of `nbs/` in sidebar order (nbdev's `nbdev_sidebar` writes `nbs/sidebar.yml`)"
    import yaml
    from nbdev.quarto import nbdev_sidebar
    with working_dir(ROOT): nbdev_sidebar.__wrapped__() if hasattr(nbdev_sidebar, '__wrapped__') else nbdev_sidebar()
    items = yaml.safe_load((NBS/'sidebar.yml').read_text())['website']['sidebar']['contents']
    def flat(xs):
        for x in xs:
            if isinstance(x, str): yield x
            elif isinstance(x, dict): yield from flat(x.get('contents', []) or ([x['href']] if 'href' in x else []))
    return [NBS/p for p in flat(items) if p.endswith('.ipynb') and (NBS/p).exists()]

def page_name(nb: Path) -> str:
    "The page a notebook becomes, as nbdev names it: `10_rman.ipynb` -> `rman` (rman.html)"
    from nbdev.config import nbpath2html
    return nbpath2html(nb.relative_to(NBS) if nb.is_relative_to(NBS) else Path(nb.name)).with_suffix('').as_posix()

def group_of(nb: Path) -> str | None:
    m = re.match(r'(\d)', nb.name)
    return None if nb.stem == 'index' else GROUPS.get(m.group(1), 'More') if m else 'More'

def plain_title(t: str) -> str: return re.sub(r'[`*_]{1,2}([^`*]+?)[`*_]{1,2}', r'\1', t).strip()

# ------------------------------------------------------------------------------------ stage 2: nbdev's processing
def _is_show_doc(t) -> bool:
    return isinstance(t, ast.Expr) and isinstance(t.value, ast.Call) and getattr(t.value.func, 'id', None) == 'show_doc'

def doc_code(cell) -> str | None:
    "What a docs build runs of `cell`: all of it (exported, imports, show_doc), only its imports, or nothing"
    from nbdev.processors import _do_eval, cell_lang
    if cell.cell_type != 'code' or not cell.source or cell_lang(cell) != 'python': return None
    with warnings.catch_warnings():
        warnings.simplefilter('ignore')  # nbdev warns about cells mixing imports and code; those run their imports only
        if not _do_eval(cell): return None
    if cell.directives_.keys() & {'export', 'exports', 'exporti', 'exec_doc'}: return cell.source
    trees = cell.parsed_() or []
    imports = [t for t in trees if isinstance(t, (ast.Import, ast.ImportFrom))]
    if all(isinstance(t, (ast.Import, ast.ImportFrom)) or _is_show_doc(t) for t in trees): return cell.source
    return '\n'.join(ast.unparse(t) for t in imports) or None

def _exec_docs_cls():
    from nbdev.process import Processor
    from fastcore.basics import str2bool
    class exec_docs(Processor):
        "nbdev's `exec_show_docs` for a docs build: a failing cell is reported and keeps its saved outputs"
        errors = []
        def begin(self):
            self.k = None
            fm = getattr(self.nb, 'frontmatter_', {})
            if not getattr(self.nb, 'has_docs_', None) or str2bool(fm.get('skip_showdoc', False)): return
            from execnb.shell import CaptureShell
            self.k = CaptureShell()
            self.k.run_cell('from nbdev.showdoc import show_doc')
        def __call__(self, cell):
            if self.k is None or (code := doc_code(cell)) is None: return
            saved = cell.get('outputs')
            if code == cell.source: self.k.cell(cell, timeout=CELL_TIMEOUT)
            else: self.k.run(code, timeout=CELL_TIMEOUT)
            if (e := self.k.exc) is not None:
                self.k.exc = None
                exec_docs.errors.append(f"{cell.source.splitlines()[-1][:80]!r}: {first_line(e)}")
                if saved: cell.outputs = saved
                else: self.plain_doc(cell)
        def plain_doc(self, cell):
            "A failed `show_doc(name)` still gets a heading (its doc links land there), the signature and the docstring"
            import inspect
            from fastcore.xtras import dict2obj
            m = re.search(r'^show_doc\(([\w.]+)\)\s*$', cell.source, re.M)
            if not m: return
            try: obj = eval(m.group(1), self.k.user_ns)
            except Exception: return
            try: sig = f'```python\n{m.group(1)}{inspect.signature(obj)}\n```\n\n'
            except (TypeError, ValueError): sig = ''
            doc = (inspect.getdoc(obj) or '').split('\n')[0]
            md = f'---\n\n### {m.group(1)}\n\n{sig}' + (f'*{doc}*' if doc else '')
            cell.outputs = [dict2obj(dict(output_type='display_data', metadata={}, data={'text/markdown': md, 'text/plain': md}))]
    return exec_docs

def _procs(execute: bool):
    "nbdev's default processors, with `exec_docs` for `exec_show_docs`; doc links are added later, at conversion"
    from nbdev.processors import FilterDefaults, exec_show_docs, add_links
    procs = list(FilterDefaults().procs())
    procs = [p for p in procs if p is not add_links]
    return [(_exec_docs_cls() if p is exec_show_docs else p) for p in procs if execute or p is not exec_show_docs]

def proc_notebook(src: Path, dst: Path, execute: bool = True) -> list[str]:
    "Run nbdev's processors on notebook `src` and write the result to `dst`; returns problems worth reporting"
    from fastcore.nbio import read_nb, write_nb, mk_cell, dict2nb
    from nbdev.process import NBProcessor
    msgs = []
    try: nb = read_nb(src)
    except Exception as e:  # a notebook being written by someone else, or broken JSON: a page that says so
        msgs.append(f'{src.name} could not be read ({type(e).__name__}: {e}); its page says so')
        title = src.stem.replace('_', ' ')
        nb = dict2nb({'cells': [mk_cell(f'---\ntitle: "{title}"\noutput-file: {page_name(src)}.html\n---', 'raw'),
                                mk_cell(f'!!! warning "Not built"\n    `nbs/{src.name}` could not be read when the '
                                        'site was built.', 'markdown')], 'metadata': {}, 'nbformat': 4, 'nbformat_minor': 5})
    else:
        exec_cls = None
        keep_intro(nb)
        try:
            procs = _procs(execute)
            exec_cls = next((p for p in procs if getattr(p, '__name__', '') == 'exec_docs'), None)
            if exec_cls: exec_cls.errors.clear()
            with warnings.catch_warnings():
                warnings.simplefilter('ignore')
                NBProcessor(nb=nb, procs=procs, rm_directives='quarto').process()
        except Exception as e:
            msgs.append(f'{src.name}: nbdev processing failed ({first_line(e)}); built without executing show_doc')
            nb = read_nb(src)
            keep_intro(nb)
            with warnings.catch_warnings():
                warnings.simplefilter('ignore')
                NBProcessor(nb=nb, procs=_procs(False), rm_directives='quarto').process()
        if exec_cls:
            msgs += [f'{src.name}: a docs cell failed, {m} (page keeps its saved outputs or a plain signature)'
                     for m in exec_cls.errors]
    dst.parent.mkdir(parents=True, exist_ok=True)
    tmp = dst.with_name(f'.{dst.name}.{os.getpid()}.tmp')
    write_nb(nb, tmp)
    os.replace(tmp, dst)
    return msgs

def keep_intro(nb):
    """nbdev turns the first markdown cell with a `# title` into frontmatter and drops the whole cell; keep what follows
    its title block (`# title`, `> description`, `- key: value` lines): there the notebooks name their paper and claim"""
    from fastcore.nbio import mk_cell
    if any(c.cell_type == 'raw' and re.search(r'^title:', c.source, re.M) for c in nb.cells): return
    for i, c in enumerate(nb.cells):
        if c.cell_type != 'markdown' or not re.search(r'^#\s+\S', c.source, re.M): continue
        lines, k = c.source.split('\n'), 0
        while k < len(lines) and not lines[k].strip(): k += 1
        if k == len(lines) or not re.match(r'^#\s+\S', lines[k]): return
        k += 1
        while k < len(lines) and (not lines[k].strip() or re.match(r'^(>\s|-\s+[\w-]+:\s)', lines[k])): k += 1
        rest = '\n'.join(lines[k:]).strip()
        if rest:
            c.source = '\n'.join(lines[:k]).rstrip()
            cell = mk_cell(rest, 'markdown')
            nb.cells.insert(i + 1, cell)
            for j, x in enumerate(nb.cells): x.idx_ = j
        return

def _cache_key(src: Path) -> str:
    import nbdev
    h = hashlib.sha256(src.read_bytes())
    h.update(Path(__file__).read_bytes()); h.update((ROOT/'pyproject.toml').read_bytes()); h.update(nbdev.__version__.encode())
    return h.hexdigest()

def _child(src: Path, dst: Path, log: Path):
    "Worker body (a fork of the build process, so torch and the library are already imported)"
    os.chdir(NBS); os.environ['IN_TEST'] = '1'
    msgs = []
    try:
        with contextlib.redirect_stdout(io.StringIO()): msgs = proc_notebook(src, dst)
    except BaseException as e: msgs = [f'{src.name}: {type(e).__name__}: {e}']
    log.write_text(json.dumps(msgs))
    os._exit(0)

def _preload():
    "Import what the notebooks import once, before forking, so each worker starts with it in memory"
    import importlib, pkgutil
    os.environ.setdefault('MPLBACKEND', 'Agg')
    with warnings.catch_warnings(), contextlib.redirect_stdout(io.StringIO()):
        warnings.simplefilter('ignore')
        for m in ('IPython', 'execnb.shell', 'nbdev.processors', 'nbdev.showdoc', 'numpy', 'matplotlib.pyplot', 'torch'):
            with contextlib.suppress(Exception): importlib.import_module(m)
        try: import attractor_nb
        except Exception: return
        for m in pkgutil.walk_packages(attractor_nb.__path__, 'attractor_nb.'):
            if m.name.rsplit('.', 1)[-1].startswith('_'): continue
            with contextlib.suppress(BaseException): importlib.import_module(m.name)

def process(nbs: list[Path], cache: Path, jobs: int = 2, force: bool = False) -> list[Path]:
    "Processed copies of `nbs` in `cache` (reprocessing only changed notebooks, `jobs` at a time)"
    import multiprocessing as mp
    from multiprocessing.connection import wait
    cache.mkdir(parents=True, exist_ok=True)
    outs = {nb: cache/nb.relative_to(NBS) for nb in nbs}
    keep = set(outs.values())
    for f in cache.rglob('*.ipynb'):  # notebooks that were removed or renamed
        if f not in keep: f.unlink(); f.with_suffix('.key').unlink(missing_ok=True)
    keys = {nb: _cache_key(nb) for nb in nbs}
    todo = [nb for nb in nbs if force or not outs[nb].exists() or
            (outs[nb].with_suffix('.key').read_text() if outs[nb].with_suffix('.key').exists() else '') != keys[nb]]
    t0 = time.time()
    if todo:
        _preload()
        ctx = mp.get_context('fork')
        running, queue, msgs = {}, list(todo), {}
        while queue or running:
            while queue and len(running) < max(1, jobs):
                nb = queue.pop(0)
                log = cache/f'.{nb.stem}.{os.getpid()}.log'
                log.unlink(missing_ok=True)
                p = ctx.Process(target=_child, args=(nb, outs[nb], log), daemon=True)
                p.start()
                running[p.sentinel] = (p, nb, log, time.time())
            wait(list(running), timeout=1)
            for s, (p, nb, log, start) in list(running.items()):
                late = time.time() - start > PROC_TIMEOUT
                if p.is_alive() and not late: continue
                if late: p.kill()
                p.join(); del running[s]
                m = json.loads(log.read_text()) if log.exists() else None
                log.unlink(missing_ok=True)
                if m is None or not outs[nb].exists():  # crashed or timed out: build the page without show_doc
                    m = [f'{nb.name}: processing {"timed out" if late else "crashed"}; built without executing show_doc']
                    m += proc_notebook(nb, outs[nb], execute=False)
                msgs[nb] = m
                if not m: outs[nb].with_suffix('.key').write_text(keys[nb])
                else: outs[nb].with_suffix('.key').unlink(missing_ok=True)  # try again next build
        for nb in todo:
            for line in msgs.get(nb, []): say('warning:', line)
    say(f'processed {len(todo)} of {len(nbs)} notebooks ({len(nbs) - len(todo)} unchanged) in {time.time() - t0:.1f} s')
    return [outs[nb] for nb in nbs]

# ---------------------------------------------------------------------------------------- stage 3: Markdown pages
def pandoc_id(text: str) -> str:
    "The id pandoc (so Quarto, so nbdev's doc links) gives a heading: `RMAN.forward` -> `rman.forward`"
    t = re.sub(r'!?\[([^\]]*)\]\([^)]*\)', r'\1', text)
    t = re.sub(r'<[^>]+>', '', t).replace('`', '').replace('\\', '')
    t = re.sub(r'\*{1,3}(\S(?:.*?\S)?)\*{1,3}', r'\1', t)
    t = ''.join(c for c in t.lower() if c.isalnum() or c in '_-.' or c.isspace())
    t = re.sub(r'\s+', '-', t.strip())
    t = re.sub(r'^[^a-z]+', '', t)
    return t or 'section'

_re_heading = re.compile(r'^(#{1,6})[ \t]+(.+?)[ \t]*$')
_re_attrs = re.compile(r'[ \t]*\{([^}]*)\}[ \t]*$')
_re_fence = re.compile(r'^[ \t]*(`{3,}|~{3,})')

def _outside_fences(lines):
    "Yield (index, line) of the lines of Markdown `lines` that are not inside a fenced code block"
    fence = None
    for i, l in enumerate(lines):
        m = _re_fence.match(l)
        if fence is None:
            if m: fence = m.group(1); continue
            yield i, l
        elif m and m.group(1)[0] == fence[0] and len(m.group(1)) >= len(fence) and not l.strip()[len(m.group(1)):].strip():
            fence = None

class Ids:
    "Heading ids of one page, made unique the way pandoc does (`x`, `x-1`, `x-2` ...)"
    def __init__(self): self.used = set()
    def add(self, want: str) -> str:
        i, k = want, 0
        while i in self.used: k += 1; i = f'{want}-{k}'
        self.used.add(i)
        return i

def add_heading_ids(md: str, ids: Ids) -> str:
    "Give every heading of `md` an explicit pandoc-style id (`### RMAN {#rman}`), keeping ids written by the author"
    lines = md.split('\n')
    for i, l in _outside_fences(lines):
        m = _re_heading.match(l)
        if not m: continue
        hashes, text = m.groups()
        a = _re_attrs.search(text)
        attrs = a.group(1) if a else ''
        if a: text = text[:a.start()]
        text = text.rstrip('#').rstrip() or text
        own = re.search(r'#([^\s}]+)', attrs)
        classes = ' '.join(x for x in attrs.split() if x.startswith('.') and x != '.unnumbered')
        hid = own.group(1) if own else ids.add(pandoc_id(text))
        ids.used.add(hid)
        lines[i] = f'{hashes} {text} {{#{hid}{" " + classes if classes else ""}}}'
    return '\n'.join(lines)

_CALLOUTS = {'note': 'note', 'tip': 'tip', 'warning': 'warning', 'caution': 'warning', 'important': 'danger'}

def quarto_divs(md: str) -> str:
    "Quarto callouts (`::: {.callout-note}`) become admonitions; other fenced divs (`:::`) are unwrapped"
    lines, out, stack = md.split('\n'), [], []  # stack: one entry per open div, True where it is an admonition
    skip = set()
    inside = dict(_outside_fences(lines))
    for i, l in enumerate(lines):
        if i in skip: continue
        ind = '    ' * sum(stack)
        m = re.match(r'^\s*(:{3,})\s*(.*)$', l) if i in inside else None
        if m and m.group(2):  # opening
            spec = m.group(2).strip('{} ')
            c = re.search(r'\.?callout-(\w+)', spec)
            if c:
                title = re.search(r'title\s*=\s*"([^"]*)"', spec)
                title = title.group(1) if title else ''
                nxt = next((j for j in range(i + 1, len(lines)) if lines[j].strip()), None)
                if not title and nxt is not None and re.match(r'^#{1,6}\s', lines[nxt]):
                    title = _re_attrs.sub('', re.sub(r'^#{1,6}\s+', '', lines[nxt])).strip(); skip.add(nxt)
                kind = _CALLOUTS.get(c.group(1), 'note')
                mark = '???' if re.search(r'collapse\s*=\s*"?true', spec) else '!!!'
                out.append(f'{ind}{mark} {kind}' + (f' "{title}"' if title else ''))
                stack.append(True)
            else: stack.append(False)
            continue
        if m and stack:  # closing
            out.append(''); stack.pop(); continue
        out.append(ind + l if l.strip() else '')
    return '\n'.join(out)

def _fence(text: str, lang: str = '', classes: str = '') -> str:
    n = max([3] + [len(r) + 1 for r in re.findall(r'`{3,}', text)])
    attrs = f'{{ .{lang} {classes} }}' if classes else lang
    return f"{'`' * n}{attrs}\n{text.rstrip()}\n{'`' * n}"

def _src(x) -> str: return ''.join(x) if isinstance(x, list) else (x or '')

def _cell_options(source: str) -> tuple[dict, str]:
    "Quarto `#| key: value` options of a code cell, and the code without them"
    import yaml
    opts, code = {}, []
    for l in source.split('\n'):
        m = re.match(r'^\s*#\|\s*([\w-]+)\s*:\s*(.*)$', l)
        if m:
            try: opts[m.group(1)] = yaml.safe_load(m.group(2))
            except Exception: opts[m.group(1)] = m.group(2)
        elif not re.match(r'^\s*#\|', l): code.append(l)
    return opts, '\n'.join(code).strip('\n')

class Page:
    "One notebook turned into Markdown, with the files (figures) it needs"
    def __init__(self, nb_path: Path, name: str, docs: Path, lookup):
        self.name, self.docs, self.lookup, self.ids, self.nfig = name, docs, lookup, Ids(), 0
        self.nb = json.loads(nb_path.read_text())
        self.src_dir = NBS/Path(name).parent
        self.fm = self._frontmatter()
        self.title = str(self.fm.get('title') or Path(name).name.replace('_', ' '))

    def _frontmatter(self) -> dict:
        import yaml
        for c in self.nb['cells']:
            if c['cell_type'] == 'raw':
                m = re.match(r'^\s*---\s*\n(.*?)\n---', _src(c['source']), re.S)
                if m:
                    with contextlib.suppress(Exception): return yaml.safe_load(m.group(1)) or {}
        return {}

    def linkify(self, md: str) -> str: return self.lookup.linkify(md) if self.lookup else md

    def markdown(self) -> str:
        parts = [f'# {self.title} {{#{self.ids.add(pandoc_id(self.title))}}}']
        if self.fm.get('description'):
            parts.append(f'<div class="nb-lead" markdown>\n{self.linkify(str(self.fm["description"]))}\n</div>')
        for i, c in enumerate(self.nb['cells']):
            src = _src(c.get('source'))
            if c['cell_type'] == 'markdown':
                if src.strip() and not src.strip().startswith('<!-- WARNING: THIS FILE WAS AUTOGENERATED'):
                    parts.append(self.md_cell(src, c))
            elif c['cell_type'] == 'code':
                md = self.code_cell(src, c, i)
                if md: parts.append(md)
        return '\n\n'.join(parts) + '\n'

    def md_cell(self, src: str, cell: dict) -> str:
        for name, data in (cell.get('attachments') or {}).items():  # pasted images
            for mime, b64 in data.items():
                if mime.startswith('image/'):
                    f = self._write(base64.b64decode(_src(b64)), Path(name).suffix or '.png')
                    src = src.replace(f'attachment:{name}', f)
        src = self._local_files(src)
        return quarto_divs(add_heading_ids(self.linkify(src), self.ids))

    def _local_files(self, md: str) -> str:
        "Copy images and other files a Markdown cell refers to by a relative path next to the page"
        def copy(m):
            url = m.group(2)
            if re.match(r'^([a-z]+:|#|/)', url) or url.endswith(('.html', '.ipynb', '.md')): return m.group(0)
            f = (self.src_dir/url.split('#')[0]).resolve()
            if f.is_file() and NBS in f.parents:
                d = self.docs/f.relative_to(NBS)
                d.parent.mkdir(parents=True, exist_ok=True); shutil.copy2(f, d)
            return m.group(0)
        return re.sub(r'(\]\(|src=")([^)"\s]+)', copy, md)

    def _write(self, data: bytes, ext: str) -> str:
        "Write a figure beside the page; returns its path relative to the page"
        self.nfig += 1
        rel = Path('figures')/Path(self.name).name/f'fig{self.nfig}{ext}'
        f = self.docs/Path(self.name).parent/rel
        f.parent.mkdir(parents=True, exist_ok=True)
        f.write_bytes(data)
        return rel.as_posix()

    def code_cell(self, source: str, cell: dict, idx: int) -> str:
        opts, code = _cell_options(source)
        if opts.get('include') is False: return ''
        parts = []
        if opts.get('echo') is not False and code.strip():
            block = _fence(code, 'python' if cell.get('metadata', {}).get('language', 'python') == 'python' else 'text')
            if opts.get('code-fold'):
                summary = str(opts.get('code-summary') or 'Code')
                mark = '???+' if str(opts['code-fold']).lower() == 'show' else '???'
                block = f'{mark} abstract "{summary}"\n\n' + '\n'.join('    ' + l if l else '' for l in block.split('\n'))
            parts.append(block)
        if opts.get('output') is not False:
            parts += self.outputs(cell.get('outputs', []), opts, is_doc=bool(re.search(r'^\s*show_doc\(', code, re.M)))
        return '\n\n'.join(p for p in parts if p)

    def outputs(self, outs: list, opts: dict, is_doc: bool) -> list[str]:
        res, streams = [], {}
        def flush():
            for name, text in streams.items():
                if text.strip(): res.append(_fence(text.rstrip('\n'), 'text', f'.nb-output .nb-{name}'))
            streams.clear()
        for o in outs:
            t = o.get('output_type')
            if t == 'stream':
                if o.get('name') == 'stderr' and opts.get('warning') is False: continue
                streams[o.get('name', 'stdout')] = streams.get(o.get('name', 'stdout'), '') + _src(o.get('text'))
                continue
            flush()
            if t not in ('execute_result', 'display_data'): continue
            d, meta = o.get('data', {}), o.get('metadata', {})
            if 'text/markdown' in d:
                md = add_heading_ids(self.linkify(_src(d['text/markdown'])), self.ids)
                if is_doc: md = '<div class="nb-api" markdown>\n\n' + re.sub(r'^\s*---\s*\n', '', md) + '\n\n</div>'
                res.append(md)
            elif img := next((m for m in ('image/png', 'image/jpeg', 'image/svg+xml', 'image/gif') if m in d), None):
                raw = _src(d[img])
                data = raw.encode() if img == 'image/svg+xml' else base64.b64decode(raw)
                rel = self._write(data, '.' + {'jpeg': 'jpg', 'svg+xml': 'svg'}.get(img[6:], img[6:]))
                cap = opts.get('fig-cap')
                alt = str(opts.get('fig-alt') or cap or f'Figure {self.nfig} of "{plain_title(self.title)}"').replace('"', "'")
                w = (meta.get(img) or {}).get('width') if isinstance(meta.get(img), dict) else None
                size = f'{{ width="{int(w)}" }}' if w else ''
                res.append(f'<figure class="nb-figure" markdown>\n![{alt}]({rel}){size}\n' +
                           (f'<figcaption>{html.escape(str(cap))}</figcaption>\n' if cap else '') + '</figure>')
            elif 'text/html' in d:
                h = _src(d['text/html'])
                if re.search(r'<script\b', h, re.I): h = html.escape(_src(d.get('text/plain', '')))  # no scripts from outputs
                res.append(f'<div class="nb-html">\n{h.strip()}\n</div>')
            elif 'text/latex' in d: res.append(f'$$\n{_src(d["text/latex"]).strip().strip("$")}\n$$')
            elif 'text/plain' in d: res.append(_fence(_src(d['text/plain']), 'text', '.nb-output'))
        flush()
        return res

# --------------------------------------------------------------------------------------------- doc-link lookup
def symbol_lookup():
    "nbdev's `NbdevLookup` (other libraries' docs) with this library's names pointing at pages of this site"
    from nbdev.doclinks import NbdevLookup, _get_modidx
    from nbdev.config import get_config
    cfg = get_config()
    local = {}
    lib = Path(cfg.lib_path)
    for f in sorted(lib.rglob('*.py')):
        if any(p.startswith(('_', '.')) for p in f.relative_to(lib).parts): continue
        with contextlib.suppress(Exception):
            for mod, syms in _get_modidx(f, lib.parent, NBS).items():
                for full, (url, _) in syms.items():
                    local[full] = url
                    local.setdefault(full[len(mod) + 1:], url)  # `RMAN` as well as `attractor_nb.rman.RMAN`
    try: nl = NbdevLookup(incl_libs=LINKED_LIBS)
    except Exception:
        nl = NbdevLookup.__new__(NbdevLookup); nl.entries, nl.syms, nl.aliases = {}, {}, {}
    nl.syms = {**{k: v for k, v in nl.syms.items() if not str(v[0] if isinstance(v, tuple) else v).startswith(site_base())},
               **local}
    return nl

def site_base() -> str:
    from nbdev.config import get_config
    cfg = get_config()
    return f"{cfg.get('doc_host', '').rstrip('/')}{cfg.get('doc_baseurl', '').rstrip('/')}/"

# ----------------------------------------------------------------------------------- stage 5: links and anchors
def rewrite_links(md: str, page: str, ids: dict[str, set], by_nb: dict[str, str], notes: list) -> str:
    "nbdev's doc links (absolute, or `x.html#id`) become relative `.md` links whose anchors exist"
    base = site_base()
    here = Path(page).parent
    def target(url):
        u = url[len(base):] if base != '/' and url.startswith(base) else url
        if re.match(r'^[a-z]+:', u) or u.startswith(('#', '/')): return None
        path, _, frag = u.partition('#')
        stem = path[:-5] if path.endswith('.html') else by_nb.get(path) if path.endswith('.ipynb') else \
            path[:-3] if path.endswith('.md') else ('index' if path == '' and url != u else None)
        stem = stem if stem in ids else (here/stem).as_posix() if stem and (here/stem).as_posix() in ids else None
        if stem is None: return None
        if frag and frag not in ids[stem]:  # a method without its own show_doc: land on its class
            f = frag
            while '.' in f and f not in ids[stem]: f = f.rsplit('.', 1)[0]
            notes.append(f'{page}: link to {stem}#{frag} lands on {"#" + f if f in ids[stem] else "the page"}')
            frag = f if f in ids[stem] else ''
        rel = os.path.relpath(stem, here.as_posix()) if here.as_posix() != '.' else stem
        return rel, frag
    def md_link(m):
        t = target(m.group(2))
        if t is None: return m.group(0)
        return f'{m.group(1)}{t[0]}.md' + (f'#{t[1]}' if t[1] else '') + m.group(3)
    def href(m):
        t = target(html.unescape(m.group(2)))
        if t is None: return m.group(0)
        return f'{m.group(1)}{t[0]}.html' + (f'#{t[1]}' if t[1] else '') + m.group(3)
    lines = md.split('\n')
    for i, l in _outside_fences(lines):
        l = re.sub(r'(\]\()([^)\s]+)((?:\s+"[^"]*")?\))', md_link, l)
        lines[i] = re.sub(r'(href=")([^"]+)(")', href, l)
    return '\n'.join(lines)

# ------------------------------------------------------------------------------------ stage 4: results overview
def _fmt(v, spread=None, nd=2) -> str:
    if v is None or (isinstance(v, float) and math.isnan(v)): return '–'
    s = f'{v:.{nd}f}'
    return s + (f' ± {spread:.{nd}f}' if spread is not None and not math.isnan(spread) else '')

def _paper_cell(v) -> str:
    if v is None: return '–'
    if isinstance(v, (list, tuple)): return _fmt(float(v[0]), float(v[1]) if len(v) > 1 else None)
    return _fmt(float(v))

def _paused_runs(paused: Path) -> dict:
    "Runs being done in pieces (`runs/paused/<name>/segments.json`, see tools/carry.py): name -> 'N pieces, H h so far'"
    from carry import pieces_text  # tools/carry.py, beside this file
    out = {}
    for f in sorted(paused.glob('*/segments.json')) if paused.is_dir() else []:
        try: segs = json.loads(f.read_text())
        except (OSError, ValueError): continue
        out[f.parent.name] = f'{pieces_text(segs)} so far'
    return out

def results_markdown(docs: Path, folder: Path | None = None, paper_numbers: Path = PAPER_NUMBERS,
                     paused: Path | None = None) -> tuple[str, list[str]]:
    "The results overview: every `results/*.json` in tables beside the papers' numbers, and what is not yet run (or in progress)"
    import yaml
    problems, out = [], []
    try: from attractor_nb.core import load_results, summarise, list_experiments
    except Exception as e:
        return (f'# Results\n\nThe results page could not be generated: `attractor_nb.core` failed to import '
                f'(`{type(e).__name__}: {e}`).\n', [f'results page: {e}'])
    folder = Path(folder or os.environ.get('ATTRACTOR_NB_RESULTS') or ROOT/'results')  # as `results_dir` finds it
    in_progress = _paused_runs(Path(paused or ROOT/'runs'/'paused'))
    recs = []
    for f in sorted(folder.glob('*.json')):
        try: recs += load_results(glob_escape(f.stem), out=folder)
        except Exception as e: problems.append(f'results/{f.name}: {e}')
    try: exps = list_experiments()
    except Exception as e: exps = {}; problems.append(f'experiments could not be listed: {e}')
    try: papers = yaml.safe_load(paper_numbers.read_text())['papers'] if paper_numbers.exists() else []
    except Exception as e: papers = []; problems.append(f'{paper_numbers.name}: {e}')

    out.append('# Results {#results}')
    out.append('<div class="nb-lead" markdown>\nEvery paper-scale run committed under `results/` set beside the numbers '
               'the papers report. This page is generated each time the site is built, from `results/*.json` '
               '(written by `save_results` at the end of a run) and `results/paper_numbers.yml` (the papers\' '
               'numbers, with the table each comes from).\n</div>')
    n_exp = len({r.get('experiment') for r in recs})
    out.append(f'**{len(recs)}** paper-scale results file{"s" if len(recs) != 1 else ""} from **{n_exp}** experiment'
               f'{"s" if n_exp != 1 else ""}.' if recs else
               '!!! info "No paper-scale runs yet"\n    No results file is committed under `results/` yet, so every cell '
               'marked *not yet run* below is still to be done. Paper-scale runs go through the command line, e.g. '
               '`attractor-nb run EXPERIMENT --scale paper --seeds 0,1,2`, and write `results/<run>.json`.')
    for e in problems: out.append(f'!!! warning "Skipped"\n    {e}')

    used = set()
    for paper in papers:
        out.append(f'## {paper["title"]}')
        for t in paper.get('tables', []):
            cols = t.get('columns') or [{'label': t.get('unit') or t['metric'], 'key': ''}]
            unit = f' ({t["unit"]})' if t.get('unit') else ''
            out.append(f'### {t["title"]}')
            spread = t.get('spread', 'std')
            mets = list(dict.fromkeys(r.get('metric', t['metric']) for r in t['rows']))
            what = ', '.join(f'`metrics.{m}`' for m in mets) + (' (by row)' if len(mets) > 1 else '') + \
                   (f' × {t["factor"]}' if t.get('factor', 1) != 1 else '') + unit
            within = ' (a single run with replications shows the spread over its replications)' if t.get('spread_metric') or \
                     any('spread_metric' in r for r in t['rows']) else ''
            out.append(f'*Paper: {t["source"]}. Each cell gives the paper\'s number and, below it, this project\'s '
                       f'mean ± {"standard error" if spread == "sem" else "std"} of {what} over its n seeds{within}.*')
            head = [''] + [c['label'] for c in cols]
            rows, missing = [], []
            for r in t['rows']:
                cells = [r['label']]
                for j, c in enumerate(cols):
                    pv = r.get('paper') or []
                    paper = _paper_cell(pv[j] if j < len(pv) else None)
                    pat = (r.get('runs') or t['runs']).format(row=r.get('key', ''), col=c.get('key', ''))
                    metric = r.get('metric', t['metric'])  # a row may read its own (e.g. nested) metric
                    skip = r.get('exclude', t.get('exclude')) or []  # runs of other recipes that the pattern also matches
                    skip = [skip] if isinstance(skip, str) else skip  # one glob or a list of them
                    hit = [x for x in recs if fnmatch.fnmatchcase(x['name'], pat) and _has_metric(x, metric)
                           and not any(fnmatch.fnmatchcase(x['name'], g) for g in skip)]
                    used.update(x['name'] for x in hit)
                    vals = [{**x, 'metrics': {metric: _metric(x, metric)}} for x in hit
                            if isinstance(_metric(x, metric), (int, float))]
                    if not vals and hit:  # ran, but the metric is null: what null means there (e.g. 'never, up to 1')
                        what = r.get('null_means', t.get('null_means', 'no value'))
                        cells.append(f'<span class="r-paper">{paper}</span><br><span class="r-here">{what} (n={len(hit)})</span>')
                        continue
                    if not vals:
                        if not r.get('optional'): missing.append(pat)  # a comparison row (optional) is not a to-do
                        cells.append(f'<span class="r-paper">{paper}</span><br><span class="r-none">'
                                     f'{"not run" if r.get("optional") else "not yet run"}</span>')
                        continue
                    s = summarise(vals, metric, by=('scale',)).iloc[0]
                    f = float(t.get('factor', 1))
                    sd = s['std'] * f if s['n'] > 1 else float('nan')
                    if spread == 'sem' and s['n'] > 1: sd /= math.sqrt(s['n'])
                    sk = r.get('spread_metric', t.get('spread_metric'))  # the spread a single run stores itself
                    if s['n'] == 1 and sk and isinstance(_metric(hit[0], sk), (int, float)): sd = _metric(hit[0], sk) * f
                    cells.append(f'<span class="r-paper">{paper}</span><br>'
                                 f'<span class="r-here">{_fmt(s["mean"] * f, sd)} (n={int(s["n"])})</span>')
                rows.append(cells)
            out.append(_table(head, rows))
            if missing:
                out.append(f'??? note "Not yet run: {len(missing)} of {len(t["rows"]) * len(cols)} cells"\n' +
                           '\n'.join(f'    - `{p}.json`' + ''.join(f' (in progress: `{n}` paused after {v}, `runs/paused/`)'
                                                                for n, v in in_progress.items() if fnmatch.fnmatchcase(n, p))
                                     for p in dict.fromkeys(missing)))  # each file once

    out.append('## All paper-scale runs {#all-runs}')
    if not recs: out.append('None yet.')
    out += _runs_tables(recs, used, docs)

    reduced, red_dir = [], folder/REDUCED
    for f in sorted(red_dir.glob('*.json')) if red_dir.is_dir() else []:
        try: reduced += load_results(glob_escape(f.stem), out=red_dir)
        except Exception as e: problems.append(f'results/{REDUCED}/{f.name}: {e}')
    if reduced:
        out.append('## Reduced runs on the CPU {#reduced-runs}')
        out.append(f'!!! note "Not the paper\'s protocol"\n    The paper\'s recipe on the full data set, but with fewer epochs '
                   f'(the learning-rate schedule compressed in proportion) or fewer replications, run on a CPU where no '
                   f'GPU was lent. They live in `results/{REDUCED}/`, so they never fill a cell of the tables above; each '
                   f'file\'s config says exactly what was reduced.')
        out += _runs_tables(reduced, set(), docs, mark_unused=False, stem=f'{REDUCED}-')

    out.append('## Experiments {#experiments}')
    if exps:
        rows = []
        for name, e in exps.items():
            n = sum(1 for r in recs if r.get('experiment') == name)
            done = f'{n} run{"s" if n != 1 else ""}' if n else '*not yet run*'
            nr = sum(1 for r in reduced if r.get('experiment') == name)
            red = [f'{nr} reduced run{"s" if nr != 1 else ""} on the CPU ([above](#reduced-runs))'] if nr else []
            going = [f'`{k}` in progress ({v}, `runs/paused/`)' for k, v in in_progress.items() if k.startswith(f'{name}-')]
            rows.append([f'`{name}`', e.description or '', e.paper or '', '<br>'.join([done, *red, *going])])
        out.append('Every registered experiment (`attractor-nb list`), with its paper-scale runs so far, its reduced runs and '
                   'those in progress.')
        out.append(_table(['experiment', 'what', 'paper', 'paper-scale results'], rows))
    return '\n\n'.join(out) + '\n', problems

REDUCED = 'reduced'  # results/reduced/: paper recipe on a smaller budget (CPU runs), shown apart from the paper tables

def _runs_tables(recs: list[dict], used: set, docs: Path, mark_unused: bool = True, stem: str = '') -> list[str]:
    "One table of runs (metrics, wall time, hardware, revision) and its history plot per experiment"
    from attractor_nb.core import run_seconds  # results_markdown has imported core already
    out, by_exp = [], {}
    for r in recs: by_exp.setdefault(r.get('experiment') or '(no experiment)', []).append(r)
    for exp, rs in sorted(by_exp.items()):
        out.append(f'### {exp}')
        rows = []
        for r in rs:
            hw, git, wall = r.get('hardware') or {}, r.get('git') or {}, run_seconds(r)  # all its pieces
            dev = hw.get('gpu') or hw.get('device') or hw.get('machine') or ''
            rev = (git.get('revision') or git.get('commit') or '')[:8] + (' dirty' if git.get('dirty') else '')
            mets = '<br>'.join(f'{k} {_num(v)}' for k, v in _flat(r.get('metrics') or {}).items())
            when = f'{wall / 3600:.1f} h' if isinstance(wall, (int, float)) and wall >= 3600 else \
                   f'{wall / 60:.1f} min' if isinstance(wall, (int, float)) else ''
            mark = ' ·' if mark_unused and r['name'] not in used else ''
            rows.append([f'<span class="r-run">`{r["name"]}`</span>{mark}', mets, when, str(dev),
                         f'{rev}<br>{str(r.get("created", ""))[:10]}'])
        out.append(_table(['run', 'metrics', 'wall time', 'hardware', 'revision, date'], rows))
        if mark_unused and any(r['name'] not in used for r in rs): out.append('*Runs marked · appear in no paper table above.*')
        out.append(_history_plot(exp, rs, docs, stem))
    return out

_ABSENT = object()

def _metric(rec: dict, key: str, absent=None):
    "`rec['metrics'][key]`, where `key` may be a dotted path into nested metrics ('rman.error'); `absent` if not there"
    v = rec.get('metrics') or {}
    for k in key.split('.'):
        if not isinstance(v, dict) or k not in v: return absent
        v = v[k]
    return v

def _has_metric(rec: dict, key: str) -> bool:
    "Whether `key` is in the run's metrics at all (null or not): a run of another model that the pattern matches has not"
    return _metric(rec, key, _ABSENT) is not _ABSENT

def _flat(d: dict, pre: str = '') -> dict:
    out = {}
    for k, v in d.items():
        if isinstance(v, dict): out.update(_flat(v, f'{pre}{k}.'))
        else: out[f'{pre}{k}'] = v
    return out

def glob_escape(s: str) -> str: return re.sub(r'([*?\[])', r'[\1]', s)

def _num(v) -> str:
    if v is None: return '—'  # e.g. the SEM of a single replication
    if isinstance(v, float): return f'{v:.4g}'
    if isinstance(v, (int, str)): return str(v)
    return '…'

def _table(head: list[str], rows: list[list[str]]) -> str:
    esc = lambda s: str(s).replace('|', '\\|').replace('\n', ' ')
    return '\n'.join(['| ' + ' | '.join(map(esc, head)) + ' |', '|' + '---|' * len(head)] +
                     ['| ' + ' | '.join(map(esc, r)) + ' |' for r in rows])

def _history_lines(rs: list[dict], k: str) -> list[tuple[str, str | None, list]]:
    "(run name, model, [(epoch, value)...]) for each run, and for each model of a run that trains several one after the other (history rows with a `model`; else None)"
    lines = []
    for r in rs:
        hist = [h for h in r.get('history') or [] if isinstance(h, dict)]
        for m in dict.fromkeys(h.get('model') for h in hist):
            rows = [h for h in hist if h.get('model') == m]
            pts = [(h.get('epoch', i), h[k]) for i, h in enumerate(rows) if isinstance(h.get(k), (int, float))]
            if pts: lines.append((r['name'], m, pts))
    return lines

def _history_plot(exp: str, rs: list[dict], docs: Path, stem: str = '') -> str:
    "A figure of one experiment's runs: a validation metric over epochs, one line a run or a run's model (file name `stem` + experiment)"
    keys = [k for k in ('error', 'valid_error', 'accuracy', 'valid_loss', 'loss')
            if any(isinstance(h.get(k), (int, float)) for r in rs for h in r.get('history') or [])]
    if not keys: return ''
    import matplotlib
    matplotlib.use('Agg')
    import matplotlib.pyplot as plt
    k = keys[0]
    fig, ax = plt.subplots(figsize=(5.5, 2.8))
    lines = _history_lines(rs, k)
    models = list(dict.fromkeys(m for _, m, _ in lines))
    by_model = len(lines) > 8 and None not in models  # many runs of several models each: one colour per model
    labelled = set()
    for name, m, pts in lines:
        if by_model:  # one legend entry per model
            ax.plot(*zip(*pts), color=f'C{models.index(m)}', lw=0.9, alpha=0.7, label=None if m in labelled else m)
            labelled.add(m)
        else: ax.plot(*zip(*pts), label=name if m is None else f'{name}: {m}', lw=1.2)
    ax.set_xlabel('epoch'); ax.set_ylabel(k)
    ax.set_title(f'{exp}: {k} per epoch' + (f' ({len(rs)} runs, coloured by model)' if by_model else ''), fontsize=10)
    if len(lines) <= 8 or by_model: ax.legend(fontsize=7)
    fig.tight_layout()
    f = docs/'figures'/'results'/f'{stem}{re.sub(r"[^A-Za-z0-9_.-]", "_", exp)}.png'
    f.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(f, dpi=110); plt.close(fig)
    return f'<figure class="nb-figure" markdown>\n![{k} per epoch of the {exp} runs]({f.relative_to(docs).as_posix()}){{ width="605" }}\n</figure>'

# ------------------------------------------------------------------------------------------ MathJax and assets
def cache_dir() -> Path:
    base = os.environ.get('ATTRACTOR_NB_CACHE') or Path(os.environ.get('XDG_CACHE_HOME') or Path.home()/'.cache')/'attractor_nb'
    return Path(base)/'docs'

def mathjax_package() -> Path:
    "The MathJax npm package, fetched once with `npm pack` into the cache (then builds are offline)"
    tgz = cache_dir()/f'mathjax-{MATHJAX_VERSION}.tgz'
    if not tgz.exists():
        tgz.parent.mkdir(parents=True, exist_ok=True)
        say(f'fetching MathJax {MATHJAX_VERSION} from the npm registry into {tgz.parent} (once; later builds are offline)')
        npm = shutil.which('npm')
        if npm:
            r = subprocess.run([npm, 'pack', f'mathjax@{MATHJAX_VERSION}', '--pack-destination', str(tgz.parent), '--silent'],
                               capture_output=True, text=True, timeout=300)
            err = r.stderr[-2000:]
        if not npm or not tgz.exists():  # no npm client: the same tarball, straight from the registry
            url = f'https://registry.npmjs.org/mathjax/-/mathjax-{MATHJAX_VERSION}.tgz'
            try:
                with urllib.request.urlopen(url, timeout=120) as r: data = r.read()
                tmp = tgz.with_name(tgz.name + '.part'); tmp.write_bytes(data); os.replace(tmp, tgz)
            except OSError as e: err = f'{url}: {e}'
        if not tgz.exists():
            sys.exit(f'docs: could not fetch MathJax {MATHJAX_VERSION} from the npm registry ({err}); with a network, '
                     f'run `npm pack mathjax@{MATHJAX_VERSION} --pack-destination {tgz.parent}`')
    if hashlib.sha256(tgz.read_bytes()).hexdigest() != MATHJAX_SHA256:
        sys.exit(f'docs: {tgz} does not have the expected SHA-256; delete it and build again')
    return tgz

def copy_mathjax(dest: Path):
    "MathJax's TeX-to-HTML bundle (all TeX extensions, so it never loads more) and its fonts"
    with tarfile.open(mathjax_package()) as tf:
        for m in tf.getmembers():
            rel = m.name.removeprefix('package/es5/')
            if m.isfile() and (rel == 'tex-chtml-full.js' or rel.startswith('output/chtml/fonts/woff-v2/')):
                f = dest/rel
                f.parent.mkdir(parents=True, exist_ok=True)
                f.write_bytes(tf.extractfile(m).read())
        lic = tf.extractfile('package/LICENSE')
        if lic: (dest/'LICENSE').write_bytes(lic.read())

MATHJAX_CONFIG = """window.MathJax = {
  tex: {inlineMath: [["\\\\(", "\\\\)"]], displayMath: [["\\\\[", "\\\\]"]], processEscapes: true, processEnvironments: true},
  options: {ignoreHtmlClass: ".*|", processHtmlClass: "arithmatex"},
  chtml: {fontURL: new URL("mathjax/output/chtml/fonts/woff-v2", document.currentScript.src).href}
};
"""

EXTRA_CSS = """/* attractor_nb docs: notebook outputs, API blocks and figures */
.md-typeset .nb-lead { font-size: 1.05em; color: var(--md-default-fg-color--light); margin: -0.4em 0 1.4em; }
.md-typeset .nb-api { border: 1px solid var(--md-default-fg-color--lightest); border-left: 4px solid var(--md-primary-fg-color);
  border-radius: 4px; padding: 0.1em 1em 0.4em; margin: 1.4em 0; background: var(--md-code-bg-color--light, rgba(0,0,0,.015)); }
.md-typeset .nb-api h3, .md-typeset .nb-api h4 { margin-top: 0.6em; font-family: var(--md-code-font-family); font-weight: 600; }
.md-typeset .nb-api table { font-size: 0.78em; }
.md-typeset .nb-output pre > code, .md-typeset .nb-output code { background: transparent; }
.md-typeset .highlight.nb-output, .md-typeset .nb-output { border-left: 3px solid var(--md-default-fg-color--lightest); }
.md-typeset .highlight.nb-output pre, .md-typeset .nb-output pre { margin-top: -0.6em; }
.md-typeset .nb-stderr pre > code { color: #8a6d00; }
.md-typeset .nb-figure { margin: 0.5em 0 1.2em; }
.md-typeset .nb-figure img { max-width: 100%; height: auto; }
.md-typeset .nb-html { overflow-x: auto; font-size: 0.8em; margin-bottom: 1em; }
.md-typeset .nb-html table { border-collapse: collapse; border: 0; }
.md-typeset .nb-html th, .md-typeset .nb-html td { padding: 0.25em 0.7em; border: 0; text-align: right;
  border-bottom: 1px solid var(--md-default-fg-color--lightest); }
.md-typeset .nb-html thead th { border-bottom: 1px solid var(--md-default-fg-color--light); }
.md-typeset .arithmatex { overflow-x: auto; }
.md-typeset .r-paper { white-space: nowrap; }
.md-typeset .r-here { white-space: nowrap; color: var(--md-primary-fg-color); font-weight: 600; }
.md-typeset .r-run code { white-space: nowrap; }
.md-typeset .r-none { white-space: nowrap; color: var(--md-default-fg-color--light); font-style: italic; font-size: 0.9em; }
"""

# ----------------------------------------------------------------------------------------------------- the build
def mkdocs_config(nav: list, docs: Path, out: Path) -> dict:
    return {
        'site_name': SITE_NAME,
        'site_description': 'Attractor dynamics in deep networks: RMAN, residual dynamics and state-denoised RNNs as '
                            'runnable, tested notebooks',
        'docs_dir': str(docs), 'site_dir': str(out), 'use_directory_urls': False, 'strict': True,
        'nav': nav,
        'theme': {'name': 'material', 'font': False, 'language': 'en',
                  'palette': {'scheme': 'default', 'primary': 'indigo', 'accent': 'indigo'},
                  'icon': {'logo': 'material/chart-bell-curve-cumulative'},
                  'features': ['content.code.copy', 'navigation.sections', 'navigation.top', 'navigation.footer',
                               'toc.follow', 'search.highlight']},
        'extra': {'generator': False,
                  'social': [{'icon': 'fontawesome/brands/github', 'link': SOURCE_URL, 'name': 'attractor_nb on GitHub'}]},
        'extra_css': ['assets/extra.css'],
        'extra_javascript': ['assets/mathjax-config.js', 'assets/mathjax/tex-chtml-full.js'],
        'plugins': ['search'],
        'markdown_extensions': [
            {'toc': {'permalink': True, 'toc_depth': 4}}, 'tables', 'attr_list', 'md_in_html', 'admonition', 'footnotes',
            'def_list', 'pymdownx.details', 'pymdownx.superfences', 'pymdownx.inlinehilite',
            {'pymdownx.highlight': {'pygments_lang_class': True}}, {'pymdownx.arithmatex': {'generic': True}}],
        'validation': {'nav': {'omitted_files': 'warn', 'not_found': 'warn', 'absolute_links': 'info'},
                       'links': {'not_found': 'warn', 'anchors': 'warn', 'absolute_links': 'info', 'unrecognized_links': 'warn'}},
    }

def build(out: Path = OUT, jobs: int = 2, force: bool = False, verbose: bool = False, keep: bool = False) -> Path:
    "Build the site into `out` from the notebooks as they are (run nbdev-export first to refresh the library)"
    import yaml
    t0 = time.time()
    os.environ.setdefault('MPLBACKEND', 'Agg')
    with working_dir(ROOT):
        nbs = nb_pages()
        procd = process(nbs, WORK/'proc', jobs=jobs, force=force)
        stage = Path(tempfile.mkdtemp(prefix='stage-', dir=WORK))  # one per build: builds may run side by side
        docs = stage/'docs'
        (docs/'assets').mkdir(parents=True)
        lookup = symbol_lookup()
        pages, names, by_nb = {}, {}, {}
        for nb, p in zip(nbs, procd):
            name = page_name(nb)
            if name in pages: name = f'{name}-{nb.stem}'  # two notebooks with one page name: keep both
            pages[name] = Page(p, name, docs, lookup)
            names[nb] = name
            by_nb[nb.relative_to(NBS).as_posix()] = name
        mds = {n: pg.markdown() for n, pg in pages.items()}
        rmd, _ = results_markdown(docs)
        rids = Ids()
        mds['results'] = add_heading_ids(rmd, rids)
        ids = {n: pg.ids.used for n, pg in pages.items()} | {'results': rids.used}
        notes = []
        for n, md in mds.items():
            f = docs/f'{n}.md'
            f.parent.mkdir(parents=True, exist_ok=True)
            f.write_text(rewrite_links(md, n, ids, by_nb, notes))
        if verbose:
            for l in notes: say('note:', l)
        (docs/'assets'/'extra.css').write_text(EXTRA_CSS)
        (docs/'assets'/'mathjax-config.js').write_text(MATHJAX_CONFIG)
        copy_mathjax(docs/'assets'/'mathjax')
        nav, sections = [], {}
        for nb in nbs:
            entry = {'Overview' if nb.stem == 'index' else plain_title(pages[names[nb]].title): f'{names[nb]}.md'}
            g = group_of(nb)
            if g is None: nav.append(entry)
            else:
                if g not in sections: sections[g] = []; nav.append({g: sections[g]})
                sections[g].append(entry)
        nav.insert(1 if nav and 'index.md' in nav[0].values() else 0, {'Results': 'results.md'})
        cfg = stage/'mkdocs.yml'
        cfg.write_text(yaml.safe_dump(mkdocs_config(nav, docs, Path(out).resolve()), sort_keys=False))
        say(f'converted {len(pages)} notebooks and the results page in {time.time() - t0:.1f} s')
        try: run_mkdocs(cfg, verbose)
        except SystemExit: say(f'the generated Markdown and mkdocs.yml are kept in {stage}'); raise
        if keep:
            if (WORK/'last').exists(): shutil.rmtree(WORK/'last')
            os.replace(stage, WORK/'last')
        else: shutil.rmtree(stage)
    say(f'built {Path(out).resolve()} in {time.time() - t0:.1f} s')
    return Path(out)

def run_mkdocs(cfg: Path, verbose: bool = False):
    "mkdocs build --strict, in this process"
    from mkdocs.config import load_config
    from mkdocs.commands.build import build as mk_build
    from mkdocs.exceptions import Abort
    log = logging.getLogger('mkdocs')
    h = logging.StreamHandler(sys.stdout)
    h.setFormatter(logging.Formatter('docs: mkdocs %(levelname)s %(message)s'))
    log.addHandler(h); log.setLevel(logging.INFO if verbose else logging.WARNING); log.propagate = False
    t0 = time.time()
    try: mk_build(load_config(config_file=str(cfg), strict=True))
    except Abort as e: sys.exit(f'docs: mkdocs failed: {e}')
    finally: log.removeHandler(h)
    say(f'mkdocs built the site in {time.time() - t0:.1f} s')

def serve(directory: Path = OUT, port: int = 8000, host: str = '127.0.0.1'):
    "Serve the built site on `host:port` until interrupted"
    import functools, http.server
    if not (Path(directory)/'index.html').exists(): sys.exit(f'docs: no site in {directory}: run `make docs` first')
    class Quiet(http.server.SimpleHTTPRequestHandler):
        def log_message(self, *a): pass
    srv = http.server.ThreadingHTTPServer((host, port), functools.partial(Quiet, directory=str(directory)))
    say(f'serving {directory} on http://{host}:{srv.server_port}/ (Ctrl-C stops)')
    with contextlib.suppress(KeyboardInterrupt): srv.serve_forever()

def main(argv=None):
    p = argparse.ArgumentParser(prog='tools/docs.py', description=__doc__.split('\n')[0])
    sub = p.add_subparsers(dest='cmd', required=True)
    b = sub.add_parser('build', help='build the site')
    b.add_argument('--out', type=Path, default=OUT, help='site folder (default: _docs)')
    b.add_argument('--jobs', type=int, default=int(os.environ.get('DOCS_JOBS', 2)), help='notebooks processed at once')
    b.add_argument('--force', action='store_true', help='reprocess every notebook, ignoring the cache')
    b.add_argument('--keep', action='store_true', help='keep the generated Markdown and mkdocs.yml in _mkdocs/last')
    b.add_argument('-v', '--verbose', action='store_true')
    s = sub.add_parser('serve', help='serve the built site on 127.0.0.1')
    s.add_argument('--dir', type=Path, default=OUT)
    s.add_argument('--port', type=int, default=8000)
    a = p.parse_args(argv)
    if a.cmd == 'build': build(a.out, a.jobs, a.force, a.verbose, a.keep)
    else: serve(a.dir, a.port)

if __name__ == '__main__': main()
