"""The library's errors and the one place they become exit messages.

Library code raises a subclass of PodsearchError whose message names the file, row, column or params key and what
was expected; it never exits. Stage scripts and CLIs wrap their work in `exit_on_error(name)`, which turns any of
them into a one-line message and exit code 1, so a user sees what to fix and not a traceback.
"""
from __future__ import annotations

from contextlib import contextmanager
from pathlib import Path


class PodsearchError(Exception):
    """Base of every error the library raises on purpose (bad input, a missing artifact, an unusable model)."""


class MissingInputError(PodsearchError):
    """A file a stage needs does not exist yet."""


def require(path: str | Path, producer: str) -> Path:
    """The path, or a MissingInputError naming the stage that writes it."""
    path = Path(path)
    if not path.exists():
        raise MissingInputError(f"{path}: not found; run the {producer} stage first")
    return path


@contextmanager
def exit_on_error(name: str):
    """Run a stage's or CLI's work; a PodsearchError ends the process with `name: message`."""
    try:
        yield
    except PodsearchError as error:
        raise SystemExit(f"{name}: {error}") from None
