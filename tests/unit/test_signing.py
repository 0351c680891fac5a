"""Relay request signing: Go-compatible serialisation, signatures, recovery rules."""

from __future__ import annotations

import json
from enum import IntEnum, StrEnum
from typing import Any

import pytest
from eth_account import Account
from eth_keys import KeyAPI
from eth_utils import keccak
from hypothesis import given, settings
from hypothesis import strategies as st

from hydrogen_harness.protocol.signing import (
    SECP256K1_N,
    SignatureError,
    SignatureFault,
    recover_signer,
    serialize_params,
    sign_request,
    signing_hash,
    signing_message,
)

# The private key of the eth-account documentation, with its well-known address.
KEY = "0x4c0883a69102937d6231471b5dbb6204fe5129617082792ae468d01a3f362318"
ADDRESS = "0x2c7536E3605D9C16a7a3D7b1898e529396a65c23"
PARAMS = {"task_id": 1}
TIMESTAMP = 1692446475

# eth_keys' pure-Python backend: an implementation independent of coincurve.
NATIVE = KeyAPI("eth_keys.backends.NativeECCBackend")


def _ser(params: dict[str, Any]) -> bytes:
    return serialize_params(params)


# --- serialisation, byte for byte ---------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("<", b'"\\u003c"'),
        (">", b'"\\u003e"'),
        ("&", b'"\\u0026"'),
        ("\u2028", b'"\\u2028"'),
        ("\u2029", b'"\\u2029"'),
        ("\n", b'"\\n"'),
        ("\r", b'"\\r"'),
        ("\t", b'"\\t"'),
        ('"', b'"\\""'),
        ("\\", b'"\\\\"'),
        ("\b", b'"\\u0008"'),
        ("\f", b'"\\u000c"'),
        ("\x00", b'"\\u0000"'),
        ("\x01", b'"\\u0001"'),
        ("\x0b", b'"\\u000b"'),
        ("\x1b", b'"\\u001b"'),
        ("\x1f", b'"\\u001f"'),
        ("\x7f", b'"\x7f"'),  # DEL is not a JSON control character
        ("/", b'"/"'),  # Go does not escape the solidus
        ("\u2027", b'"\xe2\x80\xa7"'),  # neighbour of U+2028 stays raw
        ("é", b'"\xc3\xa9"'),
        ("日本", b'"\xe6\x97\xa5\xe6\x9c\xac"'),
        ("😀", b'"\xf0\x9f\x98\x80"'),
        ("\ufffd", b'"\xef\xbf\xbd"'),
        ("", b'""'),
        ("a<b>&c", b'"a\\u003cb\\u003e\\u0026c"'),
    ],
)
def test_string_escapes_match_go(text: str, expected: bytes) -> None:
    assert _ser({"k": text}) == b'{"k":' + expected + b"}"


def test_lone_surrogate_becomes_replacement_rune_as_go_decodes_it() -> None:
    # Go decodes a lone \ud800 escape to U+FFFD and re-encodes it as raw UTF-8.
    assert _ser({"k": "a\ud800b"}) == b'{"k":"a\xef\xbf\xbdb"}'
    assert _ser({"k": "\udc00"}) == b'{"k":"\xef\xbf\xbd"}'


def test_surrogate_pair_joins_into_one_rune() -> None:
    assert _ser({"k": "\ud83d\ude00"}) == _ser({"k": "😀"})


def test_scalars_and_nesting() -> None:
    params = {
        "b": {"d": [1, {"z": None, "a": False}], "c": True},
        "a": -5,
        "e": [],
        "f": {},
        "g": (1, "x"),
        "h": 2**64,
    }
    assert _ser(params) == (
        b'{"a":-5,"b":{"c":true,"d":[1,{"a":false,"z":null}]},"e":[],"f":{},'
        b'"g":[1,"x"],"h":18446744073709551616}'
    )


