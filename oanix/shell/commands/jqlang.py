"""A jq subset: the generator-based evaluator, the builtins and ``compile_filter``/``run``.

Values are what ``json.loads`` gives (dict keeps key order; ``jq_values``). A filter is
compiled once (``compile_filter``: ``jq_syntax`` parses, then calls are checked) to a tree
of tuples and run with ``run(tree, value, vars)``, which yields every output. Errors are
``JqError`` (a jq value: ``try``/``catch`` sees it). Supported: paths (``.a.b``,
``.[0]``, ``.[]``, ``.[1:3]``, ``..``, ``?``), ``|``, ``,``, ``//``, arithmetic,
comparisons, ``and``/``or``, literals, string interpolation, ``@`` formats, object and
array construction, ``if``, ``try``, ``reduce``, ``foreach``, ``label``, ``as $x`` (with
destructuring and ``?//``), ``def``, assignments (``=``, ``|=``, ``+=``, ...) and the
builtins in ``_NATIVE``, ``_SPECIAL`` and ``_PRELUDE``.
"""

from __future__ import annotations

import base64
import calendar
import json
import math
import re
import time
import urllib.parse
from collections.abc import Callable, Iterator
from typing import Any

from .jq_syntax import parse
from .jq_values import (
    MISSING,
    JqError,
    JqSyntaxError,
    Node,
    _binop,
    _Break,
    _contains,
    _delpaths,
    _desc,
    _getpath,
    _index,
    _indices,
    _is_num,
    _iterate,
    _num,
    _setpath,
    _short,
    _slice,
    _split,
    dumps,
    sort_key,
    truthy,
    type_name,
)

__all__ = ["JqError", "JqSyntaxError", "compile_filter", "dumps", "run", "truthy"]


def compile_filter(src: str, check: bool = True) -> Node:
    """The tree of filter ``src``; raises JqSyntaxError (also for an undefined function,
    as jq does at compile time)."""
    tree = parse(src)
    if check:
        known = set(_NATIVE) | set(_SPECIAL) | set(_prelude_env().funcs)
        _check_calls(tree, frozenset(known))
    return tree


def _check_calls(n: Any, known: frozenset[tuple[str, int]]) -> None:
    if isinstance(n, list):
        for x in n:
            _check_calls(x, known)
        return
    if not isinstance(n, tuple) or not n:
        return
    if n[0] == "call":
        if (n[1], len(n[2])) not in known:
            raise JqSyntaxError(f"{n[1]}/{len(n[2])} is not defined")
        _check_calls(n[2], known)
        return
    if n[0] == "def":
        outer = known | {(n[1], len(n[2]))}
        params = {(p.lstrip("$"), 0) for p in n[2]}
        _check_calls(n[3], outer | params)
        _check_calls(n[4], outer)
        return
    for x in n[1:]:
        _check_calls(x, known)


# -- evaluation -----------------------------------------------------------------------------


class _Env:
    """Variables and functions in scope (a chain of frames).

    Locking: none; one evaluation.
    """

    __slots__ = ("funcs", "parent", "vars")

    def __init__(self, parent: _Env | None = None) -> None:
        self.parent = parent
        self.vars: dict[str, Any] = {}
        self.funcs: dict[tuple[str, int], tuple[list[str], Node, _Env]] = {}

    def var(self, name: str) -> Any:
        env: _Env | None = self
        while env is not None:
            if name in env.vars:
                return env.vars[name]
            env = env.parent
        raise JqError(f"${name} is not defined")

    def func(self, name: str, arity: int) -> tuple[list[str], Node, _Env] | None:
        env: _Env | None = self
        while env is not None:
            f = env.funcs.get((name, arity))
            if f is not None:
                return f
            env = env.parent
        return None


def run(tree: Node, value: Any, variables: dict[str, Any] | None = None,
        check: Callable[[], None] | None = None) -> Iterator[Any]:
    """Every output of ``tree`` on ``value`` with ``$name`` variables bound."""
    env = _Env(_prelude_env())
    env.vars.update(variables or {})
    ev = _Evaluator(check or (lambda: None))
    yield from ev.ev(tree, value, env)


