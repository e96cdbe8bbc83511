"""User-facing errors.

Every failure a user can cause (bad input, a busy database, an unknown id) is raised as an
:class:`AacbatchError` whose message is one line naming the offending file or value and what
to do about it. The CLI prints that line and exits non-zero; anything else is a bug and keeps
its traceback.
"""


class AacbatchError(Exception):
    """A problem with the user's input or environment, explained in one line."""

    exit_code = 2


class InputError(AacbatchError):
    """Malformed or missing input data (files, CSVs, captions, specs, parameters)."""


class NotFoundError(AacbatchError):
    """An id or name that the registry does not know."""


class RegistryDamaged(AacbatchError):
    """The registry's database file is damaged; the message says how to recover."""

    exit_code = 3


class RegistryBusy(AacbatchError):
    """The registry stayed locked by another process for longer than the retry timeout."""

    exit_code = 75  # EX_TEMPFAIL: trying again later may succeed


def first_line(exc: BaseException) -> str:
    """The first line of an exception's message (of the database's own error for a wrapped
    SQLAlchemy one), or its type name: what a one-line error quotes from a library."""
    text = str(getattr(exc, "orig", None) or exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


def shown(value: object) -> str:
    """A path, name or other user text as an error message shows it: unchanged when every
    character is printable, else quoted Python-style (``'a\\nb.wav'``), so that a line break,
    a carriage return or another control character in a file name cannot split the one-line
    message or garble the terminal."""
    text = str(value)
    return text if text.isprintable() else repr(text)
