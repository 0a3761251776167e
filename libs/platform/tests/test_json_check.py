"""The request guard's JSON check: what Python reads but no other JSON parser does (fast)."""

from __future__ import annotations

import pytest

from switchboard_platform.http import _Refused, check_json


@pytest.mark.parametrize(
    "raw",
    [
        b'{"name": "\\ud800"}',
        b'{"name": "a\\uDFFFb"}',  # upper-case hex
        b'{"\\ud800": "key"}',  # in a key
        b'{"items": [{"deep": "\\udc00"}]}',
        b'{"notes": NaN}',
        b'{"notes": -Infinity}',
        b'{"name": "\xff"}',  # not UTF-8
    ],
)
def test_json_only_python_reads_is_refused(raw: bytes) -> None:
    with pytest.raises(_Refused) as refused:
        check_json(raw)
    assert refused.value.status == 422


@pytest.mark.parametrize(
    "raw",
    [
        b'{"name": "Zo\xc3\xab", "note": "a\\"quoted\\" \\\\u word"}',  # `\\u` is no escape
        b'{"name": "\\ud83d\\ude00", "plain": "\\u00e9"}',  # a surrogate pair, an escape
        b'{"name": "\xf0\x9f\x98\x80"}',  # the same character as UTF-8
        b"not json at all",  # left to FastAPI, which names the error
    ],
)
def test_json_every_parser_reads_passes(raw: bytes) -> None:
    check_json(raw)