class _Evaluator:
    """Runs trees; ``check`` is called at every step of a loop (cancellation).

    Locking: none; one evaluation.
    """

    def __init__(self, check: Callable[[], None]) -> None:
        self.check = check
        self.labels = 0

    def ev(self, n: Node, v: Any, env: _Env) -> Iterator[Any]:
        op = n[0]
        if op == "identity":
            yield v
        elif op == "literal":
            yield n[1]
        elif op == "index":
            for t in self.ev(n[1], v, env):
                for k in self.ev(n[2], v, env):
                    yield _index(t, k)
        elif op == "slice":
            for t in self.ev(n[1], v, env):
                for lo in self.ev(n[2], v, env) if n[2] else [None]:
                    for hi in self.ev(n[3], v, env) if n[3] else [None]:
                        yield _slice(t, lo, hi)
        elif op == "iter":
            for t in self.ev(n[1], v, env):
                yield from _iterate(t)
        elif op == "pipe":
            for x in self.ev(n[1], v, env):
                self.check()
                yield from self.ev(n[2], x, env)
        elif op == "comma":
            yield from self.ev(n[1], v, env)
            yield from self.ev(n[2], v, env)
        elif op == "alt":
            found = False
            try:
                for x in self.ev(n[1], v, env):
                    if truthy(x):
                        found = True
                        yield x
            except JqError:
                pass
            if not found:
                yield from self.ev(n[2], v, env)
        elif op == "and" or op == "or":
            for a in self.ev(n[1], v, env):
                if (op == "and") != truthy(a):
                    yield op == "or"
                    continue
                for b in self.ev(n[2], v, env):
                    yield truthy(b)
        elif op == "binop":
            for b in self.ev(n[3], v, env):
                for a in self.ev(n[2], v, env):
                    yield _binop(n[1], a, b)
        elif op == "neg":
            for x in self.ev(n[1], v, env):
                if not isinstance(x, int | float) or isinstance(x, bool):
                    raise JqError(f"{_desc(x)} cannot be negated")
                yield -x
        elif op == "array":
            yield [] if n[1] is None else list(self.ev(n[1], v, env))
        elif op == "object":
            yield from self._object(n[1], 0, v, env, {})
        elif op == "string":
            yield from self._string(n[1], n[2], v, env)
        elif op == "format":
            yield _format(n[1], v)
        elif op == "var":
            if n[1] == "__loc__":
                yield {"file": "<top-level>", "line": 1}
            else:
                yield env.var(n[1])
        elif op == "if":
            for c in self.ev(n[1], v, env):
                yield from self.ev(n[2] if truthy(c) else n[3], v, env)
        elif op == "try":
            try:
                for x in self.ev(n[1], v, env):
                    yield x
            except JqError as e:
                if n[2] is not None:
                    yield from self.ev(n[2], e.value, env)
        elif op == "reduce":
            _, src, pat, init, update, _x = n
            for acc in self.ev(init, v, env):
                for x in self.ev(src, v, env):
                    self.check()
                    for scope in self._bind(pat, x, env):
                        outs = list(self.ev(update, acc, scope))
                        acc = outs[-1] if outs else None
                yield acc
        elif op == "foreach":
            _, src, pat, init, update, extract = n
            for acc in self.ev(init, v, env):
                for x in self.ev(src, v, env):
                    self.check()
                    for scope in self._bind(pat, x, env):
                        for acc in self.ev(update, acc, scope):  # noqa: B020
                            if extract is None:
                                yield acc
                            else:
                                yield from self.ev(extract, acc, scope)
        elif op == "bind":
            for x in self.ev(n[1], v, env):
                yield from self._bind_alternatives(n[2], x, v, n[3], env)
        elif op == "def":
            scope = _Env(env)
            scope.funcs[(n[1], len(n[2]))] = (n[2], n[3], scope)
            yield from self.ev(n[4], v, scope)
        elif op == "label":
            self.labels += 1
            ident = self.labels
            scope = _Env(env)
            scope.vars["*label*" + n[1]] = ident
            try:
                yield from self.ev(n[2], v, scope)
            except _Break as b:
                if b.label != ident:
                    raise
        elif op == "break":
            raise _Break(env.var("*label*" + n[1]))
        elif op == "assign":
            yield from self._assign(n[1], n[2], n[3], v, env)
        elif op == "call":
            yield from self._call(n[1], n[2], v, env)
        else:
            raise JqError(f"unknown node {op}")

    def _object(self, entries: list[tuple[Node, Node]], i: int, v: Any, env: _Env,
                acc: dict[str, Any]) -> Iterator[Any]:
        if i == len(entries):
            yield dict(acc)
            return
        knode, vnode = entries[i]
        for k in self.ev(knode, v, env):
            if not isinstance(k, str):
                if knode[0] == "literal" and isinstance(k, int | float):
                    raise JqError("Object keys must be strings")
                raise JqError(f"Object keys must be strings, not {type_name(k)}")
            for val in self.ev(vnode, v, env):
                nxt = dict(acc)
                nxt[k] = val
                yield from self._object(entries, i + 1, v, env, nxt)

    def _string(self, parts: list[str | Node], fmt: str | None, v: Any,
                env: _Env) -> Iterator[str]:
        def go(i: int, acc: str) -> Iterator[str]:
            if i == len(parts):
                yield acc
                return
            p = parts[i]
            if isinstance(p, str):
                yield from go(i + 1, acc + p)
                return
            for x in self.ev(p, v, env):
                s = _format(fmt, x) if fmt else (x if isinstance(x, str) else dumps(x))
                yield from go(i + 1, acc + s)
        return go(0, "")

    # -- variables ----------------------------------------------------------------------

    def _bind(self, pat: Node, x: Any, env: _Env) -> Iterator[_Env]:
        for binds in self._destructure(pat, x, env):
            scope = _Env(env)
            scope.vars.update(binds)
            yield scope

    def _destructure(self, pat: Node, x: Any, env: _Env) -> Iterator[dict[str, Any]]:
        if pat[0] == "pvar":
            yield {pat[1]: x}
            return
        if pat[0] == "parray":
            if x is not None and not isinstance(x, list):
                raise JqError(f"Cannot index {type_name(x)} with number")

            def arr(i: int, acc: dict[str, Any]) -> Iterator[dict[str, Any]]:
                if i == len(pat[1]):
                    yield acc
                    return
                item = x[i] if x is not None and i < len(x) else None
                for b in self._destructure(pat[1][i], item, env):
                    yield from arr(i + 1, {**acc, **b})
            yield from arr(0, {})
            return

        def obj(i: int, acc: dict[str, Any]) -> Iterator[dict[str, Any]]:
            if i == len(pat[1]):
                yield acc
                return
            knode, sub = pat[1][i]
            scope = _Env(env)
            scope.vars.update(acc)
            for k in self.ev(knode, x, scope):
                if not isinstance(k, str):
                    raise JqError(f"Cannot index object with {type_name(k)}")
                item = _index(x, k)
                for b in self._destructure(sub, item, env) if sub else [{}]:
                    yield from obj(i + 1, {**acc, **b})
        yield from obj(0, {})

    def _bind_alternatives(self, patterns: list[Node], x: Any, v: Any, body: Node,
                           env: _Env) -> Iterator[Any]:
        names: set[str] = set()
        for p in patterns:
            names |= _pattern_vars(p)
        for i, pat in enumerate(patterns):
            try:
                for scope in self._bind(pat, x, env):
                    for name in names - set(scope.vars):
                        scope.vars[name] = None
                    yield from self.ev(body, v, scope)
                return
            except JqError:
                if i == len(patterns) - 1:
                    raise

    # -- paths and assignment -------------------------------------------------------------

    def paths(self, n: Node, v: Any, env: _Env, root: Any,
              at: tuple[Any, ...]) -> Iterator[tuple[tuple[Any, ...], Any]]:
        """(path, value) of every output of ``n`` as a path expression."""
        op = n[0]
        if op == "identity":
            yield at, v
        elif op in ("index", "slice"):
            for p, t in self.paths(n[1], v, env, root, at):
                if op == "index":
                    for k in self.ev(n[2], root, env):
                        yield (*p, k), _index(t, k)
                else:
                    for lo in self.ev(n[2], root, env) if n[2] else [None]:
                        for hi in self.ev(n[3], root, env) if n[3] else [None]:
                            key = {"start": lo, "end": hi}
                            yield (*p, key), _slice(t, lo, hi)
        elif op == "iter":
            for p, t in self.paths(n[1], v, env, root, at):
                if isinstance(t, list):
                    for i, x in enumerate(t):
                        yield (*p, i), x
                elif isinstance(t, dict):
                    for k, x in t.items():
                        yield (*p, k), x
                elif t is not None:
                    raise JqError(f"Cannot iterate over {_desc(t)}")
        elif op == "pipe":
            for p, t in self.paths(n[1], v, env, root, at):
                yield from self.paths(n[2], t, env, t, p)
        elif op == "comma":
            yield from self.paths(n[1], v, env, root, at)
            yield from self.paths(n[2], v, env, root, at)
        elif op == "if":
            for c in self.ev(n[1], v, env):
                yield from self.paths(n[2] if truthy(c) else n[3], v, env, root, at)
        elif op == "alt":
            found = False
            try:
                for p, x in self.paths(n[1], v, env, root, at):
                    if truthy(x):
                        found = True
                        yield p, x
            except JqError:
                pass
            if not found:
                yield from self.paths(n[2], v, env, root, at)
        elif op == "try":
            try:
                yield from list(self.paths(n[1], v, env, root, at))
            except JqError:
                if n[2] is not None:
                    raise
        elif op == "bind":
            for x in self.ev(n[1], v, env):
                for scope in self._bind(n[2][0], x, env):
                    yield from self.paths(n[3], v, scope, root, at)
        elif op == "def":
            scope = _Env(env)
            scope.funcs[(n[1], len(n[2]))] = (n[2], n[3], scope)
            yield from self.paths(n[4], v, scope, root, at)
        elif op == "reduce":
            _, src, pat, init, update, _x = n
            for acc_p, acc in self.paths(init, v, env, root, at):
                for x in self.ev(src, v, env):
                    for scope in self._bind(pat, x, env):
                        outs = list(self.paths(update, acc, scope, acc, acc_p))
                        acc_p, acc = outs[-1] if outs else (acc_p, None)
                yield acc_p, acc
        elif op == "literal" and n[1] is None:
            yield at, None  # `null` as a path expression: jq allows path(null)
        elif op == "call":
            yield from self._call_paths(n[1], n[2], v, env, root, at)
        else:
            raise JqError("Invalid path expression with result " + _short(
                next(iter(self.ev(n, v, env)), None)))

    def _call_paths(self, name: str, args: list[Node], v: Any, env: _Env, root: Any,
                    at: tuple[Any, ...]) -> Iterator[tuple[tuple[Any, ...], Any]]:
        user = env.func(name, len(args))
        if user is not None:
            params, body, closure = user
            scope = self._call_scope(params, args, v, env, closure)
            for s in scope:
                yield from self.paths(body, v, s, root, at)
            return
        if name == "empty":
            return
        if name == "select" and len(args) == 1:
            for c in self.ev(args[0], v, env):
                if truthy(c):
                    yield at, v
            return
        if name == "recurse" and not args:
            yield from _recurse_paths(v, at)
            return
        if name == "getpath" and len(args) == 1:
            for p in self.ev(args[0], v, env):
                yield (*at, *p), _getpath(v, p)
            return
        if name in ("first", "last") and len(args) == 1:
            found = list(self.paths(args[0], v, env, root, at))
            if found:
                yield found[0] if name == "first" else found[-1]
            return
        if name in ("first", "last") and not args:
            i = 0 if name == "first" else -1
            yield (*at, i), _index(v, i)
            return
        if name == "error":
            yield from ((at, x) for x in self._call(name, args, v, env))
            return
        raise JqError(f"Invalid path expression with result {name}")

    def _assign(self, op: str, lhs: Node, rhs: Node, v: Any, env: _Env) -> Iterator[Any]:
        if op == "|=":
            out = v
            for p, _ in list(self.paths(lhs, v, env, v, ())):
                self.check()
                cur = _getpath(out, p)
                new = next(iter(self.ev(rhs, cur, env)), MISSING)
                out = _delpaths(out, [p]) if new is MISSING else _setpath(out, p, new)
            yield out
            return
        for r in self.ev(rhs, v, env):
            out = v
            for p, _ in list(self.paths(lhs, v, env, v, ())):
                self.check()
                if op == "=":
                    out = _setpath(out, p, r)
                elif op == "//=":
                    cur = _getpath(out, p)
                    out = _setpath(out, p, cur if truthy(cur) else r)
                else:
                    out = _setpath(out, p, _binop(op[0], _getpath(out, p), r))
            yield out

    # -- calls ----------------------------------------------------------------------------

    def _call_scope(self, params: list[str], args: list[Node], v: Any, env: _Env,
                    closure: _Env) -> Iterator[_Env]:
        """Scopes for a user function's body: filter params as closures, ``$`` params
        bound to each combination of their values."""
        scope = _Env(closure)
        value_params: list[tuple[str, Node]] = []
        for p, a in zip(params, args, strict=True):
            if p.startswith("$"):
                value_params.append((p[1:], a))
                scope.funcs[(p[1:], 0)] = ([], ("var", p[1:]), scope)
            else:
                scope.funcs[(p, 0)] = ([], a, env)

        def bind(i: int) -> Iterator[_Env]:
            if i == len(value_params):
                yield scope
                return
            name, a = value_params[i]
            for x in self.ev(a, v, env):
                scope.vars[name] = x
                yield from bind(i + 1)
        return bind(0)

    def _call(self, name: str, args: list[Node], v: Any, env: _Env) -> Iterator[Any]:
        user = env.func(name, len(args))
        if user is not None:
            params, body, closure = user
            if not params:
                yield from self.ev(body, v, closure)
                return
            for scope in self._call_scope(params, args, v, env, closure):
                yield from self.ev(body, v, scope)
            return
        special = _SPECIAL.get((name, len(args)))
        if special is not None:
            yield from special(self, args, v, env)
            return
        native = _NATIVE.get((name, len(args)))
        if native is None:
            raise JqError(f"{name}/{len(args)} is not defined")
        try:
            if not args:
                yield native(v)
                return
            yield from self._cartesian(native, args, v, env, [])
        except (TypeError, ValueError, KeyError, IndexError, AttributeError,
                OverflowError) as e:
            raise JqError(f"{name}/{len(args)}: {e}") from None

    def _cartesian(self, fn: Callable[..., Any], args: list[Node], v: Any, env: _Env,
                   got: list[Any]) -> Iterator[Any]:
        if len(got) == len(args):
            yield fn(v, *got)
            return
        for x in self.ev(args[len(args) - 1 - len(got)], v, env):
            yield from self._cartesian(fn, args, v, env, [x, *got])


