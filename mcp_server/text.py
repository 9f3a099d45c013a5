"""How vendor and model text appears inside our answers and questions: clipped, so no vendor can make an answer
large, and names on one quoted line, so none can forge a sentence."""

from __future__ import annotations

TEXT_LIMIT = 200  # characters of any other vendor string a summary repeats (a name, an ID, a status)


def clip(value: object, limit: int = TEXT_LIMIT) -> str | None:
    """A vendor string as a summary repeats it: clipped, so no vendor can make the answer large; else None."""
    if not isinstance(value, str):
        return None
    return value if len(value) <= limit else value[: limit - 1] + "…"


def quoted(name: object, limit: int = 120) -> str:
    """A vendor- or model-supplied name inside a sentence: on one line (every run of whitespace, control or format
    characters one space), at most `limit` characters with its quotes, in double quotes."""
    text = " ".join("".join(char if char.isprintable() else " " for char in str(name)).split()).replace('"', "'")
    return f'"{text}"' if len(text) + 2 <= limit else f'"{text[: limit - 3]}…"'
