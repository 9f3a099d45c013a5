"""Before and after: two Retell batches' runs matched by test definition, to say what a change fixed, what it broke
and what still fails, in one call of bounded size."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

import anyio
import pydantic_core
from pydantic import BaseModel, ConfigDict, Field

from mcp_server.errors import UpstreamError
from mcp_server.retell.client import RetellClient
from mcp_server.retell.summaries import EXPLANATION_LIMIT, Progress, RunPages, count_of, run_status
from mcp_server.text import clip
from mcp_server.upstream.ids import check_id
from mcp_server.upstream.schema import lean_schema

SHOWN = 10  # entries per list; the rest are counted
MAX_ANSWER_BYTES = 31 * 1024  # the answer's JSON stays under 32 KB whatever the vendor sends
FAILED = frozenset({"fail", "error"})
Side = Literal["before", "after"]


class Change(BaseModel):
    model_config = ConfigDict(json_schema_extra=lean_schema)

    test_case_definition_id: str
    name: str | None = Field(None, description="the test's name, from its definition snapshot")
    before_status: str | None = None
    after_status: str | None = None
    test_case_job_id: str | None = Field(None, description="the after batch's run (get_test_run reads it)")
    result_explanation: str | None = Field(
        None, description=f"the after run's, for regressed and still_failing; clipped to {EXPLANATION_LIMIT} chars"
    )


class BatchSide(BaseModel):
    """One batch as Retell counts it, and as recounted here."""

    model_config = ConfigDict(json_schema_extra=lean_schema)

    test_case_batch_job_id: str
    status: str | None = Field(None, description="Retell's: in_progress or complete")
    pass_count: int | None = None
    fail_count: int | None = None
    error_count: int | None = None
    total_count: int | None = None
    response_engine: dict[str, Any] | None = Field(None, description="type, llm_id or conversation_flow_id, version")
    runs: int = Field(description="runs recounted from the listing")
    duplicates: int = Field(description="older runs of a definition that has a newer run in this batch (not compared)")
    pages: int


class BatchComparison(BaseModel):
    """What changed between two batches, test definition by test definition (the newest run of each counts)."""

    model_config = ConfigDict(json_schema_extra=lean_schema)

    before: BatchSide
    after: BatchSide
    fixed: list[Change] = Field(description="failed or errored before, passed after")
    regressed: list[Change] = Field(description="passed before, failed or errored after")
    still_failing: list[Change] = Field(description="failed or errored in both")
    only_before: list[Change]
    only_after: list[Change]
    not_shown: dict[str, int] = Field(description=f"entries left out of each list past the first {SHOWN}")
    unchanged_passing: int
    unclassified: int = Field(
        description="definitions whose run in either batch is still running or has another status"
    )
    complete: bool = Field(description="false when either batch may still change or was not read whole")
    incomplete_reason: str | None = None


@dataclass
class _Run:
    """What is kept of a definition's newest run in one batch: a few short strings, never a transcript."""

    status: str
    created: float
    job_id: str | None
    name: str | None
    explanation: str | None


@dataclass
class _Batch:
    batch_id: str
    batch: dict[str, Any] = field(default_factory=dict)
    runs: dict[str, _Run] = field(default_factory=dict)
    recounted: int = 0
    duplicates: int = 0
    pages: int = 0
    stopped: str | None = None

    def add(self, run: object, *, keep_explanation: bool) -> None:
        self.recounted += 1
        if not isinstance(run, dict):
            return
        definition = clip(run.get("test_case_definition_id"))
        if definition is None:
            return
        created = run.get("creation_timestamp")
        when = float(created) if isinstance(created, int | float) and not isinstance(created, bool) else 0.0
        known = self.runs.get(definition)
        if known is not None:
            self.duplicates += 1
            if known.created >= when:
                return
        status = run_status(run)
        snapshot = run.get("test_case_definition_snapshot")
        self.runs[definition] = _Run(
            status=status,
            created=when,
            job_id=clip(run.get("test_case_job_id")),
            name=clip(snapshot.get("name")) if isinstance(snapshot, dict) else None,
            explanation=clip(run.get("result_explanation"), EXPLANATION_LIMIT)
            if keep_explanation and status in FAILED
            else None,
        )


async def compare_batches(retell: RetellClient, before_id: str, after_id: str, progress: Progress) -> dict[str, Any]:
    """Read both batches and every page of their runs at the same time, within one deadline, keeping only each
    definition's newest run in each; then sort the definitions into what was fixed, what regressed and the rest."""
    batches: dict[Side, _Batch] = {
        "before": _Batch(check_id(before_id, argument="before_batch_id", provider="retell")),
        "after": _Batch(check_id(after_id, argument="after_batch_id", provider="retell")),
    }
    deadline = retell.deadline()
    failures: list[UpstreamError] = []
    pages_read = 0

    async def read(side: Side, scope: anyio.CancelScope) -> None:
        nonlocal pages_read
        state = batches[side]
        try:
            state.batch = await retell.get_batch_test(state.batch_id, deadline=deadline)
            pages = RunPages(retell, state.batch_id, deadline)
            async for items in pages.read():
                for run in items:
                    state.add(run, keep_explanation=side == "after")
                del items
                pages_read += 1
                await progress(
                    pages_read, None, f"read page {pages.pages} of the {side} batch ({state.recounted} runs)"
                )
            state.pages, state.stopped = pages.pages, pages.stopped
        except UpstreamError as error:  # the other side's work is of no use without this one
            failures.append(error)
            scope.cancel()

    async with anyio.create_task_group() as tg:
        for side in batches:
            tg.start_soon(read, side, tg.cancel_scope)
    if failures:
        raise failures[0]
    return _fit(_comparison(batches["before"], batches["after"]))