def test_keys_sorted_by_utf8_bytes_and_escaped() -> None:
    params = {"b": 1, "B": 2, "é": 3, "a": 4, "😀": 5, "\uffff": 6, "<": 7}
    # U+FFFF sorts before U+1F600 in UTF-8 (not in UTF-16, where 😀 is D83D...).
    expected = '{"\\u003c":7,"B":2,"a":4,"b":1,"é":3,"\uffff":6,"😀":5}'
    assert _ser(params) == expected.encode("utf-8")


def test_enum_values_serialise_as_their_plain_values() -> None:
    class Colour(StrEnum):
        RED = "r<d"

    class Size(IntEnum):
        BIG = 7

    assert _ser({"c": Colour.RED, "s": Size.BIG}) == b'{"c":"r\\u003cd","s":7}'


def test_relay_endpoint_param_sets() -> None:
    upload = {"task_id": 7, "task_args": '{"prompt":"a & b"}'}
    assert _ser(upload) == b'{"task_args":"{\\"prompt\\":\\"a \\u0026 b\\"}","task_id":7}'
    assert _ser({"task_id": 3, "image_num": "0"}) == b'{"image_num":"0","task_id":3}'


def test_protocol_example_message_and_hash() -> None:
    message = signing_message(PARAMS, TIMESTAMP)
    assert message == b'{"task_id":1}1692446475'
    assert signing_hash(PARAMS, TIMESTAMP) == keccak(b'{"task_id":1}1692446475')


@pytest.mark.parametrize(
    ("params", "error", "named"),
    [
        ({"x": 1.5}, TypeError, "1.5"),
        ({"x": 1.0}, TypeError, "1.0"),
        ({"x": float("nan")}, ValueError, "nan"),
        ({"x": float("inf")}, ValueError, "inf"),
        ({"x": [1, {"y": 2.5}]}, TypeError, "params.x[1].y"),
        ({1: "a"}, TypeError, "1"),
        ({"x": {None: 1}}, TypeError, "None"),
        ({"x": b"raw"}, TypeError, "b'raw'"),
        ({"x": {1, 2}}, TypeError, "set"),
        ({"\ud800": 1, "\ufffd": 2}, ValueError, "collides"),
    ],
)
def test_unsignable_values_rejected_naming_the_value(
    params: dict[Any, Any], error: type[Exception], named: str
) -> None:
    with pytest.raises(error) as caught:
        serialize_params(params)
    assert named in str(caught.value)


def test_params_must_be_a_mapping() -> None:
    with pytest.raises(TypeError, match="mapping"):
        serialize_params([("task_id", 1)])  # type: ignore[arg-type]


@pytest.mark.parametrize("timestamp", [True, 1.5, "1692446475"])
def test_timestamp_must_be_an_int(timestamp: Any) -> None:
    with pytest.raises(TypeError, match="timestamp"):
        signing_message(PARAMS, timestamp)


# --- signing --------------------------------------------------------------------


def test_sign_and_recover_known_key() -> None:
    signature = sign_request(PARAMS, TIMESTAMP, KEY)
    assert signature.startswith("0x") and len(signature) == 2 + 130
    assert recover_signer(PARAMS, TIMESTAMP, signature) == ADDRESS


def test_signature_equals_eth_keys_raw_signature_of_the_hash() -> None:
    digest = keccak(b'{"task_id":1}1692446475')
    expected = NATIVE.PrivateKey(bytes.fromhex(KEY[2:])).sign_msg_hash(digest).to_bytes()
    assert sign_request(PARAMS, TIMESTAMP, KEY) == "0x" + expected.hex()


def test_signature_is_not_an_ethereum_prefixed_message_signature() -> None:
    signature = bytes.fromhex(sign_request(PARAMS, TIMESTAMP, KEY)[2:])
    prefixed = NATIVE.PrivateKey(bytes.fromhex(KEY[2:])).sign_msg_hash(
        keccak(b"\x19Ethereum Signed Message:\n23" + signing_message(PARAMS, TIMESTAMP))
    )
    assert signature != prefixed.to_bytes()


