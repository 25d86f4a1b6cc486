"""NostrFs: Nostr (NIP-01) and NIP-90 job requests as files.

The service holds a secret key, signs what an agent writes, and queues it; a connector
(``oanix.cap.nostr.connector.NostrRelayConnector``) talks to the relays. Mounted at
``/cap/nostr``::

    identity/pubkey                 read-only: the x-only public key, 64 lowercase hex, newline
    identity/npub                   read-only: the same key as bech32 ``npub1...``, newline
    submit                          write-only: each open-write-close is ONE event (below)
    request                         write-only: each open-write-close is ONE NIP-90 job request
    last                            read-only: the id of the latest signed event, newline
    outbox/<event-id>.json          read-only: a signed event and its publication state
    inbox/<event-id>.json           read-only: a received event whose id and signature verified
    subscriptions/<name>.json       read-write: a NIP-01 filter list; rm to unsubscribe
    jobs/<request-id>/request.json  read-only: the signed job request event
    jobs/<request-id>/status        read-only: JSON summary of the job
    jobs/<request-id>/results/<event-id>.json    verified result events (kind request + 1000)
    jobs/<request-id>/feedback/<event-id>.json   verified feedback events (kind 7000)
    status                          read-only: JSON relays, counts, drops

The secret key never appears in any file, JSON or ``repr``.

``submit`` takes ``{"kind": 1, "content": "hi", "tags": [["t", "x"]], "created_at": 0}``
(``content``, ``tags`` and ``created_at`` optional; ``created_at`` defaults to now).
``request`` takes::

    {"kind": 5050,                                   required, 5000-5999
     "inputs": [["what is 2+2?", "text"],            optional: [data, type, relay?, marker?]
                ["https://x/y", "url", "", "src"]],  type: url event job text
     "params": {"model": "m", "max_tokens": 10},     optional: str -> str or number
     "bid": 1000,                                    optional msat
     "relays": ["wss://relay.example"],              optional, where results should go
     "output": "text/plain",                         optional mime type
     "providers": ["<hex pubkey>"],                  optional, one ``p`` tag each
     "content": "", "tags": [[...]], "created_at": 0}    optional, as for submit

and builds the tags in the order ``i``..., ``output``, ``param``..., ``bid``, ``relays``,
``p``..., then the extra ``tags``. A subscription file holds a JSON array of NIP-01 filter
objects (a single object is taken as a list of one) with the keys ``ids``, ``authors``,
``kinds``, ``#<letter>``, ``since``, ``until``, ``limit``; its name (before ``.json``) is the
subscription id sent to the relays (1-60 of ``A-Z a-z 0-9 _ . -``). Writing a valid file
creates or replaces the subscription; an invalid one changes nothing.

Invalid writes: closing ``submit``, ``request`` or a subscription file whose content is
not valid raises ``InvalidContent`` (EINVAL, naming the file, so a namespace rewrites
its path and the WASI bridge maps it) saying what is wrong, and nothing is signed or
changed (``status`` keeps the message as ``last_error``). Nostr events have no id before
they are signed, so unlike HttpFs there is no error file to name. An empty write to
``submit`` or ``request`` is ignored. The host methods (``publish``, ``request_job``,
``subscribe``) raise ``InvalidArgument`` instead.

File formats (JSON, UTF-8)::

    outbox/<id>.json  {"id", "state": "pending"|"in_flight"|"completed"|"failed",
                       "event": {...}, "accepted_by": [urls], "relays": {url: {"accepted",
                       "message"}} (every answer), "awaiting": [urls sent, no answer yet],
                       "queued_at"}
    inbox/<id>.json   the event exactly as NIP-01 (id, pubkey, created_at, kind, tags,
                      content, sig)
    jobs/<id>/status  {"id", "kind", "result_kind", "request": outbox state, "feedback":
                       last status tag or null, "feedback_info", "results": n,
                       "feedback_count": n, "providers": [pubkeys that answered]}
    status            {"pubkey", "npub", "last_id", "last_error", "relays": {url: {"state",
                       "error", "connects", "notices" (last 5), "closed": {sub: message}}},
                       "outbox": {state: n}, "inbox": n, "subscriptions": n, "jobs": n,
                       "dropped": {"bad_id", "bad_signature", "malformed", "unsolicited"},
                       "duplicates": n}
                      relay state: idle (no connector yet) connecting open closed backoff
                      (waiting to reconnect; error says why) denied (by the policy)

Outbox states: ``pending`` (not sent on any live connection), ``in_flight`` (sent, no relay
has accepted it yet), ``completed`` (at least one relay answered ``OK true``; later answers
are still recorded), ``failed`` (every relay answered ``OK false``). A relay's ``OK false``
whose message starts with ``duplicate:`` counts as accepted: the relay has the event. A
finished (completed or failed) outbox file may be removed; an inbox file too (the event is
not taken again).

Jobs: every job is followed through one subscription, ``oanix:jobs`` (JOBS_SUBSCRIPTION),
holding one filter ``{"kinds": [kind + 1000, 7000], "#e": [request id]}`` per job; an event
is filed under the job its ``e`` tag names, as a result (kind + 1000) or feedback (7000).
The host drops a finished job with ``forget_job(id)``.

Inbound events are accepted only when the id is the sha256 of their serialization AND the
BIP-340 signature verifies; otherwise they are dropped and counted. Events are deduplicated
by id across relays and subscriptions; an event for a subscription is kept only if it
matches that subscription's filters.

Host API: ``publish(template) -> Event``, ``request_job(request) -> Event``,
``subscribe(name, filters)``, ``unsubscribe(name)``, ``inbox()``, ``outbox_state(id)``,
``job(id)``, ``job_results(id)``, ``forget_job(id)``, ``status()``, and ``await
wait_for_async(predicate, timeout)`` (woken by changes, no polling). The connector uses
``wakeup`` and the methods under "connector API".

Locking: one ``threading.RLock`` guards all state; signing and verification run outside
it. Change listeners and the connector's ``wakeup`` are called outside the lock.
"""