def _comparison(before: _Batch, after: _Batch) -> BatchComparison:
    lists: dict[str, list[Change]] = {name: [] for name in _LISTS}
    unchanged = unclassified = 0
    for definition in sorted(before.runs.keys() | after.runs.keys()):
        old, new = before.runs.get(definition), after.runs.get(definition)
        named = new or old
        kind = _kind(old.status if old else None, new.status if new else None)
        if kind == "unchanged_passing":
            unchanged += 1
            continue
        if kind == "unclassified":
            unclassified += 1
            continue
        explained = kind in ("regressed", "still_failing")
        lists[kind].append(
            Change(
                test_case_definition_id=definition,
                name=named.name if named else None,
                before_status=old.status if old else None,
                after_status=new.status if new else None,
                test_case_job_id=new.job_id if new else None,
                result_explanation=new.explanation if new and explained else None,
            )
        )
    reasons = [reason for batch in (before, after) for reason in _reasons(batch)]
    for entries in lists.values():
        entries.sort(key=lambda change: (change.name or "", change.test_case_definition_id))
    return BatchComparison(
        before=_side(before),
        after=_side(after),
        **{name: entries[:SHOWN] for name, entries in lists.items()},
        not_shown={name: len(entries) - SHOWN for name, entries in lists.items() if len(entries) > SHOWN},
        unchanged_passing=unchanged,
        unclassified=unclassified,
        complete=not reasons,
        incomplete_reason="; ".join(reasons) or None,
    )


_LISTS = ("fixed", "regressed", "still_failing", "only_before", "only_after")


def _kind(before: str | None, after: str | None) -> str:
    if before is None:
        return "only_after"
    if after is None:
        return "only_before"
    finished = {"pass", *FAILED}
    if before not in finished or after not in finished:
        return "unclassified"
    return {
        (True, True): "unchanged_passing",
        (False, True): "fixed",
        (True, False): "regressed",
        (False, False): "still_failing",
    }[(before == "pass", after == "pass")]


def _reasons(batch: _Batch) -> list[str]:
    reasons = [batch.stopped] if batch.stopped else []
    total = count_of(batch.batch, "total_count")
    if total is not None and batch.recounted != total:
        reasons.append(f"batch '{batch.batch_id}': recounted {batch.recounted} runs but Retell counts {total}")
    status = clip(batch.batch.get("status"), 40)
    if status != "complete":
        reasons.append(f"batch '{batch.batch_id}' is {status}, so its runs may still change")
    return reasons


def _side(batch: _Batch) -> BatchSide:
    engine = batch.batch.get("response_engine")
    shown = None
    if isinstance(engine, dict):  # its names only, each clipped: the rest is get_response_engine's
        shown = {key: _short(engine.get(key)) for key in _ENGINE_KEYS if key in engine}
    return BatchSide(
        test_case_batch_job_id=batch.batch_id,
        status=clip(batch.batch.get("status"), 40),
        pass_count=count_of(batch.batch, "pass_count"),
        fail_count=count_of(batch.batch, "fail_count"),
        error_count=count_of(batch.batch, "error_count"),
        total_count=count_of(batch.batch, "total_count"),
        response_engine=shown,
        runs=batch.recounted,
        duplicates=batch.duplicates,
        pages=batch.pages,
    )


_ENGINE_KEYS = ("type", "llm_id", "conversation_flow_id", "version")


def _short(value: object) -> object:
    """A number as it is; any other value as clipped text."""
    if isinstance(value, int | float) and not isinstance(value, bool):
        return value
    return clip(value) if isinstance(value, str) else None


def _fit(comparison: BatchComparison) -> dict[str, Any]:
    """The comparison as JSON within `MAX_ANSWER_BYTES`: a vendor's strings are clipped by characters, and JSON
    escapes can still make them several bytes each, so while the answer is too large the last entry of the longest
    list goes (and is counted as not shown)."""
    answer = comparison.model_dump(mode="json")
    while len(pydantic_core.to_json(answer)) > MAX_ANSWER_BYTES:
        longest = max(_LISTS, key=lambda name: len(answer[name]))
        if not answer[longest]:
            break
        answer[longest].pop()
        answer["not_shown"][longest] = answer["not_shown"].get(longest, 0) + 1
    return answer
