"""The console in a real browser: Debian's Chromium driven by Playwright, its fake microphone
playing a real recording. Signs in, creates a group, enrols by microphone and by upload, adds
recordings to a voiceprint short of the advised speech, identifies the right person by upload,
by microphone and live (with its rolling timeline), renames and deletes; shows who spoke when
in a conversation of real recordings, one lane per speaker, and plays from a segment; keeps
screenshots in docs/console/."""

from __future__ import annotations

import json
import os
import shutil
from collections.abc import Iterator
from typing import Any

import httpx
import numpy as np
import pytest
import soundfile

from tests.api.conftest import Server
from tests.conftest import REPO, read_speech, speech_files, wav_bytes

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
# Screenshots go to a temporary folder unless asked for, e.g. to refresh docs/console:
# VOICEPRINT_SCREENSHOTS=docs/console pytest tests/api/test_console.py
SHOTS_TO = os.environ.get("VOICEPRINT_SCREENSHOTS")
API = "/v1/audio/voiceprint_groups"


@pytest.fixture(scope="module")
def browser_page(sqlite_server: Server, tmp_path_factory: pytest.TempPathFactory) -> Iterator:
    if CHROMIUM is None:
        if os.environ.get("CI"):
            pytest.fail("Debian's chromium is needed for the console tests (.ci/run installs it)")
        pytest.skip("LOUD SKIP: chromium is not installed here (apt-get install chromium)")
    from playwright.sync_api import sync_playwright

    tmp = tmp_path_factory.mktemp("browser")
    mic = tmp / "mic.wav"  # what the fake microphone says, in a loop: speaker 1688
    mic.write_bytes(wav_bytes(*read_speech(speech_files("librispeech", "1688")[1])))
    with sync_playwright() as p:
        browser = p.chromium.launch(
            executable_path=CHROMIUM,
            args=[
                "--use-fake-device-for-media-stream",
                "--use-fake-ui-for-media-stream",
                f"--use-file-for-fake-audio-capture={mic}",
                "--autoplay-policy=no-user-gesture-required",
            ],
        )
        context = browser.new_context(locale="en-US", permissions=["microphone"])
        page = context.new_page()
        answer = {"text": ""}  # what prompt() dialogs are answered with
        page.on("dialog", lambda dialog: dialog.accept(answer["text"]))
        yield page, tmp, answer
        browser.close()


