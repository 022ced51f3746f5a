"""A 5,000-word discharge summary whose diagnosis is stated only in its last sentence (issue 9).

Shared by the CPython tests (HashingEmbedder and the packaged MiniLM) and the browser test, so all of them
search the very same note. The filler is routine ward-round prose: nothing in it mentions the adrenal gland,
tumours or the final diagnosis, so only the last chunk can answer the queries below.
"""

from __future__ import annotations

import random

WORDS = 5_000
FACT = (
    "Final diagnosis: pheochromocytoma of the left adrenal gland, confirmed by raised plasma metanephrines "
    "and an adrenal CT; referred to endocrine surgery for laparoscopic adrenalectomy."
)
KEYWORD_QUERY = "pheochromocytoma"
HYBRID_QUERY = "pheochromocytoma adrenalectomy"
# Meaning only: no token of it ("a", "tumour", "that", "makes", "adrenaline") is in the fact, and "a" and "that"
# are all over the filler, so BM25 cannot find the fact with it; MiniLM does.
SEMANTIC_QUERY = "a tumour that makes adrenaline"
# For the hashing embedder (lexical vectors: the page's fallback without a model bundle) in semantic mode.
LEXICAL_SEMANTIC_QUERY = "adrenal gland tumour needing surgery"

_SENTENCES = (
    "Day {d}: the patient slept well overnight and tolerated a soft diet at breakfast.",
    "Physiotherapy reviewed mobility on the ward and she walked {n} metres with a frame.",
    "Temperature was {t} degrees and oxygen saturation {s} percent on room air.",
    "The wound dressing over the left forearm was changed and remained clean and dry.",
    "Her daughter visited in the afternoon and was updated on the plan for discharge.",
    "Bowels opened today; she is eating and drinking normally with encouragement.",
    "The occupational therapist assessed kitchen safety and recommended a perching stool.",
    "Pain was controlled with regular paracetamol and she declined further analgesia.",
    "Overnight the nursing team noted one episode of confusion that settled with reorientation.",
    "The pharmacist reconciled her medicines and updated the dosette box for home.",
    "Social work arranged twice daily carers starting on the Monday after discharge.",
    "She remained in good spirits and asked about returning to her allotment in spring.",
    "Bloods showed a haemoglobin of {h} grams per litre, unchanged from the previous day.",
    "The ward round discussed falls prevention and reviewed her footwear and glasses.",
)


def long_note(words: int = WORDS, seed: int = 9) -> str:
    """Paragraphs of varied ward-round sentences, about ``words`` words in all, then ``FACT`` at the very end."""
    rng = random.Random(seed)
    paragraphs: list[str] = []
    count = 0
    day = 1
    budget = words - len(FACT.split())
    while count < budget:
        sentences = []
        for template in rng.sample(_SENTENCES, 6):
            sentence = template.format(
                d=day,
                n=rng.randint(5, 60),
                t=f"{rng.uniform(36.1, 37.4):.1f}",
                s=rng.randint(94, 99),
                h=rng.randint(98, 131),
            )
            if count + len(sentence.split()) > budget:
                break
            sentences.append(sentence)
            count += len(sentence.split())
        if not sentences:
            break
        paragraphs.append(" ".join(sentences))
        day += 1
    return "\n\n".join(paragraphs) + "\n\n" + FACT + "\n"
