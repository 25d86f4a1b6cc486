"""Bech32 (BIP-173, not bech32m), for NIP-19's ``npub1...`` names. Pure functions."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Final

__all__ = ["bech32_encode", "npub_encode"]

_CHARSET: Final = "qpzry9x8gf2tvdw0s3jn54khce6mua7l"


def _polymod(values: Iterable[int]) -> int:
    gen = (0x3B6A57B2, 0x26508E6D, 0x1EA119FA, 0x3D4233DD, 0x2A1462B3)
    chk = 1
    for v in values:
        top = chk >> 25
        chk = (chk & 0x1FFFFFF) << 5 ^ v
        for i in range(5):
            chk ^= gen[i] if (top >> i) & 1 else 0
    return chk


def bech32_encode(hrp: str, data: bytes) -> str:
    """Bech32-encode ``data`` (8-bit bytes) under ``hrp``, as NIP-19 does."""
    acc, bits, words = 0, 0, []
    for byte in data:
        acc = (acc << 8) | byte
        bits += 8
        while bits >= 5:
            bits -= 5
            words.append((acc >> bits) & 31)
    if bits:
        words.append((acc << (5 - bits)) & 31)
    expanded = [ord(c) >> 5 for c in hrp] + [0] + [ord(c) & 31 for c in hrp]
    poly = _polymod([*expanded, *words, 0, 0, 0, 0, 0, 0]) ^ 1
    checksum = [(poly >> 5 * (5 - i)) & 31 for i in range(6)]
    return hrp + "1" + "".join(_CHARSET[w] for w in words + checksum)


def npub_encode(pubkey_hex: str) -> str:
    """The NIP-19 ``npub1...`` form of a hex x-only public key."""
    return bech32_encode("npub", bytes.fromhex(pubkey_hex))
