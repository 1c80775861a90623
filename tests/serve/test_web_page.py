"""The web pages in a real browser: headless Chromium (Debian's ``chromium`` and
``chromium-driver``, driven by Selenium) loads them from a uvicorn server on localhost,
uploads an image and reads the service's answer from the page. Skips without a browser."""
import shutil
import socket
import sys
import threading
import time
from pathlib import Path

import pytest
import torch

from crnn_ocr.reading.recognizer import Recognizer
from crnn_ocr.serve.app import create_app

from conftest import text_image
from conftest import tiny_checkpoint

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
CHROMEDRIVER = shutil.which("chromedriver")
selenium = pytest.importorskip("selenium", reason="selenium is not installed (pip install -e '.[test]')")
pytestmark = pytest.mark.skipif(not (CHROMIUM and CHROMEDRIVER),
                                reason="no headless browser: apt-get install chromium chromium-driver")

from selenium import webdriver  # noqa: E402
from selenium.webdriver.common.by import By  # noqa: E402
from selenium.webdriver.support.ui import WebDriverWait  # noqa: E402

CHROMIUM_FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                  "--disable-background-networking", "--disable-component-update", "--disable-sync",
                  "--disable-dev-shm-usage", "--window-size=1100,800"]


def running_server(app):
    """A uvicorn server for ``app`` on a free localhost port, in a thread; (url, stop)."""
    import uvicorn

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not server.started:
        assert time.monotonic() < deadline and thread.is_alive(), "uvicorn did not start"
        time.sleep(0.05)

    def stop():
        server.should_exit = True
        thread.join(10)

    return f"http://127.0.0.1:{port}", stop


@pytest.fixture(scope="module")
def recognizer(tmp_path_factory):
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield Recognizer.load(tiny_checkpoint(tmp_path_factory.mktemp("web") / "tiny.pt"))
    torch.set_num_threads(threads)


@pytest.fixture(scope="module")
def browser(tmp_path_factory):
    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for flag in CHROMIUM_FLAGS + [f"--user-data-dir={tmp_path_factory.mktemp('chromium-profile')}"]:
        options.add_argument(flag)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})  # the console: policy violations
    service = webdriver.ChromeService(executable_path=CHROMEDRIVER)
    driver = webdriver.Chrome(options=options, service=service)
    yield driver
    driver.quit()


def policy_violations(browser) -> list[str]:
    """Console messages of the page about its Content-Security-Policy (something it blocked)."""
    return [e["message"] for e in browser.get_log("browser") if "Content Security Policy" in e["message"]]


def test_api_docs_work_offline_under_the_pages_policy(recognizer, browser):
    url, stop = running_server(create_app({"tiny": recognizer}))
    try:
        browser.get_log("browser")  # earlier pages' messages
        browser.get(f"{url}/docs")
        wait = WebDriverWait(browser, 30)
        operations = wait.until(lambda d: d.find_elements(By.CSS_SELECTOR, ".opblock-summary-path"))
        assert "/v1/recognize" in [o.text.strip() for o in operations]
        loaded = browser.execute_script("return performance.getEntriesByType('resource').map(e => e.name)")
        assert loaded and all(u.startswith(url + "/") for u in loaded)  # nothing from another origin
        assert policy_violations(browser) == []
    finally:
        stop()


def test_page_shows_the_services_answer_for_an_uploaded_image(recognizer, browser, tmp_path):
    image = text_image("ab12", (160, 40))
    image.save(tmp_path / "word.png")
    expected = recognizer.read([image], details=True)[0]
    url, stop = running_server(create_app({"tiny": recognizer}))
    try:
        browser.get(url)
        wait = WebDriverWait(browser, 30)
        wait.until(lambda d: d.find_elements(By.CSS_SELECTOR, "#model option"))
        assert browser.find_element(By.ID, "model").get_attribute("value") == "tiny"
        browser.find_element(By.ID, "file").send_keys(str(tmp_path / "word.png"))
        card = wait.until(lambda d: d.find_element(By.CSS_SELECTOR, ".result.done"))
        shown = card.find_element(By.CLASS_NAME, "text").text
        assert shown == (expected.text or "(nothing read)")
        assert card.find_element(By.CLASS_NAME, "confidence").text == f"{100 * expected.confidence:.1f}%"
        if expected.chars:  # the strip is drawn once the image has loaded
            wait.until(lambda d: card.find_elements(By.CSS_SELECTOR, ".strip .char"))
        cells = card.find_elements(By.CSS_SELECTOR, ".strip .char")
        assert [c.text for c in cells] == [c.char for c in expected.chars]
        assert policy_violations(browser) == []  # the page runs under its Content-Security-Policy
    finally:
        stop()