def test_console_end_to_end(browser_page, sqlite_server: Server) -> None:  # type: ignore[no-untyped-def]
    page, tmp, answer = browser_page
    shots = REPO / SHOTS_TO if SHOTS_TO else tmp
    shots.mkdir(parents=True, exist_ok=True)
    page.goto(f"{sqlite_server.url}/console/")
    page.fill("#token", "vp_1_wrong")
    page.click("button:has-text('Sign in')")
    page.wait_for_selector("#error:not([hidden])")
    assert "not valid" in page.inner_text("#error")  # the API's message, not a bare code

    lists: list[str] = []  # group-list requests: one per sign-in, or a second render races the form
    page.on("request", lambda r: "?page_num=" in r.url and lists.append(r.url))
    page.fill("#token", sqlite_server.token("console"))
    page.click("button:has-text('Sign in')")
    page.wait_for_selector("#new-group")
    page.wait_for_load_state("networkidle")
    assert len(lists) == 1, lists
    page.fill("#new-group", "Family")
    page.click("#create-group")
    page.wait_for_selector("tr[data-group='Family']")
    page.screenshot(path=str(shots / "groups.png"))
    page.click("tr[data-group='Family'] a")
    page.wait_for_selector("#voice-name")

    page.fill("#voice-name", "Ann")  # by microphone: the fake one speaks 1688's recording
    page.click("button:has-text('Enrol by speaking')")
    page.wait_for_selector("tr[data-voice='Ann']", timeout=30000)
    other = tmp / "bob.wav"
    other.write_bytes(wav_bytes(*read_speech(speech_files("librispeech", "2033")[0])))
    page.fill("#voice-name", "Bob")
    page.set_input_files("#enrol-file", str(other))
    page.wait_for_selector("tr[data-voice='Bob']", timeout=30000)
    assert "s of speech" in page.inner_text("tr[data-voice='Ann']")
    assert page.locator("tr[data-voice='Bob'] .advice").count() == 0  # 2033's 8 s are enough

    # A voiceprint from short clips says it wants more speech, and takes recordings until it
    # has the advised 6 s.
    clips = [
        p for p in speech_files("speechocean762", "3020") if 2.5 < soundfile.info(p).duration < 4
    ]
    page.fill("#voice-name", "Cy")
    page.set_input_files("#enrol-file", str(clips[0]))
    page.wait_for_selector("tr[data-voice='Cy'] .advice", timeout=30000)
    assert "6 s advised" in page.inner_text("tr[data-voice='Cy'] .advice")
    for n, clip in enumerate(clips[1:], start=2):
        page.set_input_files("tr[data-voice='Cy'] .add-sample", str(clip))
        page.wait_for_selector(f"tr[data-voice='Cy'][data-samples='{n}']", timeout=30000)
        if page.locator("tr[data-voice='Cy'] .advice").count() == 0:
            break
    assert page.locator("tr[data-voice='Cy'] .advice").count() == 0 and 2 <= n <= 4

    probe = tmp / "probe.wav"
    probe.write_bytes(wav_bytes(*read_speech(speech_files("librispeech", "1688")[3])))
    page.set_input_files("#identify-file", str(probe))
    page.wait_for_selector(".result", timeout=30000)
    first = page.locator(".result").first
    assert first.get_attribute("data-name") == "Ann" and "same person" in first.inner_text()
    page.screenshot(path=str(shots / "identify.png"), full_page=True)
    page.evaluate("document.getElementById('results').replaceChildren()")
    page.click("button:has-text('Identify by speaking')")  # the fake microphone: 1688 again
    page.wait_for_selector(".result", timeout=30000)
    assert page.locator(".result").first.get_attribute("data-name") == "Ann"

    finals: list[dict[str, Any]] = []  # the stream's final segments, as the server sent them
    page.on("websocket", lambda ws: ws.on("framereceived", lambda f: _keep_final(f, finals)))
    page.click("#live")  # the live stream: the fake microphone keeps speaking as 1688
    page.wait_for_selector(".live[data-name='Ann']", timeout=30000)
    settled = "#live-timeline .lane[data-name='Ann'] .segment:not(.interim)"
    page.wait_for_selector(settled, timeout=30000)
    drawn = page.eval_on_selector_all(
        settled, "els => els.map((e) => [+e.dataset.startMs, +e.dataset.endMs])"
    )
    said = [[f["start_ms"], f["end_ms"]] for f in finals if _name(f) == "Ann"]
    assert drawn and all(span in said for span in drawn), (drawn, finals)
    interims = page.eval_on_selector_all(  # what a final settles is no longer drawn as interim
        "#live-timeline .lane.speaker .segment.interim",
        "els => els.map((e) => [+e.dataset.startMs, +e.dataset.endMs])",
    )
    assert not [(i, f) for i in interims for f in drawn if i[0] < f[1] and f[0] < i[1]]
    page.screenshot(path=str(shots / "live.png"), full_page=True)
    page.click("#live")

    answer["text"] = "Bobby"
    page.click("tr[data-voice='Bob'] >> text=Rename")
    page.wait_for_selector("tr[data-voice='Bobby']")
    page.click("tr[data-voice='Bobby'] >> text=Delete")
    page.wait_for_selector("tr[data-voice='Bobby']", state="detached")

    page.click("#lang")  # 中文
    page.wait_for_selector("text=说话识别")
    page.screenshot(path=str(shots / "voiceprints-zh.png"), full_page=True)
    page.click("#lang")
    page.click("text=All groups")
    page.click("tr[data-group='Family'] >> text=Delete")
    page.wait_for_selector("tr[data-group='Family']", state="detached")


def _keep_final(frame: str | bytes, into: list[dict[str, Any]]) -> None:
    event = json.loads(frame)
    if event["event_type"] == "speaker_identify.segment" and event["data"]["final"]:
        into.append(event["data"])


def _name(segment: dict[str, Any]) -> str:
    return segment["feature_score_list"][0]["feature_name"] if segment["match"] else ""


