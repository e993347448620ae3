"""The `dlncheck` binary the README's commands build, for the tests that compare the
Python functions with the command line: $DLNCHECK_BIN, else target/release/dlncheck in
this repository, else `dlncheck` on PATH (`cargo install --path . --locked`). Without
one, those tests are skipped with a note; everything else runs."""

import os
import pathlib
import shutil

import pytest

ROOT = pathlib.Path(__file__).resolve().parents[2]


def _find():
    if os.environ.get("DLNCHECK_BIN"):
        return os.environ["DLNCHECK_BIN"]
    built = ROOT / "target" / "release" / "dlncheck"
    if built.exists():
        return str(built)
    return shutil.which("dlncheck")


BIN = _find()


def cli():
    """The binary's path, or skip this test (nothing is built for it)."""
    if BIN is None:
        pytest.skip("no dlncheck binary (build it with `cargo build --release`, or set DLNCHECK_BIN)")
    return BIN
