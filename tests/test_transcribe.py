"""Optional vision transcription of a PDF (autoform/ingest/transcribe.py, `autoform ingest BOOK.pdf --transcribe`),
against the scripted OpenAI-compatible server: recorded page-to-LaTeX replies, a truncated reply, a refused image,
a reply that declines; pages cached and the run resumable."""

from __future__ import annotations

import base64
import json
import re
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))

from conftest import autoform  # noqa: E402
from fake_llm import FakeLLM, Reply  # noqa: E402
from test_pdf_layout import Page, make_pdf  # noqa: E402

from autoform.config import LLMConfig, Settings  # noqa: E402
from autoform.ingest.transcribe import (  # noqa: E402
    cache_dir,
    estimate,
    image_tokens,
    parse_page,
    read_transcript,
    transcribe,
)
from autoform.llm import LLMClient, MalformedReply, Truncated  # noqa: E402
from autoform.store import Store  # noqa: E402

pytest.importorskip("pypdfium2")

#: what a vision model answered for the two pages of the book below (recorded form: prose, then one latex block)
PAGES = {
    1: r"""Here is the page:
```latex
\chapter{Number theory}
\begin{theorem}[Division theorem]\label{printed:3.1}
Let $a, b \in \mathbb{Z}$ with $b \neq 0$. Then there are unique $q, r \in \mathbb{Z}$ with $a = qb + r$
and $0 \le r < |b|$.
\end{theorem}
\begin{proof}
Take $r$ least.
```""",
    2: r"""```latex
Then $r < |b|$ by minimality.
\end{proof}
The paragraph after the proof is the book's prose.
\begin{exercise}\label{printed:3.2}
Prove that $x^{2} \ge 0$ for every $x \in \mathbb{R}$.
\end{exercise}
```""",
}


def _page_of(body: dict) -> int:
    text = body["messages"][1]["content"][0]["text"]
    return int(re.match(r"Page (\d+)", text).group(1))


def _book(tmp_path: Path) -> Path:
    pdf = tmp_path / "scan.pdf"
    pdf.write_bytes(make_pdf([Page().prose(3).pieces, Page().prose(2).pieces]))
    return pdf


