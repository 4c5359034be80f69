"""`voiceprint eval` on a folder of speaker folders made from the real corpus."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from tests.conftest import speech_files


def test_eval_reports_per_set_metrics_and_plots(tmp_path: Path) -> None:
    corpus = tmp_path / "mini"
    for speaker in ("1688", "1998", "2033", "2414", "3005"):
        (corpus / speaker).mkdir(parents=True)
        for path in speech_files("librispeech", speaker)[:4]:
            (corpus / speaker / path.name).symlink_to(path)
    out = tmp_path / "out"
    result = subprocess.run(
        [sys.executable, "-m", "voiceprint.cli", "eval", str(corpus), "--out", str(out),
         "--group-size", "3"],
        capture_output=True, text=True, env=os.environ.copy(), check=False,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert "| mini | 5 | 20 |" in result.stdout
    report = json.loads((out / "results.json").read_text())
    (mini,) = report["sets"]
    assert mini["target_trials"] == 5 * 6 and mini["nontarget_trials"] == 190 - 30
    assert mini["eer"] < 0.05
    assert mini["top1"] > 0.9
    assert mini["stranger_acceptance"] is not None
    for name in ("det.png", "scores.png"):
        assert (out / name).read_bytes()[:4] == b"\x89PNG"
