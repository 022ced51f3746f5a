"""Plain text and Markdown: one file is one document whose id is the file name.

UTF-8 only (a leading byte-order mark is dropped, as editors on Windows write one); anything else is an
error naming the file and the line of the first bad byte, never a silent replacement character that would
then be embedded and searched.
"""

from __future__ import annotations

from ..errors import InvalidInput
from ..metadata import check_no_lone_surrogates
from .model import BOM, Document, FileContent, FileError


def decode_text(data: bytes, name: str) -> str:
    """``data`` as UTF-8 text (BOM accepted); ``FileError`` with the line of the first invalid byte."""
    if not isinstance(data, (bytes, bytearray, memoryview)):
        raise FileError.at(name, f"expected the file's bytes, got {type(data).__name__}")
    data = bytes(data)
    if data.startswith(BOM):
        data = data[len(BOM) :]
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = data.count(b"\n", 0, exc.start) + 1
        raise FileError.at(
            name, f"not UTF-8 text (byte 0x{data[exc.start]:02x} at offset {exc.start}); save it as UTF-8", line
        ) from None


def text_document(text: str, name: str, kind: str) -> FileContent:
    """One document named ``name``; a file with nothing but whitespace is refused (nothing to search)."""
    if not text.strip():
        raise FileError.at(name, "the file has no text")
    try:
        check_no_lone_surrogates(text, "text")  # page texts from pdfjs are JS strings and may hold one
    except InvalidInput as exc:
        raise FileError.at(name, str(exc)) from None
    return FileContent(name, kind, documents=[Document(name, text)])


def read_text(data: bytes, name: str, kind: str = "text") -> FileContent:
    """A ``.txt``/``.md`` file as one document (``kind`` is ``"text"`` or ``"markdown"``)."""
    return text_document(decode_text(data, name), name, kind)
