"""Relay request signatures (PROTOCOL.md section 4).

A signed Relay request carries ``timestamp`` and ``signature``. The signed bytes are
every other parameter of the request as a JSON object serialised exactly as Go's
``encoding/json`` would (the Relay is written in Go and re-serialises what it
decoded), followed by the decimal timestamp. Their keccak256 is signed raw with
secp256k1 (no "Ethereum Signed Message" prefix) and sent as ``0x`` + r ++ s ++ v,
with v in {0, 1}.

The Relay accepts a signature when go-ethereum's ``SigToPub`` recovers a key from it
and ``VerifySignature`` accepts it, which rules out v outside {0, 1} (27/28 included),
r or s out of range and high-s (malleable) signatures. ``recover_signer`` applies
the same rules and says which one failed.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from enum import StrEnum
from functools import lru_cache
from typing import Any, Protocol

from coincurve import PrivateKey, PublicKey
from eth_hash.auto import keccak

from hydrogen_harness.protocol.addresses import checksum

__all__ = [
    "PrivateKeyLike",
    "SignatureError",
    "SignatureFault",
    "SECP256K1_N",
    "recover_signer",
    "secp256k1_key",
    "serialize_params",
    "sign_request",
    "signing_hash",
    "signing_message",
]

# Order of the secp256k1 group.
SECP256K1_N = 0xFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFEBAAEDCE6AF48A03BBFD25E8CD0364141
_HALF_N = SECP256K1_N // 2
_HEX_DIGITS = re.compile("[0-9a-fA-F]*")


# ---------------------------------------------------------------------------
# Go encoding/json serialisation
# ---------------------------------------------------------------------------

# Go's encodeState.string escapes these (HTML-safe mode is Marshal's default).
# Other control characters become \u00XX with lowercase hex, as Go writes them;
# \b and \f included (PROTOCOL.md pins that form; Go >= 1.22 would write \b \f).
_ESCAPES: dict[str, str] = {
    '"': '\\"',
    "\\": "\\\\",
    "\n": "\\n",
    "\r": "\\r",
    "\t": "\\t",
    "<": "\\u003c",
    ">": "\\u003e",
    "&": "\\u0026",
    "\u2028": "\\u2028",
    "\u2029": "\\u2029",
}
for _code in range(0x20):
    _ESCAPES.setdefault(chr(_code), f"\\u{_code:04x}")
del _code

_NEEDS_ESCAPE = re.compile('["\\\\\x00-\x1f<>&\u2028\u2029]')
_SURROGATE = re.compile("[\ud800-\udfff]")


def _go_text(value: str) -> str:
    """The text the Relay holds after decoding ``value`` from a JSON request."""
    text = str.__str__(value)  # the raw content, also for str subclasses (StrEnum)
    if _SURROGATE.search(text):
        # A Python str can hold surrogates, a Go string cannot. Sent as JSON they reach
        # the Relay as \uXXXX escapes, which Go's decoder joins into one rune when they
        # form a pair and turns into U+FFFD when lone; the Relay then re-encodes that
        # rune as plain UTF-8. Mirror that so the bytes signed are the bytes verified.
        text = text.encode("utf-16-le", "surrogatepass").decode("utf-16-le", "replace")
    return text


def _go_quote(text: str) -> str:
    """Quote surrogate-free ``text`` as Go's json.Marshal quotes a string."""
    return '"' + _NEEDS_ESCAPE.sub(lambda match: _ESCAPES[match.group()], text) + '"'


