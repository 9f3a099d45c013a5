"""Before and after in one call: compare_batch_tests matches two batches' runs by test definition (issue 19,
point 3)."""

from __future__ import annotations

import json
import tracemalloc
from typing import Any

import anyio
import httpx2
import pytest

from tests.conftest import FakeVendors, connect, error_of, json_response

pytestmark = pytest.mark.anyio

ENGINE = {"type": "retell-llm", "llm_id": "llm_9", "version": 3}


def run(definition: str, status: str, *, created: int = 1, name: str | None = None, **extra: Any) -> dict[str, Any]:
    return {
        "test_case_job_id": f"tcj_{definition}_{created}",
        "status": status,
        "test_case_definition_id": definition,
        "creation_timestamp": created,
        "test_case_definition_snapshot": {"name": name or f"test {definition}", "response_engine": ENGINE},
        "result_explanation": f"why {definition} {status}",
        **extra,
    }


def batch(batch_id: str, runs: list[dict[str, Any]], status: str = "complete", **counts: Any) -> dict[str, Any]:
    return {"test_case_batch_job_id": batch_id, "status": status, "response_engine": {**ENGINE, "extra": "x" * 999},
            "total_count": len(runs), **counts}  # fmt: skip


class TwoBatches:
    """Retell with two batches, each paged `per_page` runs at a time; records when each page was asked for."""

    def __init__(self, before: list[dict[str, Any]], after: list[dict[str, Any]], **batches: Any) -> None:
        self.runs = {"tcbj_before": before, "tcbj_after": after}
        self.batches = {key: batch(key, runs) for key, runs in self.runs.items()} | batches
        self.per_page = 1000
        self.asked: list[str] = []

    async def __call__(self, request: httpx2.Request) -> httpx2.Response:
        kind, _, batch_id = request.url.path.rpartition("/")
        if kind == "/get-batch-test" and batch_id in self.batches:
            return json_response(200, self.batches[batch_id])
        if kind == "/v2/list-test-runs" and batch_id in self.runs:
            start = int(request.url.params.get("pagination_key", "p0")[1:])
            self.asked.append(f"{batch_id}@{start}")
            await anyio.sleep(0.01)  # both batches' pages are asked before either answers
            items = self.runs[batch_id][start : start + self.per_page]
            more = start + self.per_page < len(self.runs[batch_id])
            return json_response(
                200, {"items": items, "has_more": more, "pagination_key": f"p{start + self.per_page}" if more else None}
            )
        return json_response(404, {"status": "error", "message": "Not Found"})


async def compare(vendors: FakeVendors, retell: TwoBatches, **arguments: str) -> Any:
    vendors.retell = retell
    async with connect(vendors) as client:
        return await client.call_tool(
            "compare_batch_tests",
            {"before_batch_id": "tcbj_before", "after_batch_id": "tcbj_after", **arguments},
        )


async def test_runs_are_matched_by_definition_into_fixed_regressed_and_the_rest(vendors: FakeVendors) -> None:
    """Failed or errored then passed is fixed; passed then failed or errored is regressed; failing in both is
    still failing; a definition in one batch only is listed as such; passing in both is only counted."""
    before = [run("a", "fail"), run("b", "pass"), run("c", "error"), run("d", "pass"), run("e", "fail"),
              run("g", "pass"), run("h", "pending")]  # fmt: skip
    after = [run("a", "pass"), run("b", "error"), run("c", "fail"), run("d", "pass"), run("f", "pass"),
             run("g", "fail"), run("h", "pass")]  # fmt: skip
    result = await compare(vendors, TwoBatches(before, after))
    answer = result.structured_content
    assert answer is not None and result.is_error is False
    names = {key: [c["test_case_definition_id"] for c in answer[key]] for key in
             ("fixed", "regressed", "still_failing", "only_before", "only_after")}  # fmt: skip
    assert names == {"fixed": ["a"], "regressed": ["b", "g"], "still_failing": ["c"], "only_before": ["e"],
                     "only_after": ["f"]}  # fmt: skip
    assert (answer["unchanged_passing"], answer["unclassified"], answer["not_shown"]) == (1, 1, {})
    (fixed,) = answer["fixed"]
    assert fixed == {"test_case_definition_id": "a", "name": "test a", "before_status": "fail", "after_status": "pass",
                     "test_case_job_id": "tcj_a_1", "result_explanation": None}  # fmt: skip
    assert answer["regressed"][0]["result_explanation"] == "why b error"
    assert answer["still_failing"][0]["result_explanation"] == "why c fail"
    assert answer["only_before"][0]["test_case_job_id"] is None
    assert answer["before"]["response_engine"] == ENGINE  # its names only: Retell's other keys are not repeated
    assert answer["complete"] is True and answer["incomplete_reason"] is None
    assert json.loads(result.content[0].text) == answer


async def test_the_newest_run_of_a_definition_counts_and_the_others_are_duplicates(vendors: FakeVendors) -> None:
    """Several runs of one definition in a batch: the newest by creation_timestamp is compared, in whatever order
    Retell lists them; the rest are counted as duplicates."""
    before = [run("a", "pass", created=5), run("a", "fail", created=9), run("a", "pass", created=7)]
    after = [run("a", "pass", created=20), run("a", "fail", created=10)]
    answer = (await compare(vendors, TwoBatches(before, after))).structured_content
    assert answer is not None
    assert [c["test_case_job_id"] for c in answer["fixed"]] == ["tcj_a_20"]
    assert (answer["before"]["duplicates"], answer["after"]["duplicates"]) == (2, 1)


