"""The committed .wasm fixtures are what their C sources build to.

Runs ``wasi_fixtures/build.py --check`` (a rebuild into a temp dir, compared byte for
byte). It needs the compiler the manifest records (PyPI ``ziglang``, found through
``python -m ziglang`` or ``$OANIX_ZIG_PYTHON``); without it the test is skipped and says
so.
"""

import subprocess
import sys
from pathlib import Path

import pytest

BUILD = Path(__file__).resolve().parents[2] / "wasi_fixtures" / "build.py"


def test_committed_wasm_matches_its_source() -> None:
    res = subprocess.run([sys.executable, str(BUILD), "--check"], capture_output=True,
                         text=True, timeout=600)
    if res.returncode == 2:
        pytest.skip(f"fixture compiler unavailable: {(res.stdout + res.stderr).strip()}")
    assert res.returncode == 0, res.stdout + res.stderr
