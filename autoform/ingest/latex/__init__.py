r"""LaTeX ingest: theorem-like environments with numbers, titles, labels, proofs, references and source spans.

How it reads a book (deterministic; nothing here calls an LLM):

* Every file is read once and *masked*: comments and verbatim material (``verbatim``, ``lstlisting``, ``\verb``,
  environments the book declares with ``\lstnewenvironment`` ...) are blanked, keeping every offset, so the
  scanner never mistakes them for structure and every position still maps to a file and line.
* A scanner walks the masked text from control word to control word (a C-level regex search; plain text is
  skipped at regex speed) and runs a small interpreter of the book's own *structural* macros: definitions
  (``\newcommand``, ``\renewcommand``, ``\def``, ``\let``, xparse's ``\NewDocumentCommand`` ..., with their argument
  specs), inclusion (``\input``, ``\include``, ``\subfile``, ``\import``, ``\subimport``, local packages), theorem
  declarations (``\newtheorem``, thmtools' ``\declaretheorem``, ``\newenvironment`` aliases, ``restatable``),
  counters (``\setcounter``, ``\numberwithin``, ``\renewcommand{\thesection}``, ``\appendix``, front/main/back
  matter), sectioning, ``\label`` and the reference commands. A macro the book defines is expanded when it
  *reaches* one of these (an inclusion macro like OpenLogic's ``\olimport``, a label macro like ``\ollabel``, a
  reference macro like ``\olref``, a state setter like ``\olfileid``); every other macro is left alone while
  scanning, so unknown macros cannot break anything.
* Numbers are computed like LaTeX does: counters with reset lists and ``\the<counter>`` formats kept as macros.
* The stored statement has the book's macros expanded; ``statement_raw`` keeps the source text.

Why not pylatexenc: it parsed the whole book into a node tree and spent ~90% of infdesc's 8-9 s in its
tokenizer; it also does not know the argument specs of a book's own macros, which is what labels, references
and inclusions hidden behind macros need. The scanner reads infdesc in well under a second.

The reader is a package, one module a concern: :mod:`.masking`, :mod:`.syntax` (groups and arguments),
:mod:`.argspec` (macro and environment argument specs), :mod:`.macros` (the macro table and its expansion),
:mod:`.definitions`, :mod:`.counters`, :mod:`.conditionals` and :mod:`.branches`, :mod:`.frames`,
:mod:`.theorems`, :mod:`.units`, :mod:`.sections`, :mod:`.inclusion`, :mod:`.scanner`; each concern is a mixin over
:class:`.state.ReaderState` that adds the control words it handles, and :mod:`.reader` composes them.
"""

from __future__ import annotations

from autoform.ingest.latex.commands import INCLUDE_MACROS, PROOF_ENVS, REF_MACROS, SECTION_LEVELS
from autoform.ingest.latex.reader import ingest_latex
from autoform.ingest.latex.state import Limits
from autoform.ingest.model import KINDS, NAME_TO_KIND, IngestError, textual_refs

__all__ = [
    "INCLUDE_MACROS",
    "KINDS",
    "NAME_TO_KIND",
    "PROOF_ENVS",
    "REF_MACROS",
    "SECTION_LEVELS",
    "IngestError",
    "Limits",
    "ingest_latex",
    "textual_refs",
]
