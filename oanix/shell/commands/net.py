"""``curl`` and ``wget`` over the environment's HTTP capability (``/cap/http``).

A request goes out as the capability's protocol says (``oanix.cap.http``): the command
writes the request file, reads ``last`` for its id and waits for
``responses/<id>.json`` or ``errors/<id>.json``. The executor behind the capability
applies its policy (allowlist, size limits, secrets); these commands never open a socket.
With no capability mounted, ``curl`` fails as it does when it cannot connect (status 7),
``wget`` as on a network failure (status 4). ``OANIX_HTTP_CAP`` in the environment names
another mount point. Finished answer files are removed once read. Unsupported: ``-F``
(multipart), proxies, cookies (``-b``/``-c`` are accepted and ignored), ``-v`` output.

``last`` names the latest request of the whole HttpFs: concurrent writers to one HttpFs
may read each other's id (give each agent its own HttpFs, as ``OanixEnv`` does).
"""

from __future__ import annotations

import base64
import contextlib
import json
import time
import urllib.parse
from typing import Any

import attrs

from ... import paths
from ...errors import FsError
from ..context import Ctx, strerror
from ..table import COMMANDS, command
from ._util import Usage, text, to_bytes

__all__ = ["HTTP_CAP", "HttpAnswer", "http_request"]

HTTP_CAP = "/cap/http"
MAX_REDIRECTS = 20
_WAIT_SLACK = 30.0  # seconds beyond the request's timeout: retries and queueing


@attrs.frozen
class HttpAnswer:
    """A finished request: a response (``status`` > 0) or an error (``error`` kind).

    Locking: none needed; immutable.
    """

    status: int = 0
    reason: str = ""
    headers: tuple[tuple[str, str], ...] = ()
    body: bytes = b""
    url: str = ""
    error: str = ""
    message: str = ""

    def header(self, name: str) -> str | None:
        return next((v for n, v in self.headers if n.lower() == name.lower()), None)


def http_request(ctx: Ctx, method: str, url: str, headers: dict[str, str], body: bytes,
                 timeout: float | None, max_wait: float | None = None) -> HttpAnswer:
    """Perform one request through the capability; errors come back as ``error`` kinds:
    the capability's (``timeout``, ``connection``, ``permission_denied``, ...) or
    ``unavailable`` (nothing mounted) and ``unfinished`` (no answer within ``max_wait``
    seconds; by default four times the timeout and some slack for retries)."""
    cap = ctx.env.get("OANIX_HTTP_CAP", HTTP_CAP)
    ns = ctx.namespace
    if not ns.exists(paths.join(cap, "request")):
        return HttpAnswer(error="unavailable", url=url,
                          message=f"no HTTP capability is mounted at {cap}")
    req: dict[str, Any] = {"method": method, "url": url, "headers": headers}
    if body:
        try:
            req["body"] = body.decode("utf-8")
        except UnicodeDecodeError:
            req["body_base64"] = base64.b64encode(body).decode("ascii")
    if timeout is not None:
        req["timeout"] = timeout
    try:
        ns.write_bytes(paths.join(cap, "request"), json.dumps(req).encode())
        rid = ns.read_bytes(paths.join(cap, "last")).decode().strip()
    except FsError as e:
        return HttpAnswer(error="unavailable", url=url, message=f"{cap}: {strerror(e)}")
    limit = max_wait if max_wait is not None else (
        (timeout or _default_timeout(ctx, cap)) * 4 + _WAIT_SLACK)
    found = _await(ctx, cap, rid, time.monotonic() + limit)
    if found is None:
        return HttpAnswer(error="unfinished", url=url,
                          message=f"no answer to request {rid} within {limit:.0f} s")
    kind, obj = found
    if kind == "errors":
        return HttpAnswer(error=str(obj.get("error")), message=str(obj.get("message")),
                          url=url)
    raw = (base64.b64decode(obj["body_base64"]) if "body_base64" in obj
           else str(obj.get("body", "")).encode("utf-8"))
    return HttpAnswer(status=int(obj["status"]), reason=str(obj.get("reason", "")),
                      headers=tuple((str(n), str(v)) for n, v in obj.get("headers", [])),
                      body=raw, url=url)


