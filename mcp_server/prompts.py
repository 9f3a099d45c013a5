"""The prompts: each tells the model which tools to call, in what order, and what to say. Their arguments are
checked like the tools' IDs, so a prompt never tells the model to fetch something malformed."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from mcp.shared.exceptions import MCPError
from mcp_types import INVALID_PARAMS

from mcp_server.errors import InvalidArgument, Provider
from mcp_server.upstream.ids import check_id


def _checked(value: str, argument: str, provider: Provider) -> str:
    try:
        return check_id(value, argument=argument, provider=provider)
    except InvalidArgument as error:
        raise MCPError(code=INVALID_PARAMS, message=error.message) from None


async def diagnose_test_run(test_case_job_id: str) -> str:
    """Explain why a Retell test run failed, metric by metric, from its transcript."""
    job_id = _checked(test_case_job_id, "test_case_job_id", "retell")
    return (
        f"Fetch Retell test run {job_id} with get_test_run. If it is still pending or in_progress, call "
        "wait_for_test_run first. Then explain the outcome: for each metric in "
        "test_case_definition_snapshot.metrics, say whether it was met and quote the transcript turns that show "
        "it; quote result_explanation; and if the run failed or errored, name the most likely cause in the "
        "agent's behaviour or prompt and suggest one concrete change to fix it."
    )


async def review_test_case(id: str) -> str:
    """Compare a Tela test case's expectedOutput with its latest generation."""
    case_id = _checked(id, "id", "tela")
    return (
        f"Fetch Tela test case {case_id} with get_test_case and include_generations true. Compare its "
        "expectedOutput with its latest generation (the last in generations, or the newest by createdAt): say "
        "whether the generation meets the expectation, list the concrete differences, and suggest how to change "
        "the prompt or the expectation. If there are no generations, say so and review the messages and "
        "variables instead."
    )


@dataclass(frozen=True)
class PromptSpec:
    fn: Callable[..., Awaitable[str]]
    title: str
    vendor: Provider


PROMPTS = (
    PromptSpec(diagnose_test_run, "Diagnose a Retell test run", "retell"),
    PromptSpec(review_test_case, "Review a Tela test case", "tela"),
)
