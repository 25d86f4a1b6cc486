#!/bin/bash
set -e
cd /app
cat > summarise.py <<'PY'
import csv
import json

totals = {}
with open("sales.csv", newline="") as f:
    for row in csv.DictReader(f):
        t = totals.setdefault(row["region"], {"units": 0, "revenue": 0.0})
        t["units"] += int(row["units"])
        t["revenue"] += int(row["units"]) * float(row["price"])
summary = {r: {"units": t["units"], "revenue": round(t["revenue"], 2)}
           for r, t in sorted(totals.items())}
with open("summary.json", "w") as f:
    json.dump(summary, f, indent=2)
print(json.dumps(summary))
PY
python3 summarise.py
