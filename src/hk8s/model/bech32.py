"""Bech32 (BIP 173), the encoding of age keys (``age1...``, ``AGE-SECRET-KEY-1...``).

age uses the original bech32 checksum (not bech32m) and no 90-character limit
(filippo.io/age ``internal/bech32``); a string is all lower or all upper case.

>>> bech32_decode(bech32_encode("age", bytes(32)))[0]
'age'
"""

from __future__ import annotations

__all__ = ["bech32_decode", "bech32_encode"]

_CHARSET = "qpzry9x8gf2tvdw0s3jn54khce6mua7l"
_GENERATOR = (0x3B6A57B2, 0x26508E6D, 0x1EA119FA, 0x3D4233DD, 0x2A1462B3)


def _polymod(values: list[int]) -> int:
    check = 1
    for value in values:
        top = check >> 25
        check = (check & 0x1FFFFFF) << 5 ^ value
        for i, g in enumerate(_GENERATOR):
            check ^= g if (top >> i) & 1 else 0
    return check


def _expand(hrp: str) -> list[int]:
    return [ord(c) >> 5 for c in hrp] + [0] + [ord(c) & 31 for c in hrp]


def _convert(data: bytes | list[int], from_bits: int, to_bits: int, pad: bool) -> list[int]:
    acc = bits = 0
    out = []
    mask = (1 << to_bits) - 1
    for value in data:
        acc = (acc << from_bits) | value
        bits += from_bits
        while bits >= to_bits:
            bits -= to_bits
            out.append((acc >> bits) & mask)
    if pad and bits:
        out.append((acc << (to_bits - bits)) & mask)
    elif not pad and (bits >= from_bits or (acc << (to_bits - bits)) & mask):
        raise ValueError("invalid padding")
    return out


def bech32_encode(hrp: str, data: bytes) -> str:
    words = _convert(data, 8, 5, pad=True)
    check = _polymod([*_expand(hrp), *words, 0, 0, 0, 0, 0, 0]) ^ 1
    checksum = [(check >> 5 * (5 - i)) & 31 for i in range(6)]
    return hrp + "1" + "".join(_CHARSET[w] for w in words + checksum)


def bech32_decode(text: str) -> tuple[str, bytes]:
    """(human-readable part, data); ValueError naming what is wrong."""
    if text.lower() != text and text.upper() != text:
        raise ValueError("mixed upper and lower case")
    text = text.lower()
    pos = text.rfind("1")
    if pos < 1 or pos + 7 > len(text):
        raise ValueError("no bech32 separator and checksum")
    hrp, rest = text[:pos], text[pos + 1 :]
    if any(not 33 <= ord(c) <= 126 for c in hrp):
        raise ValueError("invalid characters in the prefix")
    try:
        words = [_CHARSET.index(c) for c in rest]
    except ValueError as exc:
        raise ValueError("invalid bech32 character") from exc
    if _polymod([*_expand(hrp), *words]) != 1:
        raise ValueError("bad checksum (a typo?)")
    return hrp, bytes(_convert(words[:-6], 5, 8, pad=False))
