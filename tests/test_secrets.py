"""Keys stay secret in everything the server holds: no repr() of any reachable object shows a piece of one."""

from __future__ import annotations

import logging
import string
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from mcp_server.cli import configure_logging
from mcp_server.redaction import Redactor
from mcp_server.server import build_server
from mcp_server.upstream.vendors import open_upstreams
from tests.conftest import RETELL_KEY, TELA_KEY, FakeVendors, make_settings


def pieces(text: str) -> list[str]:
    return [key[i : i + 8] for key in (RETELL_KEY, TELA_KEY) for i in range(len(key) - 7) if key[i : i + 8] in text]


def reachable(root: object, depth: int = 6) -> list[object]:
    """Objects reachable from `root` through attributes, slots and containers (strings and keys themselves excluded)."""
    seen: dict[int, object] = {}
    frontier = [root]
    for _ in range(depth):
        next_frontier = []
        for obj in frontier:
            if id(obj) in seen or isinstance(obj, str | bytes | int | float | bool | type(None)):
                continue
            seen[id(obj)] = obj
            children: list[Any] = []
            if isinstance(obj, dict):
                children += [*obj.keys(), *obj.values()]
            elif isinstance(obj, list | tuple | set | frozenset):
                children += list(obj)
            children += list(getattr(obj, "__dict__", {}).values())
            for slot in getattr(type(obj), "__slots__", ()):
                children.append(getattr(obj, slot, None))
            next_frontier += children
        frontier = next_frontier
    return list(seen.values())


@pytest.mark.anyio
async def test_no_object_the_server_holds_shows_a_key_in_its_repr(vendors: FakeVendors) -> None:
    """Settings, clients, HTTP clients, headers, pools, redactor: none of their reprs contains a piece of a key.

    Plain containers are walked through but not judged: a library's raw header list must hold the bytes it sends.
    """
    settings = make_settings()
    async with open_upstreams(settings, transport=vendors.transport()) as upstreams:
        await upstreams.retell.get_test_run("job_1")  # a pool with a live connection, headers sent
        objects = reachable(upstreams) + reachable(settings) + [build_server(settings)]
        instances = [obj for obj in objects if not isinstance(obj, dict | list | tuple | set | frozenset)]
        leaks = {type(obj).__qualname__: pieces(repr(obj)) for obj in instances if pieces(repr(obj))}
        kinds = {type(obj).__name__ for obj in instances}
    assert {"Settings", "SecretStr", "VendorHTTP", "Redactor", "AsyncClient", "Headers"} <= kinds  # the walk went deep
    assert leaks == {}


@given(st.text(alphabet=string.ascii_letters + string.digits + "_-", min_size=8, max_size=48), st.data())
def test_redactor_removes_every_run_of_eight_key_characters_wherever_it_sits(key: str, data: st.DataObject) -> None:
    """Whatever the key, and wherever a run of 8+ of its characters sits in a text, no such run survives."""
    start = data.draw(st.integers(0, len(key) - 8))
    end = data.draw(st.integers(start + 8, len(key)))
    text = data.draw(st.text(max_size=20)) + key[start:end] + data.draw(st.text(max_size=20))
    out = Redactor([key])(text)
    assert all(key[i : i + 8] not in out for i in range(len(key) - 7))


def test_a_secret_shorter_than_the_window_is_masked_whole() -> None:
    """An HTTP auth token of 6 characters (or any short secret) never appears, even echoed into vendor text."""
    redact = Redactor(["tok3n9", "key_retell_5f1c9a7d3e2b8046aa"])
    assert redact("the vendor said: bad token tok3n9!") == "the vendor said: bad token [redacted]!"
    assert "tok3n9" not in redact("tok3n9tok3n9 and 5f1c9a7d3e")
    assert redact("nothing secret here") == "nothing secret here"


def test_the_log_filter_never_raises_on_a_malformed_log_call(capsys: pytest.CaptureFixture[str]) -> None:
    """A library's log call whose arguments do not fit its format neither raises at the call site nor leaks its
    arguments; the line is still written, redacted."""
    configure_logging("INFO", Redactor(["key_retell_5f1c9a7d3e2b8046aa"]))
    logger = logging.getLogger("some.library")
    logger.info("two placeholders %s %s", "key_retell_5f1c9a7d3e2b8046aa")  # one argument short
    logger.info("fine: %s", "key_retell_5f1c9a7d3e2b8046aa")
    _, err = capsys.readouterr()
    assert "two placeholders %s %s [log arguments that do not fit this message were dropped]" in err
    assert "fine: [redacted]" in err and "5f1c9a7d" not in err
