"""One yes, one write (issue 24, point 6): under protocol 2026-07-28 a write's question comes back as a sealed
`requestState` plus the user's answer, and sending both again must not send the write again. In one process the used
confirmations are remembered in memory; replicas share them through Redis (`request_state_store`, whose URL is
checked at start-up and whose password `check` and the logs never show). The replicas themselves are in
tests/test_confirm_http.py."""

from __future__ import annotations

from typing import Any

import anyio
import pytest
from mcp import Client
from mcp_types import ElicitResult, InputRequiredResult, InputResponses

from mcp_server.check import config_rows
from mcp_server.cli import main
from mcp_server.config import ENV_VARS, ConfigError, load_settings
from mcp_server.redaction import Redactor
from mcp_server.server import build_server
from tests.conftest import error_of
from tests.test_confirm import SENDS, WRITES, Recorder, answering, settings

pytestmark = pytest.mark.anyio

STORE_ENV = "RETELL_TELA_MCP_REQUEST_STATE_STORE"  # SPEC: configuration
PASSWORD = "pw-7d1c9e4b2a6f8e3d5c0b"
ALREADY_USED = "this confirmation was already used"


async def question_and_yes(client: Client, tool: str) -> tuple[InputResponses, str]:
    """A write's first round as a 2026-07-28 client sees it (the question and its sealed state), and the user's yes:
    what the client sends back, and what anyone holding it could send again."""
    first = await client.session.call_tool(tool, WRITES[tool][0], allow_input_required=True)
    assert isinstance(first, InputRequiredResult) and first.request_state and first.input_requests
    answers: InputResponses = {key: ElicitResult(action="accept", content={}) for key in first.input_requests}
    return answers, first.request_state


async def answered(client: Client, tool: str, answers: InputResponses, state: str) -> Any:
    return await client.call_tool(tool, WRITES[tool][0], input_responses=answers, request_state=state)


def assert_already_used(result: Any) -> None:
    error = error_of(result)
    assert error["code"] == "declined" and error["retryable"] is False, error
    assert ALREADY_USED in error["message"] and "nothing was sent" in error["message"].lower()


@pytest.mark.parametrize("tool", WRITES)
async def test_a_confirmation_sent_again_is_declined_and_sends_nothing(tool: str) -> None:
    """The question's sealed state and the user's yes, sent three times: the first sends the write, the next two are
    `declined` ("this confirmation was already used") and send nothing (three batches or drafts before)."""
    vendors = Recorder()
    server = build_server(settings(), transport=vendors.transport)
    async with Client(server, mode="2026-07-28", elicitation_callback=answering("accept", [])) as client:
        answers, state = await question_and_yes(client, tool)
        results = [await answered(client, tool, answers, state) for _ in range(3)]
    assert results[0].is_error is False, results[0].content[0].text
    for again in results[1:]:
        assert_already_used(again)
    assert vendors.writes() == SENDS[tool]


async def test_a_confirmation_is_used_once_across_the_connections_of_one_process() -> None:
    """The used confirmations belong to the process, not to a connection: a yes sent again on another connection to
    the same server is declined too."""
    vendors, tool = Recorder(), "run_batch_test"
    server = build_server(settings(), transport=vendors.transport)
    callback = answering("accept", [])
    async with Client(server, mode="2026-07-28", elicitation_callback=callback) as client:
        answers, state = await question_and_yes(client, tool)
        first = await answered(client, tool, answers, state)
    async with Client(server, mode="2026-07-28", elicitation_callback=callback) as other:
        again = await answered(other, tool, answers, state)
    assert first.is_error is False
    assert_already_used(again)
    assert vendors.writes() == SENDS[tool]


async def test_copies_of_a_confirmation_sent_at_once_send_one_write() -> None:
    """Five copies of one yes, all in flight together: exactly one sends the write, four are declined."""
    vendors, tool = Recorder(), "draft_prompt_version"
    server = build_server(settings(), transport=vendors.transport)
    results: list[Any] = []
    async with Client(server, mode="2026-07-28", elicitation_callback=answering("accept", [])) as client:
        answers, state = await question_and_yes(client, tool)

        async def send() -> None:
            results.append(await answered(client, tool, answers, state))

        async with anyio.create_task_group() as group:
            for _ in range(5):
                group.start_soon(send)
    assert sorted(result.is_error for result in results) == [False, True, True, True, True]
    for refused in (result for result in results if result.is_error):
        assert_already_used(refused)
    assert vendors.writes() == SENDS[tool]


