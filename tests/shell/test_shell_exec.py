"""The shell's behaviour over a namespace: state, hooks, errors, expansion, control flow."""

from __future__ import annotations

import pytest

from oanix import MemFs, Namespace
from oanix.shell import Ctx, ExecResult, Shell
from oanix.shell.context import OUTPUT_CAP


def make_ns() -> Namespace:
    ns = Namespace()
    ns.mount("/", MemFs())
    ns.makedirs("/bin")
    ns.makedirs("/work")
    return ns


@pytest.fixture
def ns() -> Namespace:
    return make_ns()


@pytest.fixture
def sh(ns: Namespace) -> Shell:
    return Shell(ns, cwd="/work")


def out(res: ExecResult) -> str:
    return res.stdout_text


# -- results and state ------------------------------------------------------------------


def test_exec_result_fields(sh: Shell) -> None:
    res = sh.exec("echo out; echo err >&2; exit 3")
    assert res == ExecResult(b"out\n", b"err\n", 3)
    assert (res.stdout_text, res.stderr_text) == ("out\n", "err\n")


def test_state_persists_across_exec(sh: Shell) -> None:
    sh.exec("mkdir -p d && cd d && X=1 && export Y=2 && f() { echo fn $1; }")
    assert sh.cwd == "/work/d"
    assert out(sh.exec("pwd; echo $X $Y; f a")) == "/work/d\n1 2\nfn a\n"
    assert sh.env["Y"] == "2" and "X" not in sh.env


def test_exit_does_not_break_the_session(sh: Shell) -> None:
    assert sh.exec("exit 5").exit_code == 5
    assert sh.exec("echo $?").stdout_text == "5\n"
    assert sh.exec("echo still").stdout_text == "still\n"


def test_stdin_is_given_to_the_script(sh: Shell) -> None:
    assert out(sh.exec("tr a-z A-Z", stdin=b"hello\n")) == "HELLO\n"
    assert out(sh.exec("read a; read b; echo $b$a", stdin=b"1\n2\n")) == "21\n"


def test_files_go_through_the_namespace(ns: Namespace, sh: Shell) -> None:
    sh.exec("echo data > f.txt; mkdir -p a/b; cp f.txt a/b/g")
    assert ns.read_text("/work/f.txt") == "data\n"
    assert ns.read_text("/work/a/b/g") == "data\n"
    ns.write_text("/work/h", "from ns\n")
    assert out(sh.exec("cat h")) == "from ns\n"


def test_namespace_errors_are_formatted_like_coreutils(ns: Namespace, sh: Shell) -> None:
    res = sh.exec("cat /nope")
    assert (res.exit_code, res.stderr_text) == (1, "cat: /nope: No such file or directory\n")
    ro = MemFs()
    ro.write_text("/f", "x")
    ns.mount("/ro", ro, readonly=True)
    res = sh.exec("echo x > /ro/f")
    assert res.exit_code == 1 and "/ro/f: Read-only file system" in res.stderr_text
    res = sh.exec("rm /ro/f")
    assert res.exit_code == 1 and "rm: cannot remove '/ro/f': Read-only file system" in \
        res.stderr_text
    res = sh.exec("cat /work")
    assert res.exit_code == 1 and "Is a directory" in res.stderr_text


# -- commands ---------------------------------------------------------------------------


def test_unknown_command_is_127(sh: Shell) -> None:
    res = sh.exec("no_such_thing arg")
    assert (res.exit_code, res.stderr_text) == (127, "sh: no_such_thing: command not found\n")
    assert sh.exec("./missing").exit_code == 127


def test_directory_and_unrunnable_files_are_126(ns: Namespace, sh: Shell) -> None:
    assert sh.exec("/work").exit_code == 126
    ns.write_bytes("/bin/prog", b"\0asm\x01\0\0\0")
    res = sh.exec("prog")
    assert res.exit_code == 126 and "cannot execute" in res.stderr_text
    ns.write_bytes("/work/bin.dat", b"\x7fELF\0\0\0")
    assert sh.exec("./bin.dat").exit_code == 126


def test_syntax_error_is_2_with_position(sh: Shell) -> None:
    res = sh.exec("echo a\nif true; then\n  echo b\nfi fi\n")
    assert res.exit_code == 2
    assert res.stdout == b""
    assert "line 4, column 4" in res.stderr_text and "fi" in res.stderr_text