def _encode(value: Any, path: str, out: list[str]) -> None:
    # bool before int: bool is an int subclass in Python, not in Go.
    if value is None:
        out.append("null")
    elif value is True:
        out.append("true")
    elif value is False:
        out.append("false")
    elif isinstance(value, int):
        out.append(int.__repr__(int(value)))  # plain decimal, also for IntEnum
    elif isinstance(value, str):
        out.append(_go_quote(_go_text(value)))
    elif isinstance(value, float):
        if math.isnan(value) or math.isinf(value):
            # Go's Marshal fails on these too (UnsupportedValueError).
            raise ValueError(f"cannot sign {value!r} at {path}: JSON has no NaN or infinity")
        raise TypeError(
            f"cannot sign float {value!r} at {path}: Relay parameters are ints or strings, "
            "and Go formats floats differently from Python"
        )
    elif isinstance(value, Mapping):
        _encode_object(value, path, out)
    elif isinstance(value, (list, tuple)):
        out.append("[")
        for index, item in enumerate(value):
            if index:
                out.append(",")
            _encode(item, f"{path}[{index}]", out)
        out.append("]")
    else:
        raise TypeError(
            f"cannot sign {type(value).__name__} value {value!r} at {path}: "
            "expected None, bool, int, str, a mapping or a list"
        )


def _encode_object(value: Mapping[Any, Any], path: str, out: list[str]) -> None:
    members: dict[str, tuple[str, Any]] = {}
    for key, item in value.items():
        if not isinstance(key, str):
            raise TypeError(f"cannot sign key {key!r} at {path}: JSON object keys must be str")
        text = _go_text(key)
        if text in members:
            raise ValueError(f"cannot sign keys at {path}: {key!r} collides with another key")
        members[text] = (key, item)
    out.append("{")
    # Go sorts map keys by their UTF-8 bytes, which is code point order: sorted() on
    # surrogate-free str gives the same order.
    for index, text in enumerate(sorted(members)):
        key, item = members[text]
        if index:
            out.append(",")
        out.append(_go_quote(text))
        out.append(":")
        _encode(item, f"{path}.{key}", out)
    out.append("}")


def serialize_params(params: Mapping[str, Any]) -> bytes:
    """Serialise request parameters as Go's ``json.Marshal`` would, keys sorted.

    Supports None, bool, int, str, mappings (nested keys sorted too) and lists/tuples.
    Floats are refused (TypeError; NaN/infinity ValueError), as are non-str keys.
    """
    if not isinstance(params, Mapping):
        raise TypeError(f"request parameters must be a mapping, not {type(params).__name__}")
    out: list[str] = []
    _encode_object(params, "params", out)
    return "".join(out).encode("utf-8")


def _check_timestamp(timestamp: int) -> None:
    if isinstance(timestamp, bool) or not isinstance(timestamp, int):
        raise TypeError(f"timestamp must be an int (Unix seconds), not {timestamp!r}")


def signing_message(params: Mapping[str, Any], timestamp: int) -> bytes:
    """The exact bytes that are hashed: serialised params + decimal timestamp."""
    _check_timestamp(timestamp)
    return serialize_params(params) + str(int(timestamp)).encode("ascii")


def signing_hash(params: Mapping[str, Any], timestamp: int) -> bytes:
    """keccak256 of :func:`signing_message` (32 bytes): what is signed."""
    return keccak(signing_message(params, timestamp))


# ---------------------------------------------------------------------------
# Signing and recovery
# ---------------------------------------------------------------------------


class _HasKey(Protocol):
    """eth_account's LocalAccount (and eth_keys' PrivateKey via to_bytes) shape."""

    @property
    def key(self) -> bytes: ...


PrivateKeyLike = str | bytes | _HasKey


def _secret_bytes(private_key: PrivateKeyLike) -> bytes:
    if isinstance(private_key, str):
        text = private_key[2:] if private_key[:2] in ("0x", "0X") else private_key
        try:
            secret = bytes.fromhex(text)
        except ValueError:
            raise ValueError("private key string is not hex") from None
    elif isinstance(private_key, (bytes, bytearray, memoryview)):
        secret = bytes(private_key)
    elif (key := getattr(private_key, "key", None)) is not None:
        # _HasKey's shape, read directly: isinstance() against a Protocol walks its
        # members on every call, a tenth of signing a request.
        secret = bytes(key)
    else:
        raise TypeError(
            f"private key must be a hex str, bytes or a LocalAccount, "
            f"not {type(private_key).__name__}"
        )
    if len(secret) != 32:
        raise ValueError(f"private key must be 32 bytes, got {len(secret)}")
    if not 0 < int.from_bytes(secret, "big") < SECP256K1_N:
        raise ValueError("private key is out of range for secp256k1")
    return secret