def _default_timeout(ctx: Ctx, cap: str) -> float:
    try:
        return float(json.loads(ctx.namespace.read_bytes(paths.join(cap, "status")))
                     ["default_timeout"])
    except (FsError, ValueError, KeyError, TypeError):
        return 30.0


def _await(ctx: Ctx, cap: str, rid: str, deadline: float
           ) -> tuple[str, dict[str, Any]] | None:
    """Poll for ``rid``'s answer file (backing off to 50 ms) until ``deadline``."""
    delay = 0.001
    while True:
        for kind in ("responses", "errors"):
            try:
                data = ctx.namespace.read_bytes(paths.join(cap, kind, f"{rid}.json"))
            except FsError:
                continue
            obj: dict[str, Any] = json.loads(data)
            with contextlib.suppress(FsError):
                ctx.namespace.remove(paths.join(cap, kind, f"{rid}.json"))
            return kind, obj
        if time.monotonic() >= deadline:
            return None
        ctx.check()
        time.sleep(delay)
        delay = min(delay * 2, 0.05)


def _fetch(ctx: Ctx, method: str, url: str, headers: dict[str, str], body: bytes,
           timeout: float | None, follow: bool, max_wait: float | None = None
           ) -> tuple[HttpAnswer, int]:
    """``http_request``, following redirects when ``follow``: (answer, redirects)."""
    redirects = 0
    while True:
        ans = http_request(ctx, method, url, headers, body, timeout, max_wait)
        location = ans.header("location")
        if not follow or ans.error or ans.status not in (301, 302, 303, 307, 308) or (
                location is None):
            return ans, redirects
        if redirects >= MAX_REDIRECTS:
            return attrs.evolve(ans, error="too_many_redirects",
                                message=f"Maximum ({MAX_REDIRECTS}) redirects followed"
                                ), redirects
        redirects += 1
        url = urllib.parse.urljoin(url, location)
        if ans.status in (301, 302, 303) and method not in ("GET", "HEAD"):
            method, body = "GET", b""
            headers = {k: v for k, v in headers.items() if k.lower() != "content-type"}


def _with_scheme(url: str) -> str:
    return url if "://" in url else "http://" + url


# -- curl ---------------------------------------------------------------------------------

_CURL_EXIT = {"unavailable": 7, "connection": 7, "permission_denied": 7, "timeout": 28,
              "unfinished": 28, "invalid_request": 3, "response_too_large": 63,
              "request_too_large": 55, "too_many_redirects": 47, "shutdown": 7, "error": 56}
_CURL_FLAGS = {"-s": "silent", "--silent": "silent", "-S": "show", "--show-error": "show",
               "-f": "fail", "--fail": "fail", "-L": "location", "--location": "location",
               "-I": "head", "--head": "head", "-i": "include", "--include": "include",
               "-O": "remote", "--remote-name": "remote", "-G": "get", "--get": "get",
               "-k": "", "--insecure": "", "--compressed": "", "-v": "", "--verbose": "",
               "-#": "", "--progress-bar": "", "--fail-with-body": "fail_body",
               "-N": "", "--no-buffer": "", "-4": "", "-6": "", "--http1.1": "",
               "--http2": "", "-Z": "", "-g": "", "--globoff": ""}
_CURL_VALUED = {"-o": "output", "--output": "output", "-X": "method", "--request": "method",
                "-H": "header", "--header": "header", "-d": "data", "--data": "data",
                "--data-ascii": "data", "--data-binary": "binary", "--data-raw": "raw",
                "--data-urlencode": "urlencode", "--json": "json", "-w": "write_out",
                "--write-out": "write_out", "-m": "max_time", "--max-time": "max_time",
                "-u": "user", "--user": "user", "-A": "agent", "--user-agent": "agent",
                "-e": "referer", "--referer": "referer", "-T": "upload",
                "--upload-file": "upload", "--connect-timeout": "", "--retry": "",
                "--retry-delay": "", "--retry-max-time": "", "--max-redirs": "max_redirs",
                "-b": "", "--cookie": "", "-c": "", "--cookie-jar": "", "--url": "url",
                "-F": "form", "--form": "form", "-x": "proxy", "--proxy": "proxy"}