def test_run_program_hook(ns: Namespace) -> None:
    calls = []

    def run(path: str, argv: list[str], env: dict[str, str], cwd: str,
            stdin: bytes) -> tuple[int, bytes, bytes]:
        calls.append((path, argv, env.get("V"), cwd, stdin))
        return 4, b"wasm says " + stdin, b"warn\n"

    ns.write_bytes("/bin/tool", b"\0asm\x01\0\0\0")
    sh = Shell(ns, cwd="/work", run_program=run)
    res = sh.exec("export V=1; echo in | tool -x a; echo $?")
    assert res.stdout_text == "wasm says in\n4\n"
    assert res.stderr_text == "warn\n"
    assert calls == [("/bin/tool", ["tool", "-x", "a"], "1", "/work", b"in\n")]
    # A path with a slash runs directly; PATH is honoured.
    assert sh.exec("/bin/tool").exit_code == 4
    assert sh.exec("PATH=/nowhere; tool").exit_code == 127


def test_extra_python_commands(ns: Namespace) -> None:
    def py(ctx: Ctx, argv: list[str]) -> int:
        ctx.write(f"{argv[1:]} {ctx.cwd} {ctx.env.get('K')} ".encode() + ctx.stdin)
        ctx.namespace.write_bytes(ctx.resolve("made"), b"by py")
        ctx.error("note")
        return 7

    sh = Shell(ns, env={"K": "v"}, cwd="/work", commands={"python3": py})
    res = sh.exec("echo hi | python3 -c x; echo $?; cat made")
    assert res.stdout_text == "['-c', 'x'] /work v hi\n7\nby py"
    assert res.stderr_text == "python3: note\n"
    assert out(sh.exec("command -v python3; which python3; /usr/bin/python3 -c y")) == (
        "/usr/bin/python3\n/usr/bin/python3\n['-c', 'y'] /work v ")


def test_scripts_with_arguments_and_shebangs(ns: Namespace, sh: Shell) -> None:
    ns.write_text("/work/s.sh", 'echo "$0:$#:$1:$2"; for a in "$@"; do echo "[$a]"; done\n')
    assert out(sh.exec("sh s.sh 'a b' c")) == "s.sh:2:a b:c\n[a b]\n[c]\n"
    assert out(sh.exec("bash -c 'echo $1' x y")) == "y\n"
    ns.write_text("/work/t.sh", "#!/bin/bash\nset -e\necho one\nfalse\necho two\n")
    res = sh.exec("./t.sh; echo rc=$?")
    assert res.stdout_text == "one\nrc=1\n"
    ns.write_text("/work/p.py", "#!/usr/bin/env python3\nprint(1)\n")
    assert sh.exec("./p.py").exit_code == 127  # no python3 command given
    # A child shell sees exported variables only, and cannot change the parent.
    res = sh.exec("A=1; export B=2; sh -c 'echo \"$A|$B\"; cd /; C=3'; pwd; echo \"$C\"")
    assert res.stdout_text == "|2\n/work\n\n"


def test_sh_reads_script_from_stdin(sh: Shell) -> None:
    assert out(sh.exec("echo 'echo from stdin' | sh")) == "from stdin\n"


def test_output_is_capped() -> None:
    sh = Shell(make_ns())
    res = sh.exec("yes_line() { echo 0123456789abcdef; }; i=0; cat /dev/null",)
    assert res.exit_code == 0
    big = "x" * (1 << 20)
    res = sh.exec(f"v={big}; for i in $(seq 20); do echo $v; done")
    assert len(res.stdout) == OUTPUT_CAP and res.stdout_truncated
    assert set(res.stdout) == {ord("x"), ord("\n")}  # kept as written: no marker


# -- expansion --------------------------------------------------------------------------


