"""A run folder's guarantees, the same for every recipe: one writer, one kind, one resume rule,
atomic files.

    RUN/
      run.json   {"kind": "bench" | "spot" | "pad" | "robust" | "train" | ..., "identity": {...}}
      .lock      held (lockf) by the one process that writes the run; removed when it lets go

- **One writer.** :meth:`RunFolder.lock` takes a POSIX lock on ``RUN/.lock``; a second process
  (or a second run in this process) is refused with the holder's pid.  The lock dies with the
  process, even by ``kill -9``; :meth:`RunFolder.close` removes the file while still holding it.
- **One kind.** A folder written by one recipe is refused by another (a ``pad`` folder is not a
  ``bench`` folder to resume); folders from before ``run.json`` are recognised by their files.
- **One resume rule.** A folder that holds results is continued only with ``resume``, and only
  when the identity (everything that changes a result) is unchanged; each change is named.  A
  resume may add prompt variants or systems (``ADDABLE``), never change what was measured.
- **Atomic files.** :func:`sovtp.atomic.atomic_write` is the one helper that replaces a file: a
  reader sees the old file or the new one, never half of one.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
from pathlib import Path
from typing import Any

from sovtp.atomic import atomic_write, write_json
from sovtp.closeable import Closeable
from sovtp.errors import SovtpError

__all__ = ["RunFolder", "RunKindError", "RunLocked", "atomic_write", "write_json"]

log = logging.getLogger(__name__)

MARKER = "run.json"
# folders from before run.json: a file only that recipe writes names its kind
LEGACY_KINDS = (
    ("pad.json", "pad"),
    ("last/checkpoint.json", "train"),
    ("last.pt", "train"),
    ("gold.jsonl", "spot"),  # before predictions.jsonl: a spot run has both
    ("predictions.jsonl", "bench"),
    ("robust.json", "robust"),  # after: `sovtp robust RUN` writes one into a bench run
)
ADDABLE = ("prompts", "systems")  # a resume may add cells: new variants, new systems
_HELD: set[str] = set()  # folders this process holds (POSIX locks are per process)


class RunLocked(SovtpError):
    """Another process (or this one) is writing the run folder."""


class RunKindError(SovtpError):
    """The folder holds another recipe's run."""


def identity_hash(identity: dict[str, Any]) -> str:
    import hashlib

    blob = json.dumps(identity, sort_keys=True, default=str)
    return hashlib.sha256(blob.encode()).hexdigest()[:16]


def _flat(d: Any, prefix: str = "") -> dict[str, Any]:
    if not isinstance(d, dict) or not d:
        return {prefix: d}
    out: dict[str, Any] = {}
    for k, v in d.items():
        out |= _flat(v, f"{prefix}.{k}" if prefix else str(k))
    return out


def identity_changes(old: dict[str, Any], new: dict[str, Any]) -> list[str]:
    """What differs between a run's identity and a resume's, one line each; empty when the
    resume only adds prompt variants or systems (then only the new cells run)."""
    changes = []
    for section in sorted(set(old) | set(new)):
        a, b = old.get(section), new.get(section)
        if section in ADDABLE and isinstance(a, dict) and isinstance(b, dict):
            for name in a:
                if name not in b:
                    changes.append(f"{section}: {name} removed (a resume may only add)")
                elif a[name] != b[name]:
                    fa, fb = _flat(a[name]), _flat(b[name])
                    diff = sorted(k for k in set(fa) | set(fb) if fa.get(k) != fb.get(k))
                    what = ", ".join(f"{k or 'hash'}: {fa.get(k)!r} → {fb.get(k)!r}" for k in diff)
                    changes.append(f"{section}.{name} changed ({what})")
            continue
        fa, fb = _flat(a, section), _flat(b, section)
        for k in sorted(set(fa) | set(fb)):
            if fa.get(k) != fb.get(k):
                changes.append(f"{k}: {fa.get(k)!r} → {fb.get(k)!r}")
    return changes


def versions() -> dict[str, str]:
    """The versions of what wrote a run (Python, sovtp and the libraries answers depend on)."""
    import importlib.metadata as md
    import platform

    out = {"python": platform.python_version()}
    for pkg in (
        "sovtp",
        "mediapipe",
        "supervision",
        "transformers",
        "torch",
        "vllm",
        "openai",
        "ray",
        "av",
    ):
        with contextlib.suppress(md.PackageNotFoundError):
            out[pkg] = md.version(pkg)
    return out


