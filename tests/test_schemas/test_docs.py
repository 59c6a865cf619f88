"""The generated documentation is in step with the code it documents."""

from __future__ import annotations

import importlib.util
from pathlib import Path

from perfloop.schemas.vocabulary import remedy_tree

DOCS = Path(__file__).resolve().parents[2] / "docs"


def load_gen():  # type: ignore[no-untyped-def]
    spec = importlib.util.spec_from_file_location("docs_gen", DOCS / "gen.py")
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_generated_docs_are_up_to_date() -> None:
    for path, text in load_gen().generated().items():
        assert path.read_text() == text, f"{path.name} is stale: run python docs/gen.py"


def test_the_remedy_doc_names_every_remedy_of_the_vocabulary() -> None:
    text = (DOCS / "REMEDIES.md").read_text()
    for area, causes in remedy_tree().items():
        for cause, remedies in causes.items():
            for remedy in remedies:
                assert f"| {area} | {cause} | `{remedy}` |" in text