def _pattern_vars(p: Node) -> set[str]:
    if p[0] == "pvar":
        return {p[1]}
    if p[0] == "parray":
        return set().union(*(_pattern_vars(x) for x in p[1])) if p[1] else set()
    out: set[str] = set()
    for _key, sub in p[1]:
        if sub is not None:
            out |= _pattern_vars(sub)
    return out


def _recurse_paths(v: Any, at: tuple[Any, ...]) -> Iterator[tuple[tuple[Any, ...], Any]]:
    yield at, v
    if isinstance(v, list):
        for i, x in enumerate(v):
            yield from _recurse_paths(x, (*at, i))
    elif isinstance(v, dict):
        for k, x in v.items():
            yield from _recurse_paths(x, (*at, k))


def _tostring(v: Any) -> str:
    return v if isinstance(v, str) else dumps(v)


def _tonumber(v: Any) -> Any:
    if _is_num(v):
        return v
    if isinstance(v, str):
        try:
            return _num(float(v)) if re.search(r"[.eE]", v) else int(v)
        except ValueError:
            raise JqError(f"Cannot parse '{v}' as JSON") from None
    raise JqError(f"{_desc(v)} cannot be parsed as a number")


def _length(v: Any) -> Any:
    if v is None:
        return 0
    if isinstance(v, bool):
        raise JqError(f"boolean ({dumps(v)}) has no length")
    if _is_num(v):
        return abs(v)
    return len(v)


