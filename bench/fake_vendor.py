"""The benchmark's vendor: a keep-alive HTTP/1.1 server on 127.0.0.1, in its own process so it never competes
with the client for the GIL. Prints its port, then serves until killed.

GET /get-test-run/{id} answers a finished Retell test run (about 5 KB, with a transcript) and
GET /v2/get-call/{id} a Retell call of the same size (for the Node peer). IDs starting with `slow-` are
answered after 100 ms, like a real vendor under load; IDs starting with `big-` get a ~9.6 MiB run made of many small
keys (110,000 turns), the shape that costs a server the most memory once parsed (bench/memory.py).
"""

from __future__ import annotations

import asyncio
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
