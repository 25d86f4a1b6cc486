"""The shell parser: unparse/parse round trips of generated ASTs, fuzzing, error positions."""

from __future__ import annotations

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from oanix.shell import ShellSyntaxError, parse, unparse
from oanix.shell.lexer import DQ, SQ, Arith, CmdSub, Lexer, Lit, Param, Part, Word, merge_parts
from oanix.shell.parser import (
    SCRIPTS,
    AndOr,
    ArithCmd,
    Assign,
    Case,
    CaseArm,
    Command,
    For,
    ForArith,
    FuncDef,
    Group,
    If,
    Pipeline,
    Redir,
    Script,
    Simple,
    Subshell,
    While,
)

SETTINGS = settings(max_examples=80, deadline=None,
                    suppress_health_check=[HealthCheck.too_slow])


def word_of(parts: list[Part]) -> Word:
    return Word(merge_parts(parts))


lit = st.text("abcxyz019_.-*?/", min_size=1, max_size=6).map(Lit)
sq = st.text("ab $\"\\\n`*;|&<>(){}#", max_size=6).map(SQ)
dq_lit = st.text("ab $\"\\\n`'*;|&<>(){}#", min_size=1, max_size=6).map(Lit)
arg_word = st.lists(st.one_of(st.text("abc*", min_size=1, max_size=3).map(Lit), sq),
                    min_size=1, max_size=2).map(word_of)


@st.composite
def params(draw: st.DrawFn) -> Param:
    if draw(st.booleans()):
        index = draw(st.one_of(st.none(), st.sampled_from(["@", "*", "0", "i+1"]).map(
            lambda t: Word((Lit(t),)))))
        if index is not None:
            op = draw(st.sampled_from(["", "len", ":-"]))
            return Param("arr", op, Word((Lit("d"),)) if op == ":-" else None, index=index)
        return Param(draw(st.sampled_from(["x", "y", "HOME", "1", "@", "#", "?", "$", "*"])))
    name = draw(st.sampled_from(["x", "y", "1"]))
    op = draw(st.sampled_from(["len", "-", ":-", "=", ":=", "+", ":+", "?", ":?", "#", "##",
                               "%", "%%", "/", "//"]))
    if op == "len":
        return Param(name, "len")
    arg2 = draw(st.one_of(st.none(), arg_word)) if op in ("/", "//") else None
    return Param(name, op, draw(arg_word), arg2)


arith = st.lists(st.one_of(st.text("0123456789+-* ", min_size=1, max_size=5).map(Lit),
                           st.just(Param("x"))), min_size=1, max_size=3).map(
    lambda ps: Arith(word_of(ps)))


def words(scripts: st.SearchStrategy[Script]) -> st.SearchStrategy[Word]:
    cmdsub = scripts.map(CmdSub)
    dq = st.lists(st.one_of(dq_lit, params(), cmdsub, arith), max_size=3).map(
        lambda ps: DQ(merge_parts(ps)))
    part = st.one_of(lit, sq, dq, params(), cmdsub, arith)
    return st.lists(part, min_size=1, max_size=3).map(word_of)


heredoc_line = st.text("ab $x}\\\t", max_size=8).filter(lambda s: s.strip("\t") != "EOF")


@st.composite
def heredocs(draw: st.DrawFn) -> Redir:
    text = "".join(line + "\n" for line in draw(st.lists(heredoc_line, max_size=3)))
    op = draw(st.sampled_from(["<<", "<<-"]))
    if op == "<<-":
        text = "".join(line.lstrip("\t") + "\n" for line in text.splitlines())
    if draw(st.booleans()):
        return Redir(None, op, Word((SQ("EOF"),)), text, None)
    body = Word(Lexer(text, scripts=SCRIPTS).read_dq_parts(None))
    return Redir(None, op, Word((Lit("EOF"),)), text, body)


def redirs(w: st.SearchStrategy[Word]) -> st.SearchStrategy[Redir]:
    numbered = st.builds(Redir, st.sampled_from([None, 0, 1, 2]),
                         st.sampled_from(["<", ">", ">>", ">&", "<&", "<<<"]), w)
    both = st.builds(Redir, st.none(), st.sampled_from(["&>", "&>>"]), w)
    return st.one_of(numbered, both, heredocs())


def commands(scripts: st.SearchStrategy[Script]) -> st.SearchStrategy[Command]:
    w = words(scripts)
    rs = st.lists(redirs(w), max_size=2).map(tuple)
    nonempty = scripts
    simple = st.builds(Simple,
                       st.lists(st.one_of(
                           st.builds(Assign, st.sampled_from(["v", "w"]), w, st.booleans()),
                           st.builds(Assign, st.just("arr"), w, st.booleans(),
                                     st.just(Word((Lit("1"),)))),
                           st.builds(Assign, st.just("arr"), st.just(Word(())), st.booleans(),
                                     st.none(), st.lists(w, max_size=3).map(tuple))),
                           max_size=2).map(tuple),
                       st.lists(w, max_size=3).map(tuple), rs
                       ).filter(lambda c: bool(c.assigns or c.words or c.redirs))
    group = st.builds(Group, nonempty, rs)
    return st.one_of(
        simple, simple, simple,
        group,
        st.builds(Subshell, nonempty, rs),
        st.builds(If, st.lists(st.tuples(nonempty, nonempty), min_size=1, max_size=2).map(
            tuple), st.one_of(st.none(), nonempty), rs),
        st.builds(While, nonempty, nonempty, st.booleans(), rs),
        st.builds(For, st.just("i"), st.one_of(st.none(), st.lists(w, max_size=3).map(tuple)),
                  nonempty, rs),
        st.builds(Case, w, st.lists(st.builds(CaseArm, st.lists(w, min_size=1, max_size=2)
                                              .map(tuple), st.one_of(st.just(Script(())), scripts)),
                                  max_size=2).map(tuple),
                  rs),
        st.builds(FuncDef, st.just("fn"), st.builds(Group, nonempty)),
        st.builds(ArithCmd, arith.map(lambda a: a.expr), rs),
        st.builds(ForArith, arith.map(lambda a: a.expr), arith.map(lambda a: a.expr),
                  arith.map(lambda a: a.expr), nonempty, rs),
    )