def _keys(v: Any, sort: bool = True) -> list[Any]:
    if isinstance(v, dict):
        return sorted(v) if sort else list(v)
    if isinstance(v, list):
        return list(range(len(v)))
    raise JqError(f"{_desc(v)} has no keys")


def _has(v: Any, k: Any) -> bool:
    if isinstance(v, dict) and isinstance(k, str):
        return k in v
    if isinstance(v, list) and _is_num(k):
        return bool(0 <= k < len(v))
    raise JqError(f"Cannot check whether {type_name(v)} has a {type_name(k)} key")


def _need(v: Any, kind: type | tuple[type, ...], what: str) -> None:
    if not isinstance(v, kind) or isinstance(v, bool):
        raise JqError(f"{_desc(v)} {what}")


def _sorted(v: Any, keys: list[Any] | None = None) -> list[Any]:
    _need(v, list, "cannot be sorted, as it is not an array")
    if keys is None:
        return sorted(v, key=sort_key)
    order = sorted(range(len(v)), key=lambda i: sort_key(keys[i]))
    return [v[i] for i in order]


def _to_entries(v: Any) -> list[Any]:
    return [{"key": k, "value": x} for k, x in zip(_keys(v, False), _iterate(v), strict=True)]


def _from_entries(v: Any) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for e in _iterate(v):
        if not isinstance(e, dict):
            raise JqError(f"Cannot index {type_name(e)} with \"key\"")
        k = next((e[n] for n in ("key", "k", "name", "Name", "Key", "K")
                  if n in e and e[n] is not None and e[n] is not False), None)
        if k is None:
            k = next((e[n] for n in ("key", "k", "name", "Name", "Key", "K") if n in e),
                     None)
        if isinstance(k, bool) or k is None or _is_num(k):
            k = "null" if k is None else dumps(k)
        if not isinstance(k, str):
            raise JqError(f"Cannot use {type_name(k)} ({_short(k)}) as object key")
        val = next((e[n] for n in ("value", "v", "Value", "V") if n in e), None)
        out[k] = val
    return out


def _flatten(v: Any, depth: float = math.inf) -> list[Any]:
    if depth < 0:
        raise JqError("flatten depth must not be negative")
    _need(v, list, "cannot be flattened")
    out: list[Any] = []
    for x in v:
        if isinstance(x, list) and depth > 0:
            out.extend(_flatten(x, depth - 1))
        else:
            out.append(x)
    return out


def _join(v: Any, sep: Any) -> str:
    parts = []
    for x in _iterate(v):
        if x is None:
            parts.append("")
        elif isinstance(x, bool) or _is_num(x):
            parts.append(dumps(x))
        elif isinstance(x, str):
            parts.append(x)
        else:
            raise JqError(f"Cannot join with {type_name(x)}")
    if not isinstance(sep, str):
        raise JqError(f"{_desc(sep)} cannot be used as a separator")
    return sep.join(parts)


def _regex(re_src: Any, flags: Any) -> tuple[re.Pattern[str], bool]:
    if not isinstance(re_src, str):
        raise JqError(f"{_desc(re_src)} cannot be matched, as it is not a string")
    f = flags or ""
    if not isinstance(f, str):
        raise JqError(f"{_desc(f)} is not a string")
    bits = 0
    for c in f:
        if c == "i":
            bits |= re.IGNORECASE
        elif c == "x":
            bits |= re.VERBOSE
        elif c == "s":
            bits |= re.DOTALL
        elif c not in "gnpl":
            raise JqError(f"{f} is not a valid modifier string")
    src = re.sub(r"\(\?<([A-Za-z_]\w*)>", r"(?P<\1>", re_src)
    try:
        return re.compile(src, bits), "g" in f
    except re.error as e:
        raise JqError(f"{re_src} (at offset {e.pos}) is not a valid regex: {e}") from None


