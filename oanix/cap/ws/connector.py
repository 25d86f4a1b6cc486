"""WsConnector: holds the WebSocket connections asked for in a WsFs, under trio.

Fixes the original's flaws: no polling (the WsFs wakes the dispatcher when a connection is
asked for, and each connection's task when it has a message to send, a close to make or
inbox room), text messages go out as text frames and binary as binary, and a connection
opened with ``"reconnect": true`` is reopened after a drop, with exponential backoff.

Per connection, with ``websockets.trio``: the policy checks the URL (``check_url``), then
resolves the host and checks every address (``resolve``); the TCP connection goes to a
checked address (no second DNS lookup, so DNS rebinding cannot slip a private address in)
and the handshake, TLS included, uses the URL's host name. No proxies, no redirects. The
handshake headers get the policy's secret headers for the host. TCP connect and handshake
together must finish within ``connect_timeout``. An incoming message over
``policy.max_response_bytes`` fails the connection (close code 1009); an outgoing message
over ``policy.max_request_bytes`` is not sent and is logged as unsent. Keepalive pings go
every ``ping_interval`` seconds; a missing pong fails the connection (``timeout``).

At most ``max_connections`` (and ``policy.max_connections``) connections are held at once;
the connections asked for beyond that stay ``connecting``, unclaimed, until a slot frees.

How a connection ends (its ``status``): the agent's close request: queued messages are sent,
then a close frame, and the state is ``closed`` (``closed_by`` client). A close frame from
the server: ``closed`` (``closed_by`` server, its code and reason). A refused or failed
connection, a failed handshake, a lost connection or a policy denial: ``failed`` with
``error`` and ``message``.

Reconnect semantics (``"reconnect": true``): after a connection is lost or closed by the
server, or a connection attempt fails in a way that may pass (refused, timeout, an HTTP 5xx
answer to the handshake), the state goes back to ``connecting`` and the executor tries again
after ``reconnect.delay(n)`` seconds; after ``reconnect.max_attempts`` failed attempts in a
row it gives up (``failed``). Policy denials and other handshake answers are not retried.
Messages already handed to the socket are never sent again (a message lost in flight stays
lost: at most once); messages still in ``out`` wait for the new connection, as does a
message whose send failed when the connection broke. ``in`` keeps what arrived before.

Shutdown: ``aclose()``, or cancelling ``run`` from outside, stops claiming connections
(those still unclaimed stay ``connecting`` for the next executor) and asks every held
connection to close: queued messages first, then a close frame with code 1001 "going away";
it ends ``closed`` with ``closed_by`` executor. The connection tasks are shielded from
outside cancellation so that they can say goodbye, which delays a cancellation by at most
``shutdown_grace`` seconds; what is left then is cancelled and ends ``closed`` with
``error`` ``shutdown``. In every case messages that were not sent are counted in ``unsent``
and logged: no accepted message is silently lost.

Locking: a connector lives in one trio run; WsFs wakeups reach it from other threads through
``Wakeup`` (``TrioToken.run_sync_soon``).
"""

from __future__ import annotations

import logging
import ssl
from collections.abc import Callable
from typing import Literal

import attrs
import trio
from websockets.exceptions import ConnectionClosed, InvalidHandshake, InvalidStatus, InvalidURI
from websockets.frames import Close
from websockets.trio.client import ClientConnection, connect
from websockets.uri import parse_uri

from ...errors import InvalidArgument, PermissionDenied
from ..lifecycle import RunOnce, dispatch
from ..policy import CapabilityPolicy
from ..retry import RetryPolicy
from .service import WsErrorKind, WsFs, WsLink, WsOutgoing

__all__ = ["WsConnector", "public_ws_policy"]

log = logging.getLogger(__name__)


class _AnyPublicHost(CapabilityPolicy):
    """A policy allowing any host name; every address is still checked (rule 4)."""

    def host_allowed(self, host: str) -> bool:
        return True


def public_ws_policy(max_connections: int = 50) -> CapabilityPolicy:
    """The policy used when none is given: ws and wss to any host whose addresses are all
    public (loopback, private, link-local... denied), default size limits."""
    return _AnyPublicHost(schemes={"ws", "wss"}, max_connections=max_connections)