def test_key_forms_give_the_same_signature() -> None:
    account = Account.from_key(KEY)
    upper = "0x" + KEY[2:].upper()
    forms: list[Any] = [KEY, KEY[2:], upper, bytes.fromhex(KEY[2:]), account]
    signatures = {sign_request(PARAMS, TIMESTAMP, form) for form in forms}
    assert len(signatures) == 1


@pytest.mark.parametrize(
    ("key", "error", "message"),
    [
        ("0x1234", ValueError, "32 bytes"),
        ("0x" + "zz" * 32, ValueError, "not hex"),
        (b"\x00" * 32, ValueError, "out of range"),
        (SECP256K1_N.to_bytes(32, "big"), ValueError, "out of range"),
        (12345, TypeError, "int"),
    ],
)
def test_bad_private_keys_rejected(key: Any, error: type[Exception], message: str) -> None:
    with pytest.raises(error, match=message):
        sign_request(PARAMS, TIMESTAMP, key)


def test_changed_params_or_timestamp_recover_another_address() -> None:
    signature = sign_request(PARAMS, TIMESTAMP, KEY)
    assert recover_signer({"task_id": 2}, TIMESTAMP, signature) != ADDRESS
    assert recover_signer(PARAMS, TIMESTAMP + 1, signature) != ADDRESS


# --- recovery rejections -----------------------------------------------------------


def _parts(signature: str) -> tuple[int, int, int]:
    raw = bytes.fromhex(signature[2:])
    return int.from_bytes(raw[:32], "big"), int.from_bytes(raw[32:64], "big"), raw[64]


def _compose(r: int, s: int, v: int) -> str:
    return "0x" + (r.to_bytes(32, "big") + s.to_bytes(32, "big") + bytes([v])).hex()


GOOD = sign_request(PARAMS, TIMESTAMP, KEY)
R, S, V = _parts(GOOD)


def _fault(signature: Any) -> SignatureError:
    with pytest.raises(SignatureError) as caught:
        recover_signer(PARAMS, TIMESTAMP, signature)
    assert isinstance(caught.value, ValueError)
    return caught.value


@pytest.mark.parametrize(
    "signature",
    [
        GOOD[2:],  # no 0x prefix
        "0x" + "zz" * 65,
        GOOD[:-1],  # odd number of digits
        GOOD[:-2],  # 64 bytes
        GOOD + "00",  # 66 bytes
        "0x",
        GOOD[:10] + " " + GOOD[10:],
        None,
    ],
)
def test_malformed_signatures(signature: Any) -> None:
    assert _fault(signature).fault is SignatureFault.MALFORMED


def test_wrong_length_message_says_65_bytes() -> None:
    assert "65 bytes" in str(_fault(GOOD[:-2]))


@pytest.mark.parametrize("v", [27, 28])
def test_ethereum_style_v_rejected_with_hint(v: int) -> None:
    error = _fault(_compose(R, S, v))
    assert error.fault is SignatureFault.ETHEREUM_V
    assert "{0, 1}" in error.message and "subtract 27" in error.message


def test_ethereum_style_v_minus_27_is_accepted() -> None:
    ethereum_style = _compose(R, S, V + 27)
    with pytest.raises(SignatureError):
        recover_signer(PARAMS, TIMESTAMP, ethereum_style)
    fixed = _compose(*_parts(ethereum_style)[:2], _parts(ethereum_style)[2] - 27)
    assert recover_signer(PARAMS, TIMESTAMP, fixed) == ADDRESS


@pytest.mark.parametrize("v", [2, 3, 26, 29, 255])
def test_other_v_rejected(v: int) -> None:
    assert _fault(_compose(R, S, v)).fault is SignatureFault.BAD_V