def _match_obj(m: re.Match[str]) -> dict[str, Any]:
    names = {i: n for n, i in m.re.groupindex.items()}
    caps = [{"offset": m.start(i) if m.start(i) >= 0 else -1,
             "length": len(m.group(i) or ""), "string": m.group(i),
             "name": names.get(i)} for i in range(1, (m.re.groups or 0) + 1)]
    return {"offset": m.start(), "length": len(m.group()), "string": m.group(),
            "captures": caps}


def _matches(v: Any, re_src: Any, flags: Any, force_global: bool = False
             ) -> list[dict[str, Any]]:
    if not isinstance(v, str):
        raise JqError(f"{_desc(v)} cannot be matched, as it is not a string")
    pat, glob = _regex(re_src, flags)
    if glob or force_global:
        return [_match_obj(m) for m in pat.finditer(v)]
    m = pat.search(v)
    return [_match_obj(m)] if m else []


def _capture(m: dict[str, Any]) -> dict[str, Any]:
    return {c["name"]: c["string"] for c in m["captures"] if c["name"] is not None}


def _sub(v: Any, re_src: Any, repl: Node, flags: Any, ev: _Evaluator,
         env: _Env, force_global: bool) -> Iterator[str]:
    if not isinstance(v, str):
        raise JqError(f"{_desc(v)} cannot be matched, as it is not a string")
    found = _matches(v, re_src, flags, force_global)

    def go(i: int, pos: int, acc: str) -> Iterator[str]:
        if i == len(found):
            yield acc + v[pos:]
            return
        m = found[i]
        for r in ev.ev(repl, _capture(m), env):
            if not isinstance(r, str):
                raise JqError(f"{_desc(r)} cannot be added to a string")
            yield from go(i + 1, m["offset"] + m["length"], acc + v[pos:m["offset"]] + r)
    return go(0, 0, "")


def _format(name: str | None, v: Any) -> str:
    if name in (None, "text"):
        return _tostring(v)
    if name == "json":
        return dumps(v)
    if name == "base64":
        return base64.b64encode(_tostring(v).encode()).decode()
    if name == "base64d":
        s = _tostring(v).encode()
        try:
            return base64.b64decode(s + b"=" * (-len(s) % 4)).decode("utf-8", "replace")
        except ValueError:
            raise JqError(f"{_desc(v)} is not valid base64 data") from None
    if name == "uri":
        return urllib.parse.quote(_tostring(v), safe="-_.~")
    if name == "html":
        h = _tostring(v)
        for a, b in (("&", "&amp;"), ("<", "&lt;"), (">", "&gt;"), ("'", "&#39;"),
                     ('"', "&quot;")):
            h = h.replace(a, b)
        return h
    if name in ("csv", "tsv"):
        if not isinstance(v, list):
            raise JqError(f"{_desc(v)} cannot be {name}-formatted, only an array can be")
        out = []
        for x in v:
            if isinstance(x, str):
                if name == "csv":
                    out.append('"' + x.replace('"', '""') + '"')
                else:
                    out.append(x.replace("\\", "\\\\").replace("\t", "\\t").replace(
                        "\n", "\\n").replace("\r", "\\r"))
            elif x is None:
                out.append("")
            elif isinstance(x, bool) or _is_num(x):
                out.append(dumps(x))
            else:
                raise JqError(f"{_desc(x)} is not valid in a csv row")
        return ("," if name == "csv" else "\t").join(out)
    if name == "sh":
        items = v if isinstance(v, list) else [v]
        out = []
        for x in items:
            if isinstance(x, str):
                out.append("'" + x.replace("'", "'\\''") + "'")
            elif isinstance(x, list | dict):
                raise JqError(f"{_desc(x)} can not be escaped for shell")
            else:
                out.append(dumps(x))
        return " ".join(out)
    raise JqError(f"{name} is not a valid format")


def _math1(fn: Callable[[float], float]) -> Callable[[Any], Any]:
    def f(v: Any) -> Any:
        _need(v, (int, float), "number required")
        try:
            return _num(fn(v))
        except (ValueError, OverflowError):
            return None
    return f


def _tojson_in(v: Any) -> Any:
    if not isinstance(v, str):
        raise JqError(f"{_desc(v)} cannot be parsed as JSON, as it is not a string")
    try:
        return json.loads(v, parse_float=lambda s: _num(float(s)))
    except ValueError as e:
        raise JqError(f"{v} (while parsing '{v}'): {e}") from None


def _minmax(v: Any, keys: list[Any] | None, pick_max: bool) -> Any:
    _need(v, list, "cannot be iterated over" if keys is None else "has no keys")
    if not v:
        return None
    ks = keys if keys is not None else v
    best = 0
    for i in range(1, len(v)):
        c = sort_key(ks[i]), sort_key(ks[best])
        if (c[0] >= c[1]) if pick_max else (c[0] < c[1]):
            best = i
    return v[best]


def _unique(v: Any, keys: list[Any] | None = None) -> list[Any]:
    ks = keys if keys is not None else v
    out: list[Any] = []
    seen: list[tuple[Any, ...]] = []
    for i in sorted(range(len(v)), key=lambda i: sort_key(ks[i])):
        k = sort_key(ks[i])
        if not seen or seen[-1] != k:
            seen.append(k)
            out.append(v[i])
    return out


def _group(v: Any, keys: list[Any]) -> list[Any]:
    out: list[list[Any]] = []
    last: tuple[Any, ...] | None = None
    for i in sorted(range(len(v)), key=lambda i: sort_key(keys[i])):
        k = sort_key(keys[i])
        if last is None or k != last:
            out.append([])
            last = k
        out[-1].append(v[i])
    return out


def _splits_re(v: Any, re_src: Any, flags: Any) -> list[str]:
    if not isinstance(v, str):
        raise JqError(f"{_desc(v)} cannot be matched, as it is not a string")
    out, pos = [], 0
    for m in _matches(v, re_src, flags, True):
        out.append(v[pos:m["offset"]])
        pos = m["offset"] + m["length"]
    out.append(v[pos:])
    return out


def _implode(v: Any) -> str:
    _need(v, list, "cannot be imploded")
    return "".join(chr(int(c)) for c in v)


