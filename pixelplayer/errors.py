"""How an error reaches a user: one line."""
from __future__ import annotations


def first_line(exc: BaseException) -> str:
    """An exception as one line for a log or the user: its message's first line, or its
    type's name when the message is empty."""
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__
