"""Migrations `copier update` runs in an experiment (copier.yml `_migrations`), by `format`.

Copier runs this file by path from the checkout of the template being updated *to*, with Copier's
own Python, so the migrations always match the template version (not whatever labship is
installed) and may import only the standard library, Copier and PyYAML (a Copier dependency):

    python <template>/src/labship/migrate.py --stage before|after [--answers-file F]

in the experiment's directory, once before Copier compares the user's files with the old render
(`before`) and once after it merged the new render (`after`). The experiment's `format` (top of
`[tool.labship]`, absent = 1) says which migrations apply: each `Migration` upgrades experiments
older than its `format`. Copier's own `version` keys cannot select them: this repository has no
release tags, so Copier's versions are commit distances (`0.0.0.post84+<hash>`), not releases.

Format 2 (before): rebase the user's files onto the render Copier compares them with. Templates
of format 1 rendered the image variants in the order they were answered in, while
`.copier-answers.yml` stores them sorted; Copier re-renders the old version from that file and
took the difference in order for the user's edit, which conflicts with template changes next to
it. The migration renders the old version both ways (the order the experiment's
`[tool.labship.images]` tables show, and the stored order), carries the user's files from the
first to the second with `git merge-file` (so the user's own edits stay), and stages them: the
update then sees only the user's real edits.

After the merge, the `after` stage lists files with conflict markers or `.rej` leftovers and says
what to do. A migration never aborts the update: when it cannot run, it says why and leaves the
files to Copier's own merge.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
import tomllib
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

# the format the template at this commit writes; equal to labship.config.FORMAT (tests check it)
FORMAT = 2
PYPROJECT = "pyproject.toml"
ANSWERS_FILE = ".copier-answers.yml"
CONFLICT_MARKERS = ("<<<<<<< ", ">>>>>>> ")
# inside .git: the paths the `before` stage staged, unstaged again by `after` (Copier leaves an
# update's changes unstaged, so `git diff` shows all of it)
STAGED_NOTE = "labship-migrate-staged"


@dataclass(frozen=True)
class Migration:
    """Upgrades experiments older than `format`, at `stage`; returns the paths it changed."""

    format: int
    stage: str
    summary: str
    run: Callable[[Path, str], list[str]]


def say(message: str) -> None:
    print(f"labship update: {message}", file=sys.stderr, flush=True)


def recorded_format(root: Path) -> int:
    """The experiment's `[tool.labship] format`; 1 when absent (made before it was recorded)."""
    try:
        document = tomllib.loads((root / PYPROJECT).read_text(encoding="utf-8"))
    except (OSError, tomllib.TOMLDecodeError):
        return 1
    value = document.get("tool", {}).get("labship", {}).get("format", 1)
    return value if isinstance(value, int) and not isinstance(value, bool) else 1


def image_table_order(root: Path) -> list[str]:
    """The names of `[tool.labship.images.*]` in the order the experiment's pyproject.toml has them."""
    document = tomllib.loads((root / PYPROJECT).read_text(encoding="utf-8"))
    images = document.get("tool", {}).get("labship", {}).get("images", {})
    return list(images) if isinstance(images, dict) else []


def render_old(answers: dict[str, Any], variants: dict[str, Any], dest: Path) -> Path:
    """Render the experiment's template version (files only) with `variants` in their given order."""
    import copier  # Copier runs this file; the import is here so `--help` works without it

    data = {key: value for key, value in answers.items() if not key.startswith("_")}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        copier.run_copy(
            str(answers["_src_path"]),
            dest,
            data={**data, "image_variants": variants},
            vcs_ref=str(answers["_commit"]),
            defaults=True,
            skip_tasks=True,
            quiet=True,
        )
    return dest


def merge_file(current: Path, base: Path, other: Path) -> bytes | None:
    """`current` with the change base -> other applied, or None when the two changes overlap."""
    result = subprocess.run(
        ["git", "merge-file", "-p", str(current), str(base), str(other)], capture_output=True, check=False
    )
    return result.stdout if result.returncode == 0 else None


def rebase_on_sorted_render(root: Path, answers_file: str) -> list[str]:
    """Format 2: carry the user's files from the answer-order render to the sorted-order render."""
    answers = yaml.safe_load((root / answers_file).read_text(encoding="utf-8")) or {}
    stored = answers.get("image_variants")
    if not isinstance(stored, dict) or "_commit" not in answers or "_src_path" not in answers:
        return []
    order = image_table_order(root)
    if set(order) != set(stored) or order == list(stored):
        return []  # the user changed the variants, or the render order was already the stored one
    changed: list[str] = []
    with tempfile.TemporaryDirectory(prefix="labship-migrate-") as scratch:
        made = render_old(answers, {name: stored[name] for name in order}, Path(scratch, "made"))
        compared = render_old(answers, stored, Path(scratch, "compared"))
        for old in sorted(path for path in made.rglob("*") if path.is_file()):
            name = old.relative_to(made).as_posix()
            new, user = compared / name, root / name
            if not new.is_file() or not user.is_file() or old.read_bytes() == new.read_bytes():
                continue
            merged = merge_file(user, old, new)
            if merged is None:
                say(f"{name}: your edits touch the image variant tables; Copier merges it as usual")
            elif merged != user.read_bytes():
                user.write_bytes(merged)
                changed.append(name)
    return changed