@attrs.define
class _CurlArgs:
    flags: set[str] = attrs.field(factory=set)
    values: dict[str, list[str]] = attrs.field(factory=dict)
    urls: list[str] = attrs.field(factory=list)

    def last(self, key: str) -> str | None:
        vals = self.values.get(key)
        return vals[-1] if vals else None


def _curl_args(argv: list[str]) -> _CurlArgs:
    out = _CurlArgs()
    i = 1
    while i < len(argv):
        a = argv[i]
        i += 1
        if a.startswith("--") and "=" in a and a.split("=", 1)[0] in _CURL_VALUED:
            a, val = a.split("=", 1)
            out.values.setdefault(_CURL_VALUED[a], []).append(val)
            continue
        if a in _CURL_FLAGS:
            if _CURL_FLAGS[a]:
                out.flags.add(_CURL_FLAGS[a])
            continue
        if a in _CURL_VALUED:
            if i >= len(argv):
                raise Usage(f"option {a}: requires parameter")
            out.values.setdefault(_CURL_VALUED[a], []).append(argv[i])
            i += 1
            continue
        if a.startswith("-") and not a.startswith("--") and len(a) > 2:
            # bundled short options: -sSfL, -sSo file, -XPOST, -HX:y
            if "-" + a[1] in _CURL_VALUED:
                argv = [*argv[:i - 1], a[:2], a[2:], *argv[i:]]
            else:
                argv = [*argv[:i - 1], a[:2], "-" + a[2:], *argv[i:]]
            i -= 1
            continue
        if a.startswith("-") and a != "-":
            raise Usage(f"option {a}: is unknown")
        out.urls.append(a)
    out.urls.extend(out.values.pop("url", []))
    return out


def _data_arg(ctx: Ctx, kind: str, value: str) -> bytes:
    """One ``-d``-style value: ``@file`` reads a file (``@-`` stdin)."""
    if kind == "urlencode":
        name, eq, content = value.partition("=")
        if not eq:
            name, content = "", value
        if content.startswith("@") and not name:
            content = text(ctx.read_file(content[1:]))
        quoted = urllib.parse.quote(content, safe="")
        return to_bytes(f"{name}={quoted}" if name else quoted)
    if kind != "raw" and value.startswith("@"):
        data = ctx.read_file(value[1:])
        return data if kind in ("binary", "json") else data.replace(b"\r", b"").replace(
            b"\n", b"")
    return to_bytes(value)


@command("curl", COMMANDS)
def _curl(ctx: Ctx, argv: list[str]) -> int:
    args = _curl_args(argv)
    silent = "silent" in args.flags and "show" not in args.flags

    def fail(code: int, msg: str) -> int:
        if not silent:
            ctx.error(f"({code}) {msg}")
        return code

    if not args.urls:
        return fail(2, "no URL specified")
    if args.values.get("form"):
        return fail(2, "-F (multipart forms) is not supported; use -d or --data-binary")
    if args.values.get("proxy"):
        return fail(5, "proxies are not supported: requests go through the HTTP capability")
    headers: dict[str, str] = {}
    body = b""
    try:
        parts = [_data_arg(ctx, k, v) for k in ("data", "binary", "raw", "urlencode", "json")
                 for v in args.values.get(k, [])]
        upload = args.last("upload")
        if upload is not None:
            body = ctx.read_file(upload)
    except FsError as e:
        return fail(26, f"Failed to open/read local data: {strerror(e)}")
    method = "GET"
    if parts:
        body = b"&".join(parts)
        method = "POST"
        headers["Content-Type"] = "application/x-www-form-urlencoded"
    if args.values.get("json"):
        headers["Content-Type"] = "application/json"
        headers["Accept"] = "application/json"
    if upload is not None:
        method = "PUT"
    if "head" in args.flags:
        method = "HEAD"
    user, agent, referer = args.last("user"), args.last("agent"), args.last("referer")
    if user is not None:
        headers["Authorization"] = "Basic " + base64.b64encode(to_bytes(user)).decode()
    if agent is not None:
        headers["User-Agent"] = agent
    if referer is not None:
        headers["Referer"] = referer
    for h in args.values.get("header", []):
        name, _, value = h.partition(":")
        if not value.strip() and h.rstrip().endswith(";"):
            headers[name.rstrip(";").strip()] = ""
        elif not value.strip():
            headers.pop(name.strip(), None)  # -H 'X:' removes a header
        else:
            headers[name.strip()] = value.strip()
    method = (args.last("method") or method).upper()
    timeout = None
    if args.last("max_time") is not None:
        try:
            timeout = float(args.last("max_time") or "")
        except ValueError:
            return fail(2, f"invalid --max-time '{args.last('max_time')}'")
    status = 0
    for n, raw_url in enumerate(args.urls):
        url = _with_scheme(raw_url)
        if "get" in args.flags and body:
            url += ("&" if "?" in url else "?") + text(body)
        code = _curl_one(ctx, args, method, url, headers,
                         b"" if "get" in args.flags else body, timeout, silent, n)
        status = code or status
    return status