@pytest.mark.parametrize(("script", "expected"), [
    ("x='a  b'; echo $x \"$x\"", "a b a  b\n"),
    ("echo 'single $x \"q\"' \"double 'q' \\$x\"", "single $x \"q\" double 'q' $x\n"),
    ("echo a\\ b\\$c\\\\", "a b$c\\\n"),
    ("x=1; echo ${x}0 $x0-", "10 -\n"),
    ("echo ${U:-def} ${U:=set} $U ${U:+alt} ${#U}", "def set set alt 3\n"),
    ("f=/a/b.c.d; echo ${f##*/} ${f#/} ${f%.*} ${f%%.*}", "b.c.d a/b.c.d /a/b.c /a/b\n"),
    ("echo $(echo $(echo nested)) `echo tick`", "nested tick\n"),
    ("echo \"$(printf 'a\\n\\n')\"|od -c 2>/dev/null || echo \"[$(printf 'a\\n\\n')]\"",
     "[a]\n"),
    ("echo $((1 + 2 * 3)) $(( (1+2) * 3 )) $((7 / -2)) $((-7 % 3)) $((1 ? 4 : 5))",
     "7 9 -3 -1 4\n"),
    ("i=1; : $((i += 4)); echo $i $((i++)) $i", "5 5 6\n"),
    ("set -- 'a b' c; echo $#; printf '<%s>' \"$@\" $@ \"$*\"; echo",
     "2\n<a b><c><a><b><c><a b c>\n"),
    ("set --; printf '<%s>' \"$@\"; echo end", "<>end\n"),
    ("x=; printf '<%s>' $x \"$x\" ''; echo", "<><>\n"),
    ("HOME=/h; echo ~ ~/x '~' a~", "/h /h/x ~ a~\n"),
    ("v=abc; echo ${v/b/X} ${v//[ac]/_}", "aXc _b_\n"),
    ("echo $$ | grep -c '^[0-9][0-9]*$'", "1\n"),
])
def test_expansion(sh: Shell, script: str, expected: str) -> None:
    assert out(sh.exec(script)) == expected


def test_globbing_against_the_namespace(ns: Namespace, sh: Shell) -> None:
    for name in ("a.txt", "b.txt", "c.md", ".hidden.txt", "sub/d.txt", "sub/e.py"):
        ns.makedirs("/work/" + name.rpartition("/")[0], exist_ok=True) if "/" in name else None
        ns.write_text("/work/" + name, "")
    assert out(sh.exec("echo *.txt")) == "a.txt b.txt\n"
    assert out(sh.exec("echo ?.md [ab].txt [!a].txt")) == "c.md a.txt b.txt b.txt\n"
    assert out(sh.exec("echo */*.txt /work/sub/*")) == "sub/d.txt /work/sub/d.txt /work/sub/e.py\n"
    assert out(sh.exec("echo .*.txt")) == ".hidden.txt\n"
    assert out(sh.exec("echo *.zip '*.txt' \"*\".txt")) == "*.zip *.txt *.txt\n"
    assert out(sh.exec("x='*.md'; echo $x \"$x\"")) == "c.md *.md\n"
    assert out(sh.exec("cd sub; echo *")) == "d.txt e.py\n"


# -- here-documents ---------------------------------------------------------------------


def test_heredoc_forms(sh: Shell) -> None:
    res = sh.exec("x=V\ncat <<EOF\nplain $x ${x}s $(echo sub) \\$x\nEOF\n"
                  "cat <<'EOF'\nraw $x $(echo no)\nEOF\n"
                  "cat <<-EOF\n\t\ttabs $x\n\tEOF\n"
                  "cat <<\"Q\"\ndq $x\nQ\n")
    assert res.stdout_text == "plain V Vs sub $x\nraw $x $(echo no)\ntabs V\ndq $x\n"


def test_heredoc_into_file_and_pipeline(ns: Namespace, sh: Shell) -> None:
    sh.exec("cat > conf.ini <<EOF\n[main]\nkey=1\nEOF\ngrep -c . <<EOF | tee n\na\nb\nEOF\n")
    assert ns.read_text("/work/conf.ini") == "[main]\nkey=1\n"
    assert ns.read_text("/work/n") == "2\n"


def test_heredoc_in_function_and_substitution(sh: Shell) -> None:
    res = sh.exec("f() {\n  cat <<END\nin f: $1\nEND\n}\nf arg\nx=$(cat <<'E'\nsub body )\nE\n)\n"
                  "echo \"$x\"\n")
    assert res.stdout_text == "in f: arg\nsub body )\n"


# -- control flow -----------------------------------------------------------------------


