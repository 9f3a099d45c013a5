"""Keep API keys out of text we did not write ourselves: vendor error messages and log records."""

from __future__ import annotations

import logging
from collections.abc import Iterable

# No run of this many characters of a key may appear anywhere (SPEC: Errors, secrets rule).
WINDOW = 8
QUARTER = WINDOW // 2
MASK = "[redacted]"


class Redactor:
    """Replaces every run of `WINDOW` or more characters taken from any known secret.

    It keeps only the (per-process salted) hashes of the secrets' pieces, so not even the redactor holds a
    readable fragment of a key; a hash collision could only over-redact.
    """

    def __init__(self, secrets: Iterable[str]) -> None:
        secrets = [secret for secret in secrets if secret]
        # A secret shorter than WINDOW (an HTTP auth token, say) is masked whole: its own hash, by its length.
        self._short: dict[int, frozenset[int]] = {}
        for secret in secrets:
            if len(secret) < WINDOW:
                self._short[len(secret)] = self._short.get(len(secret), frozenset()) | {hash(secret)}
        self._hashes = frozenset(
            hash(secret[i : i + WINDOW]) for secret in secrets for i in range(max(0, len(secret) - WINDOW + 1))
        )
        # Any run of WINDOW characters of a key contains a QUARTER-long piece starting at a multiple of QUARTER
        # in the text: checking only those positions first rules out almost every log line in a few lookups.
        self._quarters = frozenset(
            hash(secret[i : i + QUARTER]) for secret in secrets for i in range(max(0, len(secret) - QUARTER + 1))
        )

    def __bool__(self) -> bool:
        return bool(self._hashes or self._short)

    def __repr__(self) -> str:
        return f"Redactor({len(self._hashes) + sum(map(len, self._short.values()))} pieces)"

    def __call__(self, text: str) -> str:
        windows = [(length, hashes) for length, hashes in self._short.items() if len(text) >= length]
        if len(text) >= WINDOW and self._hashes and self._may_contain_a_secret(text):
            windows.append((WINDOW, self._hashes))
        if not windows:
            return text
        covered = [False] * len(text)
        found = False
        for length, hashes in windows:
            for start in range(len(text) - length + 1):
                if hash(text[start : start + length]) in hashes:
                    covered[start : start + length] = [True] * length
                    found = True
        if not found:
            return text
        out: list[str] = []
        for index, char in enumerate(text):
            if not covered[index]:
                out.append(char)
            elif index == 0 or not covered[index - 1]:
                out.append(MASK)
        return "".join(out)

    def _may_contain_a_secret(self, text: str) -> bool:
        quarters = self._quarters
        return any(hash(text[i : i + QUARTER]) in quarters for i in range(0, len(text) - QUARTER + 1, QUARTER))


class RedactingFilter(logging.Filter):
    """A handler filter that renders each record once, then scrubs secrets from the result."""

    def __init__(self, redactor: Redactor) -> None:
        super().__init__()
        self._redactor = redactor

    def filter(self, record: logging.LogRecord) -> bool:
        """Never raises: a record whose arguments do not fit its format (any library's mistake) is kept as its
        format string alone, without the arguments, which may hold anything."""
        if self._redactor:
            try:
                message = record.getMessage()
            except Exception:  # a filter that raises would break the caller's log call, not just the log line
                message = f"{record.msg} [log arguments that do not fit this message were dropped]"
            if record.exc_info and not record.exc_text:
                record.exc_text = logging.Formatter().formatException(record.exc_info)
            record.msg, record.args = self._redactor(message), None
            if record.exc_text:
                record.exc_text = self._redactor(record.exc_text)
            record.exc_info = None if record.exc_text else record.exc_info
        return True