@pytest.mark.parametrize(
    ("batches", "per_page", "reason"),
    [
        ({"tcbj_after": batch("tcbj_after", [run("a", "pass")], status="in_progress")}, 1000,
         "batch 'tcbj_after' is in_progress"),
        ({"tcbj_before": {**batch("tcbj_before", [run("a", "fail")]), "total_count": 5}}, 1000,
         "batch 'tcbj_before': recounted 1 runs but Retell counts 5"),
    ],
)  # fmt: skip
async def test_a_comparison_that_may_change_says_so(
    vendors: FakeVendors, batches: dict[str, Any], per_page: int, reason: str
) -> None:
    """Either batch still running, or a recount short of Retell's total: complete is false, with the reason."""
    retell = TwoBatches([run("a", "fail")], [run("a", "pass")], **batches)
    retell.per_page = per_page
    answer = (await compare(vendors, retell)).structured_content
    assert answer is not None and answer["complete"] is False and reason in answer["incomplete_reason"]


async def test_both_batches_are_paged_at_once_with_a_progress_note_per_page(vendors: FakeVendors) -> None:
    """Pages of 1,000, both batches read at the same time (the second batch's first page is asked before the
    first batch's second), and one progress notification per page read."""
    before = [run(f"d{i}", "pass") for i in range(2500)]
    after = [run(f"d{i}", "pass") for i in range(1500)]
    retell = TwoBatches(before, after)
    vendors.retell = retell
    notes: list[str] = []

    async def on_progress(value: float, total: float | None, message: str | None) -> None:
        notes.append(message or "")

    async with connect(vendors) as client:
        result = await client.call_tool(
            "compare_batch_tests", {"before_batch_id": "tcbj_before", "after_batch_id": "tcbj_after"},
            progress_callback=on_progress,
        )  # fmt: skip
    answer = result.structured_content
    assert answer is not None and answer["unchanged_passing"] == 1500 and len(answer["only_before"]) == 10
    assert answer["not_shown"] == {"only_before": 990}
    assert all(r.url.params["limit"] == "1000" for r in vendors.requests if "list-test-runs" in r.url.path)
    assert retell.asked.index("tcbj_after@0") < retell.asked.index("tcbj_before@1000")
    assert len(notes) == 5 and (answer["before"]["pages"], answer["after"]["pages"]) == (3, 2)


@pytest.mark.parametrize(
    ("arguments", "words"),
    [({"before_batch_id": "../x"}, "before_batch_id must be"), ({"after_batch_id": ""}, "after_batch_id must be")],
)
async def test_bad_batch_ids_are_refused_before_any_request(
    vendors: FakeVendors, arguments: dict[str, str], words: str
) -> None:
    error = error_of(await compare(vendors, TwoBatches([], []), **arguments))
    assert error["code"] == "invalid_argument" and words in error["message"]
    assert vendors.requests == []


async def test_a_missing_batch_is_not_found_naming_it(vendors: FakeVendors) -> None:
    """A batch Retell does not know ends the call with not_found naming that batch."""
    error = error_of(await compare(vendors, TwoBatches([], []), after_batch_id="tcbj_gone"))
    assert error["code"] == "not_found" and "batch test 'tcbj_gone'" in error["message"]


async def test_5000_run_batches_of_hostile_strings_answer_under_32_kb(vendors: FakeVendors) -> None:
    """Two 5,000-run batches whose runs all changed, with 10 KB names and explanations full of characters JSON
    must escape, and a new status per run: at most 10 entries a list, the rest counted, the answer under 32 KB."""
    hostile = '"\\\n\x01<>' * 1500
    before = [run(f"d{i}", "fail" if i % 3 else "pass", name=hostile, result_explanation=hostile) for i in range(5000)]
    after = [run(f"d{i}", "pass" if i % 3 else "fail", name=hostile, result_explanation=hostile) for i in range(4000)]
    after += [run(f"new{i}", f"status-{i}", name=hostile) for i in range(1000)]
    retell = TwoBatches(before, after)
    retell.per_page = 200  # Retell may send fewer than asked: pages of 10 KB names stay under the body limit
    result = await compare(vendors, retell)
    answer = result.structured_content
    assert answer is not None
    assert len(result.content[0].text.encode()) < 32 * 1024
    assert all(len(answer[key]) <= 10 for key in ("fixed", "regressed", "still_failing", "only_before", "only_after"))
    shown = {key: len(answer[key]) + answer["not_shown"].get(key, 0) for key in ("fixed", "regressed", "only_before")}
    assert shown == {"fixed": 2666, "regressed": 1334, "only_before": 1000}
    assert len(answer["only_after"]) + answer["not_shown"].get("only_after", 0) == 1000


async def test_memory_is_flat_in_the_number_of_runs(vendors: FakeVendors) -> None:
    """Comparing two 5,000-run batches with ~2 KB transcripts peaks near comparing two 1,000-run ones: pages are
    dropped once read, and only a few short strings per definition are kept."""
    transcript = {"messages": [{"role": "agent", "content": "x" * 2000}]}
    peaks = []
    for count in (1000, 5000):
        runs = [run(f"d{i}", "pass", transcript_snapshot=transcript) for i in range(count)]
        tracemalloc.start()
        result = await compare(vendors, TwoBatches(runs, runs))
        peaks.append(tracemalloc.get_traced_memory()[1])
        tracemalloc.stop()
        assert result.structured_content is not None and result.structured_content["unchanged_passing"] == count
    assert peaks[1] < 1.5 * peaks[0], peaks
