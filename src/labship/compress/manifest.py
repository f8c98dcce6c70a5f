"""The manifest a run leaves in the target (`.labship-manifest.json`): what each output was made from.

It maps each source (relative path) to its size, mtime, settings fingerprint, outputs and counts,
so a re-run skips unchanged files without opening them. It is bookkeeping of one machine (mtimes),
DVC-ignored; output paths read from it are confined to the target before anything is removed.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import Any

from labship.compress.settings import MANIFEST_VERSION
from labship.report import write_json_atomic

MANIFEST = ".labship-manifest.json"


@dataclass
class Manifest:
    """The target's record of converted sources (see the module docstring)."""

    settings: str | None = None
    schema: str | None = None
    files: dict[str, dict[str, Any]] = field(default_factory=dict)
    columns: dict[str, list[str]] = field(default_factory=dict)

    @classmethod
    def load(cls, target: Path) -> Manifest:
        """The manifest in `target`, or an empty one (missing, unreadable or another version)."""
        try:
            data = json.loads((target / MANIFEST).read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return cls()
        if not isinstance(data, dict) or data.get("version") != MANIFEST_VERSION:
            return cls()
        files = data.get("files") if isinstance(data.get("files"), dict) else {}
        return cls(data.get("settings"), data.get("schema"), files, data.get("columns") or {})

    def save(self, target: Path) -> None:
        """Write it atomically (mode follows the umask)."""
        payload = {
            "version": MANIFEST_VERSION,
            "settings": self.settings,
            "schema": self.schema,
            "files": dict(sorted(self.files.items())),
            "columns": self.columns,
        }
        write_json_atomic(target / MANIFEST, payload)

    def outputs(self, relative: str, target: Path) -> list[Path]:
        """The outputs recorded for `relative` that stay inside `target` as written (relative, no
        `..`); others are ignored. Callers that remove files check the resolved path too."""
        inside = []
        for output in self.files.get(relative, {}).get("outputs", []):
            if not isinstance(output, str) or not output:
                continue
            parts = PurePosixPath(output).parts
            if PurePosixPath(output).is_absolute() or ".." in parts or "\\" in output:
                continue
            inside.append(target / output)
        return inside

    def is_current(self, relative: str, stat: os.stat_result, fingerprint: str, target: Path) -> bool:
        """Whether the recorded output of `relative` is still what this run would write."""
        entry = self.files.get(relative)
        return bool(
            entry
            and entry.get("size") == stat.st_size
            and entry.get("mtime_ns") == stat.st_mtime_ns
            and entry.get("settings") == fingerprint
            and all(path.is_file() for path in self.outputs(relative, target))
        )
