"""NostrFs + NostrRelayConnector, against a REAL local relay (``nostr-relay``, SQLite).

No mocks. The one fake is ``FakeRelay`` below, used only where a real relay cannot produce
the situation (see its docstring).
"""

from __future__ import annotations

import errno
import functools
import hashlib
import json
import logging
import threading
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import attrs
import coincurve
import pytest
import trio
from hypothesis import given, settings
from hypothesis import strategies as st
from nostr_relay_fixture import RelayProcess, find_relay_executable, nostr_relay
from websockets.trio.client import connect
from websockets.trio.server import ServerConnection, serve

from oanix import Namespace, errors
from oanix.cap import NostrRelayConnector, RetryPolicy
from oanix.cap.nostr import (
    JOBS_SUBSCRIPTION,
    Event,
    NostrFs,
    bip340_sign,
    event_id,
    filter_matches,
    npub_encode,
    sign_event,
    validate_filters,
    verify_event,
)
from oanix.cap.policy import CapabilityPolicy
from oanix.errors import InvalidContent

__all__ = ["nostr_relay"]  # the fixture, imported explicitly (no conftest)

WAIT = 15.0  # only bounds a hang; never asserted
FAST = RetryPolicy(initial_delay=0.05, max_delay=0.3, jitter="equal")
SECRET = "d217c1ff2f8a65c3e3a1740db3b9f58b8c848bb45e26d00ed4714e4a0f4ceecf"
OTHER = coincurve.PrivateKey(hashlib.sha256(b"another client").digest())
PROVIDER = coincurve.PrivateKey(hashlib.sha256(b"a NIP-90 service provider").digest())


def pynostr_id(ev: Event) -> str:
    """The id pynostr computes for ``ev``'s fields: an independent implementation."""
    py_event = pytest.importorskip("pynostr.event").Event
    return str(py_event(pubkey=ev.pubkey, created_at=ev.created_at, kind=ev.kind,
                        tags=[list(t) for t in ev.tags], content=ev.content).id)


def run(fn: Callable[[], Awaitable[None]]) -> None:
    async def main() -> None:
        with trio.fail_after(30):
            await fn()

    trio.run(main)


async def until(fs: NostrFs, pred: Callable[[NostrFs], bool]) -> None:
    assert await fs.wait_for_async(pred, WAIT), fs.status()


def signed(key: coincurve.PrivateKey, kind: int, content: str,
           tags: list[list[str]] | None = None) -> dict[str, Any]:
    return sign_event(key, kind, content, tags or []).to_json()


async def raw_publish(url: str, ev: dict[str, Any]) -> list[Any]:
    """Publish with an independent raw websocket client; the relay's OK message."""
    async with connect(url) as ws:
        await ws.send(json.dumps(["EVENT", ev]))
        ok: list[Any] = json.loads(await ws.recv())
        return ok


async def raw_query(url: str, flt: dict[str, Any]) -> list[dict[str, Any]]:
    """REQ with an independent raw client; the stored events up to EOSE."""
    async with connect(url) as ws:
        await ws.send(json.dumps(["REQ", "q", flt]))
        out = []
        while (msg := json.loads(await ws.recv()))[0] != "EOSE":
            out.append(msg[2])
        return out


def write(fs: NostrFs, path: str, obj: Any) -> None:
    with fs.open(path, "w") as f:
        f.write(json.dumps(obj).encode())


def last_id(fs: NostrFs) -> str:
    return fs.read_text("/last").strip()


def outbox(fs: NostrFs, eid: str) -> dict[str, Any]:
    out: dict[str, Any] = json.loads(fs.read_bytes(f"/outbox/{eid}.json"))
    return out


# -- NIP-01 primitives ------------------------------------------------------------------------

def test_bip340_test_vector_0_and_deterministic_signatures() -> None:
    key = coincurve.PrivateKey((3).to_bytes(32, "big"))
    assert key.public_key_xonly.format().hex() == (
        "f9308a019258c31049344f85f89d5229b531c845836f99b08601f113bce036f9")
    assert bip340_sign(key, bytes(32)) == (
        "e907831f80848d1069a5371b402410364bdf1c5f8307b0084c55f1ce2dca8215"
        "25f66a4a85ea8b71e482a74f382d2ce5ebeee8fdb2172f477df4900d310536c0")
    a = sign_event(key, 1, "same", [["t", "x"]], 1700000000)
    b = sign_event(key, 1, "same", [["t", "x"]], 1700000000)
    assert a == b and verify_event(a) == "ok"


