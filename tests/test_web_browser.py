"""A real headless Chromium on the page of a real `fcn-edge run` (the default model on the
synthetic street clip, looped): the stream shows and moves, the legend lists the model's
classes in its colours, the statistics arrive, and the controls change the running
pipeline, as the statistics and the frames themselves show. A screenshot is kept.

Needs Debian's ``chromium`` and ``chromium-driver`` and ``pip install selenium``; skips
with that reason where they are missing (CI installs them).
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import threading
from pathlib import Path

import pytest

from fcn_edge.artifacts import read_onnx_meta
from web_clients import fed_page, request, wait_for

TOKEN = "browser-test-token-42"
CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
CHROMEDRIVER = shutil.which("chromedriver")

# The picture's pixels, sampled in the page: a fingerprint (changes from frame to frame) and
# the fraction that are (within JPEG noise) one of the palette's colours.
PIXELS_JS = """
const img = document.querySelector('img.video');
if (!img || !img.naturalWidth) return null;
const canvas = document.createElement('canvas');
canvas.width = img.naturalWidth; canvas.height = img.naturalHeight;
const context = canvas.getContext('2d');
context.drawImage(img, 0, 0);
const px = context.getImageData(0, 0, canvas.width, canvas.height).data;
const palette = arguments[0];
let sum = 0, near = 0, n = 0;
for (let i = 0; i < px.length; i += 4 * 7) {
  n++; sum += px[i] * 3 + px[i + 1] * 5 + px[i + 2] * 7;
  for (const p of palette) {
    if (Math.abs(p[0] - px[i]) <= 24 && Math.abs(p[1] - px[i + 1]) <= 24 && Math.abs(p[2] - px[i + 2]) <= 24) { near++; break; }
  }
}
return {width: img.naturalWidth, height: img.naturalHeight, fingerprint: sum, near: near / n};
"""


@pytest.fixture(scope="module")
def browser():
    webdriver = pytest.importorskip("selenium.webdriver", reason="pip install selenium (CI: see .ci/run)")
    if CHROMIUM is None or CHROMEDRIVER is None:
        pytest.skip("needs Chromium and its driver: apt-get install chromium chromium-driver")
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for argument in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                     "--window-size=1400,1000", "--hide-scrollbars"):
        options.add_argument(argument)
    driver = webdriver.Chrome(service=Service(CHROMEDRIVER), options=options)
    driver.set_page_load_timeout(30)
    yield driver
    driver.quit()


@pytest.fixture(scope="module")
def served(tmp_path_factory):
    """`fcn-edge run` of the synthetic clip, looped, with the page as its output."""
    from fcn_edge.data.synthetic import ensure_clip
    from fcn_edge.weights import default_onnx

    clip = ensure_clip(progress=False)
    folder = tmp_path_factory.mktemp("web-browser")
    summary = folder / "summary.json"
    process = subprocess.Popen(
        [sys.executable, "-m", "fcn_edge", "run", str(clip), "-o", "http://127.0.0.1:0/", "--view-token", TOKEN,
         "--input-loop", "-1", "--no-stats", "--threads", "1", "--json", str(summary)],
        stderr=subprocess.PIPE, text=True)
    lines = []
    found = threading.Event()

    def read_stderr():
        for line in process.stderr:
            lines.append(line)
            if line.startswith("page: "):
                found.set()

    reader = threading.Thread(target=read_stderr, daemon=True)
    reader.start()
    if not found.wait(120):
        process.kill()
        pytest.fail("fcn-edge run printed no page address:\n" + "".join(lines))
    url = next(line for line in lines if line.startswith("page: ")).split()[1]
    yield {"url": url, "meta": read_onnx_meta(default_onnx()), "folder": folder}
    process.send_signal(signal.SIGTERM)
    assert process.wait(30) == 143, "".join(lines)  # 128 + SIGTERM: stopped by the signal, output finalised
    reader.join(5)
    ended = json.loads(summary.read_text())
    assert ended["stopped_by"] == "SIGTERM received" and ended["frames_out"] > 0


def pixels(browser, meta):
    return browser.execute_script(PIXELS_JS, [list(c) for c in meta.palette])


def text(browser, selector: str) -> str:
    return browser.find_element("css selector", selector).text


def settings(url):
    status, _, body = request(url, "/api/stats", headers={"Authorization": f"Bearer {TOKEN}"})
    assert status == 200
    return json.loads(body)["streams"]["0"]


def artifact_path(tmp_path_factory, name: str) -> Path:
    folder = Path(os.environ.get("FCN_EDGE_TEST_ARTIFACTS") or tmp_path_factory.getbasetemp() / "artifacts")
    folder.mkdir(parents=True, exist_ok=True)
    return folder / name


def test_the_page_shows_the_stream_legend_and_statistics(served, browser, tmp_path_factory):
    meta = served["meta"]
    browser.get(served["url"] + f"?token={TOKEN}")  # the first load carries the token; a cookie the rest
    assert "token" not in browser.current_url
    first = wait_for(lambda: pixels(browser, meta), timeout=30, what="the stream's first frame")
    assert (first["width"], first["height"]) == (640, 480)
    wait_for(lambda: pixels(browser, meta)["fingerprint"] != first["fingerprint"], what="the stream to move")

    names = [e.text for e in browser.find_elements("css selector", ".classes .class-name")]
    assert names == list(meta.class_names)
    colours = [e.value_of_css_property("background-color") for e in browser.find_elements("css selector", ".classes .swatch")]
    assert colours == [f"rgba({r}, {g}, {b}, 1)" for r, g, b in meta.palette]

    wait_for(lambda: text(browser, "dd.fps") not in ("", "–") and float(text(browser, "dd.fps")) > 0, what="the FPS")
    assert int(text(browser, "dd.frames_out")) > 0 and int(text(browser, "dd.viewers")) >= 1
    assert text(browser, ".state") == "running"
    wait_for(lambda: "%" in text(browser, ".classes li .pct"), what="class shares")
    assert browser.find_element("css selector", "tr[data-stage='inference']").is_displayed()
    shot = artifact_path(tmp_path_factory, "web_page.png")
    browser.save_screenshot(str(shot))
    print(f"screenshot of the page: {shot}")
    assert shot.stat().st_size > 10_000


def test_controls_change_the_running_pipeline(served, browser, tmp_path_factory):
    from selenium.webdriver.support.ui import Select

    url, meta = served["url"], served["meta"]
    if "fcn-edge" not in browser.title:
        browser.get(url + f"?token={TOKEN}")
    wait_for(lambda: pixels(browser, meta), timeout=30, what="the stream")

    Select(browser.find_element("css selector", "select[name='mode']")).select_by_value("both")
    wait_for(lambda: pixels(browser, meta)["width"] == 1280, what="side-by-side frames")
    assert settings(url)["settings"]["mode"] == "both"
    wait_for(lambda: text(browser, ".settings-line").startswith("both"), what="the settings line")
    Select(browser.find_element("css selector", "select[name='mode']")).select_by_value("overlay")
    wait_for(lambda: pixels(browser, meta)["width"] == 640, what="overlay frames")

    def set_alpha(value: int) -> None:
        browser.execute_script("const a = document.querySelector('input[name=alpha]'); a.value = arguments[0];"
                               "a.dispatchEvent(new Event('input'));", value)
        wait_for(lambda: settings(url)["settings"]["alpha"] == value, what=f"alpha {value} in the statistics")
        wait_for(lambda: f"alpha {value}" in text(browser, ".settings-line"), what=f"alpha {value} on the page")

    set_alpha(255)  # the colour mask only: nearly every pixel is a palette colour
    wait_for(lambda: pixels(browser, meta)["near"] > 0.9, what="frames of palette colours")
    set_alpha(0)  # the camera frame only
    wait_for(lambda: pixels(browser, meta)["near"] < 0.5, what="frames of the camera's colours")
    set_alpha(150)

    # the default model fuses its argmax: linear filtering is refused, visibly, and nothing changes
    Select(browser.find_element("css selector", "select[name='filter_mode']")).select_by_value("linear")
    message = wait_for(lambda: text(browser, ".message"), what="the refusal")
    assert message.startswith("Refused:") and "no scores" in message
    assert browser.find_element("css selector", ".message.error").is_displayed()
    assert browser.find_element("css selector", "select[name='filter_mode']").get_attribute("value") == "point"
    assert settings(url)["settings"]["filter_mode"] == "point"
    shot = artifact_path(tmp_path_factory, "web_page_refusal.png")
    browser.save_screenshot(str(shot))
    print(f"screenshot of a refused control: {shot}")

    browser.find_element("css selector", "button.pause").click()
    wait_for(lambda: text(browser, ".state") == "paused", what="paused on the page")
    held = settings(url)["frames_out"]
    wait_for(lambda: text(browser, "dd.fps") == "0.0", what="FPS 0 while paused")
    assert settings(url)["frames_out"] <= held + 2  # at most what was in flight
    assert text(browser, ".message") == ""  # a successful control clears the refusal
    browser.find_element("css selector", "button.pause").click()
    wait_for(lambda: settings(url)["frames_out"] > held + 5, what="frames after resuming")


def test_the_page_lays_out_every_stream(browser):
    names = ("front", "rear", "left", "right", "dock", "gate")  # more than MJPEG_LIMIT: single frames
    with fed_page(streams=names) as page:
        browser.get(page.url)
        cards = wait_for(lambda: browser.find_elements("css selector", "section.card"), what="the cards")
        assert [card.get_attribute("data-stream") for card in cards] == list(names)
        wait_for(lambda: all(browser.execute_script("return arguments[0].naturalWidth", img) == 64
                             for img in browser.find_elements("css selector", "img.video")), what="every stream's frames")
        assert page.stream("gate").slot.stats()["frames_encoded"] > 0
