"""Regenerate the generated documentation: ``python docs/gen.py``."""

from __future__ import annotations

from pathlib import Path

from perfloop.actions.catalog import markdown_table
from perfloop.schemas.config_reference import reference_markdown

DOCS = Path(__file__).resolve().parent

REMEDIES_HEADER = """# Remedy catalog

Every remedy perfloop can command, with its parameters and their bounds. Executors reject a
command whose remedy is not here or whose parameters are outside these bounds. Generated
from `actions/catalog.py` by `python docs/gen.py`; a test keeps it in step.

"""


def generated() -> dict[Path, str]:
    return {
        DOCS / "CONFIGURATION.md": reference_markdown(),
        DOCS / "REMEDIES.md": REMEDIES_HEADER + markdown_table(),
    }


if __name__ == "__main__":
    for path, text in generated().items():
        path.write_text(text)
        print(path)
