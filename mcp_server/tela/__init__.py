"""Tela: its client (`client`) and its tools (`tools`, `edits`), each citing Tela's API reference (docs.tela.com)."""