def _conversation() -> np.ndarray:
    """Ann (1688), then Bob (2033) starting a second before she stops, then a stranger (3080),
    then Ann again: 21 s of real recordings at 16 kHz."""
    ann, bob, stranger, again = (
        read_speech(speech_files("librispeech", who)[i])[0]
        for who, i in (("1688", 3), ("2033", 2), ("3080", 3), ("1688", 4))
    )
    starts = [0, len(ann) - 16000]
    starts.append(starts[1] + len(bob) + 8000)
    starts.append(starts[2] + len(stranger) + 6400)
    wave = np.zeros(starts[3] + len(again), dtype=np.float32)
    for start, piece in zip(starts, (ann, bob, stranger, again), strict=True):
        wave[start : start + len(piece)] += piece
    return np.clip(wave, -1, 1)


def _overlaps(data: dict[str, Any]) -> list[list[int]]:
    """Where two or more speakers' segments cover the same millisecond."""
    cover = np.zeros((len(data["speakers"]), data["duration_ms"]), dtype=bool)
    rows = {s["speaker"]: i for i, s in enumerate(data["speakers"])}
    for s in data["segments"]:
        cover[rows[s["speaker"]], s["start_ms"] : s["end_ms"]] = True
    both = np.concatenate([[0], (cover.sum(axis=0) >= 2).astype(int), [0]])
    edges = np.flatnonzero(np.diff(both))
    return [[int(a), int(b)] for a, b in zip(edges[::2], edges[1::2], strict=True)]


def _segment(segment: dict[str, Any]) -> str:
    return (
        f"#timeline .lane[data-speaker='{segment['speaker']}'] "
        f".segment[data-start-ms='{segment['start_ms']}']"
    )


def _plays_from(page: Any, start_s: float) -> None:
    page.wait_for_function(
        "s => { const a = document.getElementById('diarize-audio');"
        " return !a.paused && a.currentTime > s; }",
        arg=start_s,
    )
    playing = page.evaluate("document.getElementById('diarize-audio').currentTime")
    assert start_s < playing < start_s + 2


