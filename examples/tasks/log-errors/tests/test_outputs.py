from collections import Counter
from pathlib import Path


def expected():
    counts = Counter()
    for log in sorted(Path("/app/logs").glob("*.log")):
        for line in log.read_text().splitlines():
            if " ERROR " in line:
                counts[line.split(" ERROR ", 1)[1]] += 1
    return [f"{n} {msg}" for msg, n in sorted(counts.items(), key=lambda kv: (-kv[1], kv[0]))]


def test_errors_file():
    assert Path("/app/errors.txt").read_text().splitlines() == expected()
