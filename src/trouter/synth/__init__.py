"""Cold-start data synthesis: task profile -> taxonomy -> synthetic QA items.

- `trouter.synth.items`: `SynthItem` (the item schema) and the append-only items file.
- `trouter.synth.builder`: `build_taxonomy` (generate -> critique/revise -> A/B, level by level).
- `trouter.synth.qa`: `synthesize` (QA batches per leaf, answerability check, dedup).
"""

from trouter.synth.items import ANSWER_FORMATS, AnswerFormat, ItemsFile, SynthItem, read_items

__all__ = ["ANSWER_FORMATS", "AnswerFormat", "ItemsFile", "SynthItem", "read_items"]
