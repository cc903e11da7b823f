"""The static Atlas site: pages per book and unit, MathML, escaping, badges, links, determinism."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from autoform.site import SiteSummary, build_site, math_html, render_tex, sanitize_mathml
from autoform.store import Store

HOSTILE = 'Let <script>alert(1)</script> be a "set" & $x<y$ hold.'
LEAN_PROVED = "theorem sq_nonneg' (n : Nat) : 0 ≤ n ^ 2 := by\n  exact Nat.zero_le _\n"


def _make_store(path: Path) -> Store:
    s = Store(path / "autoform.sqlite")
    units = [
        # id, ident, seq, kind, number, title, label, statement, proof, chapter, section, status, present
        (
            1,
            "def:square",
            1,
            "definition",
            "1.1",
            "Square",
            "def:square",
            "The \\emph{square} of $n$ is $n^2$.\n\nIt is a number.",
            "",
            "1 Numbers",
            "1.1 Squares",
            "defined",
            1,
        ),
        (
            2,
            "thm:sq",
            2,
            "theorem",
            "1.2",
            "Squares are $\\ge 0$",
            "thm:sq",
            "For every $n$, \\[ n^2 \\ge 0. \\] See Definition~\\ref{def:square}.",
            "By \\ref{def:square} and\n\\begin{align} n^2 &= n \\cdot n \\\\ &\\ge 0 \\end{align}",
            "1 Numbers",
            "1.1 Squares",
            "proved",
            1,
        ),
        (
            3,
            "lem:hostile",
            3,
            "lemma",
            "1.3",
            "<b>bold</b>",
            "lem:<x>",
            HOSTILE + " Also $<script>$ and $\\text{<img src=x onerror=alert(1)>}$ and "
            "$\\text{</mtext><script>alert(2)</script>}$ and $\\href{javascript:alert(3)}{x}$.",
            "<script>alert(4)</script>",
            "2 <i>Hostile</i>",
            "",
            "pending",
            1,
        ),
        (
            4,
            "thm:fail",
            4,
            "theorem",
            "2.1",
            "",
            "thm:fail",
            "A claim $\\frac{1}{2} < 1$.",
            "",
            "2 <i>Hostile</i>",
            "",
            "failed",
            1,
        ),
        (5, "thm:todo", 5, "theorem", "2.2", "", "", "Still to do.", "", "2 <i>Hostile</i>", "", "pending", 1),
        (6, "thm:gone", 6, "theorem", "2.3", "", "thm:gone", "Removed.", "", "", "", "pending", 0),
    ]
    with s.tx() as c:
        c.execute(
            "INSERT INTO books (id, slug, title, source_path, source_kind, ingested_at) "
            "VALUES (1, 'numbers', 'Numbers <&>', '/b/main.tex', 'latex', 1.0)"
        )
        c.execute(
            "INSERT INTO books (id, slug, title, source_path, source_kind, ingested_at) "
            "VALUES (2, 'empty', '', '/c/main.tex', 'latex', 2.0)"
        )
        for uid, ident, seq, kind, number, title, label, st, proof, ch, sec, status, present in units:
            c.execute(
                "INSERT INTO units (id, book_id, ident, seq, kind, number, title, label, statement, proof, chapter,"
                " section, source, status, present) VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)",
                (
                    uid,
                    1,
                    ident,
                    seq,
                    kind,
                    number,
                    title,
                    label,
                    st,
                    proof,
                    ch,
                    sec,
                    f"main.tex:{10 * seq}-{10 * seq + 5}",
                    status,
                    present,
                ),
            )
        c.executemany(
            "INSERT INTO unit_deps (unit_id, dep_id, via) VALUES (?,?,?)",
            [(2, 1, "ref"), (3, 2, "text"), (4, 2, "ref"), (4, 1, "ref")],
        )
        c.execute("INSERT INTO jobs (id, book_id, status, started_at) VALUES (1, 1, 'done', 5.0)")
        attempts = [
            (1, 1, 1, "definition", "def square (n : Nat) : Nat := n * n", 1, "[]"),
            (2, 2, 1, "proof", LEAN_PROVED, 1, "[]"),
            (
                3,
                4,
                1,
                "proof",
                "theorem bad : False := by simp",
                0,
                json.dumps([{"severity": "error", "line": 1, "column": 28, "text": "simp made no <progress>"}]),
            ),
            (
                4,
                4,
                2,
                "proof",
                "theorem bad : False := by omega",
                0,
                json.dumps([{"severity": "error", "line": 1, "column": 28, "text": "omega could not prove <goal>"}]),
            ),
        ]
        for aid, uid, n, stage, code, admitted, msgs in attempts:
            c.execute(
                "INSERT INTO attempts (id, job_id, unit_id, n, author, stage, lean_code, admitted, messages,"
                " created_at) VALUES (?,?,?,?,?,?,?,?,?,?)",
                (aid, 1, uid, n, "prover", stage, code, admitted, msgs, 6.0 + aid),
            )
        entries = [
            (1, 1, "Numbers.square", "defined", "def square (n : Nat) : Nat", "def square (n : Nat) : Nat := n * n", 1),
            (2, 2, "Numbers.sq_nonneg", "proved", "theorem sq_nonneg' (n : Nat) : 0 ≤ n ^ 2", LEAN_PROVED, 2),
            (3, 3, "Numbers.hostile", "stated", "theorem hostile : True", "theorem hostile : True := sorry", None),
        ]
        for eid, uid, decl, status, st, code, att in entries:
            c.execute(
                "INSERT INTO atlas_entries (id, unit_id, book_id, decl_name, status, statement_lean, lean_code,"
                " attempt_id, job_id, created_at) VALUES (?,?,?,?,?,?,?,?,?,?)",
                (eid, uid, 1, decl, status, st, code, att, 1, 7.0),
            )
    s.add_post(book_id=1, unit_id=2, author="critic", kind="critique", body="ok", data={"fidelity": "faithful"})
    s.add_post(book_id=1, unit_id=4, author="critic", kind="critique", body="no score", data={})
    return s


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> tuple[Store, Path, SiteSummary]:
    base = tmp_path_factory.mktemp("site")
    store = _make_store(base)
    out = base / "out"
    return store, out, build_site(store, out)


def _badges(page: str) -> str:
    m = re.search(r'<p class="badges">(.*?)</p>', page, re.S)
    assert m
    return m.group(1)


def test_files_exist(site):
    _, out, summary = site
    assert summary == SiteSummary(pages=1 + 2 + 5, books=2, units=5)
    for p in (
        "index.html",
        "search.json",
        "static/style.css",
        "static/pygments.css",
        "static/search.js",
        "static/search-data.js",
        "numbers/index.html",
        "empty/index.html",
    ):
        assert (out / p).is_file(), p
    for uid in range(1, 6):
        assert (out / "numbers" / f"{uid}.html").is_file()
    assert not (out / "numbers" / "6.html").exists()  # not present in the book any more


def test_mathml_and_paragraphs(site):
    _, out, _ = site
    page = (out / "numbers" / "1.html").read_text()
    assert "<math" in page and "<msup><mi>n</mi><mn>2</mn></msup>" in page
    assert "<em>square</em>" in page
    assert page.count("<p>") >= 2  # two paragraphs in the statement
    thm = (out / "numbers" / "2.html").read_text()
    assert 'display="block"' in thm  # \[ ... \]
    assert "<mtable>" in thm  # align environment in the proof
    assert "<details" in thm and "Proof (informal)" in thm
    assert 'See Definition\u00a0<a class="ref" href="1.html">1.1</a>.' in thm


def test_hostile_content_is_escaped(site):
    _, out, _ = site
    page = (out / "numbers" / "3.html").read_text()
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page
    assert "&lt;img" in page
    assert "&lt;b&gt;bold&lt;/b&gt;" in page and "lem:&lt;x&gt;" in page
    for f in out.rglob("*.html"):
        text = f.read_text()
        assert "<script>alert" not in text, f
        assert "<img" not in text, f
        assert "<b>" not in text and "<i>" not in text, f
        assert "javascript:" not in text, f
        # the only scripts are the site's own
        assert set(re.findall(r"<script[^>]*>", text)) <= {
            '<script src="static/search-data.js">',
            '<script src="static/search.js">',
        }, f


def test_latex2mathml_cannot_inject():
    for latex in (
        "<script>",
        r"\text{<img src=x onerror=alert(1)>}",
        r"\text{</mtext><script>alert(1)</script>}",
        r"\href{javascript:alert(1)}{x}",
        r"\style{color:red}{x}",
        r'\color{red" onload="x}{a}',
    ):
        out = math_html(latex, False)
        assert out.startswith("<math") and out.endswith("</math>"), out
        assert "<script" not in out and "<img" not in out and "href" not in out and "style=" not in out, out
        assert "onload" not in out
    assert "&lt;img\u00a0src=x" in math_html(r"\text{<img src=x onerror=alert(1)>}", False)
    # a converter failure falls back to the escaped source, per formula
    assert math_html(r"<b>\frac", False) == r'<code class="tex">&lt;b&gt;\frac</code>'
    page = str(render_tex(r"bad $<i>\frac$ good $y$"))
    assert r'<code class="tex">&lt;i&gt;\frac</code>' in page and "<mi>y</mi>" in page
    assert sanitize_mathml("<mi>a</mi><x onclick=1>") == "<mi>a</mi>&lt;x onclick=1&gt;"
    assert str(render_tex("a < b & $c$")).startswith("<p>a &lt; b &amp; <math")


def test_lean_highlighted(site):
    _, out, _ = site
    page = (out / "numbers" / "2.html").read_text()
    assert '<div class="highlight">' in page
    assert re.search(r'<span class="k[a-z]*">theorem</span>', page)
    assert "Numbers.sq_nonneg" in page
    assert ".highlight" in (out / "static" / "pygments.css").read_text()


def test_status_and_fidelity_badges(site):
    _, out, _ = site
    pages = {uid: (out / "numbers" / f"{uid}.html").read_text() for uid in range(1, 6)}
    assert _badges(pages[1]).startswith('<span class="badge status-proved">defined</span>')
    assert _badges(pages[2]).startswith('<span class="badge status-proved">proved</span>')
    assert _badges(pages[3]).startswith('<span class="badge status-stated">stated</span>')
    assert _badges(pages[4]).startswith('<span class="badge status-failed">failed</span>')
    assert _badges(pages[5]).startswith('<span class="badge status-pending">pending</span>')
    assert "fidelity: faithful" in _badges(pages[2])  # separate badge, status untouched
    assert all("fidelity" not in _badges(pages[u]) for u in (1, 3, 4, 5))
    # failed: attempts counted, the last attempt's messages shown (escaped)
    assert "2 attempts" in pages[4]
    assert "omega could not prove &lt;goal&gt;" in pages[4] and "simp made no" not in pages[4]
    assert "1 attempt." in pages[2] and "could not prove" not in pages[2]
    book = (out / "numbers" / "index.html").read_text()
    assert book.count('class="badge status-proved"') == 2 and book.count('class="badge status-failed"') == 1
    index = (out / "index.html").read_text()
    assert "2 proved (1 defined)" in index and "1 stated" in index and "1 failed" in index
    assert "1 pending" in index and 'class="bar status-proved" style="width: 40.000%"' in index


def test_book_page_chapters(site):
    _, out, _ = site
    book = (out / "numbers" / "index.html").read_text()
    assert book.index("1 Numbers") < book.index("2 &lt;i&gt;Hostile&lt;/i&gt;")
    assert book.count('<section class="chapter">') == 2
    assert '<tr class="section"><th colspan="4">1.1 Squares</th></tr>' in book
    assert book.index('href="1.html"') < book.index('href="2.html"') < book.index('href="5.html"')
    assert "thm:gone" not in book


def test_dependency_links(site):
    _, out, _ = site
    thm = (out / "numbers" / "2.html").read_text()
    deps, used_by = thm.split("<h2>Depends on</h2>")[1].split("<h2>Used by</h2>")
    assert 'href="1.html"' in deps and 'href="3.html"' not in deps
    assert 'href="3.html"' in used_by and 'href="4.html"' in used_by and "(via text)" in used_by
    assert "No dependencies." in (out / "numbers" / "1.html").read_text()
    prov = thm.split('<section class="provenance">')[1]
    assert "main.tex:20-25" in prov and "thm:sq" in prov and "1.1 Squares" in prov


def test_search_json(site):
    _, out, _ = site
    data = json.loads((out / "search.json").read_text())
    assert [d["url"] for d in data] == [f"numbers/{i}.html" for i in range(1, 6)]
    assert data[1]["label"] == "thm:sq" and data[1]["number"] == "1.2" and "n^2" in data[1]["text"]
    assert (out / "static" / "search-data.js").read_text().startswith("window.AUTOFORM_SEARCH = [")
    assert 'id="q"' in (out / "index.html").read_text()


def test_deterministic(site, tmp_path):
    store, out, _ = site
    out2 = tmp_path / "again"
    build_site(store, out2)
    files = sorted(p.relative_to(out) for p in out.rglob("*") if p.is_file())
    assert files == sorted(p.relative_to(out2) for p in out2.rglob("*") if p.is_file())
    for rel in files:
        assert (out / rel).read_bytes() == (out2 / rel).read_bytes(), rel


def test_rebuild_removes_pages_of_gone_units(tmp_path):
    store = _make_store(tmp_path)
    out = tmp_path / "out"
    build_site(store, out)
    (out / "numbers" / "notes.html").write_text("mine")
    with store.tx() as c:
        c.execute("UPDATE units SET present = 0 WHERE id = 5")
    assert build_site(store, out).units == 4
    assert not (out / "numbers" / "5.html").exists()
    assert (out / "numbers" / "notes.html").read_text() == "mine"  # not ours: left alone
    assert "numbers/5.html" not in (out / "search.json").read_text()


def test_chapter_graphs_on_the_book_page(site):
    _, out, _ = site
    book = (out / "numbers" / "index.html").read_text()
    chapters = book.split('<section class="chapter">')[1:]
    assert len(chapters) == 2 and all(
        c.count('<svg xmlns="http://www.w3.org/2000/svg" class="depgraph"') == 1 for c in chapters
    )
    first = chapters[0][chapters[0].index("<svg") : chapters[0].index("</svg>")]
    assert re.findall(r'<a class="node[^"]*" href="([0-9]+)\.html"', first) == ["1", "2"]
    assert 'data-unit="2" data-border="green" data-fill="#1CAC78"' in first  # proved, all ancestors too
    second = chapters[1][chapters[1].index("<svg") : chapters[1].index("</svg>")]
    assert 'class="node result failed" href="4.html"' in second
    assert 'class="node result external" href="2.html"' in second  # used from chapter 1, faded
    assert "Green border" in book and "Dark green background" in book  # the legend
    assert "<script" not in book  # drawn in Python: no JavaScript, no CDN
    assert not re.findall(r'(?<!xmlns=)"https?://', book)  # namespaces only, nothing fetched


def test_unit_page_names_the_declaration_and_blueprint_state(site):
    _, out, _ = site
    page = (out / "numbers" / "3.html").read_text()
    assert "<code>Atlas.Numbers.Numbers.hostile</code>" in page
    assert "Blueprint: statement formalized; proof ready to be formalized." in page
    data = json.loads((out / "search.json").read_text())
    assert data[1]["decl"] == "Atlas.Numbers.Numbers.sq_nonneg" and data[4]["decl"] == ""


def test_no_external_resources(site):
    _, out, _ = site
    for f in out.rglob("*.html"):
        text = f.read_text()
        for url in re.findall(r'(?:src|href)="([^"]*)"', text):
            assert not re.match(r"[a-z]+:", url) or url == "data:,", (f, url)  # relative links only


# -- serving -----------------------------------------------------------------------------------------------------
@pytest.fixture
def server(site, tmp_path):
    import threading

    from autoform.site import make_server

    _, out, _ = site
    httpd = make_server(out, port=0, quiet=True)
    t = threading.Thread(target=httpd.serve_forever, daemon=True)
    t.start()
    yield httpd
    httpd.shutdown()
    httpd.server_close()


def _get(httpd, path: str) -> tuple[int, bytes]:
    import http.client

    host, port = httpd.server_address[:2]
    conn = http.client.HTTPConnection(host, port, timeout=5)
    conn.request("GET", path)  # sent as is: no client-side normalisation of ".."
    r = conn.getresponse()
    body = r.read()
    conn.close()
    return r.status, body


def test_serve_binds_localhost_and_serves_only_the_site(site, server, tmp_path):
    import inspect

    from autoform.cli import atlas_serve
    from autoform.site import serve_site

    _, out, _ = site
    assert server.server_address[0] == "127.0.0.1"
    assert inspect.signature(serve_site).parameters["host"].default == "127.0.0.1"
    assert inspect.signature(atlas_serve).parameters["host"].default == "127.0.0.1"
    status, body = _get(server, "/index.html")
    assert status == 200 and b'id="q"' in body
    assert _get(server, "/numbers/2.html")[0] == 200
    secret = out.parent / "secret.txt"
    secret.write_text("outside")
    for path in (
        "/../secret.txt",
        "/numbers/../../secret.txt",
        "/%2e%2e/secret.txt",
        "/..%2fsecret.txt",
        "//etc/passwd",
        "/../../../../etc/passwd",
        "/no-such-page.html",
    ):
        status, body = _get(server, path)
        assert status == 404 and b"outside" not in body and b"root:" not in body, path
    # a symbolic link inside the site that leads out of it is not followed
    link = out / "numbers" / "escape.txt"
    link.symlink_to(secret)
    try:
        assert _get(server, "/numbers/escape.txt")[0] == 404
    finally:
        link.unlink()
    # directories are not listed
    assert _get(server, "/static/")[0] == 404


def test_cli_serve_defaults_to_localhost(site, tmp_path):
    import os
    import signal
    import subprocess
    import sys
    import urllib.request

    _, out, _ = site
    env = {k: v for k, v in os.environ.items() if not k.startswith("AUTOFORM_")}
    proc = subprocess.Popen(
        [sys.executable, "-m", "autoform", "--home", str(tmp_path), "atlas", "serve", "--dir", str(out), "--port", "0"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
    )
    try:
        line = proc.stdout.readline()
        m = re.search(r"at http://([0-9.]+):([0-9]+)/", line)
        assert m, line
        assert m.group(1) == "127.0.0.1"
        with urllib.request.urlopen(f"http://127.0.0.1:{m.group(2)}/numbers/2.html", timeout=5) as r:
            assert r.status == 200 and b"Theorem 1.2" in r.read()
    finally:
        proc.send_signal(signal.SIGINT)
        try:
            _, err = proc.communicate(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            _, err = proc.communicate()
    assert proc.returncode == 0 and "Traceback" not in err, err


def test_the_site_offers_the_atlas_as_a_dataset(site):
    store, out, _ = site
    recs = [json.loads(x) for x in (out / "atlas.jsonl").read_text(encoding="utf-8").splitlines()]
    # the three atlas entries (defined, proved, stated), nothing for failed or pending units
    assert [(r["unit"]["label"], r["status"]) for r in recs] == [
        ("def:square", "defined"),
        ("thm:sq", "proved"),
        ("lem:<x>", "stated"),
    ]
    assert recs[1]["book_depends_on"] == [recs[0]["decl_name"]] and recs[1]["lean_code"] == LEAN_PROVED
    index = (out / "index.html").read_text()
    assert '<a href="atlas.jsonl" download>' in index and "3 records" in index


def test_lean_lexer_is_lean4_or_plain_text(monkeypatch):
    """Never Lean 3's `lean` lexer: without `lean4` (Pygments < 2.18) the code is shown as plain text."""
    import tomllib

    import pygments.lexers
    from pygments.lexers import TextLexer
    from pygments.util import ClassNotFound

    from autoform import site as site_mod

    root = Path(__file__).resolve().parent.parent
    deps = tomllib.loads((root / "pyproject.toml").read_text())["project"]["dependencies"]
    assert any(re.fullmatch(r"pygments>=2\.(1[89]|[2-9]\d)(\.\d+)?", d.replace(" ", "")) for d in deps), deps
    site_mod._lean_lexer.cache_clear()
    assert site_mod._lean_lexer().name == "Lean4"
    real = pygments.lexers.get_lexer_by_name

    def without_lean4(name: str, **kw):
        if name == "lean4":
            raise ClassNotFound(name)
        return real(name, **kw)

    monkeypatch.setattr(pygments.lexers, "get_lexer_by_name", without_lean4)
    site_mod._lean_lexer.cache_clear()
    try:
        assert isinstance(site_mod._lean_lexer(), TextLexer)
    finally:
        site_mod._lean_lexer.cache_clear()
