"""HttpExecutor: performs the requests written to an HttpFs, under trio, with httpx.

::

    fs = HttpFs()
    namespace.mount("/cap/http", fs)
    policy = CapabilityPolicy(hosts={"api.example.com"})
    manager = ExecutorManager(HttpExecutor(fs, policy))
    manager.start_thread()          # or: async with manager.running(): ...

Fixes the original's flaws: no polling (the HttpFs ``wakeup`` wakes the executor the moment
a request is accepted, from any thread), up to ``max_concurrent`` requests at once on one
``httpx.AsyncClient``, and retryable statuses (429, 502, 503, 504 by default, honouring
``Retry-After`` in seconds) retried like connection errors and timeouts.

Per request: the body size is checked once (``request_too_large``), and before EVERY
attempt the policy checks the URL (``check_url``). The connection is opened through
``GuardedTransport``, which resolves the host, checks every address it resolves to and
connects to a checked address (no second DNS lookup, so DNS rebinding cannot slip a private
address in). Each attempt runs under its own ``timeout`` (the request's, covering
resolution, connection, sending and the whole body). The body is streamed and the attempt
aborted once it passes ``max_response_bytes``. Retried, with exponential backoff and full
jitter: timeouts, network errors (refused, reset, dropped without a response, a name that
does not resolve) and the retry statuses; every method is retried (a POST whose connection
dropped may have reached the server). Not retried: policy denials, too-large bodies, other
protocol errors. A retry status still present after the last attempt is written as the
response. Redirects are not followed (a 3xx is a response) and no cookie jar is kept:
requests never share state the agent cannot see. Host secrets
(``policy.secret_headers``) are added to the outgoing headers only, never to any file.

Shutdown: ``aclose()`` stops taking requests (the rest stay pending in the HttpFs, for the
next executor), gives in-flight requests ``shutdown_grace`` seconds, then cancels them; a
cancelled request (also when the caller's scope is cancelled) is failed with
``"error": "shutdown"``, "executor shut down before the request finished". So every
request the executor took ends in exactly one response or error file.

Locking: an executor lives in one trio run and touches its HttpFs only through the HttpFs's
thread-safe methods; requests may be written from any thread.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterable
from http.cookiejar import CookieJar, DefaultCookiePolicy
from typing import Any

import httpcore
import httpx
import trio

from ...errors import FsError, InvalidArgument, PermissionDenied
from ..lifecycle import RunOnce, dispatch
from ..policy import CapabilityPolicy, url_origin
from ..retry import RetryPolicy
from .service import ErrorKind, HttpFs, HttpRequest

__all__ = ["GuardedTransport", "HttpExecutor"]

log = logging.getLogger(__name__)


def _retry_after(value: str | None) -> float | None:
    """The seconds of a ``Retry-After`` header (the HTTP-date form is ignored)."""
    if value is None:
        return None
    try:
        seconds = float(value.strip())
    except ValueError:
        return None
    return seconds if seconds >= 0 else None


class _GuardedBackend(httpcore.AsyncNetworkBackend):
    """Connects only to addresses the policy allows, resolved and checked here."""

    def __init__(self, policy: CapabilityPolicy) -> None:
        self._policy = policy
        self._inner = httpcore.TrioBackend()

    async def connect_tcp(self, host: str, port: int, timeout: float | None = None,
                          local_address: str | None = None,
                          socket_options: Iterable[Any] | None = None
                          ) -> httpcore.AsyncNetworkStream:
        try:
            addresses = await self._policy.resolve(host, port)
        except PermissionDenied:
            raise
        except FsError as e:  # resolution failed: a connection error, retried
            raise httpcore.ConnectError(e.strerror) from e
        error: Exception | None = None
        for address in addresses:
            try:
                return await self._inner.connect_tcp(address, port, timeout, local_address,
                                                     socket_options)
            except (httpcore.ConnectError, httpcore.ConnectTimeout) as e:
                error = e
        assert error is not None
        raise error

    async def connect_unix_socket(self, path: str, timeout: float | None = None,
                                  socket_options: Iterable[Any] | None = None
                                  ) -> httpcore.AsyncNetworkStream:
        raise PermissionDenied(path, "unix sockets are not reachable through the policy")

    async def sleep(self, seconds: float) -> None:
        await self._inner.sleep(seconds)


class GuardedTransport(httpx.AsyncHTTPTransport):
    """An httpx transport whose connections go through the policy's address check (trio).

    The host name stays in the URL, so TLS (SNI and certificate checks) and connection
    pooling work as usual; only the TCP connect is replaced, by one to an address
    ``policy.resolve`` checked. No proxies. Relies on httpx keeping its httpcore pool in
    ``_pool`` (true of httpx 0.2x; the policy tests fail loudly if that ever changes).
    """

    def __init__(self, policy: CapabilityPolicy, *, limits: httpx.Limits | None = None,
                 verify: bool | str = True) -> None:
        limits = limits or httpx.Limits(max_connections=policy.max_connections,
                                        max_keepalive_connections=policy.max_connections)
        ssl_context = httpx.create_ssl_context(verify=verify, trust_env=False)
        super().__init__(verify=ssl_context, trust_env=False, limits=limits)
        self._pool = httpcore.AsyncConnectionPool(
            ssl_context=ssl_context,
            max_connections=limits.max_connections,
            max_keepalive_connections=limits.max_keepalive_connections,
            keepalive_expiry=limits.keepalive_expiry,
            network_backend=_GuardedBackend(policy),
        )


class _TooLarge(Exception):
    pass


class _Timeout(Exception):
    pass


_RETRYABLE = (httpx.TimeoutException, httpx.NetworkError, httpx.RemoteProtocolError)


class HttpExecutor(RunOnce):
    """Performs ``service``'s requests under ``policy``; run it with ``run()`` under trio.

    ``max_concurrent`` (capped by ``policy.max_connections``) bounds simultaneous requests.
    ``client``: an ``httpx.AsyncClient`` to use instead of the executor's own (its
    transport should be a ``GuardedTransport`` for the address check; the executor does
    not close a client it was given).

    ``aclose()`` takes no more requests, gives in-flight ones ``shutdown_grace`` seconds,
    fails the rest with ``shutdown``, and returns when ``run`` has returned.

    Locking: see the module docstring; ``run`` may be active once at a time.
    """

    def __init__(self, service: HttpFs, policy: CapabilityPolicy, *,
                 retry: RetryPolicy | None = None, max_concurrent: int = 10,
                 client: httpx.AsyncClient | None = None, shutdown_grace: float = 5.0) -> None:
        if max_concurrent < 1:
            raise InvalidArgument(f"max_concurrent must be >= 1, not {max_concurrent!r}")
        super().__init__()
        self.service = service
        self.policy = policy
        self.retry = retry if retry is not None else RetryPolicy()
        self.max_concurrent = min(max_concurrent, policy.max_connections)
        self.shutdown_grace = shutdown_grace
        self._client = client

    # -- lifecycle --------------------------------------------------------------------------

    async def run(self, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        """Perform requests until ``aclose()`` or cancellation (see the module docstring).

        Raises:
            RuntimeError: the executor is already running.
        """
        self._begin_run()
        own = self._client is None
        client = self._client if self._client is not None else httpx.AsyncClient(
            transport=GuardedTransport(self.policy, limits=httpx.Limits(
                max_connections=self.max_concurrent,
                max_keepalive_connections=self.max_concurrent)),
            trust_env=False, follow_redirects=False, timeout=None,
            cookies=CookieJar(DefaultCookiePolicy(allowed_domains=[])))
        try:
            async with trio.open_nursery() as workers:
                with trio.CancelScope() as self._dispatch_scope:
                    task_status.started()
                    if not self._stopping:
                        await dispatch(
                            self.max_concurrent, self.service.take_pending,
                            self.service.wakeup,
                            lambda req, slots: workers.start_soon(self._perform, client,
                                                                  req, slots))
                workers.cancel_scope.deadline = trio.current_time() + self.shutdown_grace
        finally:
            if own:
                with trio.move_on_after(5) as scope:
                    scope.shield = True
                    await client.aclose()
            self._end_run()

    # -- one request ----------------------------------------------------------------------

    async def _perform(self, client: httpx.AsyncClient, req: HttpRequest,
                       slots: trio.Semaphore) -> None:
        attempts = 0
        start = time.monotonic()
        limit = self.policy.max_request_bytes
        try:
            if len(req.body) > limit:
                self.service.fail(req.id, "request_too_large", f"request body of "
                                  f"{len(req.body)} bytes is over the limit of {limit} bytes")
                return
            while True:
                attempts += 1
                retry_after: float | None = None
                kind: ErrorKind
                try:
                    status, reason, headers, body = await self._attempt(client, req)
                except PermissionDenied as e:
                    log.warning("http request %s denied by the policy: %s", req.id, e.strerror)
                    self.service.fail(req.id, "permission_denied", str(e.strerror), attempts)
                    return
                except _TooLarge as e:
                    self.service.fail(req.id, "response_too_large", str(e), attempts)
                    return
                except _Timeout:
                    kind, message = "timeout", f"no complete response within {req.timeout} s"
                except _RETRYABLE as e:
                    kind, message = "connection", f"{type(e).__name__}: {e or 'no detail'}"
                except httpx.HTTPError as e:
                    self.service.fail(req.id, "error", f"{type(e).__name__}: {e}", attempts)
                    return
                else:
                    if (status not in self.retry.retry_statuses
                            or attempts >= self.retry.max_attempts):
                        self.service.complete(
                            req.id, status=status, reason=reason, headers=headers, body=body,
                            duration_ms=(time.monotonic() - start) * 1000, attempts=attempts)
                        return
                    retry_after = _retry_after(next(
                        (v for n, v in headers if n.lower() == "retry-after"), None))
                    kind, message = "error", f"status {status} {reason}"
                if attempts >= self.retry.max_attempts:
                    self.service.fail(req.id, kind, f"{message} (after {attempts} attempt(s))",
                                      attempts)
                    return
                delay = self.retry.delay(attempts, retry_after)
                log.info("http request %s: attempt %d: %s; retrying in %.2f s", req.id,
                         attempts, message, delay)
                await trio.sleep(delay)
        except Exception as e:  # a bug or an unexpected library error: report, keep running
            self.service.fail(req.id, "error", f"{type(e).__name__}: {e}", attempts)
        finally:
            # Cancelled (shutdown) or anything else that left it unfinished; a no-op when
            # the request already has its file.
            self.service.fail(req.id, "shutdown",
                              "executor shut down before the request finished", attempts)
            slots.release()

    async def _attempt(self, client: httpx.AsyncClient, req: HttpRequest
                       ) -> tuple[int, str, list[tuple[str, str]], bytes]:
        """One attempt: ``(status, reason, headers, body)``.

        Raises:
            PermissionDenied, _TooLarge, _Timeout, httpx.HTTPError.
        """
        self.policy.check_url(req.url)
        headers = _with_secrets(req.headers, self.policy.secret_headers(url_origin(req.url)[1]))
        max_bytes = self.policy.max_response_bytes
        with trio.move_on_after(req.timeout) as scope:
            async with client.stream(req.method, req.url, headers=headers,
                                     content=req.body or None) as resp:
                length = resp.headers.get("content-length", "")
                if length.isdigit() and int(length) > max_bytes:
                    raise _TooLarge(f"response too large: {length} bytes declared, the limit "
                                    f"is {max_bytes}")
                chunks: list[bytes] = []
                size = 0
                try:
                    async for chunk in resp.aiter_bytes():
                        size += len(chunk)
                        if size > max_bytes:
                            # Leaving the loop would abandon httpx's nested async
                            # generators (trio warns, encode/httpx#3686): close the
                            # response instead, so the next read ends them with an error.
                            await resp.aclose()
                            continue
                        chunks.append(chunk)
                except (httpx.StreamClosed, httpx.TransportError):
                    if size <= max_bytes:
                        raise
                if size > max_bytes:
                    raise _TooLarge(f"response too large: more than {max_bytes} bytes")
                raw = [(k.decode("latin-1"), v.decode("latin-1")) for k, v in resp.headers.raw]
                return resp.status_code, resp.reason_phrase, raw, b"".join(chunks)
        assert scope.cancelled_caught
        raise _Timeout()


def _with_secrets(headers: Iterable[tuple[str, str]], secrets: dict[str, str]
                  ) -> list[tuple[str, str]]:
    """``headers`` with the secret headers added, replacing same-named ones."""
    if not secrets:
        return list(headers)
    names = {n.lower() for n in secrets}
    return [(n, v) for n, v in headers if n.lower() not in names] + list(secrets.items())
