"""The manifest a run leaves in the target (`.labship-manifest.json`): what each output was made from.

It maps each source (relative path) to its size, mtime, settings fingerprint, outputs and counts,
so a re-run skips unchanged files without opening them. It is bookkeeping of one machine (mtimes),
DVC-ignored; output paths read from it are confined to the target before anything is removed.

On object storage the same fields hold the object's size and LastModified from the listing (see
`labship.compress.storage`), and the manifest is one object under the target prefix, written with
one PUT after every output was published: it never names an output that is not in place.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import PurePosixPath
from typing import Any, Protocol

from labship.compress import storage
from labship.compress.settings import MANIFEST_VERSION
from labship.compress.storage import Location
from labship.report import write_json_atomic

MANIFEST = ".labship-manifest.json"


class Stat(Protocol):
    """What is compared of a source: an `os.stat_result` or a `storage.ObjectStat`."""

    @property
    def st_size(self) -> int: ...

    @property
    def st_mtime_ns(self) -> int: ...


@dataclass
class Manifest:
    """The target's record of converted sources (see the module docstring)."""

    settings: str | None = None
    schema: str | None = None
    files: dict[str, dict[str, Any]] = field(default_factory=dict)
    columns: dict[str, list[str]] = field(default_factory=dict)

    @classmethod
    def load(cls, target: Location) -> Manifest:
        """The manifest in `target`, or an empty one (missing, unreadable or another version)."""
        try:
            data = json.loads((storage.read_bytes(target / MANIFEST) or b"").decode("utf-8"))
        except (OSError, ValueError):
            return cls()
        if not isinstance(data, dict) or data.get("version") != MANIFEST_VERSION:
            return cls()
        files = data.get("files") if isinstance(data.get("files"), dict) else {}
        return cls(data.get("settings"), data.get("schema"), files, data.get("columns") or {})

    def save(self, target: Location) -> None:
        """Write it atomically (mode follows the umask; one PUT on object storage)."""
        payload = {
            "version": MANIFEST_VERSION,
            "settings": self.settings,
            "schema": self.schema,
            "files": dict(sorted(self.files.items())),
            "columns": self.columns,
        }
        if isinstance(target, storage.ObjectPath):
            text = json.dumps(payload, indent=2, sort_keys=True) + "\n"  # as write_json_atomic writes it
            storage.write_whole(target / MANIFEST, text.encode("utf-8"))
        else:
            write_json_atomic(target / MANIFEST, payload)

    def outputs(self, relative: str, target: Location) -> list[Location]:
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

    def is_current(
        self,
        relative: str,
        stat: Stat,
        fingerprint: str,
        target: Location,
        *,
        exists: Callable[[Location], bool] = lambda path: path.is_file(),
    ) -> bool:
        """Whether the recorded output of `relative` is still what this run would write."""
        entry = self.files.get(relative)
        return bool(
            entry
            and entry.get("size") == stat.st_size
            and entry.get("mtime_ns") == stat.st_mtime_ns
            and entry.get("settings") == fingerprint
            and all(exists(path) for path in self.outputs(relative, target))
        )
