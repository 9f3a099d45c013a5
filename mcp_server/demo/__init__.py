"""Built-in sample records, served as a fake Retell and Tela for `--demo`, so the whole loop (find, summarize,
compare, diagnose, draft a fix, rerun, wait) works offline.

The story: agent `agent_demo_support` (Retell LLM `llm_demo_support`) has versions 1 and 2 published and 3, a
draft with a friendlier greeting, which lost version 2's refund rule. The baseline batch ran version 2, the latest
ran version 3: the greeting test was fixed, the refund test regressed, the human-handoff and address tests still
fail. Runs started in a session follow the prompts of the version they run on, so a draft that restores the rule
passes. Its production calls on published version 2 (`calls`) went fine but for one: a caller asked to cancel an
order and the agent could not; a test drawn from that call fails on every version until a draft lets the agent
cancel (`judge`). Tela's prompt has a promoted version and a newer draft that dropped its refund guidance; its
production completion runs (`completions`) include one whose answer ignored a customer's request to cancel, and
every case run in a session is answered as the version it ran on says (so a draft that adds the rule passes).

The demo swaps only the HTTP transport, so every request still goes through the real clients, validation,
error mapping and tools: what a newcomer sees in the demo is what they get with real keys. Its parts: the records
(`records`), the judge that decides how each run ends (`judge`), and the fake vendors' routes (`vendors`).
"""

from __future__ import annotations

import httpx2
from pydantic import SecretStr

from mcp_server.config import Settings
from mcp_server.demo.judge import BASELINE_RUNS, RETELL_RUNS
from mcp_server.demo.records import (
    DEMO_AGENT_ID,
    DEMO_KEY,
    DEMO_LIVE_AGENT_ID,
    DEMO_LIVE_LLM_ID,
    DEMO_LLM_ID,
    DEMO_PROMOTED_VERSION_ID,
    DEMO_PROMPT_ID,
    DEMO_PROMPT_VERSION_ID,
    REFUND_RULE,
    TELA_CASES,
)
from mcp_server.demo.vendors import DemoVendors

__all__ = [
    "BASELINE_RUNS",
    "DEMO_AGENT_ID",
    "DEMO_LIVE_AGENT_ID",
    "DEMO_LIVE_LLM_ID",
    "DEMO_LLM_ID",
    "DEMO_PROMOTED_VERSION_ID",
    "DEMO_PROMPT_ID",
    "DEMO_PROMPT_VERSION_ID",
    "REFUND_RULE",
    "RETELL_RUNS",
    "TELA_CASES",
    "DemoVendors",
    "demo_settings",
    "demo_transport",
]


def demo_settings(settings: Settings) -> Settings:
    """The same settings with placeholder keys, so both vendors count as configured."""
    vendors = {
        name: getattr(settings, name).model_copy(update={"api_key": SecretStr(DEMO_KEY)}) for name in ("retell", "tela")
    }
    demo = settings.model_copy(update=vendors)
    demo._sources.update(settings._sources)
    return demo


def demo_transport() -> httpx2.MockTransport:
    """A fresh pair of demo vendors: what one session starts is seen by that session only."""
    return httpx2.MockTransport(DemoVendors().handle)
