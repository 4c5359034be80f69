"""An unexpected exception still answers with the Coze envelope, code 5000, nothing internal."""

from __future__ import annotations

import logging

import pytest
from fastapi.testclient import TestClient

from voiceprint.api.app import create_app
from voiceprint.config import Settings


def test_crash_gets_envelope_without_internals(tmp_path, caplog: pytest.LogCaptureFixture) -> None:  # type: ignore[no-untyped-def]
    app = create_app(Settings(data_dir=tmp_path))

    async def broken() -> None:
        raise RuntimeError("secret internal detail")

    app.add_api_route("/broken", broken)
    client = TestClient(app, raise_server_exceptions=False)  # no lifespan: no models needed
    with caplog.at_level(logging.ERROR):
        response = client.get("/broken")
    body = response.json()
    assert response.status_code == 500 and body["code"] == 5000
    assert "secret" not in response.text and "Traceback" not in response.text
    assert len(body["detail"]["logid"]) == 30  # a real logid, not the "-" placeholder
    assert body["detail"]["logid"] == response.headers["x-tt-logid"]
    # The log has the details, under the same logid.
    assert "secret internal detail" in caplog.text
