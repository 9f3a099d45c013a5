"""The prompts: each tells the model which tools to call, in what order, and what to say. Their arguments are
checked like the tools' IDs, so a prompt never tells the model to fetch something malformed."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from mcp.shared.exceptions import MCPError
from mcp_types import INVALID_PARAMS

from mcp_server.errors import InvalidArgument, Provider
from mcp_server.tela.client import check_run_id
from mcp_server.tools.base import Ctx
from mcp_server.upstream.ids import check_id


def _checked(value: str, argument: str, provider: Provider) -> str:
    try:
        return check_id(value, argument=argument, provider=provider)
    except InvalidArgument as error:
        raise MCPError(code=INVALID_PARAMS, message=error.message) from None


async def diagnose_test_run(test_case_job_id: str) -> str:
    """Explain why a Retell test run failed, metric by metric, and the prompt lines behind it, with the exact edit."""
    job_id = _checked(test_case_job_id, "test_case_job_id", "retell")
    return (
        f"Fetch Retell test run {job_id} with get_test_run. If it is still pending or in_progress, call "
        "wait_for_test_run first. Then explain the outcome: for each metric in "
        "test_case_definition_snapshot.metrics, say whether it was met and quote the transcript turns that show "
        "it; quote result_explanation. If the run failed or errored, fetch the engine under test with "
        f"get_response_engine test_case_job_id={job_id}: it is the Retell LLM or conversation flow at the version "
        "that ran. Quote the lines of its prompt (general_prompt or global_prompt, the state_prompt of the state, "
        "or the node's instruction) that caused the failure, or say which rule is missing, and propose the exact "
        "edit: the field, the state or node, and the new text."
    )


async def review_test_case(id: str) -> str:
    """Compare a Tela test case's expectedOutput with its latest generation, and the prompt version behind it."""
    case_id = _checked(id, "id", "tela")
    return (
        f"Fetch Tela test case {case_id} with get_test_case and include_generations true. Compare its "
        "expectedOutput with its latest generation (the last in generations, or the newest by createdAt): say "
        "whether the generation meets the expectation and list the concrete differences. Read the prompt version "
        "under test with get_prompt_version (the version the generation names, if it names one; else the newest "
        "from list_prompt_versions for the case's promptId), quote the prompt lines behind the difference, and "
        "propose the exact change to the prompt, or to the expectation if it is the expectation that is wrong. "
        "If there are no generations, say so and review the messages and variables instead."
    )


async def compare_batches(before_batch_id: str, after_batch_id: str) -> str:
    """Say what a change fixed, what it broke and what still fails, between two Retell batches."""
    before = _checked(before_batch_id, "before_batch_id", "retell")
    after = _checked(after_batch_id, "after_batch_id", "retell")
    return (
        f"Compare Retell batch tests with compare_batch_tests before_batch_id={before} after_batch_id={after}. "
        "Give a short verdict: what the change fixed (the fixed list), what it broke (regressed), and what still "
        "fails (still_failing), each by test name; for a regression or a test still failing, say why from its "
        "result_explanation, reading the run with get_test_run where that is not enough. Mention tests found in "
        "one batch only, and say plainly if the comparison is not complete (incomplete_reason)."
    )


async def fix_failing_test(test_case_job_id: str) -> str:
    """Walk the fix of a failed Retell test: read it and the prompt that ran, draft the edit, rerun it on the draft,
    and compare."""
    job_id = _checked(test_case_job_id, "test_case_job_id", "retell")
    return (
        f"Help me fix the failed Retell test run {job_id}, one step at a time, telling me what you do. 1. Read it "
        f"with get_test_run and the engine that ran with get_response_engine test_case_job_id={job_id}; quote the "
        "prompt lines (general_prompt, a state's state_prompt, or a node's instruction) behind the failure. "
        "2. Propose the exact edit and wait for my go-ahead. 3. Draft it with draft_agent_version: the agent whose "
        "engine this is (ask me for its agent_id if we have not named it), base_version the version that ran, "
        "and only the changed fields in changes. If it answers unsafe_edit, tell me which phone numbers to pin and "
        "stop. 4. Rerun this test on the draft with run_batch_test: the run's test_case_definition_id, that "
        "agent_id, and version the draft's version. 5. Wait with summarize_batch_test wait_seconds=40. 6. Compare "
        "with compare_batch_tests: before the batch this run belongs to (the newest batch of the agent that has "
        "it, from list_batch_tests), after the new batch. Say whether the fix worked and what it broke, and remind "
        "me that the draft goes live only once I publish it in Retell's dashboard."
    )


