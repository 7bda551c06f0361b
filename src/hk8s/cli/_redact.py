"""Credentials never reach the terminal: tracebacks and log records are scrubbed.

requests puts a refused header value in its exception text (``InvalidHeader: Invalid leading
whitespace, reserved character(s), or return character(s) in header value: 'Bearer ...'``),
and a ``--debug`` traceback prints exception texts and local reprs. hk8s checks the token
before sending anything (``_env.check_token``); this is the second line: whatever text leaves
through the error reporter or the logging handler has Authorization values and bearer tokens
replaced.
"""

from __future__ import annotations

import logging
import re

__all__ = ["RedactingFilter", "install_log_redaction", "redact"]

_PATTERNS = [
    # "Authorization: Bearer x", "'Authorization': 'Bearer x'", "authorization=Basic x"
    re.compile(r"(?i)(authorization['\"]?\s*[:=]\s*['\"]?)[^'\"\n,}]+"),
    re.compile(r"(?i)(bearer\s+)[^\s'\",}]+"),
    # kubeconfig-style fields that may end up in a repr
    re.compile(r"(?i)((?:client-key-data|token)['\"]?\s*[:=]\s*['\"]?)[^'\"\s,}]+"),
]
_MASK = "<redacted>"


def redact(text: str) -> str:
    """``"Authorization: Bearer abc"`` -> ``"Authorization: <redacted>"``."""
    for pattern in _PATTERNS:
        text = pattern.sub(lambda m: m.group(1) + _MASK, text)
    return text


class RedactingFilter(logging.Filter):
    """Rewrites each record's final message; never drops a record."""

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        cleaned = redact(message)
        if cleaned != message:
            record.msg, record.args = cleaned, None
        return True


def install_log_redaction() -> None:
    """Add the filter to every root handler (after ``logging.basicConfig``)."""
    for handler in logging.getLogger().handlers:
        if not any(isinstance(f, RedactingFilter) for f in handler.filters):
            handler.addFilter(RedactingFilter())