def _ltrimstr(v: Any, s: Any) -> Any:
    if isinstance(v, str) and isinstance(s, str) and v.startswith(s):
        return v[len(s):]
    return v


def _rtrimstr(v: Any, s: Any) -> Any:
    if isinstance(v, str) and isinstance(s, str) and s and v.endswith(s):
        return v[:-len(s)]
    return v


def _str_pred(fn: Callable[[str, str], bool], what: str) -> Callable[[Any, Any], bool]:
    def f(v: Any, s: Any) -> bool:
        if not isinstance(v, str) or not isinstance(s, str):
            raise JqError(f"{what}() requires string inputs")
        return fn(v, s)
    return f


def _error(v: Any, msg: Any = MISSING) -> Any:
    raise JqError(v if msg is MISSING else msg)


def _splits(v: Any, s: Any) -> list[str]:
    if not isinstance(v, str) or not isinstance(s, str):
        raise JqError("split input and separator must be strings")
    return _split(v, s)


def _ascii_case(upper: bool) -> Callable[[Any], str]:
    lower, upper_s = "abcdefghijklmnopqrstuvwxyz", "ABCDEFGHIJKLMNOPQRSTUVWXYZ"
    table = str.maketrans(lower, upper_s) if upper else str.maketrans(upper_s, lower)

    def f(v: Any) -> str:
        _need(v, str, f"cannot be {'upper' if upper else 'lower'}cased")
        return str(v).translate(table)
    return f


def _gmtime(v: Any) -> list[Any]:
    """Seconds since the epoch as jq's broken-down time: [year, month (0-11), day, hours,
    minutes, seconds, weekday (0 = Sunday), day of the year (0-365)]."""
    _need(v, (int, float), "gmtime() requires a number")
    t = time.gmtime(math.floor(v))
    return [t.tm_year, t.tm_mon - 1, t.tm_mday, t.tm_hour, t.tm_min,
            _num(t.tm_sec + (v - math.floor(v))), (t.tm_wday + 1) % 7, t.tm_yday - 1]


def _struct(v: Any, what: str) -> time.struct_time:
    if _is_num(v):
        v = _gmtime(v)
    if not isinstance(v, list) or len(v) < 6 or not all(_is_num(x) for x in v[:6]):
        raise JqError(f"{what} requires parsed datetime inputs")
    year, mon, day, hh, mm, ss = (int(x) for x in v[:6])
    wday = int(v[6]) if len(v) > 6 else 0
    yday = int(v[7]) if len(v) > 7 else 0
    return time.struct_time((year, mon + 1, day, hh, mm, ss, (wday + 6) % 7, yday + 1, 0))


def _mktime(v: Any) -> int:
    return calendar.timegm(_struct(v, "mktime"))


def _strftime(v: Any, fmt: Any) -> str:
    if not isinstance(fmt, str):
        raise JqError("strftime/1 requires a string format")
    return time.strftime(fmt, _struct(v, "strftime/1"))


def _strptime(v: Any, fmt: Any) -> list[Any]:
    if not isinstance(v, str) or not isinstance(fmt, str):
        raise JqError("strptime/1 requires string inputs and arguments")
    try:
        t = time.strptime(v, fmt)
    except ValueError:
        raise JqError(f"date \"{v}\" does not match format \"{fmt}\"") from None
    return _gmtime(calendar.timegm(t))


_NATIVE: dict[tuple[str, int], Callable[..., Any]] = {
    ("length", 0): _length,
    ("utf8bytelength", 0): lambda v: len(v.encode()) if isinstance(v, str) else _error(
        f"{_desc(v)} only strings have UTF-8 byte length"),
    ("not", 0): lambda v: not truthy(v),
    ("keys", 0): _keys,
    ("keys_unsorted", 0): lambda v: _keys(v, False),
    ("has", 1): _has,
    ("contains", 1): _contains,
    ("add", 0): lambda v: _add(list(_iterate(v))),
    ("type", 0): type_name,
    ("tostring", 0): _tostring,
    ("tonumber", 0): _tonumber,
    ("tojson", 0): dumps,
    ("fromjson", 0): _tojson_in,
    ("ascii_downcase", 0): _ascii_case(False),
    ("ascii_upcase", 0): _ascii_case(True),
    ("explode", 0): lambda v: [ord(c) for c in v] if isinstance(v, str) else _error(
        f"{_desc(v)} cannot be exploded"),
    ("implode", 0): _implode,
    ("ltrimstr", 1): _ltrimstr,
    ("rtrimstr", 1): _rtrimstr,
    ("startswith", 1): _str_pred(str.startswith, "startswith"),
    ("endswith", 1): _str_pred(str.endswith, "endswith"),
    ("split", 1): _splits,
    ("split", 2): lambda v, r, f: _splits_re(v, r, f),
    ("join", 1): _join,
    ("sort", 0): _sorted,
    ("unique", 0): lambda v: _unique(_sorted(v)),
    ("min", 0): lambda v: _minmax(v, None, False),
    ("max", 0): lambda v: _minmax(v, None, True),
    ("reverse", 0): lambda v: v[::-1] if isinstance(v, list | str) else (
        [] if v is None else _error(f"Cannot reverse {_desc(v)}")),
    ("flatten", 0): _flatten,
    ("flatten", 1): _flatten,
    ("to_entries", 0): _to_entries,
    ("from_entries", 0): _from_entries,
    ("floor", 0): _math1(math.floor),
    ("ceil", 0): _math1(math.ceil),
    ("round", 0): _math1(lambda x: math.floor(x + 0.5) if x >= 0 else -math.floor(-x + 0.5)),
    ("sqrt", 0): _math1(math.sqrt),
    ("fabs", 0): _math1(math.fabs),
    ("log", 0): _math1(math.log),
    ("log2", 0): _math1(math.log2),
    ("log10", 0): _math1(math.log10),
    ("exp", 0): _math1(math.exp),
    ("exp10", 0): _math1(lambda x: 10.0 ** x),
    ("pow", 2): lambda v, a, b: _num(math.pow(a, b)),
    ("infinite", 0): lambda v: math.inf,
    ("nan", 0): lambda v: math.nan,
    ("isinfinite", 0): lambda v: _is_num(v) and math.isinf(v),
    ("isnan", 0): lambda v: _is_num(v) and math.isnan(v),
    ("isnormal", 0): lambda v: _is_num(v) and math.isfinite(v) and v != 0,
    ("indices", 1): _indices,
    ("index", 1): lambda v, x: (lambda r: r[0] if r else None)(_indices(v, x)),
    ("rindex", 1): lambda v, x: (lambda r: r[-1] if r else None)(_indices(v, x)),
    ("getpath", 1): _getpath,
    ("setpath", 2): _setpath,
    ("delpaths", 1): lambda v, ps: _delpaths(v, ps),
    ("test", 1): lambda v, r: bool(_matches(v, r, None)),
    ("test", 2): lambda v, r, f: bool(_matches(v, r, f)),
    ("error", 0): _error,
    ("error", 1): _error,
    ("now", 0): lambda v: time.time(),
    ("gmtime", 0): _gmtime,
    ("mktime", 0): _mktime,
    ("strftime", 1): _strftime,
    ("strptime", 1): _strptime,
    ("input_line_number", 0): lambda v: 0,
    ("builtins", 0): lambda v: sorted(f"{n}/{a}" for n, a in _NATIVE),
}


