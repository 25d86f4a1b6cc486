"""bc and expr against the real tools: same output and status."""

from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from shell_compare import compare, make_shell, need

BC_PROGRAMS = [
    "1+2", "1/3", "scale=5; 1/3; -1/3", ".5*3", "2^10", "scale=5; 2^-1", "scale=5; 7%3",
    "scale=2; 7.5%2", "2^100", "2^300", "10/3", "-5/2; -5%2; 5/-2", "1.10; 0.000; -0",
    "length(123.45); scale(1.234)", "x=5; x++; x; ++x; x--; --x", "a=1; b=a+1; b",
    "scale=10; sqrt(2); sqrt(16)", "scale=3; 1.2345*1", "scale=0; 1.2345*2.5",
    "obase=16; 255; obase=2; 10", "ibase=16; FF; A", "x=3; x^=2; x; x*=2; x; x/=4; x",
    "1 < 2; 2 < 1; 1 == 1; 1 != 1; 2 >= 2", "!0; 1 && 0; 1 || 0",
    "for (i = 0; i < 3; i++) i", "i = 0; while (i < 3) { i; i = i + 1 }",
    "if (1 > 0) 10 else 20", "define f(n) {\n if (n < 2) return (1)\n return (n * f(n - 1))\n}"
    "\nf(20)", "define g(x) {\n auto y\n y = x * 2\n return (y)\n}\ny = 7; g(3); y",
    "\"hello\n\"", "print 1, \" two \", 3, \"\\n\"", "/* comment */ 4 # trailing",
    "a[2] = 5; a[2] + a[1]",
    "1 +", "1/0", "quit", "scale=50; 1/7", "123456789012345678901234567890 * 98765432109876543210",
    "99999999999999999999999999999999999999999999999999999999999999999999999999999",
    "scale=4; (1.5 + 2.25) * 3 / 7", "-3^2; (-3)^2; 2^3^2", "x = 5; x; last; .",
]
BC_L = ["s(1); c(1); a(1); l(2); e(1)", "4*a(1)", "e(10)", "l(10)", "scale=5; e(1)",
        "s(0); c(0); a(0)", "a(-2); s(-1); e(-1)", "sqrt(2)", "10/3"]


@pytest.mark.parametrize("prog", BC_PROGRAMS)
def test_bc_same_as_real(prog: str, tmp_path: Path) -> None:
    need("bc")
    compare("bc", tmp_path, {}, stdin=(prog + "\n").encode())


@pytest.mark.parametrize("prog", BC_L)
def test_bc_mathlib_same_as_real(prog: str, tmp_path: Path) -> None:
    need("bc")
    compare("bc -l", tmp_path, {}, stdin=(prog + "\n").encode())


def test_bc_reads_files_then_stdin(tmp_path: Path) -> None:
    need("bc")
    compare("echo 'x=6' > f.bc; echo 'x*7' | bc -q f.bc", tmp_path, {})


_nums = st.decimals(min_value=-10**6, max_value=10**6, places=3, allow_nan=False,
                    allow_infinity=False)


@settings(max_examples=50, deadline=None)
@given(a=_nums, b=_nums, op=st.sampled_from(["+", "-", "*", "/", "%", "^ 3 +"]),
       scale=st.integers(0, 8))
def test_bc_arithmetic_agrees_with_real(a: object, b: object, op: str, scale: int) -> None:
    import shutil
    import subprocess
    if shutil.which("bc") is None:
        pytest.skip("reference tool not installed: bc (apt-get install -y bc)")
    if op in ("/", "%") and float(str(b)) == 0:
        return
    prog = f"scale={scale}; ({a}) {op} ({b})\n".encode()
    real = subprocess.run(["bc"], input=prog, capture_output=True, timeout=20)
    ours = make_shell(Path("/nonexistent"), {}).exec("bc", prog)
    assert ours.stdout == real.stdout, prog


EXPR_CASES = [
    "expr 1 + 2", "expr 10 - 3 '*' 2", "expr 7 / 2; expr -7 / 2; expr 7 % 3; expr -7 % 3",
    "expr 2 '<' 10; expr a '<' b; expr 10 '<' 9", "expr abc = abc; expr 1 '!=' 1; echo $?",
    "expr length hello", "expr substr hello 2 3", "expr index hello l", "expr hello : 'h.l'",
    "expr hello : '\\(h.l\\)'", "expr hello : 'x'; echo $?", "expr match abc 'a\\(.\\)'",
    "expr 0 '|' 5; expr 3 '&' 0; echo $?", "expr '' '|' 0; echo $?", "expr 1 / 0; echo $?",
    "expr a + 1; echo $?", "expr; echo $?", "expr '(' 1 + 2 ')' '*' 3",
    "expr 12345678901234567890 '*' 10", "expr + length", "expr 1 +; echo $?", "expr 5",
    "x=3; x=$(expr $x + 1); echo $x", "expr 0; echo $?", "expr substr abc 0 1; echo $?",
]


@pytest.mark.parametrize("cmd", EXPR_CASES)
def test_expr_same_as_real(cmd: str, tmp_path: Path) -> None:
    need("expr")
    compare(cmd, tmp_path, {})
