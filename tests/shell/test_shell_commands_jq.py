"""jq against the real jq: the same filter over the same input gives the same output and
status (the reference's error text is not compared)."""

from __future__ import annotations

import functools
import json
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from shell_compare import compare, make_shell, need


@functools.cache
def _jq_version() -> str:
    import subprocess

    return subprocess.run(["jq", "--version"], capture_output=True, text=True).stdout.strip()


def need_jq() -> None:
    """Skip, saying why, unless the reference is jq 1.6: the subset prints what jq 1.6
    prints (1.7 formats numbers and some errors differently)."""
    need("jq")
    if _jq_version() != "jq-1.6":
        pytest.skip(f"the reference jq is {_jq_version()!r}; these tables follow jq-1.6")


DOC = {
    "name": "oanix", "version": 1.5, "tags": ["fs", "wasm", "shell"],
    "owner": {"login": "ada", "id": 7, "admin": True},
    "items": [{"id": 1, "name": "a", "price": 9.5, "qty": 2},
              {"id": 2, "name": "b", "price": 3, "qty": 0},
              {"id": 3, "name": "c", "price": 12.25, "qty": 5, "note": None}],
    "empty": [], "nothing": None, "text": "Hello, World 42",
}
FILES = {
    "doc.json": json.dumps(DOC).encode(),
    "lines.json": b'{"a":1}\n{"a":2}\n{"a":3,"b":[1,2]}\n',
    "raw.txt": b"one\ntwo\nthree\n",
    "arr.json": b"[3, 1, 2, 10, -4.5, 1e3, 0.1]",
}

