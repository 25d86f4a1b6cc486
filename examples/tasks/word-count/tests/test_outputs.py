from pathlib import Path


def test_counts_file_exists():
    assert Path("/app/counts.txt").exists()


def test_counts_match_each_line():
    poem = Path("/app/data/poem.txt").read_text().splitlines()
    counts = [int(x) for x in Path("/app/counts.txt").read_text().split()]
    assert counts == [len(line.split()) for line in poem]