def test_event_id_of_known_events() -> None:
    # published events (ids from their authors' code): ethba2025 NostrSignatures.t.sol and
    # zapd test_latest_event.dart (that one's signature is known-bad: a real forged case)
    assert event_id("2e7b0e5aae374d0ed1fab6cc877a969716ea48a710176a035398635e5d660dc1", 0,
                    96024, [], "0" * 64) == (
        "54ffbfbb8a4f76991c9f2401943b9b4d4f10084863ec7ea538bad2ded3d56892")
    assert coincurve.PublicKeyXOnly(bytes.fromhex(
        "2e7b0e5aae374d0ed1fab6cc877a969716ea48a710176a035398635e5d660dc1")).verify(
        bytes.fromhex("a35749d6174451de16fb286096858cb33d7b66c9583024fd2a5cd7b57a763ec8"
                      "5d99ddb0711044498c362be7c82e524a9845e09f634bbf11d87fccc2bcfe2202"),
        bytes.fromhex("54ffbfbb8a4f76991c9f2401943b9b4d4f10084863ec7ea538bad2ded3d56892"))
    zapd = Event.from_json(ZAPD_EVENT)
    assert event_id(zapd.pubkey, zapd.created_at, zapd.kind, zapd.tags, zapd.content) == zapd.id
    assert verify_event(zapd) == "bad_signature"
    # non-ASCII content and escapes: compared with pynostr's own serialization
    ev = sign_event(OTHER, 1, 'héllo "wörld"\n\t🙂\u2028', [["t", "ü"]], 1700000000)
    assert pynostr_id(ev) == ev.id


def test_npub_and_identity_files_never_expose_the_secret() -> None:
    fs = NostrFs(SECRET)
    assert fs.read_text("/identity/pubkey") == (
        "6af0f9de588f2c53cedcba26c5e2402e0d0aa64ec7b47c9f8d97b5bc562bab5f\n")
    # the same npub as pynostr's PublicKey.bech32() for this key
    assert fs.read_text("/identity/npub") == (
        "npub1dtc0nhjc3uk98nkuhgnvtcjq9cxs4fjwc768e8udj76mc43t4d0sw73h32\n")
    assert npub_encode(fs.pubkey) == fs.npub
    fs.publish({"kind": 1, "content": "x"})
    fs.request_job({"kind": 5050, "inputs": [["q", "text"]]})
    fs.subscribe("s", {"kinds": [1]})
    seen = [repr(fs), json.dumps(fs.status())]
    for top, _dirs, files in fs.walk("/"):
        for name in files:
            path = f"{top.rstrip('/')}/{name}"
            if path not in ("/submit", "/request"):
                seen.append(fs.read_text(path))
    blob = "\n".join(seen)
    assert SECRET not in blob and SECRET.upper() not in blob
    assert not any(SECRET in str(v) for v in vars(fs).values())  # no plain attribute holds it
    with pytest.raises(errors.InvalidArgument) as exc:
        NostrFs("zz" * 32)
    assert "zz" not in str(exc.value)


def test_filters_validation_and_matching() -> None:
    ev = sign_event(OTHER, 1, "hi", [["e", "ab" * 32], ["t", "oanix"]], 1700000000)
    assert filter_matches({"kinds": [1], "#t": ["oanix"], "since": 1700000000}, ev)
    assert not filter_matches({"kinds": [1], "#t": ["other"]}, ev)
    assert not filter_matches({"authors": ["00" * 32]}, ev)
    assert not filter_matches({"until": 1699999999}, ev)
    assert validate_filters({"kinds": [1]}) == [{"kinds": [1]}]
    for bad in ([], [1], [{"kinds": ["1"]}], [{"ids": ["xyz"]}], [{"nope": 1}],
                [{"#tag": ["x"]}], [{"limit": -1}]):
        with pytest.raises(errors.InvalidArgument):
            validate_filters(bad)


@settings(max_examples=150, deadline=None)
@given(content=st.text(), tags=st.lists(st.lists(st.text(), min_size=1, max_size=3),
                                        max_size=4),
       kind=st.integers(0, 65535), created_at=st.integers(0, 2**40))
def test_ids_match_pynostr_and_tampering_is_caught(content: str, tags: list[list[str]],
                                                   kind: int, created_at: int) -> None:
    ev = sign_event(OTHER, kind, content, tags, created_at)
    assert ev.id == pynostr_id(ev)
    assert verify_event(Event.from_json(json.loads(json.dumps(ev.to_json())))) == "ok"
    assert verify_event(attrs.evolve(ev, content=content + "x")) == "bad_id"
    assert verify_event(attrs.evolve(ev, sig=sign_event(OTHER, kind, content + "x", tags,
                                                        created_at).sig)) == "bad_signature"


# -- files without a relay ----------------------------------------------------------------------