class RunFolder(Closeable):
    """A run folder held by this process for one recipe (``kind``).  Use :meth:`claim` to take it
    (lock + kind + resume rule), :meth:`write` for its files, :meth:`close` (or ``with``) to let
    it go."""

    def __init__(self, root: str | Path, kind: str):
        self.root = Path(root)
        self.kind = kind
        self._lockfile: Any = None

    # -- one writer -----------------------------------------------------------------------------
    def lock(self) -> None:
        """Hold the folder for this process (a POSIX lock on ``RUN/.lock``, released by
        ``close`` or when the process dies, even by ``kill -9``): two processes writing one run
        would interleave their rows.  ``lockf``, not ``flock``: a forked worker does not inherit
        it, so a worker that outlives a killed run cannot keep the folder locked."""
        import errno
        import fcntl

        if self._lockfile is not None:
            return
        if self.root.exists() and not self.root.is_dir():
            raise SovtpError(f"{self.root} is a file, not a folder: choose another --out")
        self.root.mkdir(parents=True, exist_ok=True)
        me = str(self.root.resolve())
        if me in _HELD:
            raise RunLocked(f"{self.root} is already being written by this process")
        path = self.root / ".lock"
        for _ in range(100):
            f = path.open("a+")
            try:
                fcntl.lockf(f, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except OSError as e:
                if e.errno not in (errno.EACCES, errno.EAGAIN):
                    raise
                f.seek(0)
                holder = f.read().strip() or "?"
                f.close()
                raise RunLocked(
                    f"{self.root} is in use by another sovtp process (pid {holder}); wait for it "
                    "to finish, or choose another --out"
                ) from None
            # the holder before us removes the file as it lets go (close): a lock won on a
            # file no longer at the path guards nothing — open the path again
            try:
                if os.fstat(f.fileno()).st_ino == os.stat(path).st_ino:
                    break
            except FileNotFoundError:
                pass
            f.close()
        else:
            raise RunLocked(f"{self.root}: could not take its lock file {path}")
        f.seek(0)
        f.truncate()
        f.write(str(os.getpid()))
        f.flush()
        self._lockfile = f
        _HELD.add(me)

    def close(self) -> None:
        """Let the folder go: ``.lock`` is removed while still held (a process that opened it
        meanwhile sees the inode gone and opens the path again), then released."""
        if self._lockfile is None:
            return
        with contextlib.suppress(OSError):
            if os.fstat(self._lockfile.fileno()).st_ino == (self.root / ".lock").stat().st_ino:
                (self.root / ".lock").unlink()
        self._lockfile.close()  # closing the descriptor releases the lock
        self._lockfile = None
        _HELD.discard(str(self.root.resolve()))

    # -- one kind, one resume rule --------------------------------------------------------------
    def marker(self) -> dict[str, Any]:
        """``run.json`` (``{}`` when absent or unreadable); a folder from before it gets its kind
        from the files only one recipe writes."""
        p = self.root / MARKER
        with contextlib.suppress(OSError, ValueError):
            doc = json.loads(p.read_text())
            if isinstance(doc, dict):
                return doc
        for name, kind in LEGACY_KINDS:
            if (self.root / name).exists():
                return {"kind": kind, "legacy": True}
        return {}

    def has_results(self) -> bool:
        """Whether the folder already holds this recipe's results (override per recipe)."""
        return (self.root / MARKER).exists()

    def legacy_identity(self) -> dict[str, Any] | None:
        """Where a folder from before ``run.json`` kept its identity (override per recipe)."""
        return None

    def claim(
        self,
        identity: dict[str, Any] | None = None,
        resume: bool = False,
        what: str | None = "--resume",
    ) -> None:
        """Take the folder for this recipe: lock it, refuse another recipe's folder, refuse a
        folder with results unless ``resume``, and on resume refuse any change of ``identity``
        (each named).  ``what``: the option that continues a run (None: the recipe has none, so
        a finished run is kept, never replaced).  Records ``run.json`` with the identity now in
        force."""
        self.lock()
        try:
            old = self.marker()
            if old.get("kind") and old["kind"] != self.kind:
                raise RunKindError(
                    f"{self.root} holds a `{old['kind']}` run; `sovtp {self.kind}` writes its own "
                    "kind of folder: choose another --out"
                )
            if self.has_results():
                if not resume:
                    how = f"add {what} to continue it, or " if what else "remove it, or "
                    raise SovtpError(
                        f"{self.root} already holds a `{self.kind}` run: {how}choose another --out"
                    )
                before = old.get("identity") or self.legacy_identity()
                if identity is not None and before is not None:
                    changes = identity_changes(before, identity)
                    if changes:
                        raise SovtpError(
                            f"{what} would change what {self.root} measured:\n  "
                            + "\n  ".join(changes)
                            + "\nrun it with the old settings, or choose another --out"
                        )
                elif identity is not None:
                    log.warning("%s predates run identities: cannot check %s", self.root, what)
            self.write_marker(identity)
        except BaseException:
            self.close()
            raise

    def write_marker(self, identity: dict[str, Any] | None) -> None:
        from sovtp import __version__

        doc: dict[str, Any] = {"kind": self.kind, "sovtp": __version__}
        if identity is not None:
            doc |= {"identity": identity, "identity_hash": identity_hash(identity)}
        write_json(self.root / MARKER, doc)

    # -- atomic files -------------------------------------------------------------------------
    def write(self, name: str, data: str | bytes) -> Path:
        p = self.root / name
        atomic_write(p, data)
        return p

    def write_json(self, name: str, data: Any) -> Path:
        p = self.root / name
        write_json(p, data)
        return p