@lru_cache(maxsize=256)
def secp256k1_key(secret: bytes) -> PrivateKey:
    """libsecp256k1's key object for a 32-byte secret, remembered: building it costs a
    scalar multiplication, and the same few accounts sign every request and transaction."""
    return PrivateKey(secret)


def sign_request(params: Mapping[str, Any], timestamp: int, private_key: PrivateKeyLike) -> str:
    """Sign a Relay request: ``0x`` + hex(r ++ s ++ v), v in {0, 1}, low s."""
    digest = signing_hash(params, timestamp)
    # libsecp256k1 signs deterministically (RFC 6979) and always emits low s.
    signature = secp256k1_key(_secret_bytes(private_key)).sign_recoverable(digest, hasher=None)
    return "0x" + signature.hex()


class SignatureFault(StrEnum):
    """Why a signature was refused."""

    MALFORMED = "malformed"
    ETHEREUM_V = "ethereum_v"
    BAD_V = "bad_v"
    OUT_OF_RANGE = "out_of_range"
    HIGH_S = "high_s"
    UNRECOVERABLE = "unrecoverable"


class SignatureError(ValueError):
    """A Relay request signature the real Relay would refuse."""

    def __init__(self, fault: SignatureFault, message: str) -> None:
        super().__init__(message)
        self.fault = fault
        self.message = message


def _decode_signature(signature: str) -> bytes:
    if not isinstance(signature, str):
        raise SignatureError(
            SignatureFault.MALFORMED,
            f"signature must be a 0x-prefixed hex string, not {type(signature).__name__}",
        )
    # The real Relay drops the first two characters unconditionally; insist on "0x".
    if not signature.startswith(("0x", "0X")):
        raise SignatureError(SignatureFault.MALFORMED, "signature must start with 0x")
    digits = signature[2:]
    # bytes.fromhex tolerates whitespace between bytes; Go's hex.DecodeString does not.
    if not _HEX_DIGITS.fullmatch(digits) or len(digits) % 2:
        raise SignatureError(SignatureFault.MALFORMED, "signature is not valid hex")
    raw = bytes.fromhex(digits)
    if len(raw) != 65:
        raise SignatureError(
            SignatureFault.MALFORMED, f"signature must be 65 bytes (r, s, v), got {len(raw)}"
        )
    return raw


def _check_values(raw: bytes) -> None:
    v = raw[64]
    if v in (27, 28):
        raise SignatureError(
            SignatureFault.ETHEREUM_V,
            f"signature v is {v}, but the Relay expects v in {{0, 1}}: subtract 27",
        )
    if v not in (0, 1):
        raise SignatureError(SignatureFault.BAD_V, f"signature v is {v}, must be 0 or 1")
    r = int.from_bytes(raw[:32], "big")
    s = int.from_bytes(raw[32:64], "big")
    if not 0 < r < SECP256K1_N:
        raise SignatureError(SignatureFault.OUT_OF_RANGE, "signature r is zero or not below n")
    if not 0 < s < SECP256K1_N:
        raise SignatureError(SignatureFault.OUT_OF_RANGE, "signature s is zero or not below n")
    if s > _HALF_N:
        raise SignatureError(
            SignatureFault.HIGH_S,
            "signature s is above n/2: malleable high-s signatures are refused, use n - s",
        )


def recover_signer(params: Mapping[str, Any], timestamp: int, signature: str) -> str:
    """The checksummed address that signed this request, or :class:`SignatureError`."""
    raw = _decode_signature(signature)
    _check_values(raw)
    digest = signing_hash(params, timestamp)
    try:
        public = PublicKey.from_signature_and_message(raw, digest, hasher=None)
    except Exception as error:  # coincurve raises plain Exception/ValueError
        raise SignatureError(
            SignatureFault.UNRECOVERABLE, f"no public key can be recovered: {error}"
        ) from None
    return checksum(keccak(public.format(compressed=False)[1:])[-20:])