def test_browse_page_lists_errors_first_and_filters_by_text(recognizer, browser, evaluation_folder):  # noqa: F811
    url, stop = running_server(create_app({"tiny": recognizer}, browse=evaluation_folder))
    try:
        browser.get(f"{url}/browse")
        wait = WebDriverWait(browser, 30)
        rows = wait.until(lambda d: d.find_elements(By.CSS_SELECTOR, "#rows tr"))
        assert [r.find_element(By.CLASS_NAME, "gold").text for r in rows] == ["cd", "ef", "ab"]
        assert "wrong" in rows[0].get_attribute("class")
        shown = wait.until(lambda d: rows[0].find_element(By.TAG_NAME, "img").get_property("naturalWidth"))
        assert shown == 120  # the image came from the service
        browser.find_element(By.ID, "filter").send_keys("a")
        wait.until(lambda d: len(d.find_elements(By.CSS_SELECTOR, "#rows tr")) == 1)
        assert browser.find_element(By.CSS_SELECTOR, "#rows .gold").text == "ab"
    finally:
        stop()



def test_page_mode_draws_the_line_boxes_over_an_uploaded_page_and_lists_its_lines(recognizer, browser, tmp_path):
    pytest.importorskip("cv2", reason="the page layout needs opencv-python-headless")
    pytest.importorskip("scipy", reason="the page layout needs SciPy")
    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "pages"))
    from pagedraw import draw_lines, text_line

    from crnn_ocr import pages as P

    line_model = P.load_recognizer("printed-en", threads=1, backend="pytorch")
    page = draw_lines([text_line(i, 6) for i in range(3)], size=(900, 260))
    page.save(tmp_path / "page.png")
    expected = P.read_page(page, line_model).to_dict()["lines"]
    url, stop = running_server(create_app({"tiny": recognizer, "printed-en": line_model}))
    try:
        browser.get(url)
        wait = WebDriverWait(browser, 30)
        wait.until(lambda d: d.find_elements(By.CSS_SELECTOR, "#model option"))
        browser.find_element(By.ID, "mode-page").click()
        assert browser.find_element(By.ID, "model").get_attribute("value") == "printed-en"  # a line model chosen
        browser.find_element(By.ID, "file").send_keys(str(tmp_path / "page.png"))
        view = wait.until(lambda d: d.find_element(By.CSS_SELECTOR, ".page-result.done"))
        listed = view.find_elements(By.CSS_SELECTOR, ".page-lines .line-text")
        assert [li.text for li in listed] == [line["text"] for line in expected] and expected
        boxes = view.find_elements(By.CSS_SELECTOR, ".boxes .line-box")
        assert len(boxes) == len(expected)
        img = view.find_element(By.CSS_SELECTOR, ".page-frame img")
        wait.until(lambda d: img.get_property("naturalWidth") == 900)
        scale = img.rect["width"] / 900  # the boxes follow the page's displayed size
        for box, line in zip(boxes, expected):
            x0, y0, x1, y1 = line["box"]
            assert box.rect["x"] - img.rect["x"] == pytest.approx(x0 * scale, abs=2)
            assert box.rect["y"] - img.rect["y"] == pytest.approx(y0 * scale, abs=2)
            assert box.rect["width"] == pytest.approx((x1 - x0) * scale, abs=3)
            assert box.rect["height"] == pytest.approx((y1 - y0) * scale, abs=3)
        view.find_elements(By.CSS_SELECTOR, ".page-line")[1].click()
        assert "selected" in boxes[1].get_attribute("class") and "selected" not in boxes[0].get_attribute("class")
        boxes[0].click()
        assert "selected" in boxes[0].get_attribute("class") and "selected" not in boxes[1].get_attribute("class")
        assert policy_violations(browser) == []
    finally:
        stop()
