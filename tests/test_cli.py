"""The command line as scripts use it: token create / list / revoke, embed."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.conftest import DATA, run_cli
from voiceprint.auth.tokens import AuthenticationFailed, authenticate
from voiceprint.store.db import make_engine, make_session_factory


def test_token_create_list_revoke(tmp_path: Path) -> None:
    created = run_cli(
        tmp_path, "token", "create", "--user", "ann", "--workspace", "acme",
        "--permissions", "listVoiceprintGroup,identifyInVoiceprintGroup", "--expires-days", "30",
    )  # fmt: skip
    assert created.returncode == 0, created.stderr
    token = created.stdout.strip().splitlines()[-1]
    assert token.startswith("vp_")

    database = make_engine(f"sqlite:///{tmp_path / 'voiceprint.db'}")
    sessions = make_session_factory(database)
    with sessions() as session:
        caller = authenticate(session, f"Bearer {token}")
    assert caller.account_name == "ann"
    assert caller.permissions == {"listVoiceprintGroup", "identifyInVoiceprintGroup"}
    secret = token.split("_", 2)[2]

    listed = run_cli(tmp_path, "token", "list")
    assert "ann" in listed.stdout and "acme" in listed.stdout and "active" in listed.stdout
    assert secret not in listed.stdout

    token_id = token.split("_")[1]
    assert run_cli(tmp_path, "token", "revoke", token_id).returncode == 0
    with sessions() as session, pytest.raises(AuthenticationFailed, match="revoked"):
        authenticate(session, f"Bearer {token}")
    assert "revoked" in run_cli(tmp_path, "token", "list").stdout
    assert run_cli(tmp_path, "token", "revoke", "999").returncode == 1

    # Only the hash is stored. (Read the file only once no connection is open: opening and
    # closing a SQLite file in a process drops that process's locks on it.)
    database.dispose()
    assert secret.encode() not in (tmp_path / "voiceprint.db").read_bytes()


def test_token_create_rejects_unknown_permission(tmp_path: Path) -> None:
    result = run_cli(tmp_path, "token", "create", "--user", "x", "--permissions", "readEverything")
    assert result.returncode == 2
    assert "readEverything" in result.stderr


def test_embed_prints_json_and_reports_bad_files(tmp_path: Path) -> None:
    bad = tmp_path / "bad.wav"
    bad.write_bytes(b"RIFF\x00\x00\x00\x00WAVEjunk")
    good = DATA / "librispeech/1688/1688-142285-0000.flac"
    result = run_cli(tmp_path, "embed", str(good), str(bad))
    assert result.returncode == 1
    assert "bad.wav" in result.stderr
    (item,) = json.loads(result.stdout)
    assert item["file"] == str(good) and len(item["embedding"]) == 192
    assert 0 < item["speech_s"] < item["duration_s"]
    raw = json.loads(run_cli(tmp_path, "embed", "--raw", str(good)).stdout)[0]
    # VAD measures and gates; both embed the whole clip (docs/accuracy.md says why).
    assert raw["speech_s"] is None and raw["embedding"] == item["embedding"]


def test_diarize_a_file(tmp_path: Path) -> None:
    import numpy as np
    import soundfile

    first = soundfile.read(DATA / "librispeech/1688/1688-142285-0000.flac")[0]
    second = soundfile.read(DATA / "librispeech/2033/2033-164914-0000.flac")[0]
    pause = np.zeros(8000)
    path = tmp_path / "two.wav"
    soundfile.write(
        path,
        np.concatenate([first[:80000], pause, second[:80000], pause, first[80000:160000]]),
        16000,
    )
    result = run_cli(tmp_path, "diarize", str(path))
    assert result.returncode == 0, result.stderr
    data = json.loads(result.stdout)
    assert [s["speaker"] for s in data["speakers"]] == ["S1", "S2"]
    assert data["segments"][0]["speaker"] == "S1" and data["segments"][-1]["speaker"] == "S1"
    rttm = run_cli(tmp_path, "diarize", "--rttm", str(path)).stdout.splitlines()
    assert len(rttm) == len(data["segments"]) and rttm[0].startswith("SPEAKER two 1 ")