def test_layout_submit_and_typed_errors() -> None:
    fs = NostrFs(SECRET)
    assert fs.listdir("/") == ["identity", "inbox", "jobs", "last", "outbox", "request",
                               "status", "submit", "subscriptions"]
    write(fs, "/submit", {"kind": 1, "content": "héllo", "tags": [["t", "oanix"]],
                          "created_at": 1700000000})
    eid = last_id(fs)
    assert fs.listdir("/outbox") == [f"{eid}.json"]
    out = outbox(fs, eid)
    assert out["state"] == "pending" and out["accepted_by"] == [] and out["relays"] == {}
    ev = Event.from_json(out["event"])
    assert verify_event(ev) == "ok" and ev.content == "héllo" and ev.pubkey == fs.pubkey
    assert json.loads(fs.read_bytes("/status"))["outbox"]["pending"] == 1
    # bad writes: a typed error on close, nothing signed, the message kept in status
    for bad, needle in ((b"{not json", "not valid JSON"), (b'{"kind": 1, "x": 2}', "unknown"),
                        (b'{"content": "no kind"}', "kind"),
                        (b'{"kind": 1, "tags": [["t", 1]]}', "tag"),
                        (b'{"kind": 70000}', "kind")):
        with pytest.raises(InvalidContent, match=needle) as exc, fs.open("/submit", "w") as f:
            f.write(bad)
        assert exc.value.path == "/submit" and exc.value.errno == errno.EINVAL
        assert needle in json.loads(fs.read_bytes("/status"))["last_error"]
    assert len(fs.listdir("/outbox")) == 1
    fs.write_bytes("/submit", b"  \n")  # empty: ignored
    assert len(fs.listdir("/outbox")) == 1
    with pytest.raises(errors.PermissionDenied):
        fs.read_bytes("/submit")
    with pytest.raises(errors.PermissionDenied):
        fs.write_bytes("/outbox/new.json", b"{}")
    with pytest.raises(errors.ReadOnly):
        fs.write_bytes(f"/outbox/{eid}.json", b"{}")
    with pytest.raises(errors.PermissionDenied):
        fs.remove(f"/outbox/{eid}.json")  # not published yet
    with pytest.raises(errors.NotFound):
        fs.read_bytes("/inbox/nope.json")
    with pytest.raises(errors.NotADirectory):
        fs.listdir("/status")
    with pytest.raises(errors.IsADirectory):
        fs.open("/outbox", "rb")
    with pytest.raises(errors.PermissionDenied):
        fs.mkdir("/x")


def test_request_builds_nip90_tags_and_job_directory() -> None:
    fs = NostrFs(SECRET)
    provider = PROVIDER.public_key_xonly.format().hex()
    write(fs, "/request", {"kind": 5050, "inputs": [["what is 2+2?", "text"],
                                                   ["https://x/y", "url", "", "src"]],
                           "params": {"model": "m", "max_tokens": 10}, "bid": 1000,
                           "relays": ["wss://r.example"], "output": "text/plain",
                           "providers": [provider], "tags": [["t", "oanix"]]})
    rid = last_id(fs)
    req = json.loads(fs.read_bytes(f"/jobs/{rid}/request.json"))
    assert req["kind"] == 5050 and req["content"] == ""
    assert req["tags"] == [["i", "what is 2+2?", "text"], ["i", "https://x/y", "url", "", "src"],
                           ["output", "text/plain"], ["param", "model", "m"],
                           ["param", "max_tokens", "10"], ["bid", "1000"],
                           ["relays", "wss://r.example"], ["p", provider], ["t", "oanix"]]
    assert fs.listdir(f"/jobs/{rid}") == ["feedback", "request.json", "results", "status"]
    status = json.loads(fs.read_bytes(f"/jobs/{rid}/status"))
    assert status == {"id": rid, "kind": 5050, "result_kind": 6050, "request": "pending",
                      "feedback": None, "feedback_info": None, "results": 0,
                      "feedback_count": 0, "providers": []}
    assert fs.wanted_subscriptions()[JOBS_SUBSCRIPTION] == json.dumps(
        [{"#e": [rid], "kinds": [6050, 7000]}], separators=(",", ":"))
    for bad in ({"kind": 1}, {"kind": 5050, "inputs": [["x", "blob"]]},
                {"kind": 5050, "params": {"a": [1]}}, {"kind": 5050, "relays": ["http://x"]},
                {"kind": 5050, "bid": -1}):
        with pytest.raises(InvalidContent):
            write(fs, "/request", bad)
        with pytest.raises(errors.InvalidArgument):
            fs.request_job(bad)
    assert fs.listdir("/jobs") == [rid]


