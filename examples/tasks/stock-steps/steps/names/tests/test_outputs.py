from pathlib import Path


def test_names_sorted():
    assert Path("/app/names.txt").read_text().split() == ["bolt", "gear", "nut", "widget"]
