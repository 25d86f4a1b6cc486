import os
from pathlib import Path


def test_names_still_there():
    assert Path("/app/names.txt").exists()


def test_total():
    total = float(Path("/app/total.txt").read_text().strip())
    assert abs(total - float(os.environ["EXPECTED_TOTAL"])) < 1e-6