from __future__ import annotations

import contextlib
import io
import math
import re
import threading
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import TYPE_CHECKING, Any, ClassVar, Final, Literal, NoReturn, Self

import attrs
import trio

from ... import paths
from ...errors import (
    Draining,
    FsError,
    InvalidArgument,
    InvalidContent,
    IsADirectory,
    NotADirectory,
    NotFound,
    PermissionDenied,
    SnapshotError,
)
from ...files import (
    CappedFile,
    check_write_only,
    find_fixed,
    read_only_file,
    refuse_dir,
)
from ...service import FileService, OpenMode, Stat, check_open
from ...values import dumps_compact, dumps_pretty, load_json
from ..wakeup import Wakeup
from .bech32 import npub_encode
from .event import HEX64, Event, check_int, check_tags, private_key, sign_event, verify_event
from .filters import filter_matches, validate_filters

if TYPE_CHECKING:
    from ...snapshot.protocol import SnapshotReader, SnapshotWriter

__all__ = ["DEFAULT_MAX_NOSTR_FILE", "JOBS_SUBSCRIPTION", "JOB_FEEDBACK_KIND", "NostrFs",
           "OutboxState"]

DEFAULT_MAX_NOSTR_FILE: Final = 1 << 20
"""``NostrFs.max_file_bytes``'s default: 1 MiB."""

JOB_FEEDBACK_KIND: Final = 7000
JOBS_SUBSCRIPTION: Final = "oanix:jobs"
JOB_STATUSES: Final = frozenset({"payment-required", "processing", "error", "success",
                                 "partial"})
INPUT_TYPES: Final = frozenset({"url", "event", "job", "text"})
OutboxState = Literal["pending", "in_flight", "completed", "failed"]
_SUB_NAME: Final = re.compile(r"^[A-Za-z0-9_.-]{1,60}$")
_ROOT: Final = ("identity", "inbox", "jobs", "last", "outbox", "request", "status",
                "submit", "subscriptions")
_DIRS: Final = frozenset({"identity", "inbox", "jobs", "outbox", "subscriptions"})
_WRITE_ONLY: Final = frozenset({"/submit", "/request"})
_JOB_FILES: Final = ("feedback", "request.json", "results", "status")
_MAX_NOTICES: Final = 5


# -- parsing what agents write ------------------------------------------------------------------

def _load(data: bytes, what: str) -> Any:
    try:
        return load_json(data, what)
    except InvalidContent as e:
        raise InvalidArgument(f"{what} is {e.strerror}") from None


def _template(obj: object, allowed: frozenset[str]) -> dict[str, Any]:
    if not isinstance(obj, Mapping):
        raise InvalidArgument(f"expected a JSON object, not {type(obj).__name__}")
    obj = dict(obj)
    unknown = set(obj) - allowed
    if unknown:
        raise InvalidArgument(f"unknown key(s) {sorted(unknown)}; allowed: {sorted(allowed)}")
    if "kind" not in obj:
        raise InvalidArgument("missing \"kind\"")
    if not isinstance(obj.get("content", ""), str):
        raise InvalidArgument("content must be a string")
    if "created_at" in obj:
        check_int("created_at", obj["created_at"], 0, 2**63 - 1)
    return obj


_SUBMIT_KEYS: Final = frozenset({"kind", "content", "tags", "created_at"})
_REQUEST_KEYS: Final = _SUBMIT_KEYS | {"inputs", "params", "bid", "relays", "output",
                                       "providers"}


