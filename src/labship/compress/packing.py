"""The packed layout: many small CSV files written into fewer Parquet files of bounded size.

Small files cost twice: every Parquet file repeats its footer and dictionaries (row groups no bigger
than the file), and DVC's push and pull pay per file. With `pack-mb = N` the sources of a dataset,
in path order, are cut into packs of about N MB of CSV, each written as one Parquet file
`packs/pack-<hash>.parquet` (the hash of the member list), rows in member order.

Cut points must not move when a file is added, or one new file would rewrite every later pack.
So a pack ends after a file whose name hashes into 1/`spacing` of the hash space (content-defined
cuts, as in rsync or restic chunking) — or when it reaches twice the target size, the hard bound.
`spacing` is the target size over the mean file size, rounded to a power of two, so it changes
only when the mean file size doubles or halves. Adding, removing or changing a file rewrites its
own pack (and, rarely, the next one when a hard bound moves); everything else is skipped.
"""

from __future__ import annotations

import hashlib
import math
from collections.abc import Mapping
from dataclasses import dataclass

PACK_DIRECTORY = "packs"


@dataclass(frozen=True)
class Pack:
    """One packed output and the sources (relative paths, in order) it holds."""

    name: str  # target-relative output path
    members: tuple[str, ...]


def _name_hash(relative: str) -> int:
    return int.from_bytes(hashlib.sha256(relative.encode("utf-8", "surrogateescape")).digest()[:8], "big")


def pack_name(members: tuple[str, ...]) -> str:
    """The output path of a pack: named by its member list, so a pack with new members is a new file."""
    digest = hashlib.sha256("\n".join(members).encode("utf-8", "surrogateescape")).hexdigest()[:16]
    return f"{PACK_DIRECTORY}/pack-{digest}.parquet"


def group(sizes: Mapping[str, int], *, pack_bytes: int) -> list[Pack]:
    """Cut the sources (relative path -> CSV bytes) into packs; see the module docstring."""
    order = sorted(sizes)
    if not order:
        return []
    mean = max(1, sum(sizes.values()) // len(order))
    spacing = 2 ** max(0, round(math.log2(max(1, pack_bytes / mean))))
    packs: list[Pack] = []
    members: list[str] = []
    total = 0
    for relative in order:
        members.append(relative)
        total += sizes[relative]
        if _name_hash(relative) % spacing == 0 or total >= 2 * pack_bytes:
            packs.append(Pack(pack_name(tuple(members)), tuple(members)))
            members, total = [], 0
    if members:
        packs.append(Pack(pack_name(tuple(members)), tuple(members)))
    return packs


def packs_to_convert(packs: list[Pack], changed: set[str], recorded: Mapping[str, list[str]]) -> list[Pack]:
    """The packs with a changed member, or whose members' recorded output is not this pack (a
    member recorded without output was empty and skipped: it never has one)."""
    return [
        pack
        for pack in packs
        if any(member in changed or recorded.get(member) not in ([pack.name], []) for member in pack.members)
    ]
