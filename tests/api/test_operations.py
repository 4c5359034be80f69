"""What operators see: Prometheus metrics and JSON log lines, from a real server."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator

import httpx
import pytest

from tests.api.conftest import Server, start_sqlite
from tests.conftest import read_speech, speech_files, wait_for, wav_bytes

PREFIX = "/v1/audio/voiceprint_groups"


@pytest.fixture(scope="module")
def ops(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    yield from start_sqlite(tmp_path_factory, "ops", log_format="json", metrics_token="scrape-me")


def test_metrics_count_requests_stages_and_stored_things(ops: Server) -> None:
    token = ops.token()
    auth = {"Authorization": f"Bearer {token}"}
    group = httpx.post(f"{ops.url}{PREFIX}", json={"name": "ops"}, headers=auth).json()["data"][
        "id"
    ]
    clip = wav_bytes(*read_speech(speech_files("librispeech", "1688")[0]))
    httpx.post(
        f"{ops.url}{PREFIX}/{group}/features",
        data={"name": "a"},
        files={"file": clip},
        headers=auth,
        timeout=60,
    )
    httpx.post(
        f"{ops.url}{PREFIX}/{group}/speaker_identify",
        files={"file": b"\x89PNG" + bytes(64)},
        headers=auth,
    )

    assert httpx.get(f"{ops.url}/metrics").json()["code"] == 4100  # no token
    assert (
        httpx.get(f"{ops.url}/metrics", headers=auth).status_code == 401
    )  # an API token is not it

    def scrape() -> str:
        return httpx.get(f"{ops.url}/metrics", headers={"Authorization": "Bearer scrape-me"}).text

    def value(prefix: str, text: str) -> float:
        lines = text.splitlines()
        return sum(float(line.rsplit(" ", 1)[1]) for line in lines if line.startswith(prefix))

    # A request is counted once its answer has gone out, so the count may trail the answer.
    requests = 'voiceprint_requests_total{{method="POST",route="{}/{{group_id}}/{}",status="{}"}}'
    enrolled = requests.format(PREFIX, "features", 200)
    refused = requests.format(PREFIX, "speaker_identify", 400)
    wait_for(
        lambda: value(enrolled, scrape()) >= 1 and value(refused, scrape()) >= 1,
        what="both requests to be counted",
    )
    text = scrape()
    lines = text.splitlines()
    assert value(enrolled, text) == 1
    assert value('voiceprint_refused_total{code="4301"}', text) == 1
    assert value('voiceprint_stage_seconds_count{stage="embedding"}', text) >= 1
    assert value('voiceprint_stage_seconds_count{stage="decode"}', text) >= 2
    assert value('voiceprint_stored{kind="voiceprints"}', text) == 1
    assert value('voiceprint_stored{kind="groups"}', text) == 1
    assert any(line.startswith("voiceprint_model_info{") for line in lines)
    assert not re.search(r'route="[^"]*/[0-9]{6,}', text)  # templates, never ids


def test_json_logs_carry_the_logid_and_nothing_secret(ops: Server) -> None:
    token = ops.token("logger")
    response = httpx.get(
        f"{ops.url}{PREFIX}?name=Secret", headers={"Authorization": f"Bearer {token}"}
    )
    logid = response.headers["x-tt-logid"]

    def mine() -> list[dict]:
        lines = ops.log.read_text().split("\n")[:-1]  # whole lines only
        records = [json.loads(line) for line in lines if line.startswith("{")]
        return [r for r in records if r["logid"] == logid]

    # The access line is written once the answer has gone out.
    wait_for(lambda: bool(mine()), what="the request's log line")
    assert mine()[-1]["message"].startswith(f"GET {PREFIX} 200")
    assert {"time", "level", "logger", "logid", "message"} <= set(mine()[-1])
    text = ops.log.read_text()
    assert token not in text and "Secret" not in text and "scrape-me" not in text
