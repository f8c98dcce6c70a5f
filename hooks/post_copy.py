"""Post-copy steps of the labship template, run by Copier `_tasks` in the new repository.

git init -> dvc init (analytics and update checks off, committed) -> default DVC remote in the
committed .dvc/config -> sample data tracked by DVC -> lock file -> first commit.

The first commit holds only what this copy made: the files the template rendered (their names
rendered from the template tree with the answers in .copier-answers.yml) and the files the hook's
own steps created (DVC files, lock file, sample-data .dvc file). Files that were in the destination
before the copy (a private key, a credentials file, ...) are left out, listed in a warning.

Every git and DVC call puts `--` (git: `--end-of-options`) before its positional arguments, so a
value starting with '-' is never read as an option.

Every step checks what is already there first, so running the hook again changes nothing. Copier
runs it only on `copier copy` (copier.yml guards it with `_copier_operation == 'copy'`). A step that
needs a missing tool is skipped with a message saying what to run by hand; the copy itself never
fails because of it. The only inputs are the command-line options copier.yml passes; no secret is
ever asked for: credentials belong in .dvc/config.local (`dvc remote modify --local`).

Test-only option: LABSHIP_POETRY_SIMPLE_INDEX=<url of a PEP 503 simple index> adds that index as
Poetry's primary source before `poetry lock`. Some networks (our CI machines) answer 404 on PyPI's
per-version JSON API that Poetry's built-in PyPI source uses, while the simple index works. The
source is written into pyproject.toml, so it is never set by default.
"""

from __future__ import annotations

import argparse
import fnmatch
import os
import shutil
import subprocess
import sys
from pathlib import Path

REMOTE_NAME = "storage"
SAMPLE_DIR = Path("data/raw/pems")
TEMPLATE_ROOT = Path(__file__).resolve().parent.parent
# the warning lists this many left-out files, then a count
LISTED_LEFT_OUT = 20


def main() -> int:
    options = parse_args()
    env = {**os.environ, "DVC_NO_ANALYTICS": "1"}
    problems: list[str] = []

    git_init()
    # before any step creates files: what is untracked now and not rendered by the template was
    # there before the copy
    before = preexisting_files()
    if has_module("dvc"):
        dvc_init(env)
        dvc_remote(options.remote_url, options.s3_endpoint, env)
    else:
        problems.append("DVC is not installed next to Copier: install labship, then run `dvc init`")
    if options.sample_data == "yes":
        problems += sample_data(env)
    problems += lock(options.package_manager, env)
    problems += first_commit(options.author_name, options.author_email, before)

    for problem in problems:
        print(f"labship hook: WARNING: {problem}", file=sys.stderr)
    return 0


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--package-manager", choices=("uv", "poetry"), default="uv")
    parser.add_argument("--remote-url", required=True, help="DVC remote: directory, s3://... or ssh://...")
    parser.add_argument("--s3-endpoint", default="", help="endpoint URL of an S3-compatible remote")
    parser.add_argument("--sample-data", choices=("yes", "no"), default="yes")
    parser.add_argument("--author-name", default="labship", help="commit author if git has none")
    parser.add_argument("--author-email", default="labship@localhost", help="commit e-mail if git has none")
    return parser.parse_args()


def step(message: str) -> None:
    print(f"labship hook: {message}", file=sys.stderr, flush=True)


def run(
    *command: str, env: dict[str, str] | None = None, stdin: str | None = None
) -> subprocess.CompletedProcess[str]:
    """Run a command in the new repository; on failure show its output and raise."""
    result = subprocess.run(command, env=env, input=stdin, capture_output=True, text=True, check=False)
    if result.returncode != 0:
        sys.stderr.write(result.stdout + result.stderr)
        raise subprocess.CalledProcessError(result.returncode, command, result.stdout, result.stderr)
    return result


def has_module(name: str) -> bool:
    return subprocess.run([sys.executable, "-c", f"import {name}"], capture_output=True).returncode == 0


def git_init() -> None:
    if Path(".git").exists():
        return
    step("git init")
    run("git", "init", "--quiet", "--initial-branch=main")


