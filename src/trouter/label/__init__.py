"""Labelling: run the pool on items, grade every response, and write a `RoutingDataset`.

- `trouter.label.scorers`: exact match, numeric, multiple choice, code (sandboxed), LLM judge,
  and `scorer_for(answer_format)`.
- `trouter.label.sandbox`: the confined subprocess that runs model-written code.
- `trouter.label.runner`: `label_items(...)`, the resumable labelling run behind `trouter label`.
- `trouter.label.annotate`: top-down taxonomy labelling of real queries (`trouter annotate`).
- `trouter.label.testing`: items, a fake pool and judge, and the files of a run, for tests.
"""
