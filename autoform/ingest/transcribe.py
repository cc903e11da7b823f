"""Optional transcription of a PDF's pages into LaTeX by a vision model, read then by the LaTeX reader.

For PDFs whose text layer is poor (scans, garbled math): each page is rendered to a PNG by pypdfium2 (which ships
its own PDFium, so nothing else needs installing), sent with the prompt in ``agents/reader/transcribe.md`` to the
configured OpenAI-compatible endpoint through :class:`autoform.llm.LLMClient` (retries, truncation handling, its
reply cache and accounting; role ``reader``), and its LaTeX written to ``<cache>/page-NNNN.tex``. A page whose
file exists is not asked again, so a run that stopped is resumed where it stopped, and a page that failed (a reply
cut off, an image the endpoint refused, a reply with no LaTeX) is named and asked again next time. The pages are
joined into one document for :func:`autoform.ingest.latex.ingest_latex`; the printed number of each unit comes
from its ``\\label{printed:<number>}`` and its source is the page it was read from. :func:`estimate` gives the
cost before anything runs.
"""

from __future__ import annotations

import base64
import hashlib
import io
import math
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from types import ModuleType

import jinja2

from autoform.config import Settings
from autoform.errors import MissingError, UsageError
from autoform.ingest.model import IngestError, IngestResult
from autoform.llm import LLMClient, LLMUnavailable, MalformedReply, Message, Truncated, price
from autoform.replies import fenced_blocks, split_reasoning
from autoform.store import Store

ROLE = "reader"
PROMPT = "reader/transcribe.md"
#: a rendered page's resolution: enough for sub- and superscripts at 10 pt
DPI = 150
#: what a page's reply is assumed to hold when estimating (a dense page of a textbook in LaTeX)
REPLY_TOKENS = 1500
_PREAMBLE = "\\documentclass{book}\n\\begin{document}\n"
_REFUSAL_RE = re.compile(r"\b(?:can(?:no|')t|unable to|not able to|sorry|refuse)\b", re.I)

_env = jinja2.Environment(
    loader=jinja2.FileSystemLoader(str(Path(__file__).resolve().parents[2] / "agents")),
    undefined=jinja2.StrictUndefined,
    keep_trailing_newline=True,
    autoescape=False,
)


@dataclass
class Estimate:
    pages: int  # pages to transcribe
    cached: int  # pages already transcribed (not asked again)
    prompt_tokens: int
    completion_tokens: int
    usd: float
    model: str

    def describe(self) -> str:
        cost = f"about ${self.usd:.2f}" if self.usd else "cost unknown (no [llm] prices for the model)"
        return (
            f"transcribing {self.pages} page(s) with {self.model} ({self.cached} already done): about "
            f"{self.prompt_tokens:,} prompt + {self.completion_tokens:,} completion tokens, {cost}"
        )


@dataclass
class Transcript:
    """The pages transcribed (page index -> LaTeX) and those that failed (page index -> why)."""

    latex: dict[int, str] = field(default_factory=dict)
    failed: dict[int, str] = field(default_factory=dict)


def _pdfium() -> ModuleType:
    """pypdfium2, imported when first needed."""
    try:
        import pypdfium2
    except ImportError as e:
        raise MissingError(f"transcription needs pypdfium2 ({e}); install it with `pip install pypdfium2`") from e
    return pypdfium2


def cache_dir(root: Path, pdf: Path) -> Path:
    """Where the pages of ``pdf`` are kept: one folder per PDF content under ``root``."""
    digest = hashlib.sha256(pdf.read_bytes()).hexdigest()[:16]
    return root / "transcripts" / digest


def page_count(pdf: Path) -> int:
    try:
        doc = _pdfium().PdfDocument(str(pdf))
    except Exception as e:  # PdfiumError and friends: a file PDFium cannot open
        raise IngestError(f"{pdf}: not a readable PDF ({type(e).__name__}: {e})") from e
    try:
        return len(doc)
    finally:
        doc.close()


def image_tokens(width: int, height: int) -> int:
    """Prompt tokens of an image at OpenAI's high detail: 85 + 170 per 512-pixel tile of the image scaled into
    2048 x 2048 and its short side to 768."""
    scale = min(1.0, 2048 / max(width, height))
    w, h = width * scale, height * scale
    scale = min(1.0, 768 / min(w, h))
    w, h = w * scale, h * scale
    return 85 + 170 * math.ceil(w / 512) * math.ceil(h / 512)


