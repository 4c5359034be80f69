"""The server's own OpenAPI document, fuzzed with schemathesis against a real server.

Every operation gets generated requests, valid by the schema and not
(schemathesis's positive and negative modes: ids, paging, JSON and multipart
bodies, audio bytes), sent with a real token. Whatever comes in, no answer may
be a 5xx, and every error is the Coze envelope with a documented code and the
logid in its header. Derandomised (``HYPOTHESIS_PROFILE=fuzz`` for many more
cases); a failure prints the request to reproduce, which becomes a regression
test in test_hardening.py.
"""

from __future__ import annotations

import os

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from hypothesis.errors import Unsatisfiable
from schemathesis import GenerationMode

from tests.api.conftest import Server
from voiceprint.api.errors import Code

DOCUMENTED = {int(code) for code in Code}
FUZZ = os.environ.get("HYPOTHESIS_PROFILE") == "fuzz"
EXAMPLES = 1000 if FUZZ else 25


@pytest.fixture(scope="module")
def api_schema(sqlite_server: Server) -> schemathesis.BaseSchema:
    return schemathesis.openapi.from_url(f"{sqlite_server.url}/openapi.json")


def _check(response: schemathesis.Response) -> None:
    assert response.status_code < 500, (response.status_code, response.text)
    if not response.headers.get("content-type", [""])[0].startswith("application/json"):
        return
    body = response.json()
    if isinstance(body, dict) and "code" in body:
        assert body["code"] in DOCUMENTED, body
        # The xiaozhi routes refuse in their clients' shape: {"detail": "...", "code", "logid"}.
        xiaozhi = isinstance(body["detail"], str)
        logid = body["logid"] if xiaozhi else body["detail"]["logid"]
        assert [logid] == response.headers["x-tt-logid"]
        assert (body["code"] == 0) == (response.status_code == 200), body


@pytest.mark.parametrize("mode", [GenerationMode.POSITIVE, GenerationMode.NEGATIVE])
def test_no_input_gets_a_server_error(
    api_schema: schemathesis.BaseSchema, sqlite_server: Server, mode: GenerationMode
) -> None:
    headers = {"Authorization": f"Bearer {sqlite_server.token('fuzzer')}"}
    calls = 0
    for result in api_schema.get_all_operations():
        operation = result.ok()

        @given(case=operation.as_strategy(generation_mode=mode))
        @settings(
            max_examples=EXAMPLES,
            deadline=None,
            derandomize=not FUZZ,
            suppress_health_check=list(HealthCheck),
            database=None,
        )
        def run(case: schemathesis.Case) -> None:
            nonlocal calls
            calls += 1
            _check(case.call(headers=headers, timeout=60))

        try:
            run()
        except Unsatisfiable:
            assert mode is GenerationMode.NEGATIVE  # an operation with nothing to get wrong
    assert calls >= EXAMPLES  # the operations were really exercised
    print(f"{mode.value}: {calls} requests")
