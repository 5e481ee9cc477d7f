"""Files a command writes for its operator, outside the node's home: a document read out, an import log.

They hold students' records, so each is created readable by its owner only. None may land in the home, where
a mistyped name could replace the database or a key. A file that cannot be created or written (no such
folder, no permission, no room left) is told as that, naming the folder and the option, not as damage to
the home.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import IO, Any

from node.home import Node, expand_user
from protocol import InvalidInput


def outside_home(node: Node, path: Path, *, option: str, example: str) -> Path:
    """``path`` resolved, unless it is in the node's home (``example``: a path to suggest instead)."""
    resolved = expand_user(path, option=option).resolve()
    home = node.config.home.resolve()
    if resolved.is_relative_to(home):
        raise InvalidInput(f"{path} is inside the node's home {home}", field=option,
                           hint=f"write it outside the home, e.g. {option} {example}")  # fmt: skip
    return resolved


@contextmanager
def private_file(path: Path, *, option: str, exclusive: bool, text: bool = False) -> Iterator[IO[Any]]:
    """``path`` open for writing, mode 0600: new (``exclusive``) or emptied first."""
    flags = os.O_WRONLY | os.O_CREAT | (os.O_EXCL if exclusive else 0)
    try:
        fd = os.open(path, flags, 0o600)
        try:
            if not exclusive:
                # A file replaced keeps its mode: one another program made readable by all must not go on to
                # hold students' records. Made private before it is emptied, so a file that cannot be is left.
                os.fchmod(fd, 0o600)
                os.ftruncate(fd, 0)
        except OSError:
            os.close(fd)
            raise
        with open(fd, "w", newline="", encoding="utf-8") if text else open(fd, "wb") as handle:
            yield handle
    except OSError as exc:
        raise InvalidInput(
            f"cannot write in {path.parent}: {exc.strerror or exc}", field=option,
            hint="give a folder that exists, that you may write to and that has room",
        ) from None  # fmt: skip
