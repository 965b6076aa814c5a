#!/usr/bin/env bash
# Download the pure-Python (and a few binary) wheels that the GPU machine lacks into .whl/ (git-ignored),
# for Python 3.12 on x86-64. The GPU machine has torch, torchvision, torchaudio, torchdiffeq, numpy, pandas,
# scipy, matplotlib, pillow and pyarrow, but not fastai and its small dependencies, nor nltk or soundfile.
# fastprogress 1.0.3 rather than 1.1.x: 1.1 imports python-fasthtml (a web framework with many more wheels).
# Usage: bash tools/gpu_wheels.sh   (then see README "Running on a GPU machine")
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3}
rm -rf .whl && mkdir -p .whl
WHEELS=(
  fastai==2.8.12 fastcore==2.2.39 fastprogress==1.0.3 fastdownload==0.0.8 fasttransform==0.0.5
  plum-dispatch==2.9.0 beartype==0.23.1 nltk==3.10.4 soundfile==0.14.0 cffi==2.1.1 pycparser==3.12
)
"$PY" -m pip download -q --no-deps --only-binary=:all: --python-version 3.12 --implementation cp \
  --platform manylinux_2_28_x86_64 --platform manylinux_2_27_x86_64 --platform manylinux_2_17_x86_64 \
  --platform manylinux2014_x86_64 --platform manylinux1_x86_64 -d .whl "${WHEELS[@]}"
ls -1 .whl
du -sh .whl