def _add(items: list[Any]) -> Any:
    acc: Any = None
    for x in items:
        acc = _binop("+", acc, x)
    return acc


def _first_of(ev: _Evaluator, args: list[Node], v: Any, env: _Env) -> Iterator[Any]:
    for x in ev.ev(args[0], v, env):
        yield x
        return


def _limit(ev: _Evaluator, args: list[Node], v: Any, env: _Env) -> Iterator[Any]:
    for n in ev.ev(args[0], v, env):
        if n <= 0:
            continue
        for count, x in enumerate(ev.ev(args[1], v, env), 1):
            yield x
            if count >= n:
                break


def _range(ev: _Evaluator, args: list[Node], v: Any, env: _Env) -> Iterator[Any]:
    if len(args) == 1:
        bounds = [(0, hi, 1) for hi in ev.ev(args[0], v, env)]
    elif len(args) == 2:
        bounds = [(lo, hi, 1) for lo in ev.ev(args[0], v, env)
                  for hi in ev.ev(args[1], v, env)]
    else:
        bounds = [(lo, hi, st) for lo in ev.ev(args[0], v, env)
                  for hi in ev.ev(args[1], v, env) for st in ev.ev(args[2], v, env)]
    for lo, hi, step in bounds:
        for b in (lo, hi, step):
            _need(b, (int, float), "Range bounds must be numeric")
        x = lo
        if step == 0:
            continue
        while (x < hi) if step > 0 else (x > hi):
            ev.check()
            yield _num(x)
            x += step


def _by(fn: Callable[[Any, list[Any]], Any]) -> Callable[..., Iterator[Any]]:
    def special(ev: _Evaluator, args: list[Node], v: Any, env: _Env) -> Iterator[Any]:
        if not isinstance(v, list):
            raise JqError(f"Cannot index {type_name(v)} with number" if v is not None
                          else f"{_desc(v)} cannot be sorted, as it is not an array")
        keys = [list(ev.ev(args[0], x, env)) for x in v]
        yield fn(v, keys)
    return special


def _path(ev: _Evaluator, args: list[Node], v: Any, env: _Env) -> Iterator[Any]:
    for p, _ in ev.paths(args[0], v, env, v, ()):
        yield list(p)


def _paths_f(ev: _Evaluator, args: list[Node], v: Any, env: _Env) -> Iterator[Any]:
    for p, x in _recurse_paths(v, ()):
        if p and any(truthy(c) for c in ev.ev(args[0], x, env)):
            yield list(p)


def _del(ev: _Evaluator, args: list[Node], v: Any, env: _Env) -> Iterator[Any]:
    yield _delpaths(v, [p for p, _ in ev.paths(args[0], v, env, v, ())])


def _match_sp(kind: str) -> Callable[..., Iterator[Any]]:
    def special(ev: _Evaluator, args: list[Node], v: Any, env: _Env) -> Iterator[Any]:
        for re_arg in ev.ev(args[0], v, env):
            for flags in ev.ev(args[1], v, env) if len(args) > 1 else [None]:
                if isinstance(re_arg, list):
                    re_arg, flags = re_arg[0], (re_arg[1] if len(re_arg) > 1 else None)
                for m in _matches(v, re_arg, flags, kind == "scan"):
                    if kind == "match":
                        yield m
                    elif kind == "capture":
                        yield _capture(m)
                    elif m["captures"]:
                        yield [c["string"] for c in m["captures"]]
                    else:
                        yield m["string"]
    return special


def _sub_sp(force_global: bool) -> Callable[..., Iterator[Any]]:
    def special(ev: _Evaluator, args: list[Node], v: Any, env: _Env) -> Iterator[Any]:
        for re_arg in ev.ev(args[0], v, env):
            for flags in ev.ev(args[2], v, env) if len(args) > 2 else [None]:
                yield from _sub(v, re_arg, args[1], flags, ev, env, force_global)
    return special


def _input(ev: _Evaluator, args: list[Node], v: Any, env: _Env) -> Iterator[Any]:
    src = env.var("*inputs*") if _has_var(env, "*inputs*") else iter(())
    try:
        yield next(src)
    except StopIteration:
        raise JqError("No more inputs") from None


def _inputs(ev: _Evaluator, args: list[Node], v: Any, env: _Env) -> Iterator[Any]:
    if _has_var(env, "*inputs*"):
        for x in env.var("*inputs*"):
            ev.check()
            yield x


def _has_var(env: _Env, name: str) -> bool:
    try:
        env.var(name)
    except JqError:
        return False
    return True


def _debug(ev: _Evaluator, args: list[Node], v: Any, env: _Env) -> Iterator[Any]:
    if _has_var(env, "*stderr*"):
        env.var("*stderr*")(f'["DEBUG:",{dumps(v)}]\n')
    yield v


def _getpath_sp(ev: _Evaluator, args: list[Node], v: Any, env: _Env) -> Iterator[Any]:
    for p in ev.ev(args[0], v, env):
        try:
            yield _getpath(v, p)
        except JqError:
            yield None