def test_who_spoke_when(browser_page, sqlite_server: Server) -> None:  # type: ignore[no-untyped-def]
    page, tmp, _ = browser_page
    shots = REPO / SHOTS_TO if SHOTS_TO else tmp
    shots.mkdir(parents=True, exist_ok=True)
    token = sqlite_server.token("console")
    with httpx.Client(
        base_url=sqlite_server.url, headers={"Authorization": f"Bearer {token}"}, timeout=60
    ) as client:
        group = client.post(API, json={"name": "Meeting"}).json()["data"]["id"]
        for name, who, i in (("Ann", "1688", 0), ("Bob", "2033", 0)):
            clip = wav_bytes(*read_speech(speech_files("librispeech", who)[i]))
            created = client.post(
                f"{API}/{group}/features", data={"name": name}, files={"file": clip}
            )
            assert created.json()["code"] == 0, created.text
    meeting = tmp / "meeting.wav"
    meeting.write_bytes(wav_bytes(_conversation(), 16000))

    page.goto(f"{sqlite_server.url}/console/")
    page.evaluate("token => sessionStorage.setItem('token', token)", token)
    # The group list the console opens with is held back until the user has moved on to the
    # diarize page: its late answer must not replace that page.
    held: list[Any] = []
    page.route("**/voiceprint_groups?page_num=*", lambda route: held.append(route))
    with page.expect_request(lambda r: "?page_num=" in r.url):
        page.reload()
    page.evaluate("group => { location.hash = `#/group/${group}/diarize`; }", group)
    page.wait_for_selector("#diarize-file")
    with page.expect_response(lambda r: "?page_num=" in r.url):
        held.pop().continue_()
    page.unroute("**/voiceprint_groups?page_num=*")
    page.wait_for_load_state("networkidle")
    assert page.locator("#diarize-file").count() == 1 and not page.locator("#groups").count()
    with page.expect_response(lambda r: r.url.endswith("/speaker_diarize")) as response:
        page.set_input_files("#diarize-file", str(meeting))
    data = response.value.json()["data"]
    page.wait_for_selector("#timeline .lane.speaker")

    # One lane per speaker of the answer, in its order, named from the group where matched.
    lanes = page.eval_on_selector_all(
        "#timeline .lane.speaker",
        """els => els.map((lane) => {
          const track = lane.querySelector('.track').getBoundingClientRect();
          return { speaker: lane.dataset.speaker, name: lane.dataset.name,
            label: lane.querySelector('.label').innerText, x: track.x, width: track.width,
            segments: [...lane.querySelectorAll('.segment')].map((s) => {
              const box = s.getBoundingClientRect();
              return { start_ms: +s.dataset.startMs, end_ms: +s.dataset.endMs,
                x: box.x, width: box.width };
            }) };
        })""",
    )
    assert [lane["speaker"] for lane in lanes] == [s["speaker"] for s in data["speakers"]]
    names = {s["speaker"]: s["feature_name"] if s["match"] else "" for s in data["speakers"]}
    assert {"Ann", "Bob"} <= set(names.values()), data["speakers"]
    for lane in lanes:
        assert lane["name"] == names[lane["speaker"]]
        assert (lane["name"] or lane["speaker"]) in lane["label"]
        mine = [s for s in data["segments"] if s["speaker"] == lane["speaker"]]
        assert [[s["start_ms"], s["end_ms"]] for s in lane["segments"]] == [
            [s["start_ms"], s["end_ms"]] for s in mine
        ]
        scale = lane["width"] / data["duration_ms"]  # pixels per millisecond
        for drawn in lane["segments"]:
            assert abs(drawn["x"] - lane["x"] - drawn["start_ms"] * scale) < 1
            width = (drawn["end_ms"] - drawn["start_ms"]) * scale
            assert abs(drawn["width"] - max(2, width)) < 1
    overlap = page.eval_on_selector_all(
        "#timeline .lane.overlap .segment",
        "els => els.map((e) => [+e.dataset.startMs, +e.dataset.endMs])",
    )
    assert overlap == _overlaps(data)
    assert page.locator("#timeline .band").count() == len(overlap)

    # Overlapping lanes as the diarizer may answer them: a band where two speak at once,
    # touching segments (of one speaker or of two) are none.
    made = page.evaluate(
        """() => {
          const lane = (key, ...spans) => ({ key, name: "", label: key,
            segments: spans.map(([start_ms, end_ms]) => ({ start_ms, end_ms })) });
          const drawn = timeline([lane("A", [1000, 3000]), lane("B", [2000, 4000], [4000, 4500]),
            lane("C", [2500, 4200]), lane("D", [4500, 4800])], 0, 5000);
          return [...drawn.querySelectorAll('.overlap .segment')]
            .map((e) => [+e.dataset.startMs, +e.dataset.endMs, e.style.left, e.style.width]);
        }"""
    )
    assert made == [[2000, 4200, "40%", "44%"]]

    # A click on a segment plays the recording from its start; so does Enter on one.
    segment = next(s for s in data["segments"] if s["start_ms"] > 1000)
    page.click(_segment(segment))
    _plays_from(page, segment["start_ms"] / 1000)
    page.wait_for_selector("#timeline .playhead:not([hidden])")
    page.screenshot(path=str(shots / "diarize.png"), full_page=True)
    later = data["segments"][-1]
    page.evaluate("document.getElementById('diarize-audio').pause()")  # only Enter plays it
    page.focus(_segment(later))
    page.keyboard.press("Enter")
    _plays_from(page, later["start_ms"] / 1000)

    uploads: list[str] = []
    page.on("request", lambda r: r.url.endswith("/speaker_diarize") and uploads.append(r.url))
    page.click("#lang")  # 中文: the page is drawn again, with the same answer and recording
    page.wait_for_selector("text=上传录音")
    page.wait_for_selector("#timeline .lane.speaker")
    assert page.locator("#timeline .lane.speaker").count() == len(data["speakers"])
    assert not uploads
    page.click(_segment(segment))
    _plays_from(page, segment["start_ms"] / 1000)
    assert "重叠" in page.inner_text("#timeline .lane.overlap")
    page.screenshot(path=str(shots / "diarize-zh.png"), full_page=True)
    page.click("#lang")
