"""The site in a real headless browser: Debian's chromium (/usr/bin/chromium) driven by Playwright.

Installed by scripts/setup.sh (apt-get install chromium; Playwright's Python package from the dev extra; no
`playwright install`). Skipped, with the reason, when either is missing. Screenshots go to
test-artifacts/browser/.
"""

from __future__ import annotations

import shutil
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from conftest import ROOT
from test_site import HOSTILE, _make_store

from autoform.site import build_site, make_server

CHROMIUM = Path("/usr/bin/chromium")
ARTIFACTS = ROOT / "test-artifacts" / "browser"
ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]

if not CHROMIUM.exists():
    pytest.skip(
        f"browser tests need Debian's chromium at {CHROMIUM} (scripts/setup.sh installs it with apt-get)",
        allow_module_level=True,
    )
sync_api = pytest.importorskip(
    "playwright.sync_api",
    reason="browser tests need Playwright's Python package (pip install playwright; "
    "scripts/setup.sh installs the dev extra)",
)


class Page:
    """A browser page that records console errors, page errors, dialogs and requests leaving the site."""

    def __init__(self, context: Any, base: str) -> None:
        self.base = base
        self.page = context.new_page()
        self.errors: list[str] = []
        self.dialogs: list[str] = []
        self.external: list[str] = []
        self.page.on("console", lambda m: self.errors.append(f"console: {m.text}") if m.type == "error" else None)
        self.page.on("pageerror", lambda e: self.errors.append(f"pageerror: {e}"))
        self.page.on("requestfailed", lambda r: self.errors.append(f"request failed: {r.url}"))
        self.page.on("dialog", self._dialog)

        def route(r: Any) -> None:
            if r.request.url.startswith(base) or r.request.url.startswith("data:"):
                r.continue_()
            else:  # offline: nothing may be fetched from anywhere else (no CDN)
                self.external.append(r.request.url)
                r.abort()

        self.page.route("**/*", route)

    def _dialog(self, dialog: Any) -> None:
        self.dialogs.append(f"{dialog.type}: {dialog.message}")
        dialog.dismiss()

    def goto(self, path: str) -> Any:
        response = self.page.goto(self.base + path, wait_until="load")
        assert response is not None and response.status == 200, path
        return self.page

    def shot(self, name: str) -> Path:
        ARTIFACTS.mkdir(parents=True, exist_ok=True)
        path = ARTIFACTS / f"{name}.png"
        self.page.screenshot(path=str(path), full_page=True)
        return path

    def assert_clean(self) -> None:
        assert self.errors == [] and self.dialogs == [] and self.external == [], (
            self.errors,
            self.dialogs,
            self.external,
        )


@pytest.fixture(scope="module")
def base_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    base = tmp_path_factory.mktemp("browser-site")
    store = _make_store(base)
    out = base / "out"
    build_site(store, out)
    httpd = make_server(out, port=0, quiet=True)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}/"
    httpd.shutdown()
    httpd.server_close()


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    if ARTIFACTS.exists():
        shutil.rmtree(ARTIFACTS)
    with sync_api.sync_playwright() as p:
        b = p.chromium.launch(executable_path=str(CHROMIUM), args=ARGS, headless=True)
        yield b
        b.close()


@pytest.fixture
def page(browser: Any, base_url: str) -> Iterator[Page]:
    context = browser.new_context(viewport={"width": 1100, "height": 900}, java_script_enabled=True)
    context.set_default_timeout(10_000)
    yield Page(context, base_url)
    context.close()


def test_pages_load_without_console_errors(page: Page):
    for path, shot in [("index.html", "index"), ("numbers/index.html", "book"), ("empty/index.html", "book-empty")]:
        p = page.goto(path)
        assert p.locator("h1").first.is_visible()
        page.shot(shot)
    for uid in range(1, 6):
        p = page.goto(f"numbers/{uid}.html")
        assert p.locator(".statement").is_visible()
        assert p.locator(".badges .badge").first.is_visible()
        page.shot(f"unit-{uid}")
        if uid == 4:  # the stylesheets were applied (served, parsed): the status badge has its colour
            assert (
                p.eval_on_selector(".badges .badge", "e => getComputedStyle(e).backgroundColor") == "rgb(207, 34, 46)"
            )
    page.assert_clean()


def _box(p: Any, selector: str) -> dict[str, float]:
    box = p.locator(selector).first.bounding_box()
    assert box is not None, selector
    return box