def _min_max_by(pick_max: bool) -> Callable[..., Iterator[Any]]:
    return _by(lambda v, keys: _minmax(v, keys, pick_max))


_SPECIAL: dict[tuple[str, int], Callable[..., Iterator[Any]]] = {
    ("empty", 0): lambda ev, a, v, env: iter(()),
    ("first", 1): _first_of,
    ("limit", 2): _limit,
    ("range", 1): _range,
    ("range", 2): _range,
    ("range", 3): _range,
    ("sort_by", 1): _by(lambda v, k: _sorted(v, k)),
    ("group_by", 1): _by(_group),
    ("unique_by", 1): _by(lambda v, k: _unique(v, k)),
    ("min_by", 1): _min_max_by(False),
    ("max_by", 1): _min_max_by(True),
    ("path", 1): _path,
    ("paths", 1): _paths_f,
    ("del", 1): _del,
    ("match", 1): _match_sp("match"),
    ("match", 2): _match_sp("match"),
    ("capture", 1): _match_sp("capture"),
    ("capture", 2): _match_sp("capture"),
    ("scan", 1): _match_sp("scan"),
    ("scan", 2): _match_sp("scan"),
    ("sub", 2): _sub_sp(False),
    ("sub", 3): _sub_sp(False),
    ("gsub", 2): _sub_sp(True),
    ("gsub", 3): _sub_sp(True),
    ("input", 0): _input,
    ("inputs", 0): _inputs,
    ("debug", 0): _debug,
    ("env", 0): lambda ev, a, v, env: iter([env.var("ENV")]),
    ("input_filename", 0): lambda ev, a, v, env: iter([env.var("*filename*")[0]]),
    ("getpath", 1): _getpath_sp,
}

_PRELUDE = """
def map(f): [.[] | f];
def select(f): if f then . else empty end;
def recurse(f): def r: ., (f | r); r;
def recurse(f; cond): def r: ., (f | select(cond) | r); r;
def recurse: recurse(.[]?);
def values: select(. != null);
def nulls: select(. == null);
def booleans: select(type == "boolean");
def numbers: select(type == "number");
def strings: select(type == "string");
def arrays: select(type == "array");
def objects: select(type == "object");
def iterables: select(type == "array" or type == "object");
def scalars: select(type != "array" and type != "object");
def map_values(f): .[] |= f;
def with_entries(f): to_entries | map(f) | from_entries;
def paths: path(..) | select(length > 0);
def leaf_paths: paths(scalars);
def any: reduce .[] as $x (false; . or $x);
def all: reduce .[] as $x (true; . and $x);
def any(f): reduce (.[] | f) as $x (false; . or $x);
def all(f): reduce (.[] | f) as $x (true; . and $x);
def any(g; cond): isempty(first(g | cond | select(.))) | not;
def all(g; cond): isempty(first(g | cond | select(. | not)));
def isempty(g): first((g | false), true);
def in(xs): . as $x | xs | has($x);
def inside(xs): . as $x | xs | contains($x);
def first: .[0];
def last: .[-1];
def last(f): reduce f as $x (null; $x);
def nth($n): .[$n];
def nth($n; f): if $n < 0 then error("Out of bounds negative array index")
    else last(limit($n + 1; f)) end;
def until(cond; update): def _u: if cond then . else (update | _u) end; _u;
def while(cond; update): def _w: if cond then ., (update | _w) else empty end; _w;
def repeat(f): def _r: ., (f | _r); _r;
def transpose: if . == [] then [] else . as $in | (map(length) | max) as $max
    | [range(0; $max) as $j | [range(0; $in | length) as $i | $in[$i][$j]]] end;
def tostream: path(def r: (.[]? | r), .; r) as $p | getpath($p)
    | reduce path(.[]?) as $q ([$p, .]; [$p + $q]);
def walk(f): def w: if type == "object" then map_values(w)
    elif type == "array" then map(w) else . end | f; w;
def combinations: if length == 0 then [] else .[0][] as $x | (.[1:] | combinations)
    as $w | [$x] + $w end;
def combinations(n): . as $dot | [range(n)] | map($dot) | combinations;
def ascii(i): [i] | implode;
def abs: if type == "number" and . < 0 then -. else . end;
def add(f): reduce f as $x (null; . + $x);
def finites: select(isinfinite or isnan | not);
def normals: select(isnormal);
def splits($re; flags): split($re; flags) | .[];
def splits($re): splits($re; null);
def INDEX(stream; idx_expr): reduce stream as $row ({}; .[$row | idx_expr | tostring] |= $row);
def INDEX(idx_expr): INDEX(.[]; idx_expr);
def IN(s): any(s == .; .);
def IN(src; s): any(src == s; .);
def fromstream(f): {x: null, e: false} as $init
    | foreach f as $i ($init;
        if .e then $init else . end
        | if $i | length == 2
          then setpath(["e"]; $i[0] | length == 0) | setpath(["x"] + $i[0]; $i[1])
          else setpath(["e"]; $i[0] | length == 1) end;
        if .e then .x else empty end);
def todate: strftime("%Y-%m-%dT%H:%M:%SZ");
def fromdate: strptime("%Y-%m-%dT%H:%M:%SZ") | mktime;
def todateiso8601: todate;
def fromdateiso8601: fromdate;
def dateadd(u; n): . + n;
def datesub(u; n): . - n;
def date: todate;
def localtime: gmtime;
def strflocaltime(f): strftime(f);
"""

# The prelude's functions, compiled once. Locking: none needed; two threads racing on the
# first use compile the same functions and either list entry serves.
_PRELUDE_CACHE: list[_Env] = []


def _prelude_env() -> _Env:
    if _PRELUDE_CACHE:
        return _PRELUDE_CACHE[0]
    env = _Env()
    tree = compile_filter(_PRELUDE + ".", check=False)
    while tree[0] == "def":
        env.funcs[(tree[1], len(tree[2]))] = (tree[2], tree[3], env)
        tree = tree[4]
    _PRELUDE_CACHE.append(env)
    return env
