"""Retell AI: its client (`client`), its tools (`tools`, `workflow`, `edits`), and what they rest on: batch summaries
and waits (`summaries`), comparisons (`compare`), drafts that cannot go live (`drafts`, over `reach`). Each module
cites the retell-sdk 6.2.13 files its endpoints and fields come from."""
