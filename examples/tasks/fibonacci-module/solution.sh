#!/bin/bash
cat > /app/fib.py <<'EOF_PY'
import sys


def fib(n):
    out, a, b = [], 0, 1
    for _ in range(n):
        out.append(a)
        a, b = b, a + b
    return out


if __name__ == "__main__":
    print(" ".join(str(x) for x in fib(int(sys.argv[1]))))
EOF_PY
python3 /app/fib.py 10