def test_subshell_isolation(sh: Shell) -> None:
    res = sh.exec("x=1; (x=2; cd /; export E=1; f() { :; }; exit 3); echo $? $x; pwd; "
                  "echo ${E:-unset}; f")
    assert res.stdout_text == "3 1\n/work\nunset\n"
    assert res.exit_code == 127


def test_pipeline_stages_do_not_change_the_shell(sh: Shell) -> None:
    assert out(sh.exec("x=1; echo 2 | read x; echo $x")) == "1\n"
    assert out(sh.exec("echo a | { read v; echo got $v; }")) == "got a\n"


def test_loops_and_case(sh: Shell) -> None:
    script = """
for f in a.py b.txt c; do
  case "$f" in
    *.py) echo "py $f" ;;
    *.txt|*.md) echo "doc $f" ;;
    *) echo "other $f"
  esac
done
n=0
while [ $n -lt 10 ]; do
  n=$((n + 1))
  [ $n -eq 2 ] && continue
  [ $n -gt 3 ] && break
  echo n=$n
done
until false; do echo once; break; done
"""
    assert out(sh.exec(script)) == "py a.py\ndoc b.txt\nother c\nn=1\nn=3\nonce\n"


def test_functions_and_return(sh: Shell) -> None:
    res = sh.exec("greet() { local who=$1; echo hi $who; return 4; echo no; }\n"
                  "greet bob; echo $? ${who:-none}\n"
                  "fact() { if [ $1 -le 1 ]; then echo 1;\n"
                  "  else echo $(( $1 * $(fact $(($1-1))) )); fi; }\n"
                  "fact 5")
    assert res.stdout_text == "hi bob\n4 none\n120\n"


def test_negation_and_lists(sh: Shell) -> None:
    assert out(sh.exec("! true; echo $?; ! false && echo neg")) == "1\nneg\n"
    assert out(sh.exec("false || false || echo third; true && false && echo no; echo $?")) == \
        "third\n1\n"


def test_set_e(sh: Shell) -> None:
    script = "set -e\necho 1\nif false; then :; fi\nfalse || echo 2\n! true\nfalse && echo x\n" \
             "while false; do :; done\necho 3\ngrep -q nothing /dev/null\necho never\n"
    res = sh.exec(script)
    assert (res.stdout_text, res.exit_code) == ("1\n2\n3\n", 1)


def test_set_e_in_subshell_and_function(sh: Shell) -> None:
    res = sh.exec("set -e; (false; echo no); echo after")
    assert (res.stdout_text, res.exit_code) == ("", 1)
    sh2 = Shell(make_ns())
    res = sh2.exec("set -e; f() { false; echo no; }; f || echo handled; echo end")
    assert res.stdout_text == "no\nend\n"
    res = sh2.exec("set +e; false; echo survives")
    assert res.stdout_text == "survives\n"


def test_set_x_and_pipefail(sh: Shell) -> None:
    res = sh.exec("set -x; echo 'a b' x")
    assert res.stderr_text == "+ echo 'a b' x\n"
    assert out(sh.exec("set +x -o pipefail; false | true; echo $?")) == "1\n"


def test_redirections(ns: Namespace, sh: Shell) -> None:
    sh.exec("echo a > f; echo b >> f; { echo c; echo d >&2; } > g 2>&1; echo e 1>&2 2>/dev/null")
    assert ns.read_text("/work/f") == "a\nb\n"
    assert ns.read_text("/work/g") == "c\nd\n"
    res = sh.exec("ls nothing &> h; cat h; cat < f | wc -l; 3>&1 echo ok")
    assert res.stdout_text.endswith("2\nok\n") and "nothing" in res.stdout_text
    res = sh.exec("echo x > /no/such/dir/f; echo $?")
    assert res.stdout_text == "1\n" and "No such file or directory" in res.stderr_text
    res = sh.exec("cat <<< 'here string'")
    assert res.stdout_text == "here string\n"


def test_eval_source_and_read_loop(ns: Namespace, sh: Shell) -> None:
    ns.write_text("/work/lib.sh", "LIBVAR=loaded\nlibf() { echo lib $1; }\n")
    assert out(sh.exec(". ./lib.sh; echo $LIBVAR; libf z; cmd='echo evaled'; eval $cmd")) == \
        "loaded\nlib z\nevaled\n"
    ns.write_text("/work/data", "k1 v1\nk2 v2 extra\n")
    assert out(sh.exec("while read k v; do echo \"$v=$k\"; done < data")) == \
        "v1=k1\nv2 extra=k2\n"


