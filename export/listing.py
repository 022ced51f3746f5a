"""Keep ``web/models/index.json`` (the page's list of bundles, ``pyapp.embed.catalog``) in step with an export.

Why here and not only in ``web_build.py``: a user who exports Bio_ClinicalBERT and reloads the page (the
server refreshes the app on start, not the list it already served) should get the new bundle without a rebuild.
Only exports into the page's model folder touch the list; ``--out`` elsewhere leaves it alone.
"""

from __future__ import annotations

import sys
from pathlib import Path

from pyapp.embed.catalog import LIST_NAME, write_list

from .models import MODELS_DIR


def update_model_list(out_dir: Path, models_dir: Path = MODELS_DIR) -> bool:
    """Rewrite ``models_dir/index.json`` when ``out_dir`` sits directly in ``models_dir``; True when it did."""
    if Path(out_dir).resolve().parent != Path(models_dir).resolve():
        return False
    listing = write_list(models_dir)
    print(
        f"clinvec: {Path(models_dir) / LIST_NAME} lists {[b['name'] for b in listing['bundles']]}; "
        f"the page opens {listing['default']}",
        file=sys.stderr,
    )
    return True


__all__ = ["update_model_list"]
