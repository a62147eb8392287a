"""Safe output folders: checked before any work, one writer per output stem, outputs installed all together.

A pipeline run for one input writes several files named ``<stem>_*``. :func:`prepare_out_dir` checks up
front that the folder can be created and written; :func:`stem_lock` keeps a second process from writing
the same stem at the same time; :func:`staged_outputs` lets the run write into a hidden staging folder and
then moves the new files into place and removes the stem's outputs this run did not write again (a
snapshot from an earlier run with a different option must not sit beside new masks).
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import os
import shutil
import tempfile
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from neurospine.errors import InputError

#: Prefix of the hidden per-run staging folders inside an output folder.
STAGING_PREFIX = ".neurospine-tmp."
#: Prefix of the hidden per-stem lock files inside an output folder.
LOCK_PREFIX = ".neurospine-lock."


def prepare_out_dir(path: str | Path) -> tuple[Path, bool]:
    """Create ``path`` if needed and check that files can be written into it.

    Returns ``(folder, created)``; ``created`` says whether this call made it (so a failed run can remove
    it again). Raises :class:`InputError` (one line: folder, problem, fix) when ``path`` is a file, cannot be
    created or cannot be written.
    """
    if str(path) == "-":
        raise InputError(
            "-", "standard output cannot hold a folder of outputs", "give a folder with -o/--out (e.g. -o results)"
        )
    out = Path(path).expanduser()
    if out.exists() and not out.is_dir():
        raise InputError(out, "is a file, not a folder", "give a folder with -o/--out (it is created if missing)")
    created = not out.exists()
    try:
        out.mkdir(parents=True, exist_ok=True)
    except (FileExistsError, NotADirectoryError) as e:  # a parent is a file
        raise InputError(out, "cannot create the folder: a parent is a file", "give another folder") from e
    except OSError as e:
        raise InputError(out, f"cannot create the folder ({e.strerror or e})", "give a folder you can write to") from e
    try:
        fd, probe = tempfile.mkstemp(prefix=".neurospine-write-check.", dir=out)
    except OSError as e:
        if created:
            with contextlib.suppress(OSError):
                out.rmdir()
        raise InputError(
            out, f"cannot write into the folder ({e.strerror or e})", "give a folder you can write to"
        ) from e
    os.close(fd)
    os.unlink(probe)
    return out, created


def remove_if_empty(folder: Path) -> None:
    """Remove ``folder`` if it holds nothing (a folder created for a run that wrote nothing)."""
    with contextlib.suppress(OSError):
        folder.rmdir()


@contextlib.contextmanager
def stem_lock(out_dir: Path, stem: str) -> Iterator[Path]:
    """Hold the lock of outputs ``<stem>_*`` in ``out_dir`` (a hidden lock file, removed on release).

    Raises :class:`InputError` at once when another process holds it. The OS drops the lock when the
    holder dies, even on SIGKILL; a lock file left behind then is simply locked again.
    """
    path = out_dir / f"{LOCK_PREFIX}{stem}"
    while True:
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError as e:
            os.close(fd)
            if e.errno not in (errno.EAGAIN, errno.EACCES, errno.EWOULDBLOCK):
                raise
            raise InputError(
                out_dir / f"{stem}_*",
                f"another neurospine run is writing the outputs of '{stem}' in this folder",
                "wait for it to finish, or choose another -o/--out",
            ) from e
        # the previous holder may have removed the file between our open and flock: lock the file on disk
        try:
            same = os.stat(path).st_ino == os.fstat(fd).st_ino
        except FileNotFoundError:
            same = False
        if same:
            break
        os.close(fd)
    try:
        yield path
    finally:
        with contextlib.suppress(OSError):
            os.unlink(path)  # still holding the lock: a waiter re-checks the inode and retries
        os.close(fd)


def existing_outputs(paths: Iterable[Path]) -> list[Path]:
    """Those of ``paths`` that exist already (links included)."""
    return [p for p in paths if os.path.lexists(p)]


def clean_stale_staging(out_dir: Path, stem: str) -> None:
    """Remove staging folders of ``stem`` left by killed runs (call with the stem's lock held)."""
    for d in out_dir.glob(f"{STAGING_PREFIX}*"):
        if d.is_dir() and d.name[len(STAGING_PREFIX) :].rsplit(".", 1)[0] == stem:
            shutil.rmtree(d, ignore_errors=True)


@dataclass
class Staging:
    """A hidden folder beside the final outputs; :meth:`install` moves what was written there into place."""

    out_dir: Path
    dir: Path
    expected: Sequence[Path]
    installed: list[Path] = field(default_factory=list)
    removed: list[Path] = field(default_factory=list)

    def final(self, path: str | Path) -> Path:
        """Where a file written in the staging folder ends up."""
        p = Path(path)
        try:
            return self.out_dir / p.relative_to(self.dir)
        except ValueError:
            return p

    def install(self) -> list[Path]:
        """Move every staged file into ``out_dir`` (each rename atomic), then remove expected outputs of this
        stem that the run did not write (left from an earlier run)."""
        staged = sorted(p for p in self.dir.rglob("*") if p.is_file() or p.is_symlink())
        for src in staged:
            dst = self.final(src)
            dst.parent.mkdir(parents=True, exist_ok=True)
            os.replace(src, dst)
            self.installed.append(dst)
        written = {p.resolve() for p in self.installed}
        for old in self.expected:
            if os.path.lexists(old) and Path(old).resolve() not in written and not Path(old).is_dir():
                Path(old).unlink()
                self.removed.append(Path(old))
        return self.installed

    def rewrite(self, text: str) -> str:
        """``text`` with the staging folder's path replaced by the output folder's."""
        return text.replace(str(self.dir), str(self.out_dir))


@contextlib.contextmanager
def staged_outputs(out_dir: Path, stem: str, expected: Sequence[Path]) -> Iterator[Staging]:
    """A staging folder for one run of ``stem``; removed afterwards whatever happens.

    The caller runs the pipeline into ``staging.dir`` and calls ``staging.install()`` when the run's
    outputs should appear; files never installed are discarded with the folder.
    """
    tmp = Path(tempfile.mkdtemp(prefix=f"{STAGING_PREFIX}{stem}.", dir=out_dir))
    try:
        yield Staging(out_dir, tmp, list(expected))
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
