"""The official Node SDK (@coze/api 1.3.9), unchanged, against the real server: all nine
endpoints (tests/api/node/conformance.mjs). The package is installed from the npm registry
into a cache folder on first use."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path

import pytest

from tests.api.conftest import Server
from tests.conftest import read_speech, speech_files, wav_bytes

HERE = Path(__file__).parent / "node"


@pytest.fixture(scope="session")
def node_project(tmp_path_factory: pytest.TempPathFactory) -> Path:
    if shutil.which("node") is None or shutil.which("npm") is None:
        if os.environ.get("CI"):
            pytest.fail("node and npm are needed for the Node SDK suite")
        pytest.skip("node and npm are not installed")
    project = tmp_path_factory.mktemp("node")
    for name in ("package.json", "conformance.mjs"):
        shutil.copy(HERE / name, project / name)
    installed = subprocess.run(
        ["npm", "install", "--no-audit", "--no-fund", "--loglevel=error"],
        cwd=project, capture_output=True, text=True, timeout=600, check=False,
    )  # fmt: skip
    assert installed.returncode == 0, installed.stderr
    return project


def test_all_nine_endpoints_through_the_node_sdk(
    node_project: Path, sqlite_server: Server, tmp_path: Path
) -> None:
    files = {}
    for name, speaker, index in (
        ("ENROL_A", "1688", 0),
        ("ENROL_B", "2033", 0),
        ("PROBE_A", "1688", 2),
    ):
        path = tmp_path / f"{name}.wav"
        path.write_bytes(wav_bytes(*read_speech(speech_files("librispeech", speaker)[index])))
        files[name] = str(path)
    env = {
        **os.environ,
        "VOICEPRINT_URL": sqlite_server.url,
        "VOICEPRINT_TOKEN": sqlite_server.token("node"),
        **files,
    }
    result = subprocess.run(
        ["node", "conformance.mjs"], cwd=node_project, env=env, capture_output=True, text=True,
        timeout=300, check=False,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr[-3000:]
    seen = json.loads(result.stdout.strip().splitlines()[-1])
    assert seen["ok"] is True and seen["best"]["score"] >= 50
