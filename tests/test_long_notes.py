"""Issue 9 with the real model: a fact stated only at the end of a 5,000-word note is found by semantic, keyword
and hybrid search through the notes service, embedded by the packaged MiniLM bundle (``web/models/minilm``,
the same bundle the page runs with onnxruntime-web) among the 40 demo notes.

Before notes were documents the embedder kept the note's first 256 tokens, so semantic search could not see
the diagnosis at all; now the note is 60+ chunks of at most 128 tokens and the last one carries it.
"""

from __future__ import annotations

import uuid
from pathlib import Path

import pytest
from long_note import FACT, HYBRID_QUERY, KEYWORD_QUERY, SEMANTIC_QUERY, long_note

from pyapp.keyword import tokenize
from pyapp.notes import NotesService

MINILM = Path(__file__).resolve().parent.parent / "web" / "models" / "minilm"


@pytest.fixture(scope="module")
def minilm():
    pytest.importorskip("onnxruntime")
    if not (MINILM / "manifest.json").exists():
        pytest.skip("no MiniLM bundle: python -m export --model minilm")
    from pyapp.embed.onnx import OnnxEmbedder

    return OnnxEmbedder(MINILM, quantized=True)


async def test_minilm_finds_the_fact_at_the_end_of_a_5000_word_note_in_every_mode(minilm) -> None:
    text = long_note()
    assert len(text.split()) >= 4_990 and text.count("pheochromocytoma") == 1
    notes = await NotesService.open(f"memory://{uuid.uuid4().hex}", minilm)
    try:
        await notes.load_demo()
        out = await notes.add({"id": "discharge", "text": text, "metadata": {"ward": "Endocrine"}})
        assert out["chunks"] >= 60  # 128-token chunks: every token was embedded, none truncated away
        for mode, query in (("semantic", SEMANTIC_QUERY), ("keyword", KEYWORD_QUERY), ("hybrid", HYBRID_QUERY)):
            found = await notes.search({"text": query, "mode": mode})
            top = found["results"][0]
            assert top["id"] == "discharge", (mode, [r["id"] for r in found["results"]])
            assert FACT in top["passage"] and top["span"][1] == len(text.rstrip("\n"))
            assert [r["id"] for r in found["results"]].count("discharge") == 1
            marked = [top["passage"][a:b] for a, b in top["highlights"]]
            assert (marked == [top["passage"]]) if mode == "semantic" else ("pheochromocytoma" in marked)
        # The semantic query shares no word with the fact: meaning found it, well ahead of the runner-up.
        assert not set(tokenize(SEMANTIC_QUERY)) & set(tokenize(FACT))
        semantic = (await notes.search({"text": SEMANTIC_QUERY, "mode": "semantic"}))["results"]
        assert semantic[0]["score"] - semantic[1]["score"] > 0.05
        keyword = (await notes.search({"text": SEMANTIC_QUERY, "mode": "keyword"}))["results"]
        assert keyword[0]["id"] != "discharge" or FACT not in keyword[0]["passage"]  # BM25 alone cannot
    finally:
        await notes.close()