def test_subscription_files() -> None:
    fs = NostrFs(SECRET)
    write(fs, "/subscriptions/notes.json", {"kinds": [1]})
    assert json.loads(fs.read_bytes("/subscriptions/notes.json")) == [{"kinds": [1]}]
    write(fs, "/subscriptions/notes.json", [{"kinds": [1, 7]}, {"#t": ["oanix"]}])
    assert fs.subscriptions() == {"notes": [{"kinds": [1, 7]}, {"#t": ["oanix"]}]}
    with pytest.raises(InvalidContent):
        write(fs, "/subscriptions/notes.json", [{"kinds": "1"}])
    assert fs.subscriptions()["notes"] == [{"kinds": [1, 7]}, {"#t": ["oanix"]}]  # unchanged
    with pytest.raises(errors.PermissionDenied):
        write(fs, "/subscriptions/bad name!.json", {"kinds": [1]})
    assert fs.listdir("/subscriptions") == ["notes.json"]
    fs.remove("/subscriptions/notes.json")
    assert fs.listdir("/subscriptions") == []
    with pytest.raises(errors.NotFound):
        fs.remove("/subscriptions/notes.json")


def test_mounted_in_a_namespace() -> None:
    fs = NostrFs(SECRET)
    ns = Namespace()
    ns.mount("/cap/nostr", fs)
    ns.write_text("/cap/nostr/submit", '{"kind": 1, "content": "via the namespace"}')
    eid = ns.read_text("/cap/nostr/last").strip()
    assert ns.listdir("/cap/nostr/outbox") == [f"{eid}.json"]
    ns.write_text("/cap/nostr/subscriptions/n.json", '[{"kinds": [1]}]')
    assert fs.subscriptions() == {"n": [{"kinds": [1]}]}
    with pytest.raises(InvalidContent) as bad:
        ns.write_text("/cap/nostr/submit", "{}")
    assert bad.value.path == "/cap/nostr/submit"
    with pytest.raises(errors.NotFound) as exc:
        ns.read_bytes("/cap/nostr/inbox/x.json")
    assert exc.value.path == "/cap/nostr/inbox/x.json"


# -- against the real relay --------------------------------------------------------------------

def connector(fs: NostrFs, *relays: str) -> NostrRelayConnector:
    return NostrRelayConnector(fs, list(relays) or None, reconnect=FAST, ping_interval=None)


def test_publish_reaches_the_real_relay(nostr_relay: RelayProcess) -> None:
    fs = NostrFs(relays=[nostr_relay.url])

    async def main() -> None:
        async with trio.open_nursery() as nursery:
            conn = connector(fs)
            await nursery.start(conn.run)
            write(fs, "/submit", {"kind": 1, "content": "published through files"})
            eid = last_id(fs)
            await until(fs, lambda s: s.outbox_state(eid) == "completed")
            out = outbox(fs, eid)
            assert out["accepted_by"] == [nostr_relay.url]
            assert out["relays"] == {nostr_relay.url: {"accepted": True, "message": ""}}
            stored = await raw_query(nostr_relay.url, {"ids": [eid]})
            assert [Event.from_json(e) for e in stored] == [Event.from_json(out["event"])]
            assert fs.status()["relays"][nostr_relay.url]["state"] == "open"
            await conn.aclose()
        assert fs.status()["relays"][nostr_relay.url]["state"] in ("closed", "backoff")
        fs.remove(f"/outbox/{eid}.json")  # a finished entry may go

    run(main)


def test_many_threads_publish_at_once(nostr_relay: RelayProcess) -> None:
    fs = NostrFs(relays=[nostr_relay.url])

    def agent(n: int) -> None:
        for i in range(25):
            write(fs, "/submit", {"kind": 1, "content": f"agent {n} note {i}"})

    async def main() -> None:
        async with trio.open_nursery() as nursery:
            conn = connector(fs)
            await nursery.start(conn.run)
            threads = [threading.Thread(target=agent, args=(n,)) for n in range(4)]
            for t in threads:
                t.start()
            for t in threads:
                await trio.to_thread.run_sync(t.join)
            assert len(fs.listdir("/outbox")) == 100
            await until(fs, lambda s: s.status()["outbox"]["completed"] == 100)
            await conn.aclose()

    run(main)


def test_subscription_receives_events_from_another_client(nostr_relay: RelayProcess) -> None:
    fs = NostrFs(relays=[nostr_relay.url])
    other = OTHER.public_key_xonly.format().hex()
    old = signed(OTHER, 1, "stored before subscribing", [["t", "sub-test"]])

    async def main() -> None:
        assert (await raw_publish(nostr_relay.url, old))[2] is True
        write(fs, "/subscriptions/notes.json", {"kinds": [1], "authors": [other],
                                                "#t": ["sub-test"]})
        async with trio.open_nursery() as nursery:
            conn = connector(fs)
            await nursery.start(conn.run)
            await until(fs, lambda s: old["id"] in {e.id for e in s.inbox()})
            live = signed(OTHER, 1, "live", [["t", "sub-test"]])
            assert (await raw_publish(nostr_relay.url, live))[2] is True
            await until(fs, lambda s: live["id"] in {e.id for e in s.inbox()})
            assert json.loads(fs.read_bytes(f"/inbox/{live['id']}.json")) == live
            assert fs.status()["inbox"] == 2
            await conn.aclose()

    run(main)


