"""The documentation site in a real browser (headless Chromium, Debian's chromium and
chromium-driver packages; .ci/run installs them): each page loads without console errors, its
MathML is laid out as math, and its figures load. One screenshot per page is kept in
artefacts/screenshots/.

Without Chromium the test is skipped with the reason, unless NLPSPEC_REQUIRE_BROWSER=1 (CI),
where a missing browser is a failure."""
import os
import pathlib
import shutil

import pytest

pytestmark = pytest.mark.selftest

SCREENSHOTS = pathlib.Path(__file__).resolve().parent.parent / "artefacts" / "screenshots"
CHROMIUM, DRIVER = shutil.which("chromium"), shutil.which("chromedriver")


@pytest.fixture(scope="module")
def browser():
    missing = [name for name, path in (("chromium", CHROMIUM), ("chromedriver", DRIVER)) if path is None]
    try:
        from selenium import webdriver
        from selenium.webdriver.chrome.service import Service
    except ImportError:
        missing.append("selenium (pip install -e '.[browser]')")
    if missing:
        if os.environ.get("NLPSPEC_REQUIRE_BROWSER") == "1":
            pytest.fail(f"the browser test needs {', '.join(missing)}")
        pytest.skip(f"not installed: {', '.join(missing)} (apt-get install chromium chromium-driver)")
    options = webdriver.ChromeOptions()
    for argument in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--disable-gpu",
                     "--window-size=1200,900"):
        options.add_argument(argument)
    options.binary_location = CHROMIUM
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    driver = webdriver.Chrome(options=options, service=Service(DRIVER))
    yield driver
    driver.quit()


PAGES = ("index", "recurrent-cells", "rnn-architectures", "attention", "transformer", "conformance")

LAYOUT = """
return {
  math: [...document.querySelectorAll('math')].map(m => {
    const r = m.getBoundingClientRect();
    return [m.closest('[id]') ? m.closest('[id]').id : '', getComputedStyle(m).display, r.width, r.height];
  }),
  images: [...document.images].map(i => [i.getAttribute('src'), i.complete, i.naturalWidth]),
};
"""


@pytest.mark.parametrize("page", PAGES)
def test_page_renders_in_chromium(site, browser, page):
    root, _ = site
    browser.get((root / f"{page}.html").as_uri())
    browser.execute_script("document.querySelectorAll('img[loading=lazy]').forEach(i => i.loading = 'eager');")
    browser.execute_async_script("""
        const done = arguments[arguments.length - 1];
        Promise.all([...document.images].map(i => i.complete ? null : new Promise(r => { i.onload = i.onerror = r; })))
               .then(() => done());""")
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    browser.save_screenshot(str(SCREENSHOTS / f"{page}.png"))
    errors = [entry["message"] for entry in browser.get_log("browser") if entry["level"] == "SEVERE"]
    assert errors == [], f"{page}.html: console errors"
    found = browser.execute_script(LAYOUT)
    if page not in ("index", "conformance"):
        assert found["math"], f"{page}.html has no MathML"
    flat = [(where, display, w, h) for where, display, w, h in found["math"] if "math" not in display or w <= 0 or h <= 0]
    assert flat == [], f"{page}.html: MathML not laid out as math (where, display, width, height)"
    broken = [src for src, complete, width in found["images"] if not (complete and width > 0)]
    assert broken == [], f"{page}.html: figures that did not load"