def test_high_s_rejected_as_malleable() -> None:
    # (r, n - s) with the flipped recovery id is the same signature mirrored: valid
    # ECDSA, but go-ethereum's VerifySignature refuses it.
    error = _fault(_compose(R, SECP256K1_N - S, 1 - V))
    assert error.fault is SignatureFault.HIGH_S
    assert "malleable" in error.message


def test_s_exactly_half_n_is_low() -> None:
    # n/2 itself is the largest low s; it must pass the range checks (recovery then
    # yields some address, not necessarily ours).
    address = recover_signer(PARAMS, TIMESTAMP, _compose(R, SECP256K1_N // 2, V))
    assert address.startswith("0x") and len(address) == 42


@pytest.mark.parametrize(
    ("r", "s"),
    [(0, S), (SECP256K1_N, S), (2**256 - 1, S), (R, 0), (R, SECP256K1_N), (R, 2**256 - 1)],
)
def test_r_or_s_out_of_range(r: int, s: int) -> None:
    assert _fault(_compose(r, s, V)).fault is SignatureFault.OUT_OF_RANGE


def test_unrecoverable_signature() -> None:
    # x = 5 is not the x-coordinate of any secp256k1 point: 5**3 + 7 is a non-residue.
    error = _fault(_compose(5, 12345, 0))
    assert error.fault is SignatureFault.UNRECOVERABLE


# --- properties ------------------------------------------------------------------

_special_text = st.text(
    alphabet=st.one_of(
        st.sampled_from(list('<>&"\\\n\r\t\b\f\x00\x1f\x7f\u2028\u2029é😀')),
        st.characters(codec="utf-8"),
    ),
    max_size=20,
)
_json_values = st.recursive(
    st.none() | st.booleans() | st.integers(-(2**70), 2**70) | _special_text,
    lambda children: st.lists(children, max_size=4)
    | st.dictionaries(_special_text, children, max_size=4),
    max_leaves=12,
)
_params = st.dictionaries(_special_text, _json_values, max_size=5)
_keys = st.integers(1, SECP256K1_N - 1).map(lambda k: k.to_bytes(32, "big"))


@settings(derandomize=True, max_examples=150, deadline=None)
@given(params=_params, timestamp=st.integers(0, 2**40), key=_keys)
def test_round_trip_recovers_the_signer(
    params: dict[str, Any], timestamp: int, key: bytes
) -> None:
    signature = sign_request(params, timestamp, key)
    _, s, v = _parts(signature)
    assert v in (0, 1) and s <= SECP256K1_N // 2
    assert recover_signer(params, timestamp, signature) == Account.from_key(key).address


@settings(derandomize=True, max_examples=300, deadline=None)
@given(params=_params)
def test_output_is_json_that_decodes_to_the_params(params: dict[str, Any]) -> None:
    data = serialize_params(params)
    assert json.loads(data) == params  # no surrogates in the strategy: decodes exactly
    assert not any(b in data for b in b"<>&") and all(b >= 0x20 for b in data)
    assert "\u2028".encode() not in data and "\u2029".encode() not in data


_plain_text = st.text(
    alphabet=st.characters(
        codec="utf-8",
        exclude_characters="<>&\u2028\u2029",
        exclude_categories=["Cc"],  # controls: Go and Python differ on \b \f; \x7f is Cc too
    )
    | st.sampled_from(["\n", "\r", "\t", '"', "\\", "\x7f"]),
    max_size=20,
)
_plain_values = st.recursive(
    st.none() | st.booleans() | st.integers() | _plain_text,
    lambda children: st.lists(children, max_size=4)
    | st.dictionaries(_plain_text, children, max_size=4),
    max_leaves=12,
)


@settings(derandomize=True, max_examples=300, deadline=None)
@given(params=st.dictionaries(_plain_text, _plain_values, max_size=5))
def test_without_special_characters_equals_python_compact_json(params: dict[str, Any]) -> None:
    expected = json.dumps(params, separators=(",", ":"), sort_keys=True, ensure_ascii=False)
    assert serialize_params(params) == expected.encode("utf-8")
