"""JSON Schema export, so producers and consumers in other languages can validate messages.

>>> import tempfile
>>> paths = export_json_schemas(tempfile.mkdtemp())
>>> sorted(p.name for p in paths)[:2]
['action_command.schema.json', 'action_result.schema.json']
"""

from __future__ import annotations

import json
from pathlib import Path

from perfloop.schemas.messages import MESSAGE_TYPES


def export_json_schemas(directory: str | Path) -> list[Path]:
    """Write one ``<message>.schema.json`` per message type into ``directory``."""
    out = Path(directory)
    out.mkdir(parents=True, exist_ok=True)
    written = []
    for name, model in sorted(MESSAGE_TYPES.items()):
        schema = model.model_json_schema(mode="validation")
        schema["$schema"] = "https://json-schema.org/draft/2020-12/schema"
        schema["$id"] = f"perfloop/{name}.schema.json"
        path = out / f"{name}.schema.json"
        path.write_text(json.dumps(schema, indent=2, sort_keys=True) + "\n")
        written.append(path)
    return written