def estimate(pdf: Path, cache: Path, settings: Settings, *, dpi: int = DPI) -> Estimate:
    """What transcribing the pages not yet in ``cache`` will cost (page size from the first page)."""
    n = page_count(pdf)
    todo = [i for i in range(n) if not _page_file(cache, i).is_file()]
    doc = _pdfium().PdfDocument(str(pdf))
    try:
        width, height = doc[0].get_size()
    finally:
        doc.close()
    per_page = image_tokens(round(width * dpi / 72), round(height * dpi / 72)) + 300  # the prompt's text
    model = settings.llm.model_for(ROLE)
    prompt, completion = per_page * len(todo), REPLY_TOKENS * len(todo)
    return Estimate(len(todo), n - len(todo), prompt, completion, price(settings, model, prompt, completion), model)


def render_png(pdf: Path, index: int, *, dpi: int = DPI) -> bytes:
    """Page ``index`` (0-based) of ``pdf`` as a PNG."""
    doc = _pdfium().PdfDocument(str(pdf))
    try:
        image = doc[index].render(scale=dpi / 72).to_pil()
    finally:
        doc.close()
    out = io.BytesIO()
    image.save(out, "PNG")
    return out.getvalue()


def page_messages(png: bytes, page: int, pages: int, title: str = "") -> list[Message]:
    """The system message and the user message holding page ``page`` (1-based) as an image."""
    module = _env.get_template(PROMPT).module
    system = str(module.system()).strip()  # type: ignore[attr-defined]
    text = str(module.user(page, pages, title)).strip()  # type: ignore[attr-defined]
    url = "data:image/png;base64," + base64.b64encode(png).decode("ascii")
    parts: list[dict[str, object]] = [{"type": "text", "text": text}, {"type": "image_url", "image_url": {"url": url}}]
    return [Message(role="system", content=system), Message(role="user", content=parts)]


def parse_page(text: str) -> str:
    """The LaTeX of a page reply, as vision models write it: the ```latex (or ```tex, or unlabelled LaTeX) blocks of
    the final answer, prose around them and a reasoning block (``<think>``) left out; a whole document reduced to
    its body and its definitions (no ``\\documentclass``, ``\\usepackage``, ``document`` environment); a bare
    LaTeX reply with no fence taken as it is. :class:`Truncated` for a reply that ends inside its block,
    :class:`MalformedReply` for a refusal or a reply with no LaTeX."""
    answer = split_reasoning(text)
    if answer.unclosed_reasoning:
        raise Truncated("the reply stops inside its reasoning block")
    blocks = [b for b in fenced_blocks(answer.text) if b.lang in ("latex", "tex") or (not b.lang and _latexish(b.body))]
    if blocks and not blocks[-1].closed:
        raise Truncated("the reply ends inside its ```latex block")
    bodies = [b.body for b in blocks]
    if not bodies and not fenced_blocks(answer.text) and _latexish(answer.text, bare=True):
        bodies = [answer.text]
    if bodies:
        latex = _page_fragment("\n".join(bodies)).strip()
        if latex:
            return latex + "\n"
    if _REFUSAL_RE.search(answer.text[:300]):
        raise MalformedReply(f"the model declined the page: {answer.text.strip()[:120]!r}")
    raise MalformedReply("no ```latex block in the reply")


_COMMAND_RE = re.compile(r"\\[A-Za-z]+|\$")
_PREAMBLE_ONLY_RE = re.compile(r"^[ \t]*\\(?:documentclass|usepackage|RequirePackage|maketitle)\b.*\n?", re.M)


def _latexish(text: str, *, bare: bool = False) -> bool:
    """Whether a block (``bare``: a whole reply) reads as LaTeX: commands or math, and for a reply with no fence,
    its first line a command or a comment (not prose that mentions LaTeX)."""
    first = text.lstrip().split("\n", 1)[0]
    return len(_COMMAND_RE.findall(text)) >= 2 and (not bare or first.startswith(("\\", "%")))


def _page_fragment(latex: str) -> str:
    """A page's LaTeX for joining into one document: a whole document's body, after the definitions of its preamble
    (``\\newtheorem``, ``\\newcommand``), without the commands that only a preamble may hold."""
    if "\\begin{document}" in latex:
        preamble, _, body = latex.partition("\\begin{document}")
        latex = preamble + "\n" + body.partition("\\end{document}")[0]
    return _PREAMBLE_ONLY_RE.sub("", latex.replace("\\end{document}", ""))


def _page_file(cache: Path, index: int) -> Path:
    return cache / f"page-{index + 1:04d}.tex"


