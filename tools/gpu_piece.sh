#!/usr/bin/env bash
# One piece of a paper-scale run on the lent GPU machine (the `device` tool), continued across calls.
#
#   bash tools/gpu_wheels.sh                        # here, once: the wheels the GPU machine lacks, into .whl/
#   device run: bash tools/gpu_piece.sh HOURS EXPERIMENT [OPTIONS...]   with carry [".whl", ".gpu"]
#   here, after it: rm -rf .gpu/ck && tar xzf <files_at>/ck.tgz -C .gpu    # so that the next call resumes
#
# It installs .whl/*.whl into /tmp/site when fastai is missing, runs
#   attractor-nb run EXPERIMENT --scale paper --resume --checkpoints .gpu/ck --stop-after HOURS ...
# on $DEVICE (default cuda) with the data in .gpu/data (unless ATTRACTOR_NB_DATA is set) and the checkpoints in
# $CK (default .gpu/ck, whose last folder name must be ck), writes the results
# of a run that finishes under $OUT/results, and packs the checkpoints (with their segments.json, the log of
# the pieces) into $OUT/ck.tgz. Its exit status is the run's: 0 finished, 3 paused at HOURS.
set -uo pipefail
cd "$(dirname "$0")/.."
if [ $# -lt 2 ]; then echo "usage: bash tools/gpu_piece.sh HOURS EXPERIMENT [OPTIONS...]" >&2; exit 2; fi
H=$1; shift
OUT=${OUT:-/tmp/gpu_piece}; CK=${CK:-.gpu/ck}; mkdir -p "$OUT" "$(dirname "$CK")"
[ "$(basename "$CK")" = ck ] || { echo "gpu_piece: CK=$CK: its last folder name must be ck" >&2; exit 2; }
export PYTHONPATH=$PWD${PYTHONPATH:+:$PYTHONPATH} PYTHONUNBUFFERED=1 MPLBACKEND=Agg
export ATTRACTOR_NB_DATA=${ATTRACTOR_NB_DATA:-$PWD/.gpu/data}
PY=${PYTHON:-python3}
if ! "$PY" -c "import fastai" 2>/dev/null; then
  ls .whl/*.whl >/dev/null 2>&1 || { echo "gpu_piece: fastai is missing and .whl/ has no wheels: run bash tools/gpu_wheels.sh and carry .whl" >&2; exit 2; }
  "$PY" -m pip install -q --no-index --no-deps --target /tmp/site .whl/*.whl || exit 2
  export PYTHONPATH=/tmp/site:$PYTHONPATH
fi
"$PY" -m attractor_nb.cli run "$@" --scale paper --device "${DEVICE:-cuda}" --no-progress \
  --checkpoints "$CK" --resume --out "$OUT/results" --stop-after "$H"
rc=$?
[ -d "$CK" ] && tar czf "$OUT/ck.tgz" -C "$(dirname "$CK")" ck
echo "gpu_piece: exit status $rc (0: finished, 3: paused; untar ck.tgz into .gpu/ and call again to continue)"
exit $rc
