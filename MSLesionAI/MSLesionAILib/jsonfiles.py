"""JSON files the library writes (summary.json, case.json, metadata.json): one format."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np


def write_json(path: str | Path, data: Any) -> Path:
    """Indented UTF-8 JSON with a final newline; numpy scalars and arrays become plain values,
    paths strings."""
    path = Path(path)
    path.write_text(json.dumps(data, indent=2, default=_to_plain) + "\n",
                    encoding="utf-8")
    return path


def read_json(path: str | Path) -> Any:
    """A JSON file written by `write_json` (or any UTF-8 JSON)."""
    return json.loads(Path(path).read_text(encoding="utf-8"))


def _to_plain(value: Any) -> Any:
    if isinstance(value, Path):
        return str(value)
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, np.ndarray):
        return value.tolist()
    raise TypeError(f"not JSON serialisable: {type(value).__name__}")