async def test_from_completion_run(run_id: str) -> str:
    """Turn a Tela completion run that went wrong into a test case that fails, then fix the prompt until it passes."""
    try:
        run = check_run_id(run_id, argument="run_id")
    except InvalidArgument as error:
        raise MCPError(code=INVALID_PARAMS, message=error.message) from None
    return (
        f"Help me turn the Tela completion run {run} into a regression test, one step at a time, telling me what you "
        f"do. 1. Read it with get_completion_run id={run}: what the customer asked (raw_input.messages and "
        "variables) and what it answered (output_content.content); say what went wrong. 2. Draft the case with "
        f"draft_test_case_from_run run_id={run}. 3. Write its expected_output from what went wrong (what a good "
        "answer says), show me the case and wait for my go-ahead. 4. If save_test_case is available, save it with "
        "test_case's fields as they are plus expected_output; if not, give me the case to add in Tela and stop. "
        "5. If run_test_cases is available, run the new case on the version the run used (the draft's "
        "prompt_version_id, test_case_ids the new case's id), then read it with get_test_case "
        "include_generations=true: its newest generation should miss expected_output, which shows the test catches "
        "the problem. 6. Fix the prompt: read that version with get_prompt_version, quote the lines behind the miss "
        "(or say which rule is missing), propose the exact change and wait for my go-ahead; draft it with "
        "draft_prompt_version (base_version_id that version, changes.content the new text); rerun the case on the "
        "new draft with run_test_cases and read its generations again; say whether the fix worked. If I agree, run "
        "every case of the prompt on the draft to see that nothing else broke. Remind me that the draft goes live "
        "only once I publish it in Tela."
    )


async def test_from_call(call_id: str, ctx: Ctx) -> str:
    """Turn a Retell call that went wrong into a test: read it, draft the test, write its metrics, save it and run it
    on the call's version to see it fail (saving and running where the server allows them)."""
    checked = _checked(call_id, "call_id", "retell")
    listed = {tool.name for tool in await ctx.mcp_server.list_tools()}
    steps = [
        f"Turn Retell call {checked} into a regression test, one step at a time, telling me what you do.",
        f"1. Read it with get_call call_id={checked}: say what the caller wanted and where the agent went wrong, "
        "quoting the turns.",
        f"2. Draft the test with draft_test_from_call call_id={checked}.",
        "3. Write its metrics from what went wrong: one to three checks the agent must pass (what it should have "
        "done), and tighten the user_prompt where it needs it. Show me the definition.",
    ]
    if "save_test_case_definition" not in listed:
        steps.append(
            "4. This server does not save tests (allow_edits is off): give me the definition to create in Retell's "
            "dashboard, and stop there."
        )
        return " ".join(steps)
    steps.append("4. Once I agree, save it with save_test_case_definition: the draft's definition, with the metrics.")
    if "run_batch_test" not in listed:
        steps.append(
            "5. This server does not start runs (allow_runs is off): tell me to run the new test on the version the "
            "call ran on (the definition's engine and version) and expect it to fail, as the call did."
        )
        return " ".join(steps)
    steps += [
        "5. Run it with run_batch_test on the version the call ran on (the definition's llm_id or "
        "conversation_flow_id and version), then wait with summarize_batch_test wait_seconds=40. It should fail as the "
        "call did; if it passes, the test does not catch what went wrong: tighten the metrics or the user_prompt, "
        "save and run it again.",
        "6. Then fix the agent with the fix_failing_test prompt for the failed run: draft_agent_version from the "
        "call's agent_version, rerun the test on the draft and expect it to pass.",
    ]
    return " ".join(steps)


@dataclass(frozen=True)
class PromptSpec:
    """A prompt, its title, its vendor (the toolset it belongs to), the levels its steps need, and whether it starts
    from production calls or completion runs (the `calls` toolset)."""

    fn: Callable[..., Awaitable[str]]
    title: str
    vendor: Provider
    levels: tuple[str, ...] = ("read",)
    calls: bool = False


PROMPTS = (
    PromptSpec(diagnose_test_run, "Diagnose a Retell test run", "retell"),
    PromptSpec(compare_batches, "Compare two Retell batches", "retell"),
    PromptSpec(fix_failing_test, "Fix a failing Retell test", "retell", ("edits", "runs")),
    PromptSpec(review_test_case, "Review a Tela test case", "tela"),
    PromptSpec(test_from_call, "Make a test of a Retell call", "retell", calls=True),
    PromptSpec(test_from_completion_run, "Test a Tela completion run", "tela", calls=True),
)
