#!/bin/sh
# The peer harness's own virtual environment (numpy, scipy, cvxpy with Clarabel, and
# dlncheck's Python package for the in-process rows) and a release build of dlncheck.
# Run from anywhere; takes a few minutes on a fresh machine.
set -eu
here=$(cd "$(dirname "$0")" && pwd)
python3 -m venv "$here/.venv"
"$here/.venv/bin/pip" install --quiet --upgrade pip
"$here/.venv/bin/pip" install --quiet -r "$here/requirements.txt"
"$here/.venv/bin/pip" install --quiet "$here/../../python"
cargo build --release --locked --manifest-path "$here/../../Cargo.toml"
echo "ready: $here/.venv/bin/python $here/peers.py"