def test_sed_in_place_and_diff(ns: Namespace, sh: Shell) -> None:
    ns.write_text("/work/x", "alpha\nbeta\n")
    sh.exec("cp x y; sed -i 's/beta/gamma/' y")
    res = sh.exec("diff -u x y")
    assert res.exit_code == 1
    assert "-beta\n+gamma\n" in res.stdout_text
    assert sh.exec("diff x x").exit_code == 0


def test_terminal_bench_style_script(ns: Namespace, sh: Shell) -> None:
    script = r"""#!/bin/bash
set -euo pipefail

APP_DIR=/work/app
mkdir -p "$APP_DIR"
cat > "$APP_DIR/config.json" <<'JSON'
{"name": "demo", "port": 8080}
JSON
for i in $(seq 1 3); do
  printf 'line %d\n' "$i" >> "$APP_DIR/log.txt"
done
count=$(wc -l < "$APP_DIR/log.txt")
if [ "$count" -ne 3 ]; then
  echo "bad count: $count" >&2
  exit 1
fi
grep -q '"port": 8080' "$APP_DIR/config.json" && echo "config ok"
sed -i 's/line/entry/' "$APP_DIR/log.txt"
echo "done: $(head -n 1 "$APP_DIR/log.txt")"
"""
    ns.write_text("/work/solution.sh", script)
    res = sh.exec("bash /work/solution.sh")
    assert (res.stdout_text, res.stderr_text, res.exit_code) == (
        "config ok\ndone: entry 1\n", "", 0)
    assert ns.read_text("/work/app/log.txt") == "entry 1\nentry 2\nentry 3\n"


def test_a_failing_python_command_does_not_break_the_shell(ns: Namespace) -> None:
    def boom(ctx: Ctx, argv: list[str]) -> int:
        raise RuntimeError("kaput")

    sh = Shell(ns, commands={"boom": boom})
    res = sh.exec("boom; echo after $?")
    assert res.stdout_text == "after 1\n"
    assert res.stderr_text == "boom: RuntimeError: kaput\n"


def test_runaway_recursion_is_stopped(sh: Shell) -> None:
    res = sh.exec("f() { f; }; f; echo rc=$?")
    assert res.stdout_text == "rc=2\n" and "recursion" in res.stderr_text
    res = sh.exec("g() { echo $(g); }; g")
    assert res.exit_code == 2
    assert sh.exec("echo alive").stdout_text == "alive\n"


def test_bash_conditionals_and_arithmetic(ns: Namespace, sh: Shell) -> None:
    ns.write_text("/work/f", "x")
    script = r"""
name="my file.txt"
[[ -f f && $name == *.txt ]] && echo glob-ok
[[ $name == "my file.txt" ]] && echo quoted-ok
[[ "v1.2.3" =~ ^v([0-9]+)\.([0-9]+) ]] && echo "re-ok $BASH_REMATCH"
n=0
for ((i = 0; i < 5; i++)); do (( n += i )); done
echo "n=$n"
(( n > 100 )) || echo small
echo ${name^^} ${name:3:4}
"""
    assert out(sh.exec(script)) == ("glob-ok\nquoted-ok\nre-ok v1.2\nn=10\nsmall\n"
                                    "MY FILE.TXT file\n")


def test_awk_in_a_pipeline(ns: Namespace, sh: Shell) -> None:
    ns.write_text("/work/log", "GET /a 200\nPOST /b 500\nGET /c 200\n")
    res = sh.exec("awk '$3 == 200 {n++} END {print n}' log; "
                  "grep GET log | awk '{print $2}' | tr -d / | sort -r | xargs")
    assert res.stdout_text == "2\nc a\n"
    res = sh.exec("awk '{print $1 > \"methods\"}' log; sort -u methods")
    assert res.stdout_text == "GET\nPOST\n"
    res = sh.exec("awk 'BEGIN { x = }'")
    assert res.exit_code == 2 and res.stderr_text.startswith("awk: ")


