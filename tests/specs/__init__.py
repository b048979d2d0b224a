"""Reference schemas: ../shared/specs when present, else the copies in this folder."""

from __future__ import annotations

from pathlib import Path

HERE = Path(__file__).resolve().parent
SHARED = HERE.parents[2] / "shared" / "specs"


def spec_path(name: str) -> Path:
    shared = SHARED / name
    return shared if shared.is_file() else HERE / name
