"""Secrets never leave the process: credential-like configuration values are masked wherever visitseg
writes or logs its configuration.

A key is secret when its name (any part of a dotted Spark key such as `spark.hadoop.fs.s3a.secret.key`)
matches SECRET_KEY, or contains one of `output.redact_keys`. Its value is replaced by MASK in the
configuration's JSON (`runs.config_json`, `model_report.json`, the start-up log line), and a logging
filter replaces the values themselves in every log record, whichever library logs them. Spark's own
redaction (`spark.redaction.regex`: UI, event logs, plans) is widened to the same names.
"""

from __future__ import annotations

import logging
import re
from typing import Any, Iterable, Mapping

MASK = "***"
# secret, password, token, credential, access key, account key, private (key), SAS (Azure shared access
# signature) as a whole word, so "sasl" or "visas" are not secrets.
SECRET_KEY = r"secret|passw(or)?d|token|credential|access[._-]?key|account[._-]?key|private|(^|[._-])sas([._-]|$)"
_SECRET_KEY = re.compile(SECRET_KEY, re.IGNORECASE)


def is_secret_key(key: str, extra: Iterable[str] = ()) -> bool:
    lowered = key.lower()
    return bool(_SECRET_KEY.search(key)) or any(k.lower() in lowered for k in extra if k)


def redacted(values: Mapping[str, Any], extra: Iterable[str] = ()) -> dict[str, Any]:
    """A copy of a nested configuration dict with the values of secret keys replaced by MASK."""
    extra = tuple(extra)
    return {
        key: (MASK if is_secret_key(key, extra) and value not in ("", None) else redacted(value, extra) if isinstance(value, Mapping) else value)
        for key, value in values.items()
    }


def secret_values(values: Mapping[str, Any], extra: Iterable[str] = ()) -> list[str]:
    """The non-empty values of secret keys in a nested configuration dict, longest first."""
    extra = tuple(extra)
    found: list[str] = []
    for key, value in values.items():
        if isinstance(value, Mapping):
            found += secret_values(value, extra)
        elif is_secret_key(key, extra) and value not in ("", None):
            found.append(str(value))
    return sorted(set(found), key=len, reverse=True)


class SecretFilter(logging.Filter):
    """Replaces known secret values in a log record's final message (arguments included)."""

    def __init__(self, secrets: Iterable[str]) -> None:
        super().__init__()
        self.secrets = [s for s in secrets if s]

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        masked = message
        for secret in self.secrets:
            masked = masked.replace(secret, MASK)
        if masked != message:
            record.msg, record.args = masked, None
        return True


def mask_logs(secrets: Iterable[str]) -> None:
    """Install a SecretFilter on every handler of the root logger (where every library's records end)."""
    secret_filter = SecretFilter(secrets)
    for handler in logging.getLogger().handlers:
        handler.addFilter(secret_filter)