def _scripts(children: st.SearchStrategy[Script]) -> st.SearchStrategy[Script]:
    pipeline = st.builds(Pipeline, st.lists(commands(children), min_size=1, max_size=2)
                         .map(tuple), st.booleans())
    and_or = st.builds(AndOr, pipeline,
                       st.lists(st.tuples(st.sampled_from(["&&", "||"]), pipeline),
                                max_size=2).map(tuple), st.booleans())
    return st.lists(and_or, min_size=1, max_size=3).map(lambda items: Script(tuple(items)))


leaf_script = st.sampled_from(["true", "x", "a.b"]).map(
    lambda name: Script((AndOr(Pipeline((Simple((), (Word((Lit(name),)),)),))),)))
scripts = st.recursive(leaf_script, _scripts, max_leaves=5)


@pytest.mark.filterwarnings("ignore:Generating overly large repr")
@SETTINGS
@given(scripts)
def test_unparse_parse_round_trip(script: Script) -> None:
    src = unparse(script)
    assert parse(src) == script, src


SHELLISH = st.lists(st.sampled_from(
    [*"ab =$'\"\\`(){}[]|&;<>#*?!\n\t-0123456789", "if ", "then ", "fi", "do ", "done",
     "case ", "esac", " in ", "for ", "while ", "<<EOF\n", "\nEOF\n", "$(", "${", "$((", "))",
     ";;", "<<-", "f() ", "[[ ", " ]]", "((", "for ((", "$'", "=~ ", "{a,b}"]),
    max_size=30).map("".join)


@SETTINGS
@given(st.one_of(st.text(max_size=40), SHELLISH))
def test_parser_raises_only_syntax_errors(src: str) -> None:
    try:
        parse(src)
    except ShellSyntaxError as e:
        assert e.line >= 1 and e.column >= 1


@pytest.mark.parametrize(("src", "line", "column"), [
    ("echo hi\nif true; then\nfi\n", 3, 1),
    ("echo 'unterminated", 1, 6),
    ("echo ok )", 1, 9),
    ("a |", 1, 4),
    ("for 1 in x; do :; done", 1, 5),
    ("case x in\n a) echo;;\n  b echo\nesac", 3, 5),
    ("x=$(echo a; fi)", 1, 13),
    ("echo \"abc", 1, 6),
    ("while true; do echo; ", 1, 22),
    ("echo ${x", 1, 6),
])
def test_syntax_error_positions(src: str, line: int, column: int) -> None:
    with pytest.raises(ShellSyntaxError) as exc:
        parse(src)
    assert (exc.value.line, exc.value.column) == (line, column), str(exc.value)


def test_known_ast_shapes() -> None:
    s = parse("FOO=1 cmd 'a b' \"$x\" 2>&1 >out")
    (item,) = s.items
    cmd = item.first.commands[0]
    assert cmd == Simple(
        (Assign("FOO", Word((Lit("1"),))),),
        (Word((Lit("cmd"),)), Word((SQ("a b"),)), Word((DQ((Param("x"),)),))),
        (Redir(2, ">&", Word((Lit("1"),))), Redir(None, ">", Word((Lit("out"),)))))
    assert parse("f() { :; }").items[0].first.commands[0] == FuncDef(
        "f", Group(Script((AndOr(Pipeline((Simple((), (Word((Lit(":"),)),)),))),))))
    # Reserved words are ordinary arguments after the command name.
    assert len(parse("echo if then fi }").items[0].first.commands[0].words) == 5  # type: ignore[union-attr]


def test_heredoc_forms() -> None:
    s = parse("cat <<EOF; cat <<'Q'\nval $x\nEOF\nraw $y\nQ\ncat <<-T\n\t\ttabbed\n\tT\n")
    r1 = s.items[0].first.commands[0].redirs[0]  # type: ignore[union-attr]
    r2 = s.items[1].first.commands[0].redirs[0]  # type: ignore[union-attr]
    r3 = s.items[2].first.commands[0].redirs[0]  # type: ignore[union-attr]
    assert (r1.heredoc, r1.body) == ("val $x\n", Word((Lit("val "), Param("x"), Lit("\n"))))
    assert (r2.heredoc, r2.body) == ("raw $y\n", None)
    assert (r3.op, r3.heredoc) == ("<<-", "tabbed\n")
