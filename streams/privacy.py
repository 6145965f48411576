"""Pseudonymisation of participant ids for everything that leaves the pipeline.

A pseudonym is a keyed hash (HMAC-SHA256) of the participant id, so the same
id always maps to the same pseudonym under one key (dashboards, joins across
runs and the Kafka workers agree) while nobody without the key can map a
pseudonym back to an id or test a guessed id. The output is exactly
:meth:`streams.settings.PrivacySettings.pseudonymise`'s (``"p"`` + 20 hex
digits, 80 bits), so the in-process replay and the workers write the same
pseudonyms for the same key.

The key comes from the environment or a file, never from a command-line
argument (which would show in ``ps`` and shell history) and never appears in
``repr``, logs or error messages. Sources, first found wins:

1. ``PRODROMAL_PSEUDONYM_KEY`` (the key itself) or ``PRODROMAL_PSEUDONYM_KEY_FILE`` (a path);
2. the settings object's ``privacy.pseudonym_key`` / ``privacy.pseudonym_key_file``
   (``PRODROMAL_PRIVACY__PSEUDONYM_KEY``, ``PRODROMAL_PRIVACY__PSEUDONYM_KEY_FILE``, or the TOML file).

Examples
--------
>>> p = Pseudonymizer(b"0123456789abcdef-not-a-real-key")
>>> p("P0001") == p("P0001") != p("P0002")
True
>>> len(p("P0001")), p("P0001")[0]
(21, 'p')
>>> "0123456789abcdef" in repr(p)
False
"""

from __future__ import annotations

import hashlib
import hmac
import os
from collections.abc import Mapping
from pathlib import Path

__all__ = ["Pseudonymizer", "PrivacyError", "load_pseudonymizer", "pseudonym", "MIN_KEY_BYTES", "ENV_KEY", "ENV_KEY_FILE"]

ENV_KEY = "PRODROMAL_PSEUDONYM_KEY"
ENV_KEY_FILE = "PRODROMAL_PSEUDONYM_KEY_FILE"
#: Shorter keys are guessable; the settings object enforces the same minimum.
MIN_KEY_BYTES = 16
MAX_KEY_FILE_BYTES = 64 * 1024
#: Hex digits kept: 80 bits, no collision in any realistic cohort (birthday bound ~1e12 ids).
HEX_DIGITS = 20


class PrivacyError(ValueError):
    """The pseudonymisation key is missing, too short or unreadable (the message never holds the key)."""


class Pseudonymizer:
    """Callable ``participant_id -> pseudonym`` with a secret key.

    Parameters
    ----------
    key : bytes or str
        At least :data:`MIN_KEY_BYTES` bytes. A str is UTF-8 encoded.
    """

    __slots__ = ("_key", "_cache")

    def __init__(self, key: bytes | str):
        kb = key.encode("utf-8") if isinstance(key, str) else bytes(key)
        if len(kb) < MIN_KEY_BYTES:
            raise PrivacyError(f"pseudonymisation key must be at least {MIN_KEY_BYTES} bytes (got {len(kb)})")
        self._key = kb
        self._cache: dict[str, str] = {}

    def __call__(self, participant_id: str) -> str:
        r = self._cache.get(participant_id)
        if r is None:
            mac = hmac.new(self._key, str(participant_id).encode("utf-8"), hashlib.sha256)
            r = "p" + mac.hexdigest()[:HEX_DIGITS]
            if len(self._cache) < 1_000_000:  # ids are bounded by the cohort; the cap guards memory anyway
                self._cache[participant_id] = r
        return r

    def __repr__(self) -> str:
        return "Pseudonymizer(key=**********)"

    __str__ = __repr__

    def __reduce__(self):
        # Faust tables and multiprocessing pickle state; never write the key into a changelog.
        raise TypeError("Pseudonymizer holds a secret key and is not picklable; load it in each process")


def _read_key_file(path: Path) -> bytes:
    try:
        if path.stat().st_size > MAX_KEY_FILE_BYTES:
            raise PrivacyError(f"pseudonymisation key file {path} is larger than {MAX_KEY_FILE_BYTES} bytes")
        data = path.read_bytes()
    except OSError as e:
        raise PrivacyError(f"cannot read pseudonymisation key file {path}: {e.strerror or type(e).__name__}") from None
    # A trailing newline is an editor artefact, not part of the key (as in streams.settings).
    return data.rstrip(b"\r\n")


def load_pseudonymizer(env: Mapping[str, str] | None = None, settings=None, required: bool = False) -> Pseudonymizer | None:
    """The configured pseudonymizer, or None when no key is configured (ids pass unchanged).

    Parameters
    ----------
    env : mapping, default ``os.environ``
    settings : :class:`streams.settings.Settings`, optional
        Used when the ``PRODROMAL_PSEUDONYM_KEY*`` variables are absent.
    required : bool
        Raise :class:`PrivacyError` instead of returning None when no key is found.
    """
    env = os.environ if env is None else env
    if env.get(ENV_KEY):
        return Pseudonymizer(env[ENV_KEY])
    if env.get(ENV_KEY_FILE):
        return Pseudonymizer(_read_key_file(Path(env[ENV_KEY_FILE])))
    if settings is None and any(k.startswith("PRODROMAL_PRIVACY__") for k in env):
        from streams.settings import load_settings  # noqa: PLC0415 - pydantic only when configured that way

        settings = load_settings(env=dict(env))
    priv = getattr(settings, "privacy", None)
    if priv is not None and priv.pseudonym_key is not None:
        return Pseudonymizer(priv.pseudonym_key.get_secret_value())
    if required:
        raise PrivacyError(f"no pseudonymisation key: set {ENV_KEY} or {ENV_KEY_FILE} "
                           "(or privacy.pseudonym_key[_file] in the settings)")
    return None


def pseudonym(participant_id: str, key: bytes | str | None = None) -> str:
    """Pseudonym of one id with ``key``, or with the configured key when ``key`` is None.

    For many ids build one :class:`Pseudonymizer` (or :func:`load_pseudonymizer`) and call it.
    """
    p = Pseudonymizer(key) if key is not None else load_pseudonymizer(required=True)
    return p(participant_id)