def report_leftovers(root: Path) -> list[str]:
    """After the merge: name the files with conflict markers or .rej hunks, and what to do."""
    listed = subprocess.run(
        ["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
        cwd=root,
        capture_output=True,
        text=True,
        check=False,
    ).stdout
    leftovers: list[str] = []
    for name in filter(None, listed.split("\0")):
        path = root / name
        if name.endswith(".rej"):
            leftovers.append(
                f"{name} (hunks Copier could not place: apply them by hand, then delete the file)"
            )
        elif path.is_file() and path.stat().st_size < 4_000_000:
            lines = path.read_text(encoding="utf-8", errors="replace").splitlines()
            if any(line.startswith(CONFLICT_MARKERS) for line in lines):
                leftovers.append(f"{name} (conflict markers: keep your side, the template's, or both)")
    for leftover in leftovers:
        say(f"conflict: {leftover}")
    if leftovers:
        say(
            "resolve the conflicts above, run the checks (`uv lock --check` / `poetry check --lock`, "
            "`invoke --list`), then commit; `git diff` shows everything the update changed"
        )
    return leftovers


MIGRATIONS = (
    Migration(
        2, "before", "image variants in name order, as the answers file stores them", rebase_on_sorted_render
    ),
)


def git_path(root: Path, name: str) -> Path:
    found = subprocess.run(
        ["git", "rev-parse", "--git-path", name], cwd=root, capture_output=True, text=True, check=True
    )
    return root / found.stdout.strip()


def unstage(root: Path) -> None:
    """Unstage what the `before` stage staged (the working tree keeps the merged files)."""
    note = git_path(root, STAGED_NOTE)
    if note.is_file():
        names = [name for name in note.read_text(encoding="utf-8").split("\0") if name]
        subprocess.run(["git", "reset", "--quiet", "--", *names], cwd=root, check=False)
        note.unlink()


LOCKS = {
    "uv.lock": (("uv", "lock", "--check"), ("uv", "lock")),
    "poetry.lock": (
        ("poetry", "check", "--lock"),
        ("poetry", "lock"),
    ),
}


def relock(root: Path, leftovers: list[str]) -> list[str]:
    """After the merge: when the template changed the dependencies, lock again (a stale lock file
    would make `invoke build` refuse); never while pyproject.toml still holds conflicts."""
    if any(item.startswith(PYPROJECT) for item in leftovers):
        return []
    for lock_name, (check, lock) in LOCKS.items():
        if not (root / lock_name).is_file():
            continue
        try:
            if subprocess.run(check, cwd=root, capture_output=True, check=False).returncode == 0:
                return []
            say(f"the update changed the dependencies in {PYPROJECT}: `{' '.join(lock)}`")
            locked = subprocess.run(lock, cwd=root, capture_output=True, text=True, check=False)
        except FileNotFoundError:
            say(f"{lock_name} is stale and `{lock[0]}` is not installed: install it, run `{' '.join(lock)}`")
            return []
        if locked.returncode != 0:
            say(f"`{' '.join(lock)}` failed; run it yourself:\n{locked.stderr.strip()}")
            return []
        return [lock_name]
    return []


def run(root: Path, stage: str, answers_file: str = ANSWERS_FILE) -> list[str]:
    """Run the migrations of `stage` that apply to the experiment at `root`; returns changed paths."""
    if stage == "after":
        unstage(root)
        leftovers = report_leftovers(root)
        relock(root, leftovers)
        return leftovers
    current = recorded_format(root)
    if current > FORMAT:
        say(f"{PYPROJECT} has format {current}, newer than this template's {FORMAT}: nothing to migrate")
        return []
    changed: list[str] = []
    for migration in MIGRATIONS:
        if migration.stage != stage or current >= migration.format:
            continue
        try:
            done = migration.run(root, answers_file)
        except Exception as error:  # a migration must never abort the user's update
            say(f"format {migration.format} migration ({migration.summary}) did not run: {error}")
            continue
        if done:
            say(f"format {migration.format}: {migration.summary}: {', '.join(done)}")
            # staged: Copier compares the index (`git write-tree`) with the old render
            subprocess.run(["git", "add", "--", *done], cwd=root, check=True)
        changed += done
    if changed:
        git_path(root, STAGED_NOTE).write_text("\0".join(changed), encoding="utf-8")
    return changed


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--stage", choices=("before", "after"), required=True, help="Copier's migration stage"
    )
    parser.add_argument("--answers-file", default=ANSWERS_FILE, help="the experiment's Copier answers file")
    options = parser.parse_args(argv)
    run(Path.cwd(), options.stage, options.answers_file)
    return 0


if __name__ == "__main__":
    sys.exit(main())
