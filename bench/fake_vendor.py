"""The benchmark's vendor: a keep-alive HTTP/1.1 server on 127.0.0.1, in its own process so it never competes
with the client for the GIL. Prints its port, then serves until killed.

GET /get-test-run/{id} answers a finished Retell test run (about 5 KB, with a transcript) and
GET /v2/get-call/{id} a Retell call of the same size (for the Node peer). IDs starting with `slow-` are
answered after 100 ms, like a real vendor under load; IDs starting with `big-` get a ~9.6 MiB run made of many small
keys (110,000 turns), the shape that costs a server the most memory once parsed (bench/memory.py).
GET /get-batch-test/{id} and GET /v2/list-test-runs/{id} serve two 5,000-run batches, `bench-before` and
`bench-after` (each page of runs after 100 ms, as `slow-` reads): what bench/compare.py compares and summarizes.
"""

from __future__ import annotations

import asyncio
import functools
import json
import sys

SLOW_SECONDS = 0.1
TRANSCRIPT = [
    {"role": "agent" if i % 2 else "user", "content": f"Turn {i}: " + "words the caller and agent said " * 4}
    for i in range(24)
]


def big_run(job_id: str) -> bytes:
    turns = [
        {"role": "agent" if i % 2 else "user", "content": f"turn {i}", "words": [{"w": "ok", "s": i, "e": i}]}
        for i in range(110_000)
    ]
    run = {"test_case_job_id": job_id, "status": "pass", "transcript_snapshot": {"transcript": turns}}
    return json.dumps(run).encode()


def run(job_id: str) -> bytes:
    if job_id.startswith("big-"):
        return big_run(job_id)
    return json.dumps(
        {
            "test_case_job_id": job_id,
            "status": "pass",
            "test_case_definition_id": "tcd_bench",
            "test_case_definition_snapshot": {
                "name": "Caller asks for a refund",
                "response_engine": {"type": "retell-llm", "llm_id": "llm_bench", "version": 3},
                "user_prompt": "Ask for a refund on a late order.",
                "metrics": ["Agent offers a refund", "Agent confirms the order number"],
                "type": "simulation",
            },
            "creation_timestamp": 1731000000000,
            "user_modified_timestamp": 1731000042000,
            "transcript_snapshot": {"transcript": TRANSCRIPT},
            "result_explanation": "Both metrics passed.",
        }
    ).encode()


BATCH_RUNS = 5000
# Which runs fail in each batch: the change fixed some tests and broke others.
FAILS = {"bench-before": lambda i: i % 10 == 0, "bench-after": lambda i: i % 10 == 5}


def batch(batch_id: str) -> bytes:
    fails = sum(FAILS[batch_id](i) for i in range(BATCH_RUNS))
    return json.dumps(
        {
            "test_case_batch_job_id": batch_id,
            "status": "complete",
            "response_engine": {"type": "retell-llm", "llm_id": "llm_bench", "version": 3},
            "pass_count": BATCH_RUNS - fails,
            "fail_count": fails,
            "error_count": 0,
            "total_count": BATCH_RUNS,
        }
    ).encode()


@functools.cache
def runs_page(batch_id: str, query: str) -> bytes:
    """One page of a batch's runs, made once: the vendor's own time is its 100 ms, not ours to measure."""
    params = dict(pair.split("=", 1) for pair in query.split("&") if "=" in pair)
    limit, start = int(params.get("limit", "50")), int(params.get("pagination_key", "p0")[1:])
    items = []
    for i in range(start, min(start + limit, BATCH_RUNS)):
        item = json.loads(run(f"{batch_id}-{i}"))
        item |= {"test_case_definition_id": f"tcd_bench_{i}", "status": "fail" if FAILS[batch_id](i) else "pass"}
        items.append(item)
    more = start + limit < BATCH_RUNS
    page = {"items": items, "has_more": more, "pagination_key": f"p{start + limit}" if more else None}
    return json.dumps(page).encode()


def call(call_id: str) -> bytes:
    return json.dumps(
        {
            "call_id": call_id,
            "call_type": "web_call",
            "agent_id": "agent_bench",
            "version": 3,
            "call_status": "ended",
            "metadata": {},
            "start_timestamp": 1731000000000,
            "end_timestamp": 1731000042000,
            "transcript": "\n".join(turn["content"] for turn in TRANSCRIPT),
            "transcript_object": TRANSCRIPT,
            "disconnection_reason": "user_hangup",
        }
    ).encode()


async def serve(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    try:
        while True:
            head = await reader.readuntil(b"\r\n\r\n")
            path = head.split(b" ", 2)[1].decode()
            item = path.split("?")[0].rsplit("/", 1)[-1]
            if item.startswith("slow-"):
                await asyncio.sleep(SLOW_SECONDS)
            if path.startswith("/get-test-run/"):
                status, body = b"200 OK", run(item)
            elif path.startswith("/get-batch-test/") and item in FAILS:
                status, body = b"200 OK", batch(item)
            elif path.startswith("/v2/list-test-runs/") and item in FAILS:
                await asyncio.sleep(SLOW_SECONDS)
                status, body = b"200 OK", runs_page(item, path.partition("?")[2])
            elif path.startswith("/v2/get-call/"):
                status, body = b"200 OK", call(item)
            else:
                status, body = b"404 Not Found", b'{"status":"error","message":"Not Found"}'
            writer.write(
                b"HTTP/1.1 " + status + b"\r\ncontent-type: application/json\r\ncontent-length: "
                + str(len(body)).encode() + b"\r\n\r\n" + body
            )  # fmt: skip
            await writer.drain()
    except (asyncio.IncompleteReadError, ConnectionError):
        pass
    finally:
        writer.close()


async def main() -> None:
    server = await asyncio.start_server(serve, "127.0.0.1", 0, backlog=1024)
    sys.stdout.write(f"{server.sockets[0].getsockname()[1]}\n")
    sys.stdout.flush()
    async with server:
        await server.serve_forever()


if __name__ == "__main__":
    asyncio.run(main())
