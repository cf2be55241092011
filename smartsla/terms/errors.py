"""TermsError: a problem in a terms file, located by its key path (and line, where known)."""

from __future__ import annotations

from typing import Sequence

PathParts = tuple  # of str keys and int indexes


def format_path(parts: Sequence) -> str:
    """``("services", 0, "target")`` -> ``"services[0].target"``."""
    out = ""
    for part in parts:
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            out += f".{part}" if out else str(part)
    return out


class TermsError(ValueError):
    """A problem in a terms file, located by its key path.

    ``str(err)`` reads ``terms.yaml: compensation.schedule[1].below: <what and how to fix>``.
    ``line``/``column`` (1-based) are set when the position in the YAML is known.

    With ``extends``, ``source`` is the file that was loaded and ``path`` the key path in the
    resolved document; ``origin`` is the file the value was written in and ``origin_path`` its key
    path there (a service's index may differ). ``line``/``column`` are positions in ``origin``.
    ``str(err)`` then ends with ``(written in corporate.yaml, line 12, as services[0].target)``
    when the origin is another file or another key path. Both are ``None`` when the place is not
    one file's (a mapping merged from several files) or not known.
    """

    def __init__(
        self,
        path: str | Sequence = "",
        message: str = "",
        *,
        source: str | None = None,
        line: int | None = None,
        column: int | None = None,
        origin: str | None = None,
        origin_path: str | Sequence | None = None,
    ):
        self.path = path if isinstance(path, str) else format_path(path)
        self.message = message
        self.source = source
        self.line = line
        self.column = column
        self.origin = origin
        self.origin_path = origin_path if origin_path is None or isinstance(origin_path, str) else format_path(origin_path)
        super().__init__(str(self))

    def __str__(self) -> str:
        text = ": ".join(p for p in (self.source, self.path, self.message) if p)
        if self.origin is not None and (self.origin != self.source or self.origin_path != self.path):
            where = f"written in {self.origin}"
            if self.line is not None:
                where += f", line {self.line}"
            if self.origin_path and self.origin_path != self.path:
                where += f", as {self.origin_path}"
            text += f" ({where})"
        return text
