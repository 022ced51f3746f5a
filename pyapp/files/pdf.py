"""PDF text: one PDF is one document, its pages joined by a blank line.

Two ways in, one result: on the server the bytes go through ``pypdf`` (pinned in the ``files`` extra);
in the browser the page extracts each page's text with pdfjs and hands the page texts in, so Pyodide
needs no PDF parser. Scanned PDFs without a text layer are refused with a clear message (no OCR).
"""

from __future__ import annotations

import io
import logging
from collections.abc import Sequence

from .model import FileContent, FileError
from .text import text_document

PAGE_SEPARATOR = "\n\n"


def pdf_pages(data: bytes, name: str) -> list[str]:
    """The text of each page, through pypdf; ``FileError`` for a missing pypdf, encryption or a broken file."""
    try:
        from pypdf import PdfReader
    except ImportError:
        raise FileError.at(name, "reading PDF text needs pypdf: pip install 'clinvec[files]'") from None
    log = logging.getLogger("pypdf")
    level = log.level
    log.setLevel(logging.ERROR)  # its warnings ("EOF marker not found") name no file; our error does
    try:
        reader = PdfReader(io.BytesIO(bytes(data)), strict=False)
        if reader.is_encrypted and not reader.decrypt(""):
            raise FileError.at(name, "the PDF is encrypted with a password")
        return [page.extract_text() or "" for page in reader.pages]
    except FileError:
        raise
    except Exception as exc:  # pypdf raises many types (PdfReadError, ValueError, KeyError...) on broken files
        raise FileError.at(name, f"not a readable PDF ({type(exc).__name__}: {exc})") from None
    finally:
        log.setLevel(level)


def read_pdf(source: bytes | bytearray | memoryview | Sequence[str], name: str) -> FileContent:
    """A PDF as one document, from its bytes (server) or from page texts already extracted (browser)."""
    if isinstance(source, (bytes, bytearray, memoryview)):
        pages = pdf_pages(source, name)
    elif isinstance(source, Sequence) and not isinstance(source, str):
        pages = list(source)
        if not all(isinstance(page, str) for page in pages):
            raise FileError.at(name, "page texts must be strings")
    else:
        raise FileError.at(name, "a PDF is read from its bytes or from a list of page texts")
    text = PAGE_SEPARATOR.join(page.strip() for page in pages)
    if not text.strip():
        raise FileError.at(name, "the PDF has no text layer (a scanned image? OCR is not supported)")
    return text_document(text, name, "pdf")
