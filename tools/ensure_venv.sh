#!/usr/bin/env bash
# ensure_venv.sh VENV: create VENV if missing, (re)install the pinned requirements when requirements/lock.txt or
# pyproject.toml changed since the last install, and install this checkout into it (editable, without deps,
# so pip never picks torch itself). Cheap when nothing changed.
set -euo pipefail
cd "$(dirname "$0")/.."
VENV=${1:-.venv}
PY="$VENV/bin/python"
want=$(cat requirements/lock.txt pyproject.toml | sha256sum | cut -c1-16)
if [ ! -x "$PY" ] || ! "$PY" -c 'import sys' 2>/dev/null; then
  echo "creating virtual environment $VENV"
  rm -rf "$VENV"; python3 -m venv "$VENV"
fi
if [ "$(cat "$VENV/.attractor_nb-lock" 2>/dev/null)" != "$want" ]; then
  echo "installing pinned requirements into $VENV (first time: a few minutes, several GB for torch)"
  "$PY" -m pip install -q --upgrade pip
  "$PY" -m pip install -q -r requirements/lock.txt
  echo "$want" > "$VENV/.attractor_nb-lock"
fi
# editable install of this checkout (the venv may be shared by several checkouts, e.g. CI's clones);
# the check runs outside the checkout, where `attractor_nb/` in the working directory cannot answer for it
here=$(pwd -P)
PY=$(cd "$VENV" && pwd -P)/bin/python
installed_at() { (cd / && "$PY" -c 'import attractor_nb,os;print(os.path.dirname(os.path.dirname(os.path.realpath(attractor_nb.__file__))))' 2>/dev/null); }
if [ "$(installed_at)" != "$here" ]; then
  "$PY" -m pip install -q --no-deps --no-build-isolation -e . 2>&1 | grep -v -i "warning\|deprecat\|!!\|^ *$\|\*\*\*\*" || true
fi
[ "$(installed_at)" = "$here" ] || { echo "attractor_nb from $here is not installed in $VENV" >&2; exit 1; }
# the docs' MathJax (npm package, SHA-256 checked) is fetched here, at install time, so that tests never download
(cd tools && "$PY" -c 'import docs; docs.mathjax_package()' >/dev/null) || { echo "could not fetch MathJax for the docs" >&2; exit 1; }
