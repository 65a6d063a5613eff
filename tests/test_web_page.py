"""The web page in a real browser: Debian's Chromium, headless, a wav file as the microphone."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from conftest import live_server, service_app

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
SAMPLE = Path(__file__).parent.parent / "samples" / "fr_bonjour.wav"


@pytest.mark.skipif(CHROMIUM is None, reason="Debian's chromium is not installed (scripts/setup.sh installs it)")
def test_microphone_to_translated_speech_in_chromium(tiny_dir):
    from playwright.sync_api import sync_playwright

    with live_server(service_app(tiny_dir, slots=2)) as address, sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=[
            "--use-fake-ui-for-media-stream", "--use-fake-device-for-media-stream",
            f"--use-file-for-fake-audio-capture={SAMPLE}", "--autoplay-policy=no-user-gesture-required"])
        try:
            page = browser.new_page()
            console = []
            page.on("console", lambda message: console.append(message.text))
            page.goto(f"http://{address}/")
            page.click("#start")
            page.wait_for_function("window.hibiki.framesReceived >= 15", timeout=60_000)
            page.click("#stop")
            page.wait_for_function("window.hibiki.final !== null || window.hibiki.error !== null", timeout=60_000)
            state = page.evaluate("window.hibiki")
            shown = page.inner_text("#live")
            timing = page.inner_text("#timing")
        finally:
            browser.close()
    assert state["error"] is None, (state["error"], console)
    assert state["framesSent"] >= 15 and state["framesReceived"] >= state["framesSent"]
    assert state["final"]["timing"]["input_s"] > 1.0
    assert shown == state["final"]["text"] and "end_offset_s" in timing
