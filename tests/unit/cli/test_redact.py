"""No traceback, error message or log line shows an Authorization header or a bearer token."""

from __future__ import annotations

import io
import logging

import pytest
import requests

from hk8s.cli._output import Output, OutputMode
from hk8s.cli._redact import RedactingFilter, redact

SECRET = "s3cr3tT0k3nValue"


def _raise_invalid_header() -> None:
    # What requests raises for a token read from a file with its line ending.
    session = requests.Session()
    request = requests.Request(
        "GET", "http://127.0.0.1:1/v1/servers", headers={"Authorization": f"Bearer {SECRET}\n"}
    )
    session.prepare_request(request)


def test_requests_puts_the_header_in_its_exception() -> None:
    # The premise: without redaction the token is in the exception text.
    with pytest.raises(requests.exceptions.InvalidHeader) as info:
        _raise_invalid_header()
    assert SECRET in str(info.value)


@pytest.mark.parametrize("mode", [OutputMode.text, OutputMode.json])
@pytest.mark.parametrize("debug", [False, True])
def test_error_reports_never_show_the_token(
    capsys: pytest.CaptureFixture[str], mode: OutputMode, debug: bool
) -> None:
    try:
        _raise_invalid_header()
    except requests.exceptions.InvalidHeader as exc:
        Output(mode=mode, debug=debug).failure(exc, 1)
    seen = capsys.readouterr()
    assert SECRET not in seen.out + seen.err
    assert "InvalidHeader" in seen.out + seen.err
    if debug:
        assert "Traceback" in seen.err


@pytest.mark.parametrize(
    "text",
    [
        f"Authorization: Bearer {SECRET}",
        f"{{'Authorization': 'Bearer {SECRET}', 'User-Agent': 'hk8s'}}",
        f"header value: 'Bearer {SECRET}\\n'",
        f"token={SECRET}",
    ],
)
def test_redact_masks_header_values(text: str) -> None:
    assert SECRET not in redact(text)
    assert "<redacted>" in redact(text)


def test_log_records_are_redacted() -> None:
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.addFilter(RedactingFilter())
    logger = logging.getLogger("hk8s.test.redact")
    logger.addHandler(handler)
    logger.setLevel(logging.DEBUG)
    try:
        logger.debug("send: %s", {"Authorization": f"Bearer {SECRET}"})
    finally:
        logger.removeHandler(handler)
    assert SECRET not in stream.getvalue()
    assert "send:" in stream.getvalue()