@attrs.frozen
class _Ended:
    """How one connection attempt ended."""

    state: Literal["closed", "failed"]
    error: WsErrorKind | None = None
    message: str | None = None
    closed_by: str | None = None
    code: int | None = None
    reason: str | None = None
    retry: bool = False  # worth reconnecting (when the connection asked for it)
    opened: bool = False  # the handshake succeeded during this attempt


class WsConnector(RunOnce):
    """Holds ``service``'s connections under ``policy``; run it with ``run()`` under trio.

    ``policy`` defaults to ``public_ws_policy``; a policy of your own must list ``"ws"``
    and/or ``"wss"`` in ``schemes`` (``CapabilityPolicy(schemes={"ws"},
    hosts={"127.0.0.1"})`` allows a local test server). ``reconnect`` is the backoff for
    connections opened with ``"reconnect": true`` (``max_attempts`` failed attempts in a
    row, then ``failed``).

    ``aclose()`` claims no more connections, closes the held ones with a close frame
    (cancelling them after ``shutdown_grace`` seconds), and returns when ``run`` has
    returned.

    Locking: see the module docstring; ``run`` may be active once at a time.
    """

    def __init__(self, service: WsFs, policy: CapabilityPolicy | None = None, *,
                 max_connections: int = 50, connect_timeout: float = 10.0,
                 ping_interval: float | None = 20.0, close_timeout: float = 5.0,
                 reconnect: RetryPolicy | None = None, shutdown_grace: float = 5.0,
                 ssl_context: ssl.SSLContext | None = None) -> None:
        if max_connections < 1:
            raise InvalidArgument(f"max_connections must be >= 1, not {max_connections!r}")
        if connect_timeout <= 0:
            raise InvalidArgument(f"connect_timeout must be > 0, not {connect_timeout!r}")
        super().__init__()
        self.service = service
        self.policy = policy if policy is not None else public_ws_policy(max_connections)
        self.max_connections = min(max_connections, self.policy.max_connections)
        self.connect_timeout = connect_timeout
        self.ping_interval = ping_interval
        self.close_timeout = close_timeout
        self.reconnect = reconnect if reconnect is not None else RetryPolicy(
            max_attempts=5, initial_delay=0.5, max_delay=30.0)
        self.shutdown_grace = shutdown_grace
        self.ssl_context = ssl_context
        self._links: set[WsLink] = set()

    # -- lifecycle --------------------------------------------------------------------------

    async def run(self, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        """Hold connections until ``aclose()`` or cancellation (see the module docstring).

        Raises:
            RuntimeError: the connector is already running.
        """
        self._begin_run()
        stop = trio.Event()
        try:
            async with trio.open_nursery() as top:
                workers: trio.Nursery = await top.start(self._hold_workers, stop)
                try:
                    with trio.CancelScope() as self._dispatch_scope:
                        task_status.started()
                        if not self._stopping:
                            await dispatch(self.max_connections,
                                           self.service.take_connecting,
                                           self.service.wakeup, self._hold(workers))
                finally:  # after aclose(), or cancelled from outside: close gracefully
                    for link in list(self._links):
                        link.request_close(1001, "going away")
                    workers.cancel_scope.deadline = trio.current_time() + self.shutdown_grace
                    stop.set()
        finally:
            self._end_run()

    def _hold(self, workers: trio.Nursery) -> Callable[[WsLink, trio.Semaphore], None]:
        """What ``dispatch`` does with a connection claimed: serve it in ``workers``."""
        def start(link: WsLink, slots: trio.Semaphore) -> None:
            self._links.add(link)
            workers.start_soon(self._serve, link, slots)
        return start

    async def _hold_workers(self, stop: trio.Event,
                            task_status: trio.TaskStatus[trio.Nursery]) -> None:
        """Run the connection tasks shielded from outside cancellation, so that a
        cancelled ``run`` still closes each connection with a close frame (within
        ``shutdown_grace``); returns once ``stop`` is set and they have all ended."""
        with trio.CancelScope(shield=True):
            async with trio.open_nursery() as workers:
                task_status.started(workers)
                await stop.wait()

    # -- one connection -------------------------------------------------------------------

    async def _serve(self, link: WsLink, slots: trio.Semaphore) -> None:
        finished = False
        try:
            ended = await self._connection(link)
            link.finish(ended.state, ended.error, ended.message, closed_by=ended.closed_by,
                        code=ended.code, reason=ended.reason)
            finished = True
        except Exception as e:  # a bug or an unexpected library error: report, keep running
            link.finish("failed", "error", f"{type(e).__name__}: {e}")
            finished = True
        finally:
            # Cancelled (possibly inside an exception group): the executor is going away.
            if not finished:
                link.finish("closed", "shutdown", "executor shut down while the connection "
                            "was held", closed_by="executor", code=1001)
            self._links.discard(link)
            slots.release()

    async def _connection(self, link: WsLink) -> _Ended:
        """Connect, serve, and reconnect as asked; how the connection finally ended."""
        failures = 0
        while True:
            ended = await self._attempt(link)
            failures = 0 if ended.opened else failures + 1
            if not (link.reconnect and ended.retry and link.close_request() is None):
                return ended
            if failures >= self.reconnect.max_attempts:
                return attrs.evolve(ended, message=f"{ended.message} (gave up after "
                                    f"{failures} attempt(s) in a row)")
            link.set_reconnecting(ended.error or "connection",
                                  ended.message or "closed by the server")
            delay = self.reconnect.delay(max(1, failures))
            log.info("websocket %s: %s; reconnecting in %.2f s", link.id,
                     ended.message or "closed by the server", delay)
            await self._backoff(link, delay)
            asked = link.close_request()
            if asked is not None:
                return _Ended("closed", closed_by=asked[2])

    async def _backoff(self, link: WsLink, delay: float) -> None:
        """Sleep ``delay`` seconds, or less if a close is asked for."""
        with trio.move_on_after(delay):
            while link.close_request() is None:
                await link.outgoing.wait()

    async def _attempt(self, link: WsLink) -> _Ended:
        """Connect once and serve the connection until it ends."""
        try:
            self.policy.check_url(link.url)
            uri = parse_uri(link.url)
            addresses = await self.policy.resolve(uri.host, uri.port)
        except PermissionDenied as e:
            log.warning("websocket %s denied by the policy: %s", link.id, e.strerror)
            return _Ended("failed", "permission_denied", str(e.strerror))
        except InvalidURI as e:
            return _Ended("failed", "error", f"invalid URL: {e}")
        deadline = trio.current_time() + self.connect_timeout
        try:
            with trio.fail_at(deadline):
                stream = await _open_stream(addresses, uri.port)
        except trio.TooSlowError:
            return _Ended("failed", "timeout", f"no TCP connection to {uri.host}:{uri.port} "
                          f"within {self.connect_timeout} s", retry=True)
        except OSError as e:
            return _Ended("failed", "connection", f"cannot connect to {uri.host}:{uri.port}: "
                          f"{e}", retry=True)
        headers = self.policy.secret_headers(uri.host)
        client = connect(
            link.url, stream=stream, ssl=self.ssl_context if uri.secure else None,
            proxy=None, additional_headers=headers or None,
            open_timeout=max(0.001, deadline - trio.current_time()),
            ping_interval=self.ping_interval, close_timeout=self.close_timeout,
            max_size=self.policy.max_response_bytes)
        serving = False
        try:
            async with client as ws:
                serving = True
                link.set_open()
                return await self._session(link, ws)
        except (OSError, InvalidHandshake, ValueError, trio.BrokenResourceError) as e:
            if serving:  # not a handshake failure: _session handles closes itself
                raise
            return _handshake_failure(e, link.url, self.connect_timeout)

    async def _session(self, link: WsLink, ws: ClientConnection) -> _Ended:
        """Serve an open connection until it ends; how it ended."""
        async with trio.open_nursery() as nursery:
            nursery.start_soon(self._receive, link, ws, nursery.cancel_scope)
            try:
                await self._send(link, ws)
            except trio.Cancelled:
                if ws.protocol.close_sent is None:  # lost, or shut down from outside
                    with trio.CancelScope(shield=True), trio.move_on_after(
                            min(1.0, self.close_timeout)):
                        await ws.aclose(1001, "going away")
                raise
        await ws.wait_closed()
        return _how_it_ended(link, ws)

    async def _send(self, link: WsLink, ws: ClientConnection) -> None:
        """Send queued messages, then close when asked; returns once closed."""
        limit = self.policy.max_request_bytes
        while True:
            item = link.next_outgoing()
            if item is None:
                await link.outgoing.wait()
                continue
            if not isinstance(item, WsOutgoing):
                code, reason = item
                await ws.aclose(code, reason)
                return
            if len(item.data) > limit:
                link.drop(item, f"not sent: message of {len(item.data)} bytes is over the "
                          f"policy limit of {limit} bytes")
                continue
            try:
                await ws.send(item.data, text=item.type == "text")
            except ConnectionClosed:
                link.unsend(item)  # the next connection sends it, or finish records it
                return
            except BaseException:  # cancelled (maybe partly written) or a bug
                link.unsend(item)  # reported unsent by finish, never silently lost
                raise
            link.sent(item)

    async def _receive(self, link: WsLink, ws: ClientConnection,
                       scope: trio.CancelScope) -> None:
        """Move received messages to the inbox (waiting for room); when the connection
        closes, stop the sender."""
        try:
            while True:
                while not link.has_space():
                    await link.space.wait()
                link.received(await ws.recv())
        except ConnectionClosed:
            pass
        finally:
            if link.close_request() is None:  # not our close: stop the sender
                scope.cancel()


async def _open_stream(addresses: list[str], port: int) -> trio.SocketStream:
    """A TCP stream to the first of ``addresses`` that accepts. Raises OSError."""
    error: OSError | None = None
    for address in addresses:
        try:
            return await trio.open_tcp_stream(address, port)
        except OSError as e:
            error = e
    assert error is not None
    raise error


def _handshake_failure(e: Exception, url: str, timeout: float) -> _Ended:
    """How a connection attempt ended whose handshake raised ``e``."""
    if isinstance(e, TimeoutError):
        return _Ended("failed", "timeout", f"no WebSocket handshake with {url} within "
                      f"{timeout} s", retry=True)
    if isinstance(e, InvalidStatus):
        status = e.response.status_code
        return _Ended("failed", "handshake", f"the server answered the handshake with HTTP "
                      f"{status} {e.response.reason_phrase}", retry=status >= 500)
    if isinstance(e, InvalidHandshake | ValueError):  # ValueError: a refused redirect
        return _Ended("failed", "handshake", f"handshake failed: {e}")
    if isinstance(e, trio.BrokenResourceError):  # TLS failures arrive this way, as the cause
        cause = e.__cause__ or e
        return _Ended("failed", "connection", f"connection broken during the handshake: "
                      f"{type(cause).__name__}: {cause}",
                      retry=not isinstance(cause, ssl.SSLCertVerificationError))
    return _Ended("failed", "connection", f"connection error: {e}", retry=True)


def _how_it_ended(link: WsLink, ws: ClientConnection) -> _Ended:
    proto = ws.protocol
    rcvd: Close | None = proto.close_rcvd
    sent: Close | None = proto.close_sent
    asked = link.close_request()
    if asked is not None:  # the agent or the executor closed it
        code = sent.code if sent is not None else asked[0]
        return _Ended("closed", closed_by=asked[2], code=code,
                      reason=sent.reason if sent is not None else asked[1], opened=True)
    if rcvd is not None and proto.close_rcvd_then_sent is not False:
        return _Ended("closed", closed_by="server", code=rcvd.code, reason=rcvd.reason,
                      retry=True, opened=True)
    if sent is not None and sent.code == 1009:
        return _Ended("failed", "message_too_large", f"a received message was over the "
                      f"limit of {_limit(ws)} bytes: {sent.reason}", opened=True)
    if sent is not None and sent.code == 1011:
        return _Ended("failed", "timeout", f"keepalive: {sent.reason or 'no pong'}",
                      retry=True, opened=True)
    if sent is not None and sent.code == 1002:
        return _Ended("failed", "protocol", f"protocol error: {sent.reason}", opened=True)
    cause = ws.connection_exc
    detail = f": {type(cause).__name__}: {cause}" if cause is not None else ""
    return _Ended("failed", "connection", f"connection lost without a close frame{detail}",
                  retry=True, opened=True)


def _limit(ws: ClientConnection) -> object:
    return getattr(ws.protocol, "max_message_size", getattr(ws.protocol, "max_size", "?"))

