"""Write README.md from nbs/index.ipynb (nbdev-readme needs Quarto, which cannot be installed here).
Markdown cells are copied; code cells become ```python blocks followed by their text output; cells marked
`#| hide` (and export cells) are left out. `python tools/make_readme.py --check` exits 1 when README.md is stale."""
import json, sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

def _directives(src):
    return {l[3:].strip().split()[0] for l in src.splitlines() if l.startswith('#|') and l[3:].strip()}

def render(nb_path=ROOT/'nbs'/'index.ipynb'):
    nb = json.loads(Path(nb_path).read_text())
    parts = ["<!-- generated from nbs/index.ipynb by tools/make_readme.py: edit the notebook, not this file -->"]
    for c in nb['cells']:
        src = ''.join(c['source'])
        if c['cell_type'] == 'markdown':
            parts.append(src.strip())
            continue
        d = _directives(src)
        if d & {'hide', 'export', 'exporti', 'exports', 'default_exp'}: continue
        code = '\n'.join(l for l in src.splitlines() if not l.startswith('#|')).strip()
        if not code: continue
        block = f"```python\n{code}\n```"
        texts = []
        for o in c.get('outputs', []):
            if o['output_type'] == 'stream': texts.append(''.join(o['text']))
            elif 'text/plain' in o.get('data', {}) and 'image/png' not in o.get('data', {}):
                texts.append(''.join(o['data']['text/plain']))
        if texts: block += "\n\n```\n" + ''.join(texts).rstrip() + "\n```"
        parts.append(block)
    return '\n\n'.join(parts) + '\n'

if __name__ == '__main__':
    text, readme = render(), ROOT/'README.md'
    if '--check' in sys.argv:
        ok = readme.exists() and readme.read_text() == text
        print('README.md is up to date' if ok else 'README.md is stale: run `python tools/make_readme.py`')
        sys.exit(0 if ok else 1)
    readme.write_text(text)
    print(f'wrote {readme}')