FILTERS = [
    ".", ".name", ".owner.login", ".owner.missing", ".tags[0]", ".tags[-1]", ".tags[5]", ".tags[]",
    ".tags[1:]", ".tags[:2]", ".tags[-2:]", ".items[].name", ".items[1].price", ".[\"name\"]",
    ".\"name\"", ".items | length", ".tags | length", ".text | length", "keys",
    ".owner | keys_unsorted", ".items[] | select(.qty > 0) | .name",
    "[.items[] | select(.price >= 9.5) | .id]", ".items | map(.price * .qty)",
    ".items | map(.price) | add", "[.tags[] | ascii_upcase]", ".tags | join(\",\")",
    "{n: .name, t: .tags | length}", "{name, version}", "{\"k\": 1, (.name): 2}",
    "[.items[] | {(.name): .id}] | add", ".items | sort_by(.price) | map(.name)",
    ".items | sort_by(-.qty) | .[0].name", ".items | group_by(.qty > 0) | map(length)",
    ".items | unique_by(.qty > 0) | length", ".items | min_by(.price) | .id",
    ".items | max_by(.price) | .id", ".owner | to_entries",
    ".owner | to_entries | map(\"\\(.key)=\\(.value)\") | .[]",
    ".owner | with_entries(.value |= tostring)", "[.owner | to_entries[] | .key] | from_entries?",
    ".owner | has(\"id\"), has(\"nope\")", ".tags | first, last", ".tags | index(\"wasm\")",
    ".version | tostring", "\"42\" | tonumber", ".nothing // \"default\"", ".name // \"x\"",
    ".empty | first // \"none\"", "[.items[].note] | map(. // 0)", ".items[0] | del(.qty)",
    ".owner.id += 1", ".owner.login = \"bob\" | .owner", ".items[].qty |= . * 10 | [.items[].qty]",
    ".tags |= map(select(. != \"fs\"))", ".new.deep.key = 1 | .new", "[paths] | length",
    "[.items[] | .price] | sort", ".items | map(.name) | reverse", "[.[] | type]",
    "[1, 2, 3] | map(. * 2) | add / length", "[range(5)]", "[range(2; 10; 3)]",
    "[limit(2; .tags[])]", "reduce .items[] as $i (0; . + $i.qty)",
    "[foreach .tags[] as $t (0; . + 1; [$t, .])]",
    ".items[] as {name: $n, id: $i} | \"\\($n):\\($i)\"", ". as [$a, $b] | [$b, $a]",
    "if .version > 1 then \"new\" else \"old\" end",
    "if .nothing then 1 elif .name then 2 else 3 end", "try error(\"boom\") catch .",
    "[.tags[] | try (if . == \"wasm\" then error(\"x\") else . end) catch \"caught\"]",
    ".text | test(\"world\"; \"i\")", ".text | [match(\"[0-9]+\").string]",
    ".text | sub(\"World\"; \"There\")", ".text | gsub(\"o\"; \"0\")", ".text | split(\", \")",
    ".text | ascii_downcase", ".text | ltrimstr(\"Hello\") | rtrimstr(\"42\")",
    ".text | startswith(\"Hell\"), endswith(\"2\")", ".text | capture(\"(?<word>[A-Z][a-z]+)\")",
    "[.text | scan(\"[a-z]+\")]", ".tags | contains([\"fs\"])",
    ".tags | inside([\"fs\", \"wasm\", \"shell\", \"x\"])", "[.tags[] | @base64]",
    "[.tags[] | @base64 | @base64d]", ".tags | @csv", ".tags | @tsv", ".tags | @sh", "@json",
    "@text", "[.text | @uri]", "\"a<b>&\" | @html", ".tags | tojson", ".tags | tojson | fromjson",
    "[.items[] | .price | floor]", "[.items[].price | sqrt | floor]", "1, 2 | . * 10",
    "[.tags[] | length] | add", "[.[]?]", "[.. | numbers] | length", "[.. | strings] | length",
    ".items | any(.qty == 0), all(.qty >= 0)", "[.tags | .[] | in({\"fs\": 1})]",
    "[.items[] | select(.name | test(\"^[ab]$\"))] | length", "[splits(\", *\")]?",
    "def double: . * 2; [.items[].id | double]", "def f(x): x + 1; f(.owner.id)",
    "def g($a; $b): $a * $b; g(3; 4)", "[recurse(.items?[]?) | .id?] | map(select(. != null))",
    "getpath([\"owner\", \"login\"])", "[paths(type == \"number\")] | length",
    "to_entries | map(select(.value | type == \"array\")) | map(.key)", ".items | flatten",
    "[[1, [2]], 3] | flatten, flatten(1)", "{} | .a += 1", "null | .[0] = 1",
    "[1, null, 2] | map(values)", "[3, 1, 2] | sort | unique", "[1, 1, 2] | unique",
    "\"abc\" | explode | implode", "[\"a\", \"b\"] | to_entries",
    "{\"a\": 1} * {\"b\": {\"c\": 2}}", "[1, 2, 3] - [2]", "\"x\" * 3", "\"a,b,c\" / \",\"",
    "10 % 3, -10 % 3, 10 / 4", "1 == 1.0, \"a\" < \"b\", [1] < [1, 0], {} < [], null < false",
    "nan < 1, [nan] | sort", "$__loc__", "[.tags[] | select(startswith(\"s\"))]", "input_filename",
    "label $out | .tags[] | if . == \"wasm\" then ., break $out else . end",
    "[first(range(10; 0; -1))]", "isempty(empty), isempty(.tags[])", "[.tags[] | ascii] ?",
    ".items | map(has(\"note\"))", "[.items[] | .note?] ", ".items | transpose?",
    "tostream | select(length == 2) | .[0] | join(\".\")?", "[.items[] | keys[0]]",
    ".version | round, ceil, fabs", "[.tags[] | utf8bytelength]", "0.1 + 0.2, 1e17, 100000, 1 / 3",
    "[.items[] | .price] | min, max", "{a: 1} | .a as $x | {b: $x}",
    "[walk(if type == \"number\" then 0 else . end) | .items[0]]", ".items | [.[] | .qty] | @csv",
    "[.items[] | .id] | @sh", "[.tags | combinations(1)] | length", "\"\\u00e9\\t\\u0001\"",
    "[.owner[]]", ".items[1:] | length", ".tags[1:2] = [\"X\", \"Y\"]", ".tags | del(.[0, 2])",
    "[.items[] | .name] | index(\"b\")", "[splits(\"a\")]? // 0", "env | type", "$ENV | type",
    "[.items[] | .qty] | until(length < 2; .[1:])", "[1, 2] | while(length > 0; .[1:])",
    "[.items[] | .name] | nth(1)", "nth(1; .tags[])", "[\"1\", \"2\"] | map(tonumber) | add",
    "ascii_downcase?", "[.[] | numbers]", "getpath([\"a\", 0, \"b\"])",
    "[.items[].id] | indices(2)", "\"a-b-c\" | indices(\"-\")", "\"test\" | .[1:3]",
    "{\"a\": [1, 2]} | .a[1:] |= map(. * 10)", "to_entries | length", "@base64d?",
    "splits(\"x\")?",
]

