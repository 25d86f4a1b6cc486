"""Nostr events (NIP-01): their id, their BIP-340 signature, and the checks of their fields.

Pure functions and a frozen value class: safe to share between threads.
"""

from __future__ import annotations

import hashlib
import json
import re
import secrets
import time
from collections.abc import Sequence
from typing import Any, Final, Literal

import attrs
import coincurve

from ...errors import InvalidArgument
from ...values import check_unicode

__all__ = ["HEX64", "Event", "bip340_sign", "check_int", "check_tags", "event_id",
           "private_key", "sign_event", "verify_event"]

HEX64: Final = re.compile(r"^[0-9a-f]{64}$")
"""A 64-character lowercase hex string: an event id or an x-only public key."""
HEX128: Final = re.compile(r"^[0-9a-f]{128}$")


def _serialize(pubkey: str, created_at: int, kind: int, tags: Sequence[Sequence[str]],
               content: str) -> bytes:
    return json.dumps([0, pubkey, created_at, kind, tags, content], separators=(",", ":"),
                      ensure_ascii=False).encode("utf-8")


def event_id(pubkey: str, created_at: int, kind: int, tags: Sequence[Sequence[str]],
             content: str) -> str:
    """The NIP-01 id: lowercase hex sha256 of ``[0,pubkey,created_at,kind,tags,content]``
    serialized as compact JSON with non-ASCII characters kept."""
    return hashlib.sha256(_serialize(pubkey, created_at, kind, tags, content)).hexdigest()


@attrs.frozen
class Event:
    """A signed Nostr event (NIP-01). ``to_json`` gives the wire object in NIP-01 order."""

    id: str
    pubkey: str
    created_at: int
    kind: int
    tags: tuple[tuple[str, ...], ...]
    content: str
    sig: str

    def to_json(self) -> dict[str, Any]:
        """The event as a JSON object: id, pubkey, created_at, kind, tags, content, sig."""
        return {"id": self.id, "pubkey": self.pubkey, "created_at": self.created_at,
                "kind": self.kind, "tags": [list(t) for t in self.tags],
                "content": self.content, "sig": self.sig}

    @classmethod
    def from_json(cls, obj: object) -> Event:
        """Check the shape of a wire event (not its id or signature; see ``verify_event``).

        Raises:
            InvalidArgument: a field is missing or has the wrong type or format.
        """
        if not isinstance(obj, dict):
            raise InvalidArgument(f"an event must be a JSON object, not {type(obj).__name__}")
        try:
            eid, pubkey, sig = obj["id"], obj["pubkey"], obj["sig"]
            created_at, kind, tags, content = (obj["created_at"], obj["kind"], obj["tags"],
                                               obj["content"])
        except KeyError as e:
            raise InvalidArgument(f"event has no {e.args[0]!r}") from None
        if not (isinstance(eid, str) and HEX64.match(eid)):
            raise InvalidArgument("event id must be 64 lowercase hex characters")
        if not (isinstance(pubkey, str) and HEX64.match(pubkey)):
            raise InvalidArgument("event pubkey must be 64 lowercase hex characters")
        if not (isinstance(sig, str) and HEX128.match(sig)):
            raise InvalidArgument("event sig must be 128 lowercase hex characters")
        check_int("created_at", created_at, 0, 2**63 - 1)
        check_int("kind", kind, 0, 65535)
        if not isinstance(content, str):
            raise InvalidArgument("event content must be a string")
        check_unicode(content, "event content")
        return cls(eid, pubkey, created_at, kind, check_tags(tags), content, sig)

    def tag_values(self, name: str) -> list[tuple[str, ...]]:
        """The tags whose first element is ``name``, without it."""
        return [t[1:] for t in self.tags if t and t[0] == name]


def check_int(name: str, value: object, lo: int, hi: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not lo <= value <= hi:
        raise InvalidArgument(f"{name} must be an integer in [{lo}, {hi}], not {value!r}")
    return value


def check_tags(tags: object) -> tuple[tuple[str, ...], ...]:
    if not isinstance(tags, list):
        raise InvalidArgument("tags must be a list of lists of strings")
    out: list[tuple[str, ...]] = []
    for tag in tags:
        if not isinstance(tag, list) or not tag or not all(isinstance(s, str) for s in tag):
            raise InvalidArgument(f"every tag must be a non-empty list of strings, not {tag!r}")
        for text in tag:
            check_unicode(text, "tag")
        out.append(tuple(tag))
    return tuple(out)


def private_key(secret_key: bytes | str | None) -> coincurve.PrivateKey:
    if secret_key is None:
        return coincurve.PrivateKey(secrets.token_bytes(32))
    try:
        raw = bytes.fromhex(secret_key) if isinstance(secret_key, str) else bytes(secret_key)
        if len(raw) != 32:
            raise ValueError(f"{len(raw)} bytes, need 32")
        return coincurve.PrivateKey(raw)
    except ValueError as e:
        # never echo the key itself
        raise InvalidArgument(f"invalid secret key: {e}") from None


def sign_event(key: coincurve.PrivateKey, kind: int, content: str,
               tags: Sequence[Sequence[str]] = (), created_at: int | None = None) -> Event:
    """Build and sign an event with ``key``: BIP-340, deterministic (NULL aux randomness).

    Raises:
        InvalidArgument: a bad kind, created_at or tags.
    """
    check_int("kind", kind, 0, 65535)
    created = int(time.time()) if created_at is None else created_at
    check_int("created_at", created, 0, 2**63 - 1)
    check_unicode(content, "content")
    checked = check_tags([list(t) for t in tags])
    pubkey = key.public_key_xonly.format().hex()
    eid = event_id(pubkey, created, kind, checked, content)
    return Event(eid, pubkey, created, kind, checked, content,
                 bip340_sign(key, bytes.fromhex(eid)))


def bip340_sign(key: coincurve.PrivateKey, digest: bytes) -> str:
    """The BIP-340 signature (128 hex) of a 32-byte ``digest``, deterministic: no auxiliary
    randomness (libsecp256k1's NULL aux, the same as 32 zero bytes; BIP-340 vector 0)."""
    return key.sign_schnorr(digest, None).hex()  # type: ignore[arg-type]  # stub: bytes


def verify_event(ev: Event) -> Literal["ok", "bad_id", "bad_signature"]:
    """Whether ``ev``'s id is the hash of its content and its signature verifies."""
    if event_id(ev.pubkey, ev.created_at, ev.kind, ev.tags, ev.content) != ev.id:
        return "bad_id"
    try:
        ok = coincurve.PublicKeyXOnly(bytes.fromhex(ev.pubkey)).verify(
            bytes.fromhex(ev.sig), bytes.fromhex(ev.id))
    except (ValueError, TypeError):
        ok = False
    return "ok" if ok else "bad_signature"
