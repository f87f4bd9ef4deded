"""Files on disk: written atomically, and paths shown the way a user typed them."""

from __future__ import annotations

import os
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator


def display_path(path: str | Path) -> str:
    """A path relative to the working folder when it lies inside it, else as given (for messages and records)."""
    try:
        return Path(path).resolve().relative_to(Path.cwd()).as_posix()
    except ValueError:
        return str(path)


@contextmanager
def atomic_path(path: str | Path) -> Iterator[Path]:
    """Write a file through a temporary path beside it: ``with atomic_path(p) as tmp: save(tmp)``.

    On success the temporary file is synced and renamed onto ``path`` (a crash leaves the old file or the
    new one, never half of one); on any failure it is removed, and a failed write (a full disk, a
    read-only folder) is one :class:`~pipeline.errors.UserError` naming ``path``.
    """
    from pipeline.errors import UserError

    path = Path(path)
    tmp = path.with_name(f".{path.stem}.{os.getpid()}.tmp{path.suffix}")  # the suffix kept: writers pick formats by it
    try:
        yield tmp
        with open(tmp, "rb+") as f:
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except OSError as e:
        tmp.unlink(missing_ok=True)
        raise UserError(write_failed(path, e)) from None
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def atomic_write_text(path: str | Path, text: str) -> None:
    """Write ``text`` to ``path`` atomically (see :func:`atomic_path`)."""
    with atomic_path(path) as tmp:
        with open(tmp, "w", encoding="utf-8", newline="") as f:
            f.write(text)


def save_figure(figure, path: str | Path, dpi: int = 110) -> None:
    """Save a matplotlib figure atomically (see :func:`atomic_path`)."""
    with atomic_path(path) as tmp:
        figure.savefig(tmp, dpi=dpi)


def check_writable(folder: str | Path, option: str) -> Path:
    """Create ``folder`` if needed and prove a file can be written in it, before any work starts.

    A read-only folder (or one on a full disk) is one :class:`UserError` naming it and ``option``.
    """
    from pipeline.errors import UserError

    folder = Path(folder)
    probe = folder / f".handcam-write-test-{os.getpid()}"
    try:
        folder.mkdir(parents=True, exist_ok=True)
        with open(probe, "wb") as f:
            f.write(b"x")
            f.flush()
            os.fsync(f.fileno())
    except OSError as e:
        raise UserError(f"{folder}: cannot write here ({e.strerror or e}); choose another {option}") from None
    finally:
        try:
            probe.unlink()
        except OSError:
            pass
    return folder


def refuse_existing(path: str | Path, force: bool, what: str = "output") -> None:
    """The one rule of every command: an existing output is never replaced, unless ``--force`` says so."""
    from pipeline.errors import UserError

    path = Path(path)
    if path.exists() and not force and (not path.is_dir() or any(path.iterdir())):
        raise UserError(f"{path} is already there; pass --force to replace the {what}, or choose another --out")


def write_failed(path: str | Path, error: BaseException) -> str:
    """One line for a write that failed (a full disk, a read-only folder), naming the file."""
    reason = getattr(error, "strerror", None) or " ".join(str(error).split())[:160]
    if isinstance(error, RuntimeError) and any(w in str(error) for w in ("inline_container", "PytorchStreamWriter", "write failed")):
        reason = "the disk is full, or the file cannot be written"  # torch's own words come from its C++ writer
    hint = "free some disk space" if "full" in reason.lower() or "space" in reason.lower() else "check the folder"
    return f"{path}: could not be written ({reason}); {hint}, or choose another --out"


def unused_path(folder: str | Path, stem: str, suffix: str = "") -> Path:
    """``folder/STEM SUFFIX``, or ``folder/STEM-1 SUFFIX``, ``-2`` ... : the first name not taken (never overwrite)."""
    path, k = Path(folder) / f"{stem}{suffix}", 1
    while path.exists():
        path, k = Path(folder) / f"{stem}-{k}{suffix}", k + 1
    return path