ERRORS = [".name.first", ".tags + 1", "error(\"custom\")", "{} | .a.b.c[0] | keys",
          "[1] | implode | tonumber", ".tags[\"x\"]", "error({\"a\": 1})"]


@pytest.mark.parametrize("flt", FILTERS + ERRORS)
def test_same_as_jq(flt: str, tmp_path: Path) -> None:
    need_jq()
    quoted = flt.replace("'", "'\\''")
    compare(f"jq -c '{quoted}' doc.json", tmp_path, FILES)


AGENT_DOC = {"a": {"b": 1, "c": [1, 2, 3]}, "s": "Hello World  foo", "a-b": 5, "n": [3, 1, 2],
             "items": [{"name": "x", "v": None, "tags": ["t1", "t2"]},
                       {"name": "y", "v": 3, "tags": []}]}
AGENT_FILTERS = [
    ".items[] | \"\\(.name)\\t\\(.v)\"", ".items[] | select(.name == \"y\") | .v", "keys[]",
    ".a.c |= map(. * 2)", "del(.a, .s)", "to_entries[] | \"\\(.key)=\\(.value | tostring)\"",
    ".a as {b: $x, c: [$y, $z]} | [$x, $y, $z]",
    "reduce (.n | to_entries[]) as {key: $k, value: $v} ({}; .[$k | tostring] = $v)",
    ".. |= (if type == \"string\" then ascii_upcase else . end)",
    ".items | map(with_entries(select(.value != null)))", ".items | min_by(.name) | .name",
    "any(.n[]; . > 2)", "[paths] | length", "[.n[] | tostring]", ".a += {d: 1}",
    "has(\"a\") and .a != null", ".items | map(select(.tags | index(\"t1\")))",
    ".a |= (.c |= sort_by(-.))", "\"\\(1 + 2)\"", "{(.s): 1}", ".[\"a-b\"]", ".a?.b", "[..|.b?]",
    "first(.n[])", ".s | gsub(\"\\\\s+\"; \" \")", ".s | sub(\"(?<x>W)\"; \"<\\(.x)>\")",
    ".items[] as {name: $n} | $n", ".n | add / length", "@text \"v=\\(.n)\"",
    ".a | getpath([\"c\", 0])", ".a.c[1:] = [\"z\"]", ".n | map(. > 1) | all",
    ".items[0].tags | join(\", \")", "[.items[] | .v // \"none\"]",
    ".items | group_by(.v == null) | map(map(.name))",
    ".s | split(\" \") | map(select(length > 0))", ".s | ascii_downcase | test(\"hello\")",
    "[splits(\" +\")]?", ".s | [splits(\" +\")]", ".n | sort | reverse | first",
    "input_line_number", "\"2024-01-02T03:04:05Z\" | fromdate", "1700000000 | todate",
    "1700000000 | strftime(\"%Y-%m-%d %H\")",
    "\"2024-01-02T03:04:05Z\" | strptime(\"%Y-%m-%dT%H:%M:%SZ\") | mktime",
    "1700000000 | gmtime | todate", ".n | @base32", "\"ONSWG4TFOQ======\" | @base32d",
    "[.a | tostream] | fromstream(.[])", ".a | to_entries | from_entries",
    ".items | INDEX(.name) | keys", "[limit(2; .n[])]", ".a | .c[] as $x | select($x > 1) | $x",
    "getpath([\"items\", 0, \"name\"])", "[.items[] | .tags | length] | max", ".n | index(1)",
    ".s | ltrimstr(\"Hello \") | rtrimstr(\"foo\")", ".a.c | .[1:] + .[:1]",
    ".items | length as $l | map(.name) | \"\\($l): \\(join(\",\"))\"",
    "[.n[] | if . > 1 then \"big\" elif . == 1 then \"one\" else \"small\" end]",
    "try (.a | error(\"custom\")) catch \"caught: \\(.)\"", ".a | keys_unsorted",
    ".items | any(.v == null)", ".n | IN(2)", "[.n[] | IN(2, 3)]",
    ".a | with_entries(.key |= ascii_upcase)", "$ENV | has(\"PATH\")", "env | type", "ascii",
    ".n | @json \"j=\\(.)\"", "[.items[] | {name, n: (.tags | length)}]",
    ".items | map({(.name): .v}) | add", "[.n[] | select(. != 1)]",
    ".a.c | map(tostring) | join(\"\")", "(.n | length) as $len | $len * 2", ".s | length",
    ".s | utf8bytelength", ".s | explode | length", ".a | to_entries | map(.value) | length",
    "splits(\"x\")", ".a | .[]",
]


