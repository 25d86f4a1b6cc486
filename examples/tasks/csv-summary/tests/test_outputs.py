import csv
import json
from pathlib import Path


def expected():
    totals = {}
    with open("/app/sales.csv", newline="") as f:
        for row in csv.DictReader(f):
            t = totals.setdefault(row["region"], [0, 0.0])
            t[0] += int(row["units"])
            t[1] += int(row["units"]) * float(row["price"])
    return {r: (u, round(v, 2)) for r, (u, v) in totals.items()}


def test_summary_is_json_object():
    data = json.loads(Path("/app/summary.json").read_text())
    assert isinstance(data, dict)


def test_totals():
    data = json.loads(Path("/app/summary.json").read_text())
    got = {r: (v["units"], v["revenue"]) for r, v in data.items()}
    assert got == expected()


def test_sorted_regions():
    data = json.loads(Path("/app/summary.json").read_text())
    assert list(data) == sorted(data)