def _job_tags(obj: Mapping[str, Any]) -> list[list[str]]:
    """The NIP-90 request tags of a validated ``request`` object."""
    tags: list[list[str]] = []
    inputs = obj.get("inputs", [])
    if not isinstance(inputs, list):
        raise InvalidArgument("inputs must be a list of [data, type, relay?, marker?]")
    for inp in inputs:
        if (not isinstance(inp, list) or not 2 <= len(inp) <= 4
                or not all(isinstance(s, str) for s in inp)):
            raise InvalidArgument(f"input {inp!r} must be [data, type, relay?, marker?] "
                                  "(strings)")
        if inp[1] not in INPUT_TYPES:
            raise InvalidArgument(f"input type {inp[1]!r} must be one of {sorted(INPUT_TYPES)}")
        tags.append(["i", *inp])
    if "output" in obj:
        if not isinstance(obj["output"], str) or not obj["output"]:
            raise InvalidArgument("output must be a mime type string")
        tags.append(["output", obj["output"]])
    params = obj.get("params", {})
    if not isinstance(params, dict):
        raise InvalidArgument("params must be a JSON object of strings or numbers")
    for k, v in params.items():
        if isinstance(v, bool) or not isinstance(v, str | int | float):
            raise InvalidArgument(f"param {k!r} must be a string or a number, not {v!r}")
        tags.append(["param", k, v if isinstance(v, str) else dumps_compact(v)])
    if "bid" in obj:
        tags.append(["bid", str(check_int("bid", obj["bid"], 0, 2**63 - 1))])
    relays = obj.get("relays", [])
    if not isinstance(relays, list) or not all(
            isinstance(r, str) and r.startswith(("ws://", "wss://")) for r in relays):
        raise InvalidArgument("relays must be a list of ws:// or wss:// URLs")
    if relays:
        tags.append(["relays", *relays])
    providers = obj.get("providers", [])
    if not isinstance(providers, list) or not all(
            isinstance(p, str) and HEX64.match(p) for p in providers):
        raise InvalidArgument("providers must be a list of 64-char lowercase hex pubkeys")
    tags.extend(["p", p] for p in providers)
    return tags


# -- state ------------------------------------------------------------------------------------

def _dump(obj: Any) -> bytes:
    return dumps_pretty(obj, indent=1)


@attrs.define
class _Outgoing:
    event: Event
    wire: str
    queued_at: float
    answers: dict[str, tuple[bool, str]] = attrs.field(factory=dict)
    awaiting: set[str] = attrs.field(factory=set)

    def state(self, relays: Iterable[str]) -> OutboxState:
        if any(ok for ok, _ in self.answers.values()):
            return "completed"
        if self.awaiting:
            return "in_flight"
        relay_set = set(relays)
        if relay_set and relay_set <= set(self.answers):
            return "failed"
        return "pending"


@attrs.define
class _Job:
    request: Event
    results: dict[str, Event] = attrs.field(factory=dict)
    feedback: dict[str, Event] = attrs.field(factory=dict)

    @property
    def filter(self) -> dict[str, Any]:
        return {"kinds": [self.request.kind + 1000, JOB_FEEDBACK_KIND],
                "#e": [self.request.id]}


@attrs.define
class _Relay:
    state: str = "idle"
    error: str | None = None
    connects: int = 0
    notices: list[str] = attrs.field(factory=list)
    closed: dict[str, str] = attrs.field(factory=dict)

    def to_json(self) -> dict[str, Any]:
        return {"state": self.state, "error": self.error, "connects": self.connects,
                "notices": list(self.notices), "closed": dict(self.closed)}


