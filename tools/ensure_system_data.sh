#!/usr/bin/env bash
# Data sets that come from Debian packages rather than ../shared/data: Fashion-MNIST (the residual notebooks' second
# data set) is `dataset-fashion-mnist`, installed into /usr/share/datasets/fashion-mnist. Installed when missing and
# apt-get can run (as root); otherwise say how to get it (`attractor-nb download fashion-mnist` with internet).
set -e
if [ -d /usr/share/datasets/fashion-mnist ]; then exit 0; fi
if command -v apt-get >/dev/null && [ "$(id -u)" = 0 ]; then
  echo "installing Debian's dataset-fashion-mnist (Fashion-MNIST for the residual-dynamics notebooks)"
  (apt-get update -qq && apt-get install -y -qq dataset-fashion-mnist >/dev/null) || \
    echo "warning: could not install dataset-fashion-mnist; notebooks 23 and 24 need Fashion-MNIST" >&2
else
  echo "note: Fashion-MNIST not found; run 'apt-get install dataset-fashion-mnist' as root, or" \
       "'attractor-nb download fashion-mnist' with internet (notebooks 23 and 24 need it)" >&2
fi