def _curl_one(ctx: Ctx, args: _CurlArgs, method: str, url: str, headers: dict[str, str],
              body: bytes, timeout: float | None, silent: bool, index: int) -> int:
    start = time.monotonic()
    ans, redirects = _fetch(ctx, method, url, headers, body, timeout,
                            "location" in args.flags, timeout)  # -m bounds the whole wait
    code = 0
    if ans.error:
        code = _CURL_EXIT.get(ans.error, 56)
        msg = {7: "Failed to connect", 28: "Operation timed out",
               3: "URL rejected"}.get(code, "Request failed")
        if not silent:
            ctx.error(f"({code}) {msg} to {url}: {ans.message}")
    else:
        failed = ans.status >= 400 and ({"fail", "fail_body"} & args.flags)
        head = b""
        if "include" in args.flags or "head" in args.flags:
            head = to_bytes(f"HTTP/1.1 {ans.status} {ans.reason}".rstrip() + "\r\n" + "".join(
                f"{n}: {v}\r\n" for n, v in ans.headers) + "\r\n")
        payload = head + (b"" if "head" in args.flags else ans.body)
        if failed:
            code = 22
            if not silent:
                ctx.error(f"(22) The requested URL returned error: {ans.status}")
            if "fail_body" not in args.flags:
                payload = b""
        outputs = args.values.get("output", [])
        target = outputs[index] if index < len(outputs) else None
        if target is None and "remote" in args.flags:
            target = paths.basename(urllib.parse.urlsplit(url).path) or "curl_response"
        if target is None or target == "-":
            ctx.stdout.write(payload)
        elif payload or not failed:
            try:
                ctx.namespace.write_bytes(ctx.resolve(target), payload)
            except FsError as e:
                if not silent:
                    ctx.error(f"(23) Failure writing output to destination: {target}: "
                              f"{strerror(e)}")
                code = 23
    write_out = args.last("write_out")
    if write_out is not None:
        ctx.stdout.write(to_bytes(_write_out(write_out, ans, method, code, redirects,
                                             time.monotonic() - start)))
    return code


def _write_out(fmt: str, ans: HttpAnswer, method: str, code: int, redirects: int,
               elapsed: float) -> str:
    values = {"http_code": f"{ans.status:03d}", "response_code": f"{ans.status:03d}",
              "url_effective": ans.url, "url": ans.url, "exitcode": str(code),
              "content_type": ans.header("content-type") or "",
              "size_download": str(len(ans.body)), "num_redirects": str(redirects),
              "method": method, "time_total": f"{elapsed:.6f}",
              "errormsg": ans.message, "redirect_url": ans.header("location") or ""}
    out: list[str] = []
    i = 0
    while i < len(fmt):
        if fmt.startswith("%{", i) and "}" in fmt[i:]:
            end = fmt.index("}", i)
            key = fmt[i + 2:end]
            if key.startswith("header{"):
                out.append(ans.header(key[7:]) or "")
            else:
                out.append(values.get(key, ""))
            i = end + 1
        elif fmt[i] == "\\" and i + 1 < len(fmt) and fmt[i + 1] in "nrt\\":
            out.append({"n": "\n", "r": "\r", "t": "\t", "\\": "\\"}[fmt[i + 1]])
            i += 2
        elif fmt.startswith("%%", i):
            out.append("%")
            i += 2
        else:
            out.append(fmt[i])
            i += 1
    return "".join(out)


