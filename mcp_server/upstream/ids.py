"""ID checks that run before any request, so no argument can steer a request off its one endpoint."""

from __future__ import annotations

import re

from mcp_server.errors import InvalidArgument, Provider

MAX_ID_LENGTH = 128
# Explicit ASCII classes: `\w` would admit full-width and other Unicode letters.
RETELL_ID = re.compile(r"[A-Za-z0-9_-]{1,128}")
UUID = re.compile(r"[0-9A-Fa-f]{8}-[0-9A-Fa-f]{4}-[0-9A-Fa-f]{4}-[0-9A-Fa-f]{4}-[0-9A-Fa-f]{12}")


def _shown(value: str) -> str:
    """A short, printable rendering of a rejected value (it may be hostile or huge)."""
    return repr(value) if len(value) <= 40 else f"{value[:37]!r}… ({len(value):,} characters)"


def check_id(value: str, *, argument: str, provider: Provider) -> str:
    """Return `value` if it has the shape of that vendor's IDs, else raise `InvalidArgument` naming the rule."""
    if provider == "retell":
        if RETELL_ID.fullmatch(value):
            return value
        rule = f"1-{MAX_ID_LENGTH} ASCII letters, digits, '_' or '-'"
    else:
        if UUID.fullmatch(value):
            return value
        rule = "a UUID such as 550e8400-e29b-41d4-a716-446655440000"
    shown = "an empty string" if not value else _shown(value)
    raise InvalidArgument(f"{argument} must be {rule}; got {shown}. Nothing was sent.", provider=provider)


def check_ids(values: list[str], *, argument: str, provider: Provider) -> list[str]:
    """Every ID of a list checked, and at least one: a run of nothing is a mistake, not a request."""
    if not values:
        raise InvalidArgument(f"{argument} must name at least one ID. Nothing was sent.", provider=provider)
    return [check_id(value, argument=argument, provider=provider) for value in values]


def check_token(value: str, *, argument: str, provider: Provider) -> str:
    """An opaque vendor token (a pagination key): it only ever travels as an encoded query parameter, so any
    printable ASCII without spaces is accepted, up to 1,024 characters."""
    if 0 < len(value) <= 1024 and value.isascii() and value.isprintable() and " " not in value:
        return value
    shown = "an empty string" if not value else _shown(value)
    raise InvalidArgument(
        f"{argument} must be the pagination_key from the previous page, unchanged; got {shown}. Nothing was sent.",
        provider=provider,
    )
