"""The explorer in a real browser: headless Chromium (Debian `chromium` + `chromium-driver`) via Selenium.

Loads the page from `echoic serve`, clicks a point of the map, checks the neighbour list against
the API, checks that the `<audio>` element's source answers 200 with WAV bytes and that the
browser decoded it, searches with a file through the file input, and saves a screenshot
(``explorer.png`` in the test's tmp dir). Skips when Chromium is missing, unless
``ECHOIC_REQUIRE_BROWSER=1`` (``make test`` sets it): then a missing browser fails.
"""

from __future__ import annotations

import json
import os
import shutil
import urllib.request
from pathlib import Path

import pytest
from serve_helpers import Collection

CHROMIUM = ("/usr/bin/chromium", "/usr/bin/chromium-browser")
DRIVER = "/usr/bin/chromedriver"


def browser_paths() -> tuple[str, str]:
    binary = next((p for p in CHROMIUM if os.path.exists(p)), shutil.which("chromium"))
    driver = DRIVER if os.path.exists(DRIVER) else shutil.which("chromedriver")
    if binary and driver:
        return binary, driver
    why = (
        "headless Chromium not found (expected Debian's chromium and chromium-driver: "
        "apt-get install chromium chromium-driver, or `make apt`)"
    )
    if os.environ.get("ECHOIC_REQUIRE_BROWSER") == "1":
        pytest.fail(f"ECHOIC_REQUIRE_BROWSER=1 but {why}")
    pytest.skip(why)


@pytest.fixture(scope="module")
def browser():
    webdriver = pytest.importorskip("selenium.webdriver", reason="selenium (the test extra)")
    binary, driver_path = browser_paths()
    options = webdriver.ChromeOptions()
    options.binary_location = binary
    for arg in (
        "--headless=new",
        "--no-sandbox",  # root in a container
        "--disable-gpu",
        "--disable-dev-shm-usage",
        "--window-size=1280,800",
        "--autoplay-policy=no-user-gesture-required",
        "--mute-audio",
    ):
        options.add_argument(arg)
    driver = webdriver.Chrome(options=options, service=webdriver.ChromeService(driver_path))
    driver.set_script_timeout(15)
    yield driver
    driver.quit()


def api(url: str) -> dict:
    with urllib.request.urlopen(url, timeout=10) as r:
        return json.loads(r.read())


def wait_for(driver, script: str, *args, timeout: float = 10.0):
    from selenium.webdriver.support.ui import WebDriverWait

    return WebDriverWait(driver, timeout, poll_frequency=0.05).until(
        lambda d: d.execute_script(script, *args)
    )


def test_explorer_in_headless_chromium(browser, server, collection: Collection, tmp_path: Path):
    from selenium.webdriver.common.action_chains import ActionChains
    from selenium.webdriver.common.by import By

    browser.get(server.url)
    wait_for(browser, "return document.body.dataset.ready === 'true'")
    canvas = browser.find_element(By.ID, "map")
    # a "high" tone clip: find its row, where it is drawn, and click there
    target_path = next(p for p, v in collection.labels.items() if v == "high")
    ids = browser.execute_script("return window.echoicExplorer.ids()")
    assert len(ids) == api(server.url + "api/health")["count"]
    info = api(server.url + "api/info")
    assert info["count"] == len(ids)
    rows = {i: api(server.url + f"api/neighbours/{i}?k=1")["query"] for i in ids}
    target = next(i for i, q in rows.items() if target_path.endswith(q["name"]))
    at = browser.execute_script("return window.echoicExplorer.pointPosition(arguments[0])", target)
    size = canvas.size
    ActionChains(browser).move_to_element_with_offset(
        canvas, at["x"] - size["width"] / 2, at["y"] - size["height"] / 2
    ).click().perform()
    wait_for(browser, "return document.querySelectorAll('#neighbours li.hit').length > 0")
    clicked = int(browser.find_element(By.CSS_SELECTOR, "#query .card").get_attribute("data-id"))
    there = browser.execute_script(
        "return window.echoicExplorer.pointPosition(arguments[0])", clicked
    )
    assert abs(there["x"] - at["x"]) < 2 and abs(there["y"] - at["y"]) < 2  # the point clicked
    # the neighbour list is the API's answer, best first, the query left out
    shown = [
        int(li.get_attribute("data-id"))
        for li in browser.find_elements(By.CSS_SELECTOR, "#neighbours li.hit")
    ]
    expected = api(server.url + f"api/neighbours/{clicked}?k={info['k']}")["hits"]
    assert shown == [h["id"] for h in expected] and clicked not in shown
    assert len(shown) == info["k"] == 5
    labels = [h["label"] for h in expected]
    assert labels[0] == rows[clicked]["label"]
    # the query's <audio>: its source answers 200 with WAV bytes (no-store: a cached partial
    # entry of the element's own range request would answer 206), and the browser decoded it
    src = browser.find_element(By.CSS_SELECTOR, "#query audio").get_attribute("src")
    fetched = browser.execute_async_script(
        """const done = arguments[arguments.length - 1];
        fetch(arguments[0], {cache: 'no-store'}).then(async (r) => {
          const bytes = new Uint8Array(await r.arrayBuffer());
          done({status: r.status, type: r.headers.get('content-type'), length: bytes.length,
                head: String.fromCharCode(...bytes.slice(0, 4))});
        }).catch((e) => done({error: String(e)}));""",
        src,
    )
    assert fetched["status"] == 200 and fetched["type"] == "audio/wav", fetched
    assert fetched["head"] == "RIFF" and fetched["length"] > 16000, fetched
    duration = wait_for(
        browser,
        "const a = document.querySelector('#query audio');"
        "return a.readyState >= 1 && isFinite(a.duration) ? a.duration : false;",
    )
    assert duration == pytest.approx(rows[clicked]["duration_s"], abs=0.05)
    # thumbnails arrived as images
    wait_for(
        browser,
        "return [...document.querySelectorAll('#neighbours img')]"
        ".every((i) => i.complete && i.naturalWidth === 240);",
    )
    # search with a file: a "hiss" clip through the file input
    hiss = next(p for p, v in collection.labels.items() if v == "hiss")
    browser.find_element(By.ID, "file-input").send_keys(hiss)
    wait_for(
        browser, "return document.querySelector('#query .meta').textContent.includes('upload')"
    )
    first = browser.find_element(By.CSS_SELECTOR, "#neighbours li.hit .meta").text
    assert "label hiss" in first
    # search by id
    box = browser.find_element(By.ID, "id-input")
    box.send_keys(str(target))
    browser.find_element(By.CSS_SELECTOR, "#id-form button").click()
    wait_for(
        browser,
        "return document.querySelector('#query .card').dataset.id === arguments[0]",
        str(target),
    )
    shot = tmp_path / "explorer.png"
    print(f"screenshot: {shot}")
    assert browser.save_screenshot(str(shot))
    assert shot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and shot.stat().st_size > 10_000
    errors = [
        e for e in browser.get_log("browser") if e["level"] == "SEVERE"
    ]  # no script errors, no CSP violations
    assert not errors, errors
