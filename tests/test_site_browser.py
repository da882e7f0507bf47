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


def problems(browser, url: str, screenshot: pathlib.Path | None = None, needs_math: bool = True) -> list[str]:
    """What is wrong with a page in the browser: console errors, MathML not laid out as math,
    figures that did not load."""
    browser.get_log("browser")  # drop what earlier pages logged
    browser.get(url)
    browser.execute_async_script("""
        const done = arguments[arguments.length - 1];
        document.querySelectorAll('img[loading=lazy]').forEach(i => i.loading = 'eager');
        Promise.all([...document.images].map(i => i.complete ? null : new Promise(r => { i.onload = i.onerror = r; })))
               .then(() => done());""")
    if screenshot is not None:
        screenshot.parent.mkdir(parents=True, exist_ok=True)
        browser.save_screenshot(str(screenshot))
    found = [f"console: {entry['message']}" for entry in browser.get_log("browser") if entry["level"] == "SEVERE"]
    layout = browser.execute_script(LAYOUT)
    if needs_math and not layout["math"]:
        found.append("no MathML on the page")
    found += [f"MathML in #{where} not laid out as math (display {display}, {w}×{h})"
              for where, display, w, h in layout["math"] if "math" not in display or w <= 0 or h <= 0]
    found += [f"figure {src} did not load" for src, complete, width in layout["images"] if not (complete and width > 0)]
    return found


@pytest.mark.parametrize("page", PAGES)
def test_page_renders_in_chromium(site, browser, page):
    root, _ = site
    found = problems(browser, (root / f"{page}.html").as_uri(), SCREENSHOTS / f"{page}.png",
                     needs_math=page not in ("index", "conformance"))
    assert found == [], f"{page}.html"


def test_the_browser_check_sees_a_broken_page(browser, tmp_path):
    page = tmp_path / "broken.html"
    page.write_text('<!doctype html><html><head><meta charset="utf-8"><title>broken</title></head><body>'
                    '<section id="e"><math style="display:none"><mi>x</mi></math></section>'
                    '<img src="missing.png"><script>undefined_function()</script></body></html>')
    found = problems(browser, page.as_uri())
    assert any("missing.png" in p and p.startswith("console") for p in found), found
    assert any("undefined_function" in p for p in found), found
    assert any(p.startswith("MathML in #e") for p in found), found
    assert "figure missing.png did not load" in found, found