# -- wget ---------------------------------------------------------------------------------

_WGET_EXIT = {"unavailable": 4, "connection": 4, "timeout": 4, "unfinished": 4,
              "permission_denied": 4, "invalid_request": 1, "response_too_large": 1,
              "request_too_large": 1, "too_many_redirects": 1, "shutdown": 4, "error": 1}


@command("wget", COMMANDS)
def _wget(ctx: Ctx, argv: list[str]) -> int:
    quiet = False
    output: str | None = None
    headers: dict[str, str] = {}
    body: bytes | None = None
    timeout: float | None = None
    method: str | None = None
    urls: list[str] = []
    directory = ""
    i = 1
    while i < len(argv):
        a = argv[i]
        i += 1
        if a.startswith("-q") and len(a) > 2 and a[2] != "-":  # -qO-, -qO file
            quiet, a = True, "-" + a[2:]
        name, eq, val = a.partition("=")
        if a in ("-q", "--quiet", "-nv", "--no-verbose", "--no-check-certificate", "-c",
                 "--continue", "-nc", "--no-clobber", "-v", "--verbose",
                 "--show-progress"):
            quiet = quiet or a in ("-q", "--quiet")
            continue
        if name in ("-O", "--output-document", "--header", "--post-data", "--post-file",
                    "-T", "--timeout", "--method", "--body-data", "-P",
                    "--directory-prefix", "-t", "--tries", "-U", "--user-agent"):
            if not eq:
                if i >= len(argv):
                    raise Usage(f"option requires an argument -- '{a.lstrip('-')}'")
                val = argv[i]
                i += 1
            if name in ("-O", "--output-document"):
                output = val
            elif name == "--header":
                h, _, v = val.partition(":")
                headers[h.strip()] = v.strip()
            elif name in ("--post-data", "--body-data"):
                body = to_bytes(val)
            elif name == "--post-file":
                body = ctx.read_file(val)
            elif name in ("-T", "--timeout"):
                timeout = float(val)
            elif name == "--method":
                method = val.upper()
            elif name in ("-P", "--directory-prefix"):
                directory = val
            elif name in ("-U", "--user-agent"):
                headers["User-Agent"] = val
            continue
        if a.startswith("-O") and len(a) > 2:
            output = a[2:]
            continue
        if a.startswith("-") and a != "-":
            raise Usage(f"unrecognized option '{a}'")
        urls.append(a)
    if not urls:
        ctx.error("missing URL")
        return 1
    if body is not None and "Content-Type" not in headers:
        headers["Content-Type"] = "application/x-www-form-urlencoded"
    status = 0
    first = True
    for raw in urls:
        url = _with_scheme(raw)
        ans, _ = _fetch(ctx, method or ("POST" if body is not None else "GET"), url,
                        headers, body or b"", timeout, True)
        if ans.error:
            if not quiet:
                ctx.error(f"unable to fetch {url}: {ans.message}")
            status = _WGET_EXIT.get(ans.error, 1)
            continue
        if ans.status >= 400:
            if not quiet:
                ctx.error(f"{url}: ERROR {ans.status}: {ans.reason}.")
            status = 8
            continue
        target = output or paths.basename(urllib.parse.urlsplit(url).path) or "index.html"
        if directory and output is None:
            target = paths.join(directory, target)
        try:
            if target == "-":
                ctx.stdout.write(ans.body)
            elif output is not None and not first:
                with ctx.namespace.open(ctx.resolve(target), "ab") as f:
                    f.write(ans.body)
            else:
                ctx.namespace.write_bytes(ctx.resolve(target), ans.body)
        except FsError as e:
            ctx.error(f"{target}: {strerror(e)}")
            return 3
        first = False
        if not quiet and target != "-":
            ctx.error(f"'{target}' saved [{len(ans.body)}]")
    return status