def test_relay_restart_loses_nothing(nostr_relay: RelayProcess,
                                     caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger="oanix")
    fs = NostrFs(relays=[nostr_relay.url])

    async def main() -> None:
        write(fs, "/subscriptions/restart.json", {"kinds": [1], "#t": ["restart"]})
        async with trio.open_nursery() as nursery:
            conn = connector(fs)
            await nursery.start(conn.run)
            await until(fs, lambda s: s.status()["relays"][nostr_relay.url]["state"] == "open")
            await trio.to_thread.run_sync(nostr_relay.stop)
            await until(fs, lambda s: s.status()["relays"][nostr_relay.url]["state"] != "open")
            ids = []
            for n in range(3):
                write(fs, "/submit", {"kind": 1, "content": f"queued while down {n}",
                                      "tags": [["t", "restart"]]})
                ids.append(last_id(fs))
            assert {fs.outbox_state(i) for i in ids} == {"pending"}
            assert fs.status()["outbox"]["pending"] >= 3
            await trio.to_thread.run_sync(nostr_relay.start)
            await until(fs, lambda s: all(s.outbox_state(i) == "completed" for i in ids))
            stored = await raw_query(nostr_relay.url, {"ids": ids})
            assert sorted(e["id"] for e in stored) == sorted(ids)
            assert fs.status()["relays"][nostr_relay.url]["connects"] >= 2
            # the subscription is live again: a new event from another client arrives
            live = signed(OTHER, 1, "after restart", [["t", "restart"]])
            assert (await raw_publish(nostr_relay.url, live))[2] is True
            await until(fs, lambda s: live["id"] in {e.id for e in s.inbox()})
            await conn.aclose()

    run(main)
    reconnects = [r.getMessage() for r in caplog.records
                  if r.name == "oanix.cap.nostr.connector"]
    assert reconnects and all(m.startswith(f"relay {nostr_relay.url}: ") and
                              "reconnecting in" in m for m in reconnects)


def test_two_relays(nostr_relay: RelayProcess, tmp_path: Path) -> None:
    exe = find_relay_executable()
    assert exe is not None
    second = RelayProcess(exe, tmp_path)
    second.start()
    try:
        fs = NostrFs(relays=[nostr_relay.url, second.url])

        async def main() -> None:
            write(fs, "/subscriptions/both.json", {"kinds": [1], "#t": ["two-relays"]})
            async with trio.open_nursery() as nursery:
                conn = connector(fs)
                await nursery.start(conn.run)
                write(fs, "/submit", {"kind": 1, "content": "to both"})
                eid = last_id(fs)
                await until(fs, lambda s: len(json.loads(s.read_bytes(
                    f"/outbox/{eid}.json"))["accepted_by"]) == 2)
                for url in (nostr_relay.url, second.url):
                    assert [e["id"] for e in await raw_query(url, {"ids": [eid]})] == [eid]
                # the same event on both relays is kept once; one only on the second arrives
                both = signed(OTHER, 1, "on both", [["t", "two-relays"]])
                only2 = signed(OTHER, 1, "only on the second", [["t", "two-relays"]])
                for url in (nostr_relay.url, second.url):
                    await raw_publish(url, both)
                await raw_publish(second.url, only2)
                await until(fs, lambda s: {both["id"], only2["id"]} <= {e.id for e in s.inbox()})
                await until(fs, lambda s: s.status()["duplicates"] >= 1)
                assert [e.id for e in fs.inbox()].count(both["id"]) == 1
                await conn.aclose()

        run(main)
    finally:
        second.stop()