async def test_each_question_the_user_answers_is_a_confirmation_of_its_own() -> None:
    """Single use is per question, not per write: the same write asked and accepted twice is sent twice (its sealed
    state is new each time, though what it seals is the same)."""
    vendors, asked = Recorder(), list[str]()
    server = build_server(settings(), transport=vendors.transport)
    async with Client(server, mode="2026-07-28", elicitation_callback=answering("accept", asked)) as client:
        results = [await client.call_tool("run_batch_test", WRITES["run_batch_test"][0]) for _ in range(2)]
    assert [result.is_error for result in results] == [False, False] and len(asked) == 2
    assert vendors.writes() == SENDS["run_batch_test"] * 2


@pytest.mark.parametrize(
    ("url", "problem"),
    [
        ("http://store.example:6379", "must be a redis:// or rediss:// URL"),
        ("store.example:6379", "must be a redis:// or rediss:// URL"),
        (f"redis://:{PASSWORD}@", "needs a host"),
        (f"redis://:{PASSWORD}@store.example:0", "needs a host (and a port from 1 to 65535"),
        (f"redis://:{PASSWORD}@store.example:99999", "port that is not a number from 1 to 65535"),
        (f"redis://:{PASSWORD}@store.example/cache", "may end only in a database number"),
        (f"redis://:{PASSWORD}@store.example/0?socket_timeout=1", "no other path, query or fragment"),
        (f"redis://:{PASSWORD}@store.example #", "contains whitespace"),
    ],
)
def test_a_store_that_is_not_a_redis_url_stops_start_up_naming_the_setting(url: str, problem: str) -> None:
    """`request_state_store` is a redis:// or rediss:// URL with a host (and a port and a database number, if any):
    anything else is one line naming the variable and the problem, never quoting the URL's password."""
    with pytest.raises(ConfigError) as caught:
        load_settings(env={STORE_ENV: url})
    message = str(caught.value)
    assert message.startswith(f"config error: environment variable {STORE_ENV} (request_state_store): ")
    assert problem in message and "\n" not in message
    assert PASSWORD[:8] not in message and "store.example" not in message


def test_a_bad_store_url_stops_the_command_with_one_line(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """From the command line: exit 2 and one line on stderr."""
    monkeypatch.setenv(STORE_ENV, f"https://:{PASSWORD}@store.example")
    with pytest.raises(SystemExit) as caught:
        main(["check"])
    err = capsys.readouterr().err
    assert caught.value.code == 2 and err.count("\n") == 1 and STORE_ENV in err and PASSWORD[:8] not in err


@pytest.mark.parametrize(
    "url",
    [
        f"redis://:{PASSWORD}@store.example:6380/2",
        f"rediss://cache-user:{PASSWORD}@10.0.0.7/0",
        "redis://[::1]:6379",
    ],
)
def test_a_redis_url_is_taken_and_shown_with_its_password_masked(url: str) -> None:
    """A good URL loads (from the environment, or the file's key); `check` shows it with the password masked like a key,
    and the password is among the secrets every log line is scrubbed of."""
    loaded = load_settings(env={STORE_ENV: url})
    assert loaded.request_state_store is not None and loaded.request_state_store.get_secret_value() == url
    assert loaded.source_of("request_state_store") == "env" and PASSWORD not in repr(loaded)
    (shown,) = [value for key, value, _ in config_rows(loaded) if key == "request_state_store"]
    assert PASSWORD[:8] not in shown and PASSWORD[4:12] not in shown
    if PASSWORD in url:
        assert shown == url.replace(PASSWORD, f"{PASSWORD[:4]}…{PASSWORD[-4:]}")
        assert Redactor(loaded.secrets())(f"AUTH failed for {PASSWORD}") == "AUTH failed for [redacted]"
    else:
        assert shown == url


def test_without_a_store_check_says_used_confirmations_stay_in_memory() -> None:
    (row,) = [row for row in config_rows(load_settings(env={})) if row[0] == "request_state_store"]
    assert row == ("request_state_store", "(not set: in memory)", "default")


def test_a_shared_key_without_a_store_is_warned_about() -> None:
    """Replicas sharing `request_state_key` take each other's answers; without a shared store each remembers only
    its own used confirmations, which deserves a word at start-up."""
    key = {ENV_VARS["request_state_key"]: "k" * 40}
    (warning,) = load_settings(env=key).warnings
    assert "request_state_store" in warning and "k" * 8 not in warning
    assert load_settings(env={**key, STORE_ENV: "redis://127.0.0.1:6379/0"}).warnings == []