@pytest.mark.parametrize("flt", AGENT_FILTERS)
def test_agent_filters_same_as_jq(flt: str, tmp_path: Path) -> None:
    need_jq()
    quoted = flt.replace("'", "'\\''")
    compare(f"jq -c '{quoted}' doc.json", tmp_path, {"doc.json": json.dumps(AGENT_DOC).encode()})


CMDLINES = [
    "jq . doc.json", "jq -r .name doc.json", "jq -r '.tags[]' doc.json", "jq -j '.tags[]' doc.json",
    "jq -S . doc.json", "jq --tab .owner doc.json", "jq --indent 1 .owner doc.json",
    "jq -c . lines.json", "jq -s 'map(.a) | add' lines.json", "jq -n '1 + 2'",
    "jq -n '[inputs.a]' lines.json", "jq -n 'input.a' lines.json", "jq -R . raw.txt",
    "jq -Rs . raw.txt", "jq -rR 'ascii_upcase' raw.txt", "jq --arg x hi -n '$x'",
    "jq --argjson x '{\"a\": [1]}' -n '$x.a[0]'", "jq -n --args '$ARGS' a b",
    "jq -n --jsonargs '$ARGS.positional' 1 '{\"x\": 2}'", "jq -e .nothing doc.json; echo $?",
    "jq -e .name doc.json; echo $?", "jq -e 'empty' doc.json; echo $?",
    "cat doc.json | jq '.items | length'", "echo '[1,2]' | jq -c 'map(. + 1)'",
    "echo '1 2 3' | jq -c '. * 2'", "echo '\"a\"' | jq -r .", "jq -c 'sort' arr.json",
    "jq -cS '.owner' doc.json", "jq -a -n '\"\\u00e9\"'", "jq -nr '\"a\\tb\"'",
    "jq -rc '.items[] | [.id, .name] | @tsv' doc.json", "jq 'bad syntax ((' doc.json; echo $?",
    "jq .x missing.json; echo $?",
    "jq -n '1, error(\"e\"), 2'; echo $?", "jq --slurpfile l lines.json -n '$l | length'",
    "jq --rawfile r raw.txt -n '$r | length'", "jq -c '.[] | select(.a > 1)' -s lines.json",
    "jq -nc '[.[]?]'", "jq '.a' lines.json doc.json",
]


