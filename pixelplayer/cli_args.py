"""Argument types and argv fixes shared by the command lines of every layer above."""
from __future__ import annotations

import argparse
import math
import re

__all__ = ["join_point_values", "point_arg", "select_arg"]


def point_arg(text: str) -> tuple[float, float]:
    """argparse type of a picture point X,Y in pixels (finite numbers)."""
    try:
        x, y = (float(v) for v in text.split(","))
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected X,Y in pixels, got {text!r}") from None
    if not (math.isfinite(x) and math.isfinite(y)):
        raise argparse.ArgumentTypeError(f"expected finite X,Y pixels, got {text!r}")
    return x, y


def select_arg(text: str):
    """argparse type of a picture point X,Y (pixels, finite) or 'auto'."""
    if text.strip().lower() == "auto":
        return "auto"
    return point_arg(text)


_POINT = re.compile(r"^-?\d*\.?\d+,-?\d*\.?\d+$")


def join_point_values(argv: list[str], flags=("--select", "--remove")) -> list[str]:
    """`--select -10,-10` as `--select=-10,-10`: argparse takes a value starting with '-'
    for an option, so a point left of or above the picture would not even parse."""
    out, i = [], 0
    while i < len(argv):
        if argv[i] in flags and i + 1 < len(argv) and _POINT.match(argv[i + 1]):
            out.append(f"{argv[i]}={argv[i + 1]}")
            i += 2
        else:
            out.append(argv[i])
            i += 1
    return out


class OneLineParser(argparse.ArgumentParser):
    """An ArgumentParser whose usage errors are one line (and exit status 2), like every
    other user error of these commands; --help still prints the whole usage."""

    def error(self, message: str):
        self.exit(2, f"{self.prog}: error: {message} (see --help)\n")