def dvc(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return run(sys.executable, "-m", "dvc", *args, env=env)


def dvc_init(env: dict[str, str]) -> None:
    if not Path(".dvc/config").exists():
        step("dvc init")
        dvc("init", "--quiet", env=env)
    # committed, so no collaborator's DVC phones home or checks for updates
    dvc("config", "--", "core.analytics", "false", env=env)
    dvc("config", "--", "core.check_update", "false", env=env)


def dvc_remote(url: str, s3_endpoint: str, env: dict[str, str]) -> None:
    """The default remote, in the committed .dvc/config (never credentials: those go to config.local)."""
    step(f"DVC remote {REMOTE_NAME!r} -> {url}")
    # a relative directory is taken relative to this repository (DVC stores it relative to .dvc/);
    # `dvc push` creates a missing directory itself
    dvc("remote", "add", "--default", "--force", "--", REMOTE_NAME, url, env=env)
    if url.startswith("s3://") and s3_endpoint:
        dvc("remote", "modify", "--", REMOTE_NAME, "endpointurl", s3_endpoint, env=env)


def sample_data(env: dict[str, str]) -> list[str]:
    """Generate the sample traffic CSV (labship.sample) into data/raw/pems and track it with DVC."""
    if not any(SAMPLE_DIR.glob("*.csv")):
        if not has_module("labship.sample"):
            return [
                "labship.sample is not available (install or upgrade labship), so no sample data was "
                f"written; later run: python -m labship.sample {SAMPLE_DIR.as_posix()} && "
                f"dvc add {SAMPLE_DIR.as_posix()}"
            ]
        step(f"sample data -> {SAMPLE_DIR.as_posix()}")
        run(sys.executable, "-m", "labship.sample", "--", str(SAMPLE_DIR))
    if has_module("dvc") and not Path(f"{SAMPLE_DIR}.dvc").exists():
        step(f"dvc add {SAMPLE_DIR.as_posix()}")
        dvc("add", "--quiet", "--", str(SAMPLE_DIR), env=env)
    return []


def find_tool(name: str) -> list[str] | None:
    """The tool next to Copier's Python first (an unactivated venv), then on PATH, then `-m`."""
    beside = Path(sys.executable).parent / (f"{name}.exe" if os.name == "nt" else name)
    if beside.is_file():
        return [str(beside)]
    if found := shutil.which(name):
        return [found]
    if has_module(name):
        return [sys.executable, "-m", name]
    return None


def lock(package_manager: str, env: dict[str, str]) -> list[str]:
    """Write the lock file, or stop the copy (exit 1, clear message): never a commit without it.

    The images are built from the lock file, so a repository committed without one fails later, far
    from the cause. uv locks only with a Python that satisfies requires-python (uv 0.9: "No
    interpreter found for Python >=3.13 ... downloads are set to 'never'"), so say how to get one.
    """
    lock_file = "uv.lock" if package_manager == "uv" else "poetry.lock"
    if Path(lock_file).exists():
        return []
    tool = find_tool(package_manager)
    if tool is None:
        raise SystemExit(
            f"labship hook: error: {package_manager} is not installed, so no {lock_file} can be written: "
            f"install it (`pip install {package_manager}`) and run `copier copy` again"
        )
    if package_manager == "poetry" and (index := os.environ.get("LABSHIP_POETRY_SIMPLE_INDEX")):
        step(f"poetry source pypi-simple -> {index} (LABSHIP_POETRY_SIMPLE_INDEX)")
        run(*tool, "source", "add", "--priority=primary", "--", "pypi-simple", index, env=env)
    step(f"{package_manager} lock")
    try:
        run(*tool, "lock", env=env)
    except subprocess.CalledProcessError as error:
        output = (error.stdout or "") + (error.stderr or "")
        raise SystemExit(f"labship hook: error: {lock_failure(package_manager, output)}") from None
    return []


def lock_failure(package_manager: str, output: str) -> str:
    """What to do when the lock failed; the Python-not-available case named with its fixes."""
    import re
    import tomllib

    wanted = (
        tomllib.loads(Path("pyproject.toml").read_text(encoding="utf-8"))
        .get("project", {})
        .get("requires-python", "")
    )
    version = wanted.removeprefix(">=")
    if re.search(
        r"No interpreter found|incompatible with the project's Python|unable to find a compatible", output
    ):
        download = ", or let uv download it: unset UV_PYTHON_DOWNLOADS" if package_manager == "uv" else ""
        return (
            f"`{package_manager} lock` needs a Python {wanted} (requires-python) and none is available here: "
            f"install one (`{package_manager} python install {version}`{download}), or answer python_version "
            "with an installed version (`copier copy --trust --data python_version=X.Y ...`); then run "
            "`copier copy` again"
        )
    return f"`{package_manager} lock` failed (output above): fix the cause and run `copier copy` again"


def first_commit(author_name: str, author_email: str, before: set[str]) -> list[str]:
    """Commit what the copy made; return a warning listing the files left out (there before)."""
    if has_head():
        return []
    step("first commit")
    candidates = uncommitted_files()
    left_out = sorted(name for name in candidates if name in before)
    made = [name for name in candidates if name not in before]
    # literal pathspecs through stdin: a name with '*' or ':(' is a name, not a pattern
    pathspecs = "".join(f"{name}\0" for name in made)
    run("git", "--literal-pathspecs", "add", "--pathspec-from-file=-", "--pathspec-file-nul", stdin=pathspecs)
    identity: list[str] = []
    if not git_config("user.name") or not git_config("user.email"):
        # an unconfigured machine (CI, container): commit as the author named in the answers
        identity = ["-c", f"user.name={author_name}", "-c", f"user.email={author_email}"]
    run(
        "git",
        "--literal-pathspecs",
        *identity,
        "commit",
        "--quiet",
        "--no-verify",
        "-m",
        "Scaffold the experiment from the labship template",
        # only these paths, even if something else was already staged in an existing repository
        "--only",
        "--pathspec-from-file=-",
        "--pathspec-file-nul",
        stdin=pathspecs,
    )
    if not left_out:
        return []
    listed = ", ".join(left_out[:LISTED_LEFT_OUT])
    more = f" and {len(left_out) - LISTED_LEFT_OUT} more" if len(left_out) > LISTED_LEFT_OUT else ""
    return [
        f"the destination already held {len(left_out)} file(s) that the template did not make; they "
        f"were left out of the first commit (`git add` the ones that belong): {listed}{more}"
    ]


def uncommitted_files() -> list[str]:
    """Files a first commit could hold: staged (`dvc init` stages its own) or untracked and not ignored."""
    output = run("git", "ls-files", "--cached", "--others", "--exclude-standard", "-z").stdout
    return [name for name in output.split("\0") if name]


def preexisting_files() -> set[str]:
    """The files now not committed that the template did not render: the destination held them before."""
    if has_head():
        return set()
    return set(uncommitted_files()) - rendered_files()


def rendered_files() -> set[str]:
    """Paths the template renders with these answers: its file tree, names rendered as Copier does.

    Copier gives tasks no list of what it wrote, so the hook renders the names itself: each path
    part of template/ through Jinja with the answers of .copier-answers.yml, `.jinja` dropped, a
    part that renders empty (`{% if ... %}` folders) skipping its subtree, `_exclude` applied.
    """
    import jinja2  # Copier's own dependencies: the hook runs on Copier's Python
    import yaml

    settings = yaml.safe_load((TEMPLATE_ROOT / "copier.yml").read_text(encoding="utf-8"))
    answers_file = settings.get("_answers_file", ".copier-answers.yml")
    answers = yaml.safe_load(Path(answers_file).read_text(encoding="utf-8")) or {}
    context = {**answers, "_copier_conf": {"answers_file": answers_file}}
    # lenient: a question Copier skipped (`when` false, e.g. bucket_infra without an s3:// remote) is
    # absent from the answers file, and the folder it gates must then render empty, as in Copier
    environment = jinja2.Environment(undefined=jinja2.Undefined, keep_trailing_newline=True)
    suffix = settings.get("_templates_suffix", ".jinja")
    exclude = settings.get("_exclude", [])
    source = TEMPLATE_ROOT / settings.get("_subdirectory", "")
    rendered: set[str] = set()
    for path in source.rglob("*"):
        if not path.is_file():
            continue
        parts = [environment.from_string(part).render(context) for part in path.relative_to(source).parts]
        if not all(parts) or any(fnmatch.fnmatch(part, pattern) for part in parts for pattern in exclude):
            continue
        if suffix and parts[-1].endswith(suffix) and path.name.endswith(suffix):
            parts[-1] = parts[-1][: -len(suffix)]
        rendered.add("/".join(parts))
    return rendered


def has_head() -> bool:
    return (
        subprocess.run(
            ["git", "rev-parse", "--verify", "--quiet", "--end-of-options", "HEAD"], capture_output=True
        ).returncode
        == 0
    )


def git_config(key: str) -> str:
    result = subprocess.run(
        ["git", "config", "--get", "--end-of-options", key], capture_output=True, text=True
    )
    return result.stdout.strip()


if __name__ == "__main__":
    try:
        sys.exit(main())
    except subprocess.CalledProcessError as error:
        command = " ".join(str(part) for part in error.cmd)
        print(
            f"labship hook: error: `{command}` failed with exit code {error.returncode} (output above). "
            "Copier removes the unfinished repository; fix the cause and run `copier copy` again.",
            file=sys.stderr,
        )
        sys.exit(1)
