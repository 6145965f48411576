"""Logging set-up for prodromal processes: one handler, secrets redacted from every line.

prodromal's own log messages name participants by id and never carry health
values or secrets (tests/test_logging_hygiene.py checks that). This module adds
a last line of defence for what third-party libraries or tracebacks might
print: the formatter replaces

* every configured secret value (InfluxDB token, Kafka SASL password,
  pseudonymisation key, dashboard token; from the settings object and from
  ``PRODROMAL_*`` variables whose names say TOKEN, PASSWORD, SECRET or KEY),
* passwords in URLs (``scheme://user:password@host`` -> ``scheme://user:***@host``),
* ``token=...``, ``password=...`` and ``Authorization: Token ...`` fragments,

with ``***`` in the whole formatted line, traceback included.

Examples
--------
>>> import io, logging
>>> buf = io.StringIO()
>>> _ = configure_logging("INFO", secrets=["s3cr3t-token-value"], stream=buf, logger="prodromal.doctest")
>>> logging.getLogger("prodromal.doctest").warning("connect http://u:pw@h:1 with s3cr3t-token-value")
>>> "s3cr3t" in buf.getvalue(), "pw@" in buf.getvalue()
(False, False)
"""

from __future__ import annotations

import logging
import os
import re
import sys
from collections.abc import Iterable, Mapping
from typing import IO, Any

__all__ = ["RedactingFormatter", "configure_logging", "secrets_from", "redact"]

MASK = "***"
#: Shorter values would mask ordinary words and numbers; real secrets are longer.
MIN_SECRET_LEN = 6
_SECRET_NAME = re.compile(r"(TOKEN|PASSWORD|PASSWD|SECRET|KEY)", re.IGNORECASE)
_URL_PASSWORD = re.compile(r"(?P<pre>[A-Za-z][A-Za-z0-9+.-]*://[^/\s:@]*:)(?P<pw>[^@\s/]+)(?=@)")
_KV = re.compile(r"(?P<k>\b(?:token|password|passwd|secret|api[_-]?key|sasl_plain_password)\b\s*[=:]\s*)(?P<v>['\"]?)[^\s'\",;&]+", re.IGNORECASE)
_AUTH = re.compile(r"(?P<k>Authorization\s*[:=]\s*['\"]?(?:Token|Bearer|Basic)\s+)[^\s'\",]+", re.IGNORECASE)
DEFAULT_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"


def _value(v: Any) -> str | None:
    if v is None:
        return None
    if hasattr(v, "get_secret_value"):
        v = v.get_secret_value()
    if isinstance(v, bytes):
        v = v.decode("utf-8", "replace")
    return str(v)


def secrets_from(settings: Any = None, env: Mapping[str, str] | None = None) -> list[str]:
    """Secret values to mask: SecretStr fields of the settings object and secret-named PRODROMAL_ variables.

    Secret files named by ``*_FILE`` variables are read (up to 64 KiB) so their content is masked too.
    """
    env = os.environ if env is None else env
    out: set[str] = set()
    if settings is not None:
        for section in ("kafka", "influx", "privacy", "dashboard"):
            sec = getattr(settings, section, None)
            if sec is None:
                continue
            for name in type(sec).model_fields if hasattr(type(sec), "model_fields") else ():
                v = getattr(sec, name, None)
                if hasattr(v, "get_secret_value"):
                    out.add(_value(v) or "")
    for k, v in env.items():
        if not k.upper().startswith("PRODROMAL_") or not _SECRET_NAME.search(k) or not v:
            continue
        if k.upper().endswith("_FILE"):
            try:
                if os.path.getsize(v) <= 64 * 1024:
                    with open(v, encoding="utf-8", errors="replace") as fh:
                        out.add(fh.read().rstrip("\r\n"))
            except OSError:
                pass
        else:
            out.add(v)
    return sorted((s for s in out if len(s) >= MIN_SECRET_LEN), key=len, reverse=True)


def redact(text: str, secrets: Iterable[str] = ()) -> str:
    """``text`` with secret values, URL passwords and token/password fragments masked."""
    for s in secrets:
        if s and s in text:
            text = text.replace(s, MASK)
    text = _URL_PASSWORD.sub(lambda m: m["pre"] + MASK, text)
    text = _KV.sub(lambda m: m["k"] + m["v"] + MASK, text)
    return _AUTH.sub(lambda m: m["k"] + MASK, text)


class RedactingFormatter(logging.Formatter):
    """A Formatter whose whole output (message, arguments, traceback) passes through :func:`redact`."""

    def __init__(self, fmt: str | None = DEFAULT_FORMAT, secrets: Iterable[str] = (), **kw: Any):
        super().__init__(fmt, **kw)
        self.secrets = sorted({s for s in secrets if s and len(s) >= MIN_SECRET_LEN}, key=len, reverse=True)

    def format(self, record: logging.LogRecord) -> str:
        return redact(super().format(record), self.secrets)


def configure_logging(
    level: str | int = "INFO",
    settings: Any = None,
    secrets: Iterable[str] = (),
    stream: IO[str] | None = None,
    logger: str | None = None,
    env: Mapping[str, str] | None = None,
) -> logging.Handler:
    """Install one redacting stream handler (stderr by default) on ``logger`` (root when None).

    Replaces handlers this function installed earlier, so calling it twice does not
    double every line. Returns the handler.
    """
    lg = logging.getLogger(logger)
    for h in list(lg.handlers):
        if getattr(h, "_prodromal", False):
            lg.removeHandler(h)
    handler = logging.StreamHandler(stream if stream is not None else sys.stderr)
    handler.setFormatter(RedactingFormatter(secrets=[*secrets, *secrets_from(settings, env)]))
    handler._prodromal = True  # type: ignore[attr-defined]
    lg.addHandler(handler)
    lg.setLevel(level if isinstance(level, int) else str(level).upper())
    return handler
