"""NostrRelayConnector: publishes a NostrFs's outbox and fills its inbox, under trio.

One websocket (``websockets.trio``) per relay, all relays at once. Per connection a reader
handles ``EVENT``, ``OK``, ``EOSE``, ``NOTICE``, ``CLOSED`` (anything else is counted as a
notice) and a writer sends what the service wants, woken by the service's ``Wakeup``
(no polling):

* ``REQ <sub> <filters...>`` for every wanted subscription the connection does not hold
  with the same filters, and ``CLOSE <sub>`` for every subscription no longer wanted. The
  wanted ones are the user subscriptions plus, while there are NIP-90 jobs, ``oanix:jobs``
  with one filter ``{kinds: [k+1000, 7000], #e: [request id]}`` per job (one subscription
  for all jobs, so jobs do not use up the relay's per-connection subscription limit; a
  new job replaces it, as NIP-01 allows, and the replayed events are deduplicated);
* ``EVENT`` for every outbox event this relay has not answered, once per connection.

An outbox event leaves ``pending``/``in_flight`` only on an ``OK true`` from at least one
relay; every relay's answer is recorded. When a connection drops (or fails to open), the
relay is retried after ``reconnect.delay(attempt)`` (exponential backoff with jitter, no
attempt limit by default); the new connection re-sends every wanted ``REQ`` and every
unanswered event. Inbound events are verified and deduplicated by the service (see
``oanix.cap.nostr``). A relay that ends a subscription with ``CLOSED`` is not asked again
on that connection (it would likely refuse again); the next connection asks again.

Policy: with a ``CapabilityPolicy`` every relay URL is checked (``check_url``: scheme and
host allowlist) and its host resolved and every address checked before each connection; the
TCP connection goes to a checked address (no second lookup). A denied relay is not retried
(state ``denied``). Without a policy the host's relay list is trusted as given.

Shutdown: ``aclose()`` (or cancelling ``run``) closes every websocket (a close handshake of
at most ``close_timeout`` seconds); events not acknowledged stay in the outbox as
``pending``, visible and re-sent by the next connector.

Locking: a connector lives in one trio run; the only cross-thread call is the service's
``Wakeup.set``.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Sequence
from typing import Any, Protocol

import trio
from websockets.exceptions import ConnectionClosed, ConnectionClosedOK, WebSocketException
from websockets.trio.client import ClientConnection, connect
from websockets.uri import parse_uri

from ...errors import InvalidArgument, InvalidContent, PermissionDenied
from ...values import dumps_compact, load_json
from ..lifecycle import RunOnce
from ..policy import CapabilityPolicy
from ..retry import RetryPolicy
from .service import NostrFs

__all__ = ["Delay", "NostrRelayConnector"]

log = logging.getLogger(__name__)

_NETWORK_ERRORS = (OSError, WebSocketException, TimeoutError, trio.BrokenResourceError)


class Delay(Protocol):
    """Anything with ``delay(attempt)`` (1-based) in seconds, like ``RetryPolicy`` or the HTTP
    executor's ``RetryPolicy`` (whose ``max_attempts`` is not used: a relay connector
    never gives up)."""

    def delay(self, attempt: int) -> float: ...


_RECONNECT = RetryPolicy(initial_delay=0.5, max_delay=30.0, jitter="equal")


class _Session:
    """What one live connection holds: subscriptions sent and events sent on it."""

    def __init__(self, url: str, ws: ClientConnection) -> None:
        self.url = url
        self.ws = ws
        self.subs: dict[str, str] = {}
        self.refused: dict[str, str] = {}
        self.sent: set[str] = set()
        self.kick = trio.Event()


class NostrRelayConnector(RunOnce):
    """Connects ``service`` to ``relays`` (default: ``service.relays``); run with ``run()``.

    ``reconnect``: delays between connection attempts (by default a ``RetryPolicy`` from
    0.5 s to 30 s with equal jitter; its ``max_attempts`` is ignored: relays are retried
    for ever); ``open_timeout``, ``ping_interval``, ``close_timeout`` go to
    ``websockets``. See the module docstring.

    ``aclose()`` closes every connection and returns when ``run`` has returned.

    Locking: see the module docstring; ``run`` may be active once at a time.
    """

    def __init__(self, service: NostrFs, relays: Sequence[str] | None = None,
                 policy: CapabilityPolicy | None = None, reconnect: Delay | None = None,
                 *, open_timeout: float = 10.0, ping_interval: float | None = 20.0,
                 close_timeout: float = 2.0) -> None:
        super().__init__()
        self.service = service
        self.relays = list(relays) if relays is not None else service.relays
        if not self.relays:
            raise InvalidArgument("NostrRelayConnector needs at least one relay URL")
        for url in self.relays:
            if not url.startswith(("ws://", "wss://")):
                raise InvalidArgument(f"relay {url!r} is not a ws:// or wss:// URL")
        self.policy = policy
        self.reconnect: Delay = reconnect if reconnect is not None else _RECONNECT
        self.open_timeout = open_timeout
        self.ping_interval = ping_interval
        self.close_timeout = close_timeout
        self._sessions: dict[str, _Session] = {}

    # -- lifecycle ------------------------------------------------------------------------

    async def run(self, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        """Keep every relay connected until ``aclose()`` or cancellation.

        Raises:
            RuntimeError: the connector is already running.
        """
        self._begin_run()
        self.service.attach_relays(self.relays)
        try:
            with trio.CancelScope() as self._dispatch_scope:
                async with trio.open_nursery() as nursery:
                    nursery.start_soon(self._fan_out)
                    for url in self.relays:
                        nursery.start_soon(self._relay_loop, url)
                    task_status.started()
        finally:
            self._end_run()

    async def _fan_out(self) -> None:
        """Turn the service's one Wakeup into a kick for every live connection's writer."""
        while True:
            await self.service.wakeup.wait()
            for session in list(self._sessions.values()):
                session.kick.set()

    # -- one relay ------------------------------------------------------------------------

    async def _relay_loop(self, url: str) -> None:
        attempt = 0
        while True:
            self.service.set_relay_state(url, "connecting")
            try:
                kwargs = await self._checked_address(url)
                async with connect(url, open_timeout=self.open_timeout,
                                   ping_interval=self.ping_interval,
                                   close_timeout=self.close_timeout, proxy=None,
                                   max_size=2**22, **kwargs) as ws:
                    attempt = 0
                    await self._session(url, ws)
                error = "connection closed"
            except PermissionDenied as e:
                log.warning("relay %s denied by the policy: %s", url, e.strerror)
                self.service.set_relay_state(url, "denied", str(e.strerror))
                return
            except ConnectionClosed as e:
                error = f"connection closed: {e}"
            except _NETWORK_ERRORS as e:
                error = f"{type(e).__name__}: {e}"
            except Exception as e:  # a bug or an unexpected library error: keep the others up
                error = f"unexpected {type(e).__name__}: {e}"
            finally:
                self._sessions.pop(url, None)
                self.service.connection_lost(url)
            attempt += 1
            self.service.set_relay_state(url, "backoff", error)
            delay = self.reconnect.delay(attempt)
            log.info("relay %s: %s; reconnecting in %.2f s", url, error, delay)
            await trio.sleep(delay)

    async def _checked_address(self, url: str) -> dict[str, Any]:
        """Policy checks; the host/port to connect to (a checked address) or nothing."""
        if self.policy is None:
            return {}
        self.policy.check_url(url)
        uri = parse_uri(url)
        addresses = await self.policy.resolve(uri.host, uri.port)
        return {"host": addresses[0], "port": uri.port}

    async def _session(self, url: str, ws: ClientConnection) -> None:
        session = _Session(url, ws)
        self._sessions[url] = session
        self.service.set_relay_state(url, "open")
        errors: list[BaseException] = []

        async def guard(part: Callable[[_Session], Awaitable[None]],
                        scope: trio.CancelScope) -> None:
            try:
                await part(session)
            except Exception as e:  # network trouble, or a bug: this connection ends
                errors.append(e)
            scope.cancel()  # the reader ended (relay closed) or a send failed: both stop

        try:
            async with trio.open_nursery() as nursery:
                nursery.start_soon(guard, self._writer, nursery.cancel_scope)
                nursery.start_soon(guard, self._reader, nursery.cancel_scope)
            if errors:
                raise errors[0]
        finally:
            with trio.CancelScope(shield=True), trio.move_on_after(self.close_timeout):
                await ws.aclose()
            self.service.set_relay_state(url, "closed")

    async def _writer(self, session: _Session) -> None:
        service, url, ws = self.service, session.url, session.ws
        while True:
            session.kick = trio.Event()
            wanted = service.wanted_subscriptions()
            for sub in [s for s in session.subs if s not in wanted]:
                del session.subs[sub]
                await ws.send(dumps_compact(["CLOSE", sub]))
            for sub, filters in wanted.items():
                if session.subs.get(sub) != filters and session.refused.get(sub) != filters:
                    session.subs[sub] = filters
                    await ws.send(f'["REQ",{dumps_compact(sub)},{filters[1:-1]}]')
            for eid, wire in service.unanswered(url):
                if eid not in session.sent:
                    session.sent.add(eid)
                    await ws.send(wire)
                    service.mark_sent(eid, url)
            await session.kick.wait()

    async def _reader(self, session: _Session) -> None:
        service, url = self.service, session.url
        while True:
            try:
                # recv, not ``async for``: no async generator left for trio to finalize
                raw = await session.ws.recv()
            except ConnectionClosedOK:
                return
            try:
                msg = load_json(raw, url)
            except InvalidContent:
                service.record_notice(url, f"(not JSON) {str(raw)[:200]}")
                continue
            if not isinstance(msg, list) or not msg or not isinstance(msg[0], str):
                service.record_notice(url, f"(not a relay message) {str(raw)[:200]}")
                continue
            kind, args = msg[0], msg[1:]
            if kind == "EVENT" and len(args) >= 2 and isinstance(args[0], str):
                service.receive(url, args[0], args[1])
            elif (kind == "OK" and len(args) >= 2 and isinstance(args[0], str)
                  and isinstance(args[1], bool)):
                message = args[2] if len(args) > 2 and isinstance(args[2], str) else ""
                if not service.record_ok(url, args[0], args[1], message) and not args[1]:
                    service.record_notice(url, f"OK false for {args[0]!r}: {message}")
            elif kind == "EOSE":
                pass  # stored events are done; live ones follow on the same subscription
            elif kind == "CLOSED" and args and isinstance(args[0], str):
                filters = session.subs.pop(args[0], None)
                if filters is not None:
                    session.refused[args[0]] = filters
                service.record_closed(url, args[0], str(args[1]) if len(args) > 1 else "")
            elif kind == "NOTICE":
                service.record_notice(url, str(args[0]) if args else "")
            else:
                service.record_notice(url, f"(unhandled {kind}) {str(raw)[:200]}")