def test_exit_trap_and_exec_redirections(ns: Namespace, sh: Shell) -> None:
    res = sh.exec("trap 'echo cleanup' EXIT; echo body; exit 3")
    assert (res.stdout_text, res.exit_code) == ("body\ncleanup\n", 3)
    assert sh.exec("echo next").stdout_text == "next\n"  # the trap ran once
    res = sh.exec("exec > log 2>&1; echo to-log; ls nothing; exec >&2")
    assert res.stdout_text == ""
    assert ns.read_text("/work/log").startswith("to-log\nls: cannot access 'nothing'")
    assert sh.exec("echo stdout again").stdout_text == "stdout again\n"


def test_arrays(sh: Shell) -> None:
    res = sh.exec('a=(one "two words" three); a+=(four); a[1]=2; '
                  'echo ${#a[@]} "${a[1]}" "${a[-1]}"; for x in "${a[@]:2}"; do echo "<$x>"; done')
    assert res.stdout_text == "4 2 four\n<three>\n<four>\n"


# -- background jobs --------------------------------------------------------------------


def test_a_background_job_runs_beside_the_script_and_the_line_waits_for_it(sh: Shell) -> None:
    # the job writes after the script's own echo: the line ended only once it had
    res = sh.exec("(sleep 0.2; echo job > j.txt; echo from-job) & echo pid=$!; echo main")
    lines = out(res).splitlines()
    assert lines[0].startswith("pid=") and int(lines[0][4:]) > 0
    assert lines[1:] == ["main", "from-job"], lines
    assert sh.exec("cat j.txt").stdout_text == "job\n"
    # its standard input is empty, as in a shell without job control
    assert out(sh.exec("cat & wait", stdin=b"not for the job")) == ""
    assert out(sh.exec("true & disown; echo $?")) == "0\n"  # accepted; ends with the line


def test_the_line_timeout_stops_its_background_jobs(sh: Shell) -> None:
    res = sh.exec("while :; do echo x >> spin.txt; done & sleep 100 & echo started",
                  timeout=0.3)
    assert (res.exit_code, res.timed_out, out(res)) == (124, True, "started\n")
    size = sh.exec("wc -c < spin.txt").stdout_text
    assert sh.exec("sleep 0.2; echo still usable").stdout_text == "still usable\n"
    assert sh.exec("wc -c < spin.txt").stdout_text == size  # the loop stopped


def test_kill_stops_a_background_job_and_wait_gives_its_status(sh: Shell) -> None:
    res = sh.exec("sleep 100 & p=$!; kill -0 $p && echo alive; kill $p; wait $p; "
                  "echo status=$?; kill -0 $p || echo gone; kill 4242; echo $?", timeout=20)
    assert not res.timed_out
    assert out(res) == "alive\nstatus=143\ngone\n1\n"
    assert res.stderr_text == "kill: (4242) - No such process\n"


def test_who_and_where_the_sandbox_is(sh: Shell) -> None:
    res = sh.exec("uname; uname -a; uname -m; whoami; id -u; id -un; id; hostname; nproc")
    assert out(res).splitlines() == [
        "Linux", "Linux oanix 6.1.0-oanix #1 SMP oanix wasm32 GNU/Linux", "wasm32", "root",
        "0", "root", "uid=0(root) gid=0(root) groups=0(root)", "oanix", "1"]
    assert out(sh.exec("USER=agent HOSTNAME=box; export USER HOSTNAME; whoami; hostname")
               ) == "agent\nbox\n"
    assert sh.exec("uname -x").exit_code != 0


def test_process_substitution_files_go_when_the_line_ends(ns: Namespace, sh: Shell) -> None:
    res = sh.exec("p=<(echo kept-for-the-line); cat $p; echo $p")
    assert res.stdout_text.splitlines()[0] == "kept-for-the-line"
    path = res.stdout_text.splitlines()[1]
    assert path.startswith("/tmp/.oanix-procsub/")
    assert not ns.exists(path)
    refused = sh.exec("tee >(cat) < /dev/null")
    assert refused.exit_code == 2 and ">(...) is not supported" in refused.stderr_text


def test_process_substitution_round_trips_through_unparse() -> None:
    from oanix.shell.parser import parse, unparse

    for src in ("diff <(sort a) <(sort b)", "cat x<(echo y)", "tee >(wc -l)"):
        node = parse(src)
        assert parse(unparse(node)) == node