def test_mathml_renders(page: Page):
    p = page.goto("numbers/1.html")
    math = _box(p, ".statement math")
    assert math["width"] > 0 and math["height"] > 0
    # laid out as mathematics, not as a run of text: the exponent sits above the base's baseline
    base, exp = _box(p, ".statement msup > mi"), _box(p, ".statement msup > mn")
    assert exp["y"] < base["y"] and exp["x"] >= base["x"] + base["width"] - 1
    p = page.goto("numbers/4.html")
    num, den = _box(p, ".statement mfrac > :first-child"), _box(p, ".statement mfrac > :last-child")
    assert num["y"] + num["height"] <= den["y"] + 1  # numerator above denominator
    p = page.goto("numbers/2.html")
    assert _box(p, '.statement math[display="block"]')["width"] > 0
    page.shot("mathml")
    page.assert_clean()


def _search(p: Any, query: str) -> list[str]:
    p.fill("#q", query)
    p.wait_for_selector("#results li")
    return [t.strip() for t in p.locator("#results li").all_inner_texts()]


def test_search_by_number_and_by_word(page: Page):
    p = page.goto("index.html")
    results = _search(p, "1.2")
    assert results[0].startswith("Theorem 1.2 (Squares are")  # the unit with that number comes first
    results = _search(p, "claim")  # a word of Theorem 2.1's statement only
    assert len(results) == 1 and results[0].startswith("Theorem 2.1")
    results = _search(p, "square of")  # every word must occur
    assert [r.split(" (")[0] for r in results] == ["Definition 1.1"]
    results = _search(p, "Numbers.sq_nonneg")  # the Lean name
    assert results[0].startswith("Theorem 1.2")
    assert _search(p, "zzzz-no-such-thing") == ["No match."]
    _search(p, "claim")
    page.shot("search")
    p.locator("#results a").first.click()
    p.wait_for_url("**/numbers/4.html")
    assert "A claim" in p.locator(".statement").inner_text()
    page.assert_clean()


def test_dependency_graph_shows(page: Page):
    p = page.goto("numbers/index.html")
    graphs = p.locator("svg.depgraph")
    assert graphs.count() == 2
    box = graphs.first.bounding_box()
    assert box is not None and box["width"] > 50 and box["height"] > 50
    nodes = p.locator("svg.depgraph").nth(1).locator("a.node")
    assert nodes.count() == 5
    for i in range(nodes.count()):
        b = nodes.nth(i).bounding_box()
        assert b is not None and b["width"] > 20 and b["height"] > 10
    # coloured by status with Blueprint's meanings: a stated lemma has a green border and a blue background
    lemma = p.locator('svg.depgraph a.node[data-unit="3"] ellipse')
    assert lemma.get_attribute("stroke") == "green" and lemma.get_attribute("fill") == "#A3D6FF"
    assert p.locator("svg.depgraph path.edge").count() == 4
    graphs.nth(1).scroll_into_view_if_needed()
    graphs.nth(1).screenshot(path=str(ARTIFACTS / "graph.png"))
    page.shot("graph-page")
    p.locator('svg.depgraph a.node[data-unit="4"]').click()  # a node opens its unit page
    p.wait_for_url("**/numbers/4.html")
    assert p.locator("h1").inner_text().startswith("Theorem 2.1")
    page.assert_clean()


def test_hostile_statement_is_inert(page: Page):
    p = page.goto("numbers/3.html")
    text = p.locator(".statement").inner_text()
    assert "<script>alert(1)</script>" in text and "<img src=x onerror=alert(1)>" in text.replace("\u00a0", " ")
    assert "<b>bold</b>" in p.locator("h1").inner_text()
    assert p.locator(".statement script, .statement img, h1 b, main i").count() == 0
    assert p.evaluate("() => document.querySelectorAll('script:not([src])').length") == 0
    page.shot("hostile")
    p = page.goto("index.html")
    results = _search(p, "alert")  # the hostile text goes through the search results too
    assert any("<b>bold</b>" in r for r in results)
    assert p.locator("#results img, #results script, #results b").count() == 0
    p = page.goto("numbers/index.html")
    assert "2 <i>Hostile</i>" in p.locator("section.chapter h2").nth(1).inner_text()
    p.wait_for_timeout(200)  # an injected handler would have fired by now
    assert page.dialogs == []
    page.assert_clean()
    assert HOSTILE.startswith("Let <script>")


def test_screenshots_saved(page: Page):
    page.goto("index.html")
    path = page.shot("final")
    assert path.stat().st_size > 1000 and path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert len(list(ARTIFACTS.glob("*.png"))) >= 2
