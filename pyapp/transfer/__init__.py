"""Import and export: JSONL, CSV (vector as a JSON array column) and vectra 0.15 index folders.

Built on the public ``LocalIndex`` API only (``iter_items`` to export, ``insert_many``/``upsert_many``
to import), so it works on every store and kernel. Exports are round-trip exact; imports read and
check the whole source before anything is written. ``pyapp.transfer.create.create_from`` builds a new
index from a source (it imports ``LocalIndex``, so it is not imported here).
"""

from __future__ import annotations

from .export import EXPORT_FORMATS, export_items
from .importer import FORMATS, detect_format, import_into, read_items, read_source, write_source
from .items import FIELDS, LineProgress, Source

CSV_FIELDS = FIELDS

__all__ = [
    "CSV_FIELDS",
    "EXPORT_FORMATS",
    "FIELDS",
    "FORMATS",
    "LineProgress",
    "Source",
    "detect_format",
    "export_items",
    "import_into",
    "read_items",
    "read_source",
    "write_source",
]