@pytest.mark.parametrize("cmd", CMDLINES)
def test_command_lines_same_as_jq(cmd: str, tmp_path: Path) -> None:
    need_jq()
    compare(cmd, tmp_path, FILES)


_leaf = (st.none() | st.booleans() | st.integers(-10**6, 10**6)
         | st.floats(-1e6, 1e6, allow_nan=False).map(lambda f: round(f, 3))
         | st.text("abc xyz", max_size=5))
_keys = st.text("abcd", min_size=1, max_size=3)
_level1 = _leaf | st.lists(_leaf, max_size=4) | st.dictionaries(_keys, _leaf, max_size=4)
_json = _leaf | st.lists(_level1, max_size=4) | st.dictionaries(_keys, _level1, max_size=4)


@settings(max_examples=60, deadline=None)
@given(value=_json, flt=st.sampled_from([".", "[.[]?]", "[..]", "tojson", "[paths]",
                                         "[.. | numbers] | add", "sort_by(type)?",
                                         "to_entries?", "[.[]?] | sort",
                                         "keys?", "length?", "[leaf_paths]",
                                         "[.. | strings] | unique"]))
def test_random_documents_same_as_jq(value: object, flt: str) -> None:
    import subprocess

    need_jq()
    doc = json.dumps(value).encode()
    real = subprocess.run(["jq", "-c", flt], input=doc, capture_output=True, timeout=20)
    sh = make_shell(Path("/nonexistent"), {})
    ours = sh.exec(f"jq -c '{flt}'", doc)
    assert (ours.stdout, ours.exit_code) == (real.stdout, real.returncode), ours.stderr


FIXED = [  # (command line, stdin, expected stdout): no reference tool needed
    ("jq -c '.a.b'", '{"a": {"b": [1, 2]}}', "[1,2]\n"),
    ("jq -r '.[] | .name'", '[{"name": "x"}, {"name": "y"}]', "x\ny\n"),
    ("jq -c 'map(select(.v > 1)) | length'", '[{"v": 1}, {"v": 2}, {"v": 3}]', "2\n"),
    ("jq -c '{n: .name, c: (.tags | length)}'", '{"name": "a", "tags": [1]}',
     '{"n":"a","c":1}\n'),
    ("jq -c 'to_entries | map(\"\\(.key)=\\(.value)\")'", '{"a": 1, "b": "x"}',
     '["a=1","b=x"]\n'),
    ("jq -c '.a.b = 1 | del(.c)'", '{"c": 2}', '{"a":{"b":1}}\n'),
    ("jq -c 'sort_by(.k) | map(.k)'", '[{"k": 3}, {"k": 1}]', "[1,3]\n"),
    ("jq -c '.x // \"d\"'", '{"x": null}', '"d"\n'),
    ("jq -c --arg v hi '{v: $v}'", "null", '{"v":"hi"}\n'),
    ("jq -c --argjson v '[1]' '$v + [2]'", "null", "[1,2]\n"),
    ("jq -s -c 'add'", "1 2 3", "6\n"),
    ("jq -n -c '[range(3)] | first, last'", "", "0\n2\n"),
    ("jq -c 'keys, has(\"a\")'", '{"b": 1, "a": 2}', '["a","b"]\ntrue\n'),
    ("jq -c '[.[] | tostring, (tostring | tonumber)]'", "[1, 2]", '["1",1,"2",2]\n'),
    ("jq '.'", '{"a": [1, {"b": null}]}', '{\n  "a": [\n    1,\n    {\n      "b": null\n'
     '    }\n  ]\n}\n'),
    ("jq -e '.missing'; echo $?", "{}", "null\n1\n"),
    ("jq '.a.b'; echo $?", '{"a": 5}', "5\n"),
]


@pytest.mark.parametrize(("cmd", "stdin", "want"), FIXED)
def test_fixed_outputs(cmd: str, stdin: str, want: str) -> None:
    sh = make_shell(Path("/nonexistent"), {})
    assert sh.exec(cmd, stdin.encode()).stdout_text == want
