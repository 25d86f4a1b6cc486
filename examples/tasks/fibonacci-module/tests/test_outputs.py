import importlib.util
import io
import runpy
import sys
from contextlib import redirect_stdout


def load():
    spec = importlib.util.spec_from_file_location("fib", "/app/fib.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def test_fib_values():
    fib = load().fib
    assert fib(0) == []
    assert fib(1) == [0]
    assert fib(10) == [0, 1, 1, 2, 3, 5, 8, 13, 21, 34]


def test_script_output():
    out = io.StringIO()
    argv = sys.argv
    sys.argv = ["fib.py", "7"]
    try:
        with redirect_stdout(out):
            runpy.run_path("/app/fib.py", run_name="__main__")
    finally:
        sys.argv = argv
    assert out.getvalue().split() == ["0", "1", "1", "2", "3", "5", "8"]