@pytest.fixture
def llm_settings(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Settings:
    for var in ("OPENAI_API_KEY", "OPENAI_BASE_URL", "AUTOFORM_MODEL"):
        monkeypatch.delenv(var, raising=False)
    return Settings(
        home=tmp_path,
        llm=LLMConfig(
            base_url="http://127.0.0.1:9/v1", api_key="k", model="m", max_retries=0, timeout_s=5, length_retries=1
        ),
    )


def test_pages_are_sent_as_images_and_read_as_latex(tmp_path: Path, llm_settings: Settings) -> None:
    pdf = _book(tmp_path)
    cache = cache_dir(tmp_path / "cache", pdf)
    with FakeLLM(lambda body: PAGES[_page_of(body)]) as srv:
        llm_settings.llm.base_url = srv.base_url
        store = Store(tmp_path / "autoform.sqlite")
        got = transcribe(pdf, LLMClient(llm_settings, store, retry_initial_s=0.01), cache)
        assert sorted(got.latex) == [0, 1] and not got.failed
        body = srv.requests[0]
        system, user = body["messages"][0]["content"], body["messages"][1]["content"]
        assert system.startswith("You are the reader") and "printed:" in system
        image = user[1]["image_url"]["url"]
        assert image.startswith("data:image/png;base64,")
        assert base64.b64decode(image.split(",", 1)[1]).startswith(b"\x89PNG")  # rendered by pypdfium2
        store.close()
    result = read_transcript(pdf, got, cache)
    units = {(u.kind, u.number): u for u in result.units}
    assert set(units) == {("theorem", "3.1"), ("exercise", "3.2")}
    thm = units[("theorem", "3.1")]
    assert thm.title == "Division theorem" and thm.statement.startswith("Let $a, b \\in \\mathbb{Z}$")
    assert "by minimality" in thm.proof  # a proof across the page break
    assert thm.source == "pages 1-2" and units[("exercise", "3.2")].source == "page 2"  # its proof goes on
    assert "prose" not in units[("exercise", "3.2")].statement
    assert result.source_kind == "pdf" and result.root == str(pdf)


def test_pages_are_cached_and_a_truncated_page_is_asked_again_next_run(tmp_path: Path, llm_settings: Settings) -> None:
    pdf = _book(tmp_path)
    cache = cache_dir(tmp_path / "cache", pdf)

    def cut_page_two(body: dict) -> Reply | str:
        page = _page_of(body)
        return PAGES[1] if page == 1 else Reply(text=PAGES[2][:40], finish_reason="length")

    with FakeLLM(cut_page_two) as srv:
        llm_settings.llm.base_url = srv.base_url
        first = transcribe(pdf, LLMClient(llm_settings, None, retry_initial_s=0.01), cache)
    assert sorted(first.latex) == [0] and "cut off" in first.failed[1]
    assert (cache / "page-0001.tex").is_file() and not (cache / "page-0002.tex").exists()
    warnings = read_transcript(pdf, first, cache).warnings
    assert any("page 2: not transcribed: the reply was cut off" in w for w in warnings)
    # the next run asks for page 2 only
    with FakeLLM(lambda body: PAGES[_page_of(body)]) as srv:
        llm_settings.llm.base_url = srv.base_url
        second = transcribe(pdf, LLMClient(llm_settings, None, retry_initial_s=0.01), cache)
        assert [_page_of(b) for b in srv.requests] == [2]
    assert sorted(second.latex) == [0, 1] and not second.failed


def test_a_refused_image_fails_that_page_only(tmp_path: Path, llm_settings: Settings) -> None:
    pdf = _book(tmp_path)
    cache = cache_dir(tmp_path / "cache", pdf)

    def refuse_page_one(body: dict) -> Reply | str:
        if _page_of(body) == 1:
            return Reply(status=400, text="Invalid image: the image_url could not be decoded")
        return PAGES[2]

    with FakeLLM(refuse_page_one) as srv:
        llm_settings.llm.base_url = srv.base_url
        got = transcribe(pdf, LLMClient(llm_settings, None, retry_initial_s=0.01), cache)
    assert sorted(got.latex) == [1]
    assert "refused the page image" in got.failed[0] and "image" in got.failed[0]


def test_a_declining_reply_is_no_latex(tmp_path: Path, llm_settings: Settings) -> None:
    pdf = _book(tmp_path)
    cache = cache_dir(tmp_path / "cache", pdf)
    with FakeLLM(lambda body: "I'm sorry, but I can't transcribe this image.") as srv:
        llm_settings.llm.base_url = srv.base_url
        got = transcribe(pdf, LLMClient(llm_settings, None, retry_initial_s=0.01), cache)
    assert not got.latex and all("declined" in why for why in got.failed.values())
    assert not list(cache.glob("page-*.tex"))


def test_parse_page_forms() -> None:
    assert parse_page("```latex\n$x$\n```") == "$x$\n"
    assert parse_page("```tex\n$x$\n```") == "$x$\n"
    with pytest.raises(MalformedReply, match="no ```latex"):
        parse_page("The page shows a theorem.")


#: the same two pages as real vision models write them: a reasoning model thinks first (with a draft block) and
#: talks around its answer; another returns a whole compilable document
STYLED = {
    1: "<think>\nThe page shows a chapter heading and a theorem. A first try:\n```latex\n\\begin{theorem}DRAFT"
    "\\end{theorem}\n```\nThe number 3.1 is printed, so I label it.\n</think>\n\n"
    "Sure! Below is the transcription of page 1.\n\n" + PAGES[1].split("\n", 1)[1] + "\n\nLet me know if you need "
    "the next page.",
    2: "```LaTeX\n\\documentclass{book}\n\\usepackage{amsmath,amssymb,amsthm}\n\\newtheorem{exercise}{Exercise}\n"
    "\\begin{document}\n" + PAGES[2].split("\n", 1)[1].removesuffix("```") + "\\end{document}\n```",
}


def test_parse_page_styles_of_real_models() -> None:
    think = parse_page(STYLED[1])
    assert "DRAFT" not in think and "Sure!" not in think and "Let me know" not in think
    assert think.startswith("\\chapter{Number theory}") and "Take $r$ least." in think
    doc = parse_page(STYLED[2])
    assert "\\documentclass" not in doc and "\\usepackage" not in doc and "{document}" not in doc
    assert doc.startswith("\\newtheorem{exercise}{Exercise}") and "\\begin{exercise}" in doc
    assert parse_page("\\begin{theorem}\nLet $x$ be real.\n\\end{theorem}") == (
        "\\begin{theorem}\nLet $x$ be real.\n\\end{theorem}\n"  # bare LaTeX, no fence
    )
    assert parse_page("Here:\n```\n\\section{Groups} Let $G$ be a group.\n```") == (
        "\\section{Groups} Let $G$ be a group.\n"  # an unlabelled fence holding LaTeX
    )
    with pytest.raises(Truncated, match="inside its"):
        parse_page("Transcription:\n```latex\n\\begin{theorem}Let $x$")
    with pytest.raises(Truncated, match="reasoning"):
        parse_page("<think>The page has a theorem and")
    with pytest.raises(MalformedReply, match="no ```latex"):
        parse_page("The page holds \\begin{theorem} and $x$, set in two columns.")  # prose about LaTeX


def test_replies_in_real_model_styles_read_as_the_recorded_ones(tmp_path: Path, llm_settings: Settings) -> None:
    pdf = _book(tmp_path)
    cache = cache_dir(tmp_path / "cache", pdf)
    with FakeLLM(lambda body: STYLED[_page_of(body)]) as srv:
        llm_settings.llm.base_url = srv.base_url
        got = transcribe(pdf, LLMClient(llm_settings, None, retry_initial_s=0.01), cache)
    assert sorted(got.latex) == [0, 1] and not got.failed
    units = {(u.kind, u.number): u for u in read_transcript(pdf, got, cache).units}
    assert set(units) == {("theorem", "3.1"), ("exercise", "3.2")}
    assert "by minimality" in units[("theorem", "3.1")].proof and "DRAFT" not in units[("theorem", "3.1")].statement
    assert units[("exercise", "3.2")].statement.startswith("Prove that $x^{2} \\ge 0$")


def test_estimate_counts_pages_not_done(tmp_path: Path, llm_settings: Settings) -> None:
    pdf = _book(tmp_path)
    cache = cache_dir(tmp_path / "cache", pdf)
    llm_settings.llm.prices = {"m": (2.5, 10.0)}
    est = estimate(pdf, cache, llm_settings)
    assert (est.pages, est.cached) == (2, 0) and est.usd > 0
    assert est.prompt_tokens == 2 * (image_tokens(1275, 1650) + 300)
    cache.mkdir(parents=True)
    (cache / "page-0001.tex").write_text("done\n")
    est = estimate(pdf, cache, llm_settings)
    assert (est.pages, est.cached) == (1, 1)
    assert "1 page(s)" in est.describe() and "$" in est.describe()
    assert image_tokens(512, 512) == 85 + 170 and image_tokens(4096, 4096) == 85 + 170 * 4


@pytest.mark.slow
def test_cli_ingest_transcribe(workspace, tmp_path: Path) -> None:  # noqa: ANN001 - the conftest fixture
    ws = workspace(lambda body: PAGES[_page_of(body)])
    pdf = _book(tmp_path)
    proc = autoform(ws.home, "ingest", str(pdf), "--book", "scan", "--transcribe", "--json")
    assert proc.returncode == 0, proc.stderr
    assert "transcribing 2 page(s)" in proc.stderr
    assert json.loads(proc.stdout)["units"] == 2
    units = [json.loads(x) for x in autoform(ws.home, "units", "scan", "--json", check=True).stdout.splitlines()]
    assert [(u["kind"], u["number"], u["source"]) for u in units] == [
        ("theorem", "3.1", "pages 1-2"),
        ("exercise", "3.2", "page 2"),
    ]
    n = len(ws.llm.requests)
    # run again: every page from the cache, nothing asked
    proc = autoform(ws.home, "ingest", str(pdf), "--book", "scan", "--transcribe", "--json")
    assert proc.returncode == 0 and len(ws.llm.requests) == n
    assert "transcribing 0 page(s)" in proc.stderr


def test_cli_transcribe_needs_a_pdf(workspace, tmp_path: Path) -> None:  # noqa: ANN001
    ws = workspace()
    tex = tmp_path / "b.tex"
    tex.write_text("\\begin{theorem}x\\end{theorem}\n")
    proc = autoform(ws.home, "ingest", str(tex), "--book", "b", "--transcribe")
    assert proc.returncode == 2 and "--transcribe reads a PDF" in proc.stderr