def transcribe(
    pdf: Path,
    llm: LLMClient,
    cache: Path,
    *,
    dpi: int = DPI,
    title: str = "",
    progress: Callable[[int, int], None] | None = None,
) -> Transcript:
    """Every page of ``pdf`` as LaTeX, from ``cache`` where it is there, else from the model (then cached). A page
    that fails is recorded in ``failed`` and the others go on; an endpoint that is down stops the run
    (:class:`LLMUnavailable`), the pages done so far kept."""
    n = page_count(pdf)
    cache.mkdir(parents=True, exist_ok=True)
    out = Transcript()
    for i in range(n):
        path = _page_file(cache, i)
        if path.is_file():
            out.latex[i] = path.read_text(encoding="utf-8")
            continue
        messages = page_messages(render_png(pdf, i, dpi=dpi), i + 1, n, title)
        try:
            reply = llm.chat(llm.request(ROLE, messages))
            latex = parse_page(reply.text)
        except Truncated as e:
            out.failed[i] = f"the reply was cut off ({e})"
        except MalformedReply as e:
            out.failed[i] = str(e)
        except LLMUnavailable as e:
            if not _refused_image(str(e)):
                raise
            out.failed[i] = f"the endpoint refused the page image ({e})"
        else:
            tmp = path.with_suffix(".part")
            tmp.write_text(latex, encoding="utf-8")
            tmp.replace(path)  # a page is cached whole or not at all
            out.latex[i] = latex
        if progress is not None:
            progress(i + 1, n)
    return out


def _refused_image(message: str) -> bool:
    """An HTTP 400 about the image itself (too large, a model without vision, invalid content), not the endpoint."""
    return bool(re.search(r"\b(?:image|vision|multimodal|image_url)\b", message, re.I))


def read_transcript(pdf: Path, transcript: Transcript, cache: Path) -> IngestResult:
    """The transcribed pages read by the LaTeX reader as one document: printed numbers from the units'
    ``printed:`` labels, sources as pages of the PDF, failed pages named in the warnings."""
    from autoform.ingest.latex import ingest_latex

    lines: list[str] = []
    starts: list[tuple[int, int]] = []  # (first line of the page in the document, page index)
    for i in sorted(transcript.latex):
        starts.append((len(lines) + 3, i))  # 1-based, after the preamble's two lines
        lines += transcript.latex[i].rstrip("\n").split("\n")
    root = cache / "book.tex"
    root.write_text(_PREAMBLE + "\n".join(lines) + "\n\\end{document}\n", encoding="utf-8")
    result = ingest_latex(root)
    for u in result.units:
        if u.label.startswith("printed:"):
            u.number = u.label.removeprefix("printed:")
        u.source = _page_source(u.source, starts)
    result.source_kind, result.root = "pdf", str(pdf)
    result.warnings += [f"{pdf}: page {i + 1}: not transcribed: {why}" for i, why in sorted(transcript.failed.items())]
    return result


def _page_source(source: str, starts: list[tuple[int, int]]) -> str:
    """``book.tex:12-30`` as the PDF's pages those lines came from."""
    m = re.search(r":(\d+)(?:-(\d+))?$", source)
    if m is None or not starts:
        return source
    first, last = int(m.group(1)), int(m.group(2) or m.group(1))

    def page(line: int) -> int:
        return max((p for start, p in starts if start <= line), default=starts[0][1]) + 1

    a, b = page(first), page(last)
    return f"page {a}" if a == b else f"pages {a}-{b}"


def transcribe_book(pdf: Path, settings: Settings, store: Store, *, say: Callable[[str], None]) -> IngestResult:
    """``autoform ingest BOOK.pdf --transcribe``: the cost said first, then the pages not yet done transcribed
    (cached under the workspace's cache directory) and the whole read as LaTeX."""
    if pdf.suffix.lower() != ".pdf" or not pdf.is_file():
        raise UsageError(f"{pdf}: --transcribe reads a PDF file")
    cache = cache_dir(settings.cache_dir, pdf)
    say(estimate(pdf, cache, settings).describe())
    llm = LLMClient(settings, store)
    try:
        transcript = transcribe(pdf, llm, cache, progress=lambda k, n: say(f"page {k}/{n}") if k % 10 == 0 else None)
    except LLMUnavailable as e:
        raise LLMUnavailable(f"{e}; the pages done are kept in {cache}: run the command again to go on") from e
    return read_transcript(pdf, transcript, cache)


__all__ = [
    "Estimate",
    "Transcript",
    "cache_dir",
    "estimate",
    "parse_page",
    "read_transcript",
    "transcribe",
    "transcribe_book",
]
