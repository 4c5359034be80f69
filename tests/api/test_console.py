"""The console in a real browser: Debian's Chromium driven by Playwright, its fake microphone
playing a real recording. Signs in, creates a group, enrols by microphone and by upload,
identifies the right person by upload, by microphone and live, renames and deletes; keeps
screenshots in docs/console/."""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator

import pytest

from tests.api.conftest import Server
from tests.conftest import REPO, read_speech, speech_files, wav_bytes

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
# Screenshots go to a temporary folder unless asked for, e.g. to refresh docs/console:
# VOICEPRINT_SCREENSHOTS=docs/console pytest tests/api/test_console.py
SHOTS_TO = os.environ.get("VOICEPRINT_SCREENSHOTS")


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

    page.click("#live")  # the live stream: the fake microphone keeps speaking as 1688
    page.wait_for_selector(".live[data-name='Ann']", timeout=30000)
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