def test_nip90_request_result_round_trip(nostr_relay: RelayProcess) -> None:
    fs = NostrFs(relays=[nostr_relay.url])
    provider_pk = PROVIDER.public_key_xonly.format().hex()

    async def provider(task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        """A tiny text-generation service provider on a raw client: answers one 5050 job."""
        async with connect(nostr_relay.url) as ws:
            await ws.send(json.dumps(["REQ", "jobs", {"kinds": [5050],
                                                      "since": int(time.time()) - 5}]))
            while json.loads(await ws.recv())[0] != "EOSE":
                pass
            task_status.started()
            while (msg := json.loads(await ws.recv()))[0] != "EVENT":
                pass
            req = msg[2]
            assert verify_event(Event.from_json(req)) == "ok"
            question = next(t[1] for t in req["tags"] if t[0] == "i")
            feedback = signed(PROVIDER, 7000, "", [["status", "processing", "thinking"],
                                                   ["e", req["id"], nostr_relay.url],
                                                   ["p", req["pubkey"]]])
            result = signed(PROVIDER, 6050, f"answer to {question}: 4",
                            [["request", json.dumps(req)], ["e", req["id"], nostr_relay.url],
                             ["i", question, "text"], ["p", req["pubkey"]],
                             ["amount", "1000"]])
            success = signed(PROVIDER, 7000, "", [["status", "success"],
                                                  ["e", req["id"]], ["p", req["pubkey"]]])
            for ev in (feedback, result, success):
                await ws.send(json.dumps(["EVENT", ev]))
                assert json.loads(await ws.recv())[2] is True

    async def main() -> None:
        async with trio.open_nursery() as nursery:
            await nursery.start(provider)
            conn = connector(fs)
            await nursery.start(conn.run)
            write(fs, "/request", {"kind": 5050, "inputs": [["what is 2+2?", "text"]],
                                   "bid": 1000})
            rid = last_id(fs)
            other = fs.request_job({"kind": 5001, "inputs": [["long text", "text"]]}).id
            await until(fs, lambda s: s.job(rid)["results"] == 1
                        and s.job(rid)["feedback_count"] == 2)
            [name] = fs.listdir(f"/jobs/{rid}/results")
            result = json.loads(fs.read_bytes(f"/jobs/{rid}/results/{name}"))
            assert result["kind"] == 6050 and result["content"] == "answer to what is 2+2?: 4"
            assert ["e", rid, nostr_relay.url] in result["tags"]
            status = json.loads(fs.read_bytes(f"/jobs/{rid}/status"))
            assert status["request"] == "completed" and status["feedback"] == "success"
            assert status["providers"] == [provider_pk]
            assert len(fs.listdir(f"/jobs/{rid}/feedback")) == 2
            assert fs.inbox() == []  # job events go under jobs/, not the inbox
            assert fs.job(other)["results"] == 0 and fs.job(other)["request"] == "completed"
            fs.forget_job(rid)
            assert fs.listdir("/jobs") == [other]
            await conn.aclose()

    run(main)


# -- the one fake relay ---------------------------------------------------------------------------

class FakeRelay:
    """An in-test relay on ``websockets.trio``: the ONE fake in this file, because a real
    relay verifies signatures and ids itself and so can never deliver a forged or bad-id
    event, and because ``nostr-relay`` does not tell anyone when a client sends CLOSE.
    It answers REQ with a forged, a bad-id, an unmatched and a valid event, records every
    message, and (``ack=False``) can leave EVENTs unanswered."""

    def __init__(self, ack: bool = True, answer: tuple[bool, str] = (True, "")) -> None:
        self.ack = ack
        self.answer = answer
        self.received: list[list[Any]] = []
        self.closed_connections = 0
        self.url = ""
        self.changed = trio.Event()
        self.good = signed(OTHER, 1, "good", [["t", "fake"]])
        self.forged = dict(signed(OTHER, 1, "forged", [["t", "fake"]]),
                           sig=signed(OTHER, 1, "other", [["t", "fake"]])["sig"])
        self.bad_id = dict(signed(OTHER, 1, "bad id", [["t", "fake"]]), content="changed")
        self.unmatched = signed(OTHER, 7, "not what was asked for")
        self.before: list[dict[str, Any]] = []  # sent first on REQ

    async def handler(self, ws: ServerConnection) -> None:
        try:
            async for raw in ws:
                msg = json.loads(raw)
                self.received.append(msg)
                if msg[0] == "REQ":
                    for ev in (*self.before, self.forged, self.bad_id, self.unmatched,
                               self.good, self.good):
                        await ws.send(json.dumps(["EVENT", msg[1], ev]))
                    await ws.send(json.dumps(["EOSE", msg[1]]))
                elif msg[0] == "EVENT" and self.ack:
                    await ws.send(json.dumps(["OK", msg[1]["id"], *self.answer]))
                    await ws.send(json.dumps(["NOTICE", "noted"]))
                self.changed.set()
                self.changed = trio.Event()
        finally:
            self.closed_connections += 1
            self.changed.set()

    async def wait(self, pred: Callable[[], bool]) -> None:
        while not pred():
            await self.changed.wait()

    async def serve(self, nursery: trio.Nursery) -> None:
        server = await nursery.start(functools.partial(serve, self.handler, 0,
                                                       host="127.0.0.1"))
        self.url = f"ws://127.0.0.1:{server.listeners[0].socket.getsockname()[1]}"


def test_forged_and_bad_id_events_are_dropped_and_close_is_sent() -> None:
    relay = FakeRelay()
    fs = NostrFs()

    async def main() -> None:
        async with trio.open_nursery() as nursery:
            await relay.serve(nursery)
            write(fs, "/subscriptions/fake.json", {"kinds": [1], "#t": ["fake"]})
            conn = connector(fs, relay.url)
            await nursery.start(conn.run)
            await until(fs, lambda s: s.status()["dropped"]["unsolicited"] == 1
                        and s.status()["duplicates"] == 1)
            st = fs.status()
            assert st["dropped"]["bad_signature"] == 1 and st["dropped"]["bad_id"] == 1
            assert [e.id for e in fs.inbox()] == [relay.good["id"]]
            assert fs.listdir("/inbox") == [f"{relay.good['id']}.json"]
            fs.remove("/subscriptions/fake.json")
            await relay.wait(lambda: ["CLOSE", "fake"] in relay.received)
            assert relay.received[0] == ["REQ", "fake", {"#t": ["fake"], "kinds": [1]}]
            await conn.aclose()
            await relay.wait(lambda: relay.closed_connections == 1)  # websocket closed
            nursery.cancel_scope.cancel()

    run(main)


def surrogate_event(key: coincurve.PrivateKey) -> dict[str, Any]:
    """A signed event whose content is the JSON escape "\\ud800" (a lone surrogate): its
    id hashes the surrogate as CESU-style bytes, the only way to hash it at all."""
    pubkey = key.public_key_xonly.format().hex()
    body = json.dumps([0, pubkey, 1700000000, 1, [["t", "fake"]], "\ud800"],
                      separators=(",", ":"), ensure_ascii=False)
    eid = hashlib.sha256(body.encode("utf-8", "surrogatepass")).hexdigest()
    return {"id": eid, "pubkey": pubkey, "created_at": 1700000000, "kind": 1,
            "tags": [["t", "fake"]], "content": "\ud800",
            "sig": bip340_sign(key, bytes.fromhex(eid))}


def test_lone_surrogate_event_from_a_relay_is_dropped_and_the_connection_stays() -> None:
    """A relay sending an event whose content is "\\ud800" (valid JSON) must not end the
    connection (a relay resending it would make it flap): the event is refused, the next
    ones are taken on the same connection."""
    relay = FakeRelay()
    relay.before = [surrogate_event(OTHER)] * 3
    # the direct path too: receive() drops it as malformed instead of raising
    direct = NostrFs()
    direct.subscribe("direct", [{"kinds": [1]}])
    assert direct.receive("ws://x", "direct", surrogate_event(OTHER)) == "malformed"
    fs = NostrFs()

    async def main() -> None:
        async with trio.open_nursery() as nursery:
            await relay.serve(nursery)
            write(fs, "/subscriptions/fake.json", {"kinds": [1], "#t": ["fake"]})
            conn = connector(fs, relay.url)
            await nursery.start(conn.run)
            await until(fs, lambda s: s.status()["dropped"]["unsolicited"] == 1
                        and s.status()["duplicates"] == 1)  # everything after it taken
            assert [e.id for e in fs.inbox()] == [relay.good["id"]]
            st = fs.status()
            assert st["relays"][relay.url]["connects"] == 1
            assert st["relays"][relay.url]["state"] == "open"
            assert relay.closed_connections == 0
            json.loads(fs.read_bytes("/status"))  # still readable
            await conn.aclose()
            await relay.wait(lambda: relay.closed_connections == 1)
            nursery.cancel_scope.cancel()

    run(main)


def test_lone_surrogate_written_to_submit_is_invalid_content() -> None:
    fs = NostrFs(SECRET)
    for bad in (b'{"kind": 1, "content": "\\ud800"}', b'{"kind": 1, "tags": [["t", "\\udfff"]]}',
                b'{"kind": 1, "content": "a\\udc00b"}'):
        with pytest.raises(InvalidContent, match="surrogate") as exc, \
                fs.open("/submit", "w") as f:
            f.write(bad)
        assert exc.value.path == "/submit"
    for template in ({"kind": 1, "content": "\ud800"}, {"kind": 1, "tags": [["t", "\udfff"]]}):
        with pytest.raises(errors.InvalidArgument, match="surrogate"):
            fs.publish(template)
    assert fs.listdir("/outbox") == []
    write(fs, "/submit", {"kind": 1, "content": "\U0001f600 fine"})  # a pair is fine
    assert len(fs.listdir("/outbox")) == 1


def test_shutdown_keeps_unacknowledged_events_pending() -> None:
    relay = FakeRelay(ack=False)
    fs = NostrFs()

    async def main() -> None:
        async with trio.open_nursery() as nursery:
            await relay.serve(nursery)
            conn = connector(fs, relay.url)
            await nursery.start(conn.run)
            eid = fs.publish({"kind": 1, "content": "never acknowledged"}).id
            await until(fs, lambda s: s.outbox_state(eid) == "in_flight")
            assert outbox(fs, eid)["awaiting"] == [relay.url]
            await conn.aclose()
            assert fs.outbox_state(eid) == "pending"
            assert fs.status()["relays"][relay.url]["state"] == "closed"
            await relay.wait(lambda: relay.closed_connections == 1)
            # a new connector re-sends it
            relay.ack = True
            conn2 = connector(fs, relay.url)
            await nursery.start(conn2.run)
            await until(fs, lambda s: s.outbox_state(eid) == "completed")
            sent = [m for m in relay.received if m[0] == "EVENT"]
            assert [m[1]["id"] for m in sent] == [eid, eid]
            await conn2.aclose()
            nursery.cancel_scope.cancel()

    run(main)


@pytest.mark.parametrize(("answer", "state"), [((False, "blocked: not you"), "failed"),
                                               ((False, "duplicate: have it"), "completed")])
def test_relay_answers_are_recorded(answer: tuple[bool, str], state: str) -> None:
    relay = FakeRelay(answer=answer)
    fs = NostrFs()

    async def main() -> None:
        async with trio.open_nursery() as nursery:
            await relay.serve(nursery)
            conn = connector(fs, relay.url)
            await nursery.start(conn.run)
            eid = fs.publish({"kind": 1, "content": "judge me"}).id
            await until(fs, lambda s: s.outbox_state(eid) == state
                        and s.status()["relays"][relay.url]["notices"] == ["noted"])
            out = outbox(fs, eid)
            assert out["relays"] == {relay.url: {"accepted": state == "completed",
                                                 "message": answer[1]}}
            assert out["awaiting"] == []
            await conn.aclose()
            nursery.cancel_scope.cancel()

    run(main)


def test_policy_denies_or_allows_relays(caplog: pytest.LogCaptureFixture) -> None:
    relay = FakeRelay()
    fs = NostrFs()

    async def main() -> None:
        async with trio.open_nursery() as nursery:
            await relay.serve(nursery)
            denied = NostrRelayConnector(fs, [relay.url], policy=CapabilityPolicy(
                schemes={"wss"}, hosts={"relay.example"}), reconnect=FAST)
            await nursery.start(denied.run)
            await until(fs, lambda s: s.status()["relays"][relay.url]["state"] == "denied")
            assert "scheme" in fs.status()["relays"][relay.url]["error"]
            await denied.aclose()
            allowed = NostrRelayConnector(fs, [relay.url], policy=CapabilityPolicy(
                schemes={"ws"}, hosts={"127.0.0.1"}), reconnect=FAST)
            await nursery.start(allowed.run)
            eid = fs.publish({"kind": 1, "content": "through the policy"}).id
            await until(fs, lambda s: s.outbox_state(eid) == "completed")
            await allowed.aclose()
            nursery.cancel_scope.cancel()

    run(main)
    denials = [r for r in caplog.records if r.name == "oanix.cap.nostr.connector"]
    assert [r.levelno for r in denials] == [logging.WARNING]
    assert denials[0].getMessage().startswith(f"relay {relay.url} denied by the policy: ")


ZAPD_EVENT = {
    "id": "35ae6860f074c1a73f37881e84c5a0e71ea140f9f682d29d0cd0206139f27ac3",
    "pubkey": "074b756ca09d6b0c031eb6d63953efb4875894bd8f857578483e02ae103bdcfd",
    "created_at": 1762622942,
    "kind": 24133,
    "tags": [["p", "76981d9eacb4f8f3a67d7821f80fba69003fce74ed1d2dc55214028d01fd7c46"]],
    "content": "AmfEDOYvySMba5SyYFEcrlanL8pBki+Ohg7LP4TDsLFxu15or5rmBP/9BDmpL3YCNPMnetRJSEQuC4w"
               "6s2Uq9Lr7DhuBtBXq7Y+DZXB6iWICBNuxx/lRJ7zE9FZgaTzZ6qvoDHEb6h1R51wWF2xEhBnJin8"
               "lUc3udOiUR5V6xSOv6x0V21a5DkTl5PlNdqB9H1SUDXwtYHzNUjrDEqKFpLGWLUrwem0jn8A1rLUF"
               "rjGqyZYyIBWDxQs3B+QaQ4SQwKMtI2X2/UqJgUo=",
    "sig": "0131e4b60aa764d02816e8a0f36a1d8e691d346b8cd17c3e891bd0bc0efd157ffe98f812a166d7fd5"
           "17110e88d374f2a656854227d465f400df57e80ecb60230",
}