class NostrFs(FileService):
    """The Nostr capability's files; see the module docstring for the protocol.

    ``secret_key``: 32 bytes or 64 hex characters (None: a fresh random key). ``relays``:
    the relay URLs the connector uses by default and ``status`` reports.
    ``max_file_bytes`` caps a file written (``submit``, ``request``, a subscription;
    ``DEFAULT_MAX_NOSTR_FILE``, 1 MiB): a write past it raises ``NoSpace`` as the file
    grows (nothing past the cap is held) and the file is not taken.

    Locking: one ``threading.RLock`` guards every map and counter; no I/O, signing,
    verification or callback runs under it.
    """

    live = True  # the WASI bridge mirrors it while a guest runs
    _draining = False  # see drain()

    def __init__(self, secret_key: bytes | str | None = None,
                 relays: Sequence[str] = (), *,
                 max_file_bytes: int = DEFAULT_MAX_NOSTR_FILE) -> None:
        if isinstance(max_file_bytes, bool) or not isinstance(max_file_bytes, int) or (
                max_file_bytes < 1):
            raise InvalidArgument(f"max_file_bytes must be an int >= 1, not "
                                  f"{max_file_bytes!r}")
        self.max_file_bytes = max_file_bytes
        for url in relays:
            if not isinstance(url, str) or not url.startswith(("ws://", "wss://")):
                raise InvalidArgument(f"relay {url!r} is not a ws:// or wss:// URL")
        self.__key = private_key(secret_key)
        self.pubkey: Final[str] = self.__key.public_key_xonly.format().hex()
        self.npub: Final[str] = npub_encode(self.pubkey)
        self.wakeup = Wakeup()
        self._lock = threading.RLock()
        self._relays: dict[str, _Relay] = {url: _Relay() for url in relays}
        self._outbox: dict[str, _Outgoing] = {}
        self._inbox: dict[str, Event] = {}
        self._removed_inbox: set[str] = set()
        self._subs: dict[str, list[dict[str, Any]]] = {}
        self._jobs: dict[str, _Job] = {}
        self._dropped = {"bad_id": 0, "bad_signature": 0, "malformed": 0, "unsolicited": 0}
        self._duplicates = 0
        self._last: str | None = None
        self._last_error: str | None = None
        self._listeners: list[Callable[[], None]] = []
        self._created = time.time()

    def __repr__(self) -> str:
        return f"NostrFs(pubkey={self.pubkey!r}, relays={self.relays!r})"

    @property
    def relays(self) -> list[str]:
        """The relay URLs known to the service (configured or attached by a connector)."""
        with self._lock:
            return list(self._relays)

    # -- host API ---------------------------------------------------------------------------

    def publish(self, template: Mapping[str, Any]) -> Event:
        """Sign ``template`` (the JSON of a ``submit`` file) and queue it in the outbox.

        Raises:
            InvalidArgument: the template is not valid.
        """
        obj = _template(template, _SUBMIT_KEYS)
        return self._sign_and_queue(obj["kind"], obj.get("content", ""), obj.get("tags", []),
                                    obj.get("created_at"))

    def request_job(self, request: Mapping[str, Any]) -> Event:
        """Build, sign and queue a NIP-90 job request (the JSON of a ``request`` file);
        the connector then subscribes to its results and feedback.

        Raises:
            InvalidArgument: the request is not valid.
        """
        obj = _template(request, _REQUEST_KEYS)
        check_int("kind", obj["kind"], 5000, 5999)
        extra = check_tags(obj.get("tags", []))
        tags = [*_job_tags(obj), *(list(t) for t in extra)]
        return self._sign_and_queue(obj["kind"], obj.get("content", ""), tags,
                                    obj.get("created_at"), job=True)

    def _sign_and_queue(self, kind: object, content: str, tags: object,
                        created_at: int | None, job: bool = False) -> Event:
        self._refuse_if_draining("/submit")
        check_int("kind", kind, 0, 65535)
        assert isinstance(kind, int)
        ev = sign_event(self.__key, kind, content, check_tags(tags), created_at)
        wire = dumps_compact(["EVENT", ev.to_json()])
        with self._lock:
            if ev.id not in self._outbox:
                self._outbox[ev.id] = _Outgoing(ev, wire, time.time())
            if job and ev.id not in self._jobs:
                self._jobs[ev.id] = _Job(ev)
            self._last = ev.id
        self._changed()
        return ev

    def _write_file(self, path: str, data: bytes) -> None:
        """on_close of a ``submit`` or ``request`` file."""
        if not data.strip():
            return
        try:
            obj = _load(data, "the content")
            if path == "/submit":
                self.publish(obj)
            else:
                self.request_job(obj)
        except InvalidArgument as e:
            self._invalid(path, e)

    def _invalid(self, path: str, error: InvalidArgument) -> NoReturn:
        """Keep ``error`` as ``last_error`` and raise it as the file's InvalidContent."""
        with self._lock:
            self._last_error = f"{path}: {error}"
        raise InvalidContent(path, str(error)) from None

    def subscribe(self, name: str, filters: object) -> None:
        """Create or replace subscription ``name`` with a NIP-01 filter list.

        Raises:
            InvalidArgument: a bad name or filter list.
        """
        if not _SUB_NAME.match(name):
            raise InvalidArgument(f"subscription name {name!r} must be 1-60 of "
                                  "A-Z a-z 0-9 _ . -")
        checked = validate_filters(filters)
        with self._lock:
            if self._subs.get(name) == checked:
                return
            self._subs[name] = checked
        self._changed()

    def unsubscribe(self, name: str) -> None:
        """Remove subscription ``name`` (the connector sends CLOSE).

        Raises:
            NotFound: no such subscription.
        """
        with self._lock:
            if self._subs.pop(name, None) is None:
                raise NotFound(f"/subscriptions/{name}.json")
        self._changed()

    def subscriptions(self) -> dict[str, list[dict[str, Any]]]:
        """The user subscriptions, name -> filters."""
        with self._lock:
            return {k: [dict(f) for f in v] for k, v in self._subs.items()}

    def inbox(self) -> list[Event]:
        """The verified inbox events, in arrival order."""
        with self._lock:
            return list(self._inbox.values())

    def outbox_state(self, eid: str) -> OutboxState:
        """The publication state of outbox event ``eid``. Raises NotFound."""
        with self._lock:
            out = self._outbox.get(eid)
            if out is None:
                raise NotFound(f"/outbox/{eid}.json")
            return out.state(self._relays)

    def job(self, rid: str) -> dict[str, Any]:
        """The ``status`` JSON of job ``rid``. Raises NotFound."""
        with self._lock:
            job = self._jobs.get(rid)
            if job is None:
                raise NotFound(f"/jobs/{rid}")
            return self._job_status(job)

    def job_results(self, rid: str) -> list[Event]:
        """The verified results of job ``rid``, in arrival order. Raises NotFound."""
        with self._lock:
            job = self._jobs.get(rid)
            if job is None:
                raise NotFound(f"/jobs/{rid}")
            return list(job.results.values())

    def forget_job(self, rid: str) -> None:
        """Drop job ``rid`` and its results; the connector stops asking for them.

        Raises:
            NotFound: no such job.
        """
        with self._lock:
            if self._jobs.pop(rid, None) is None:
                raise NotFound(f"/jobs/{rid}")
        self._changed()

    def status(self) -> dict[str, Any]:
        """The content of ``status`` as a dict."""
        with self._lock:
            counts = {"pending": 0, "in_flight": 0, "completed": 0, "failed": 0}
            for out in self._outbox.values():
                counts[out.state(self._relays)] += 1
            return {"pubkey": self.pubkey, "npub": self.npub, "last_id": self._last,
                    "last_error": self._last_error,
                    "relays": {u: r.to_json() for u, r in self._relays.items()},
                    "outbox": counts, "inbox": len(self._inbox),
                    "subscriptions": len(self._subs), "jobs": len(self._jobs),
                    "dropped": dict(self._dropped), "duplicates": self._duplicates}

    def add_listener(self, fn: Callable[[], None]) -> None:
        """Call ``fn()`` after every change (from the changing thread; quick, no raise)."""
        with self._lock:
            self._listeners.append(fn)

    def remove_listener(self, fn: Callable[[], None]) -> None:
        """Stop calling ``fn`` (no error if it was not registered)."""
        with self._lock:
            if fn in self._listeners:
                self._listeners.remove(fn)

    async def wait_for_async(self, predicate: Callable[[NostrFs], bool],
                             timeout: float | None = None) -> bool:
        """Wait under trio until ``predicate(self)`` is true, woken by changes, not polling.

        Returns False on timeout.
        """
        token = trio.lowlevel.current_trio_token()
        wake = trio.Event()

        def listener() -> None:
            with contextlib.suppress(trio.RunFinishedError):
                token.run_sync_soon(wake.set)

        self.add_listener(listener)
        try:
            with trio.move_on_after(math.inf if timeout is None else timeout):
                while not predicate(self):
                    await wake.wait()
                    wake = trio.Event()
                return True
            return False
        finally:
            self.remove_listener(listener)

    def _changed(self, connector: bool = True) -> None:
        with self._lock:
            listeners = list(self._listeners)
        if connector:
            self.wakeup.set()
        for fn in listeners:
            fn()

    # -- connector API ----------------------------------------------------------------------

    def attach_relays(self, urls: Iterable[str]) -> None:
        """Make ``urls`` known (status, and the relay set an event must fail on)."""
        with self._lock:
            for url in urls:
                self._relays.setdefault(url, _Relay())

    def set_relay_state(self, url: str, state: str, error: str | None = None) -> None:
        """Record a relay connection's state (``connecting``, ``open``, ``backoff``, ...)."""
        with self._lock:
            relay = self._relays.setdefault(url, _Relay())
            relay.state, relay.error = state, error
            if state == "open":
                relay.connects += 1
                relay.closed.clear()
        self._changed(connector=False)

    def record_notice(self, url: str, message: str) -> None:
        """Keep a relay's NOTICE (the last few are shown in ``status``)."""
        with self._lock:
            notices = self._relays.setdefault(url, _Relay()).notices
            notices.append(message[:500])
            del notices[:-_MAX_NOTICES]
        self._changed(connector=False)

    def record_closed(self, url: str, sub_id: str, message: str) -> None:
        """Record that a relay ended subscription ``sub_id`` (CLOSED)."""
        with self._lock:
            self._relays.setdefault(url, _Relay()).closed[sub_id] = message[:500]
        self._changed(connector=False)

    def wanted_subscriptions(self) -> dict[str, str]:
        """Every subscription the connector should hold: sub id -> compact filter JSON
        (the REQ tail): the user subscriptions and ``JOBS_SUBSCRIPTION`` with one filter
        per job."""
        with self._lock:
            out = {name: _compact(f) for name, f in self._subs.items()}
            if self._jobs:
                out[JOBS_SUBSCRIPTION] = _compact([j.filter for j in self._jobs.values()])
            return out

    def unanswered(self, url: str) -> list[tuple[str, str]]:
        """``(id, ["EVENT", ...] wire text)`` of outbox events ``url`` has not answered."""
        with self._lock:
            return [(eid, o.wire) for eid, o in self._outbox.items() if url not in o.answers]

    def mark_sent(self, eid: str, url: str) -> None:
        """Record that event ``eid`` was sent to ``url`` on its live connection."""
        with self._lock:
            out = self._outbox.get(eid)
            if out is None or url in out.answers:
                return
            out.awaiting.add(url)
        self._changed(connector=False)

    def record_ok(self, url: str, eid: str, accepted: bool, message: str) -> bool:
        """Record relay ``url``'s ``OK`` for ``eid``; False if ``eid`` is not in the outbox.
        ``OK false "duplicate: ..."`` counts as accepted."""
        if not accepted and message.startswith("duplicate:"):
            accepted = True
        with self._lock:
            out = self._outbox.get(eid)
            if out is None:
                return False
            out.answers[url] = (accepted, message)
            out.awaiting.discard(url)
        self._changed(connector=False)
        return True

    def connection_lost(self, url: str) -> None:
        """Forget what was sent on ``url``'s connection: unanswered events are resent on
        the next one (with no other relay holding them they are ``pending`` again)."""
        with self._lock:
            for out in self._outbox.values():
                out.awaiting.discard(url)
        self._changed(connector=False)

    def receive(self, url: str, sub_id: str, obj: object) -> str:
        """Take an event a relay sent for ``sub_id``; returns what happened to it:
        ``inbox``, ``result``, ``feedback``, ``duplicate`` or the drop reason."""
        try:
            ev = Event.from_json(obj)
        except InvalidArgument:
            return self._drop("malformed")
        verdict = verify_event(ev)
        if verdict != "ok":
            return self._drop(verdict)
        with self._lock:
            if sub_id == JOBS_SUBSCRIPTION:
                outcome = self._route_job(ev)
            else:
                filters = self._subs.get(sub_id)
                if filters is None or not any(filter_matches(f, ev) for f in filters):
                    outcome = "unsolicited"
                elif ev.id in self._inbox or ev.id in self._removed_inbox:
                    outcome = "duplicate"
                else:
                    self._inbox[ev.id] = ev
                    outcome = "inbox"
            if outcome == "unsolicited":
                self._dropped["unsolicited"] += 1
            elif outcome == "duplicate":
                self._duplicates += 1
        self._changed(connector=False)
        return outcome

    def _route_job(self, ev: Event) -> str:
        """Put ``ev`` under the job its ``e`` tag names (lock held)."""
        job = next((self._jobs[v[0]] for v in ev.tag_values("e")
                    if v and v[0] in self._jobs), None)
        if job is None:
            return "unsolicited"
        if ev.kind == job.request.kind + 1000:
            box, outcome = job.results, "result"
        elif ev.kind == JOB_FEEDBACK_KIND:
            box, outcome = job.feedback, "feedback"
        else:
            return "unsolicited"
        if ev.id in box:
            return "duplicate"
        box[ev.id] = ev
        return outcome

    def _drop(self, reason: str) -> str:
        with self._lock:
            self._dropped[reason] += 1
        self._changed(connector=False)
        return reason

    # -- files ------------------------------------------------------------------------------

    def _job_status(self, job: _Job) -> dict[str, Any]:
        last_status: str | None = None
        info: str | None = None
        for fb in job.feedback.values():
            st = fb.tag_values("status")
            if st and st[0]:
                last_status = st[0][0]
                info = st[0][1] if len(st[0]) > 1 else None
        out = self._outbox.get(job.request.id)
        providers = sorted({e.pubkey for e in (*job.results.values(),
                                               *job.feedback.values())})
        return {"id": job.request.id, "kind": job.request.kind,
                "result_kind": job.request.kind + 1000,
                "request": out.state(self._relays) if out is not None else "removed",
                "feedback": last_status, "feedback_info": info,
                "results": len(job.results), "feedback_count": len(job.feedback),
                "providers": providers}

    def _outbox_json(self, out: _Outgoing) -> dict[str, Any]:
        return {"id": out.event.id, "state": out.state(self._relays),
                "event": out.event.to_json(),
                "accepted_by": sorted(u for u, (ok, _) in out.answers.items() if ok),
                "relays": {u: {"accepted": ok, "message": m}
                           for u, (ok, m) in sorted(out.answers.items())},
                "awaiting": sorted(out.awaiting), "queued_at": out.queued_at}

    def _lookup(self, path: str) -> bytes | list[str] | None:
        """The content of file ``path`` (None for a write-only file) or the names of
        directory ``path``.

        Raises:
            NotFound, NotADirectory.
        """
        parts = paths.parts(path)
        with self._lock:
            node = self._lookup_locked(parts)
        if node is _FILE_AS_DIR:
            raise NotADirectory(path)
        if node is _MISSING:
            raise NotFound(path)
        return node  # type: ignore[return-value]

    def _lookup_locked(self, parts: list[str]) -> object:
        n = len(parts)
        if n == 0:
            return list(_ROOT)
        top = parts[0]
        if top not in _ROOT:
            return _MISSING
        if top not in _DIRS:
            if n > 1:
                return _FILE_AS_DIR
            if top == "status":
                return _dump(self.status())
            if top == "last":
                return b"" if self._last is None else self._last.encode() + b"\n"
            return None  # submit, request
        if top == "identity":
            files = {"pubkey": self.pubkey, "npub": self.npub}
            if n == 1:
                return sorted(files)
            if parts[1] not in files:
                return _MISSING
            return _FILE_AS_DIR if n > 2 else (files[parts[1]] + "\n").encode()
        if top == "jobs":
            return self._lookup_job(parts[1:])
        boxes: dict[str, Mapping[str, object]] = {
            "outbox": self._outbox, "inbox": self._inbox, "subscriptions": self._subs}
        box = boxes[top]
        if n == 1:
            return [f"{k}.json" for k in box]
        key = parts[1][:-5] if parts[1].endswith(".json") else None
        if key is None or key not in box:
            return _MISSING
        if n > 2:
            return _FILE_AS_DIR
        item = box[key]
        if isinstance(item, _Outgoing):
            return _dump(self._outbox_json(item))
        if isinstance(item, Event):
            return _dump(item.to_json())
        return _dump(item)

    def _lookup_job(self, parts: list[str]) -> object:
        if not parts:
            return list(self._jobs)
        job = self._jobs.get(parts[0])
        if job is None:
            return _MISSING
        if len(parts) == 1:
            return list(_JOB_FILES)
        name = parts[1]
        if name in ("request.json", "status"):
            if len(parts) > 2:
                return _FILE_AS_DIR
            if name == "status":
                return _dump(self._job_status(job))
            return _dump(job.request.to_json())
        if name not in ("results", "feedback"):
            return _MISSING
        box = job.results if name == "results" else job.feedback
        if len(parts) == 2:
            return [f"{k}.json" for k in box]
        key = parts[2][:-5] if parts[2].endswith(".json") else ""
        if key not in box:
            return _MISSING
        return _FILE_AS_DIR if len(parts) > 3 else _dump(box[key].to_json())

    def _stat(self, path: str) -> Stat:
        node = self._lookup(path)
        name = paths.basename(path)
        if isinstance(node, list):
            return Stat(name, len(node), True, self._created, readonly=True)
        if node is None:
            return Stat(name, 0, False, self._created)
        writable = paths.dirname(path) == "/subscriptions"
        return Stat(name, len(node), False, time.time(), readonly=not writable)

    def _listdir(self, path: str) -> list[str]:
        node = self._lookup(path)
        if not isinstance(node, list):
            raise NotADirectory(path)
        return node

    def _open(self, path: str, mode: OpenMode) -> io.RawIOBase:
        self._refuse_if_draining(path, mode)
        parent, name = paths.split(path)
        if parent == "/subscriptions" and (mode.write or self.exists(path)):
            return self._open_subscription(path, name, mode)
        node = find_fixed(self, path, mode, self._lookup, lambda p: PermissionDenied(
            p, "NostrFs files are fixed: write to /submit, /request or "
            "/subscriptions/<name>.json"))
        if isinstance(node, list):
            refuse_dir(path, mode)
        if node is None:
            check_write_only(path, mode, f"{name} is write-only: read last, then "
                             "outbox/<id>.json")
            return CappedFile(self.max_file_bytes, mode, path,
                              f"{name} file", on_close=lambda data: self._write_file(path, data))
        return read_only_file(path, mode, node)

    def _open_subscription(self, path: str, name: str, mode: OpenMode) -> io.RawIOBase:
        if not name.endswith(".json") or not _SUB_NAME.match(name[:-5]):
            raise PermissionDenied(path, "a subscription file is <name>.json, name 1-60 of "
                                   "A-Z a-z 0-9 _ . -")
        sub = name[:-5]
        with self._lock:
            current = self._subs.get(sub)
            content = _dump(current) if current is not None else None
        check_open(path, mode, None if content is None else Stat(name, len(content), False))

        def commit(data: bytes) -> None:
            try:
                self.subscribe(sub, _load(data, "the content"))
            except InvalidArgument as e:
                self._invalid(path, e)

        return CappedFile(self.max_file_bytes, mode, path,
                          "a subscription file", on_close=commit if mode.write else None,
                          initial=content or b"")

    def _read_bytes(self, path: str) -> bytes:
        node = self._lookup(path)
        if isinstance(node, list):
            raise IsADirectory(path)
        if node is None:
            raise PermissionDenied(path, f"{paths.basename(path)} is write-only")
        return node

    def _remove(self, path: str) -> None:
        parent, name = paths.split(path)
        key = name[:-5] if name.endswith(".json") else None
        with self._lock:
            if parent == "/subscriptions" and key in self._subs:
                del self._subs[key]
                removed = True
            elif parent == "/inbox" and key in self._inbox:
                del self._inbox[key]
                self._removed_inbox.add(key)
                removed = True
            elif parent == "/outbox" and key in self._outbox:
                if self._outbox[key].state(self._relays) in ("pending", "in_flight"):
                    raise PermissionDenied(path, "an event not yet published cannot be "
                                           "removed from the outbox")
                del self._outbox[key]
                removed = True
            else:
                removed = False
        if removed:
            self._changed()
            return
        node = self._lookup(path)  # NotFound / NotADirectory for what does not exist
        if isinstance(node, list):
            raise IsADirectory(path)
        raise PermissionDenied(path, "only subscriptions/, inbox/ and finished outbox/ "
                               "files can be removed")

    def _refused(self, path: str, op: str) -> FsError:
        return PermissionDenied(path, f"NostrFs structure is fixed: {op} is not supported")

    # -- draining and snapshots (oanix.snapshot) ---------------------------------------------

    def drain(self) -> None:
        """Sign nothing new: ``submit``, ``request`` (the files and the host methods)
        raise ``Draining``. Queued events stay queued: a relay takes an event once by id,
        so the process that resumes may send them again without publishing twice."""
        with self._lock:
            self._draining = True

    def undrain(self) -> None:
        """Sign again (a move given up)."""
        with self._lock:
            self._draining = False

    def wait_in_flight(self, timeout: float | None = None) -> bool:
        """True at once: an event sent and not yet answered is sent again after a move,
        and the relays keep it once (NIP-01 ``duplicate:``)."""
        return True

    def _refuse_if_draining(self, path: str, mode: OpenMode | None = None) -> None:
        if self._draining and path in ("/submit", "/request") and (
                mode is None or mode.write):
            raise Draining(path, "the Nostr capability is draining (its environment is "
                                 "moving): nothing new is signed")

    snapshot_kind: ClassVar[str] = "nostrfs"

    def snapshot_state(self, w: SnapshotWriter) -> dict[str, Any]:
        """``{"pubkey", "relays": [url], "max_file_bytes", "outbox": [{"event", "queued_at",
        "answers": [[url, accepted, message]]}], "inbox": [event], "removed_inbox": [id],
        "subscriptions": {name: filters}, "jobs": [{"request": event, "results": [event],
        "feedback": [event]}], "dropped", "duplicates", "last", "last_error",
        "created_at"}`` (events as NIP-01 JSON). The secret key is NOT written: restore
        needs it again (``keys``), and checks it against ``pubkey``."""
        with self._lock:
            return {
                "pubkey": self.pubkey, "relays": list(self._relays),
                "max_file_bytes": self.max_file_bytes,
                "outbox": [{"event": o.event.to_json(), "queued_at": o.queued_at,
                            "answers": [[u, ok, m] for u, (ok, m) in o.answers.items()]}
                           for o in self._outbox.values()],
                "inbox": [e.to_json() for e in self._inbox.values()],
                "removed_inbox": sorted(self._removed_inbox),
                "subscriptions": {k: [dict(f) for f in v] for k, v in self._subs.items()},
                "jobs": [{"request": j.request.to_json(),
                          "results": [e.to_json() for e in j.results.values()],
                          "feedback": [e.to_json() for e in j.feedback.values()]}
                         for j in self._jobs.values()],
                "dropped": dict(self._dropped), "duplicates": self._duplicates,
                "last": self._last, "last_error": self._last_error,
                "created_at": self._created}

    @classmethod
    def restore_state(cls, state: Mapping[str, Any], r: SnapshotReader) -> Self:
        """The NostrFs of ``state``, with the secret key whose public key is ``pubkey``
        among ``r.options["keys"]``. Every event is verified again (id and signature),
        so a snapshot cannot plant an event the agent would take as verified. Events
        sent and not yet answered are pending again (sent again; relays keep one copy).

        Raises:
            SnapshotError: no key given for ``pubkey``.
            CorruptSnapshot: a bad field, or an event that does not verify.
        """
        where = "nostrfs"
        pubkey = r.field(state, "pubkey", str, where)
        key = next((k for k in r.options.get("keys") or ()
                    if private_key(k).public_key_xonly.format().hex() == pubkey), None)
        if key is None:
            raise SnapshotError(f"{r.name}: the Nostr capability of {pubkey} needs its "
                                f"secret key: restore(..., keys=[...]) (keys are never in "
                                f"a snapshot)")
        try:
            fs = cls(key, r.strings(state.get("relays"), where),
                     max_file_bytes=r.field(state, "max_file_bytes", int, where))
        except InvalidArgument as e:
            raise r.fail(where, str(e)) from None

        def event(obj: object, at: str, mine: bool = False) -> Event:
            try:
                ev = Event.from_json(obj)
            except InvalidArgument as e:
                raise r.fail(at, str(e)) from None
            if verify_event(ev) != "ok" or (mine and ev.pubkey != pubkey):
                raise r.fail(at, f"event {ev.id[:16]} does not verify")
            return ev

        for i, o in enumerate(r.field(state, "outbox", list, where)):
            at = f"{where} outbox {i}"
            if not isinstance(o, dict):
                raise r.fail(at, "not an object")
            ev = event(o.get("event"), at, mine=True)
            out = _Outgoing(ev, dumps_compact(["EVENT", ev.to_json()]),
                            r.field(o, "queued_at", float, at))
            for a in r.field(o, "answers", list, at):
                if not (isinstance(a, list) and len(a) == 3 and isinstance(a[0], str)
                        and isinstance(a[1], bool) and isinstance(a[2], str)):
                    raise r.fail(at, "answers are not [url, accepted, message]")
                out.answers[a[0]] = (a[1], a[2])
            fs._outbox[ev.id] = out
        for i, obj in enumerate(r.field(state, "inbox", list, where)):
            ev = event(obj, f"{where} inbox {i}")
            fs._inbox[ev.id] = ev
        fs._removed_inbox = set(r.strings(state.get("removed_inbox"), where))
        for name, filters in r.field(state, "subscriptions", dict, where).items():
            try:
                fs.subscribe(name, filters)
            except InvalidArgument as e:
                raise r.fail(where, str(e)) from None
        for i, j in enumerate(r.field(state, "jobs", list, where)):
            at = f"{where} job {i}"
            if not isinstance(j, dict):
                raise r.fail(at, "not an object")
            job = _Job(event(j.get("request"), at, mine=True))
            for obj in r.field(j, "results", list, at):
                ev = event(obj, at)
                job.results[ev.id] = ev
            for obj in r.field(j, "feedback", list, at):
                ev = event(obj, at)
                job.feedback[ev.id] = ev
            fs._jobs[job.request.id] = job
        dropped = r.field(state, "dropped", dict, where)
        if set(dropped) != set(fs._dropped) or not all(
                type(v) is int for v in dropped.values()):
            raise r.fail(where, "dropped is not the drop counts")
        fs._dropped = dict(dropped)
        fs._duplicates = r.field(state, "duplicates", int, where)
        for k in ("last", "last_error"):
            if state.get(k) is not None and not isinstance(state.get(k), str):
                raise r.fail(where, f"{k} is not a string")
        fs._last, fs._last_error = state.get("last"), state.get("last_error")
        fs._created = r.field(state, "created_at", float, where)
        return fs


_MISSING: Final = object()
_FILE_AS_DIR: Final = object()


def _compact(filters: list[dict[str, Any]]) -> str:
    return dumps_compact(filters, sort_keys=True)
