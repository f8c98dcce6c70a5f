"""This repository's own tasks (test, lint, demo, base-image) plus labship's experiment tasks.

Run them through the quickstart wrapper (`bash dev.sh test`, `bash dev.sh demo`) or, inside the
venv, with `invoke --list`.
"""

from __future__ import annotations

import hashlib
import shutil
import subprocess
import sys
from pathlib import Path

from invoke import Context, Exit, task

from labship.tasks import namespace

PTY = sys.platform != "win32"
ROOT = Path(__file__).resolve().parent


@task(
    help={
        "k": "only run tests matching this pytest -k expression",
        "x": "stop at the first failure",
        "fast": "skip the tests that need a Docker engine",
    },
    positional=[],
)
def test(c: Context, k: str = "", x: bool = False, fast: bool = False) -> None:
    """Run the test suite (pytest); end-to-end tests start their own engine-side parts."""
    args = ["python", "-m", "pytest"]
    if k:
        args += ["-k", repr(k)]
    if x:
        args.append("-x")
    if fast:
        args += ["-m", "'not docker'"]
    c.run(" ".join(args), pty=PTY)


@task
def lint(c: Context) -> None:
    """Check style and formatting with ruff."""
    c.run("ruff check .", pty=PTY)
    c.run("ruff format --check .", pty=PTY)


def banner(text: str) -> None:
    print(f"\n\033[1m== {text}\033[0m", flush=True)


def tracked_files(directory: Path) -> dict[str, str]:
    """Relative path -> sha256 of the data files under `directory` (hidden bookkeeping files, which
    .dvcignore keeps out of DVC, are left out)."""
    return {
        path.relative_to(directory).as_posix(): hashlib.sha256(path.read_bytes()).hexdigest()
        for path in sorted(directory.rglob("*"))
        if path.is_file() and not path.name.startswith(".")
    }


def docker_answers() -> bool:
    return (
        shutil.which("docker") is not None
        and subprocess.run(["docker", "info"], capture_output=True, check=False).returncode == 0
    )


def demo_base_image(c: Context, default_base: str) -> str | None:
    """The base to build the demo image on: the template's pinned base when the engine has it or can
    pull it, else labship's stand-in base (built from Debian packages, no registry needed)."""
    if c.run(f"docker image inspect {default_base}", hide=True, warn=True).ok:
        return default_base
    if c.run(f"docker pull {default_base}", hide=True, warn=True).ok:
        return default_base
    print(f"cannot pull {default_base}: building labship's stand-in base instead (about 2 minutes)")
    from labship.standin import StandinError, build_standin_base

    try:
        return build_standin_base()
    except StandinError as error:
        print(f"skipping the image steps: {error}")
        return None


@task(
    help={
        "dest": "directory of the demo experiment (default ./demo)",
        "fresh": "delete an existing demo experiment (and its clone and remote) first",
        "docker": "build the image and start the notebook server (skipped anyway when no engine answers)",
    },
)
def demo(c: Context, dest: str = "demo", fresh: bool = False, docker: bool = True) -> None:
    """The main job end to end on embedded defaults: scaffold, compress, share, build, open."""
    import copier

    from labship.config import load_config

    project = (ROOT / dest).resolve()
    clone = project.with_name(project.name + "-clone")
    remote = project.with_name(project.name + "-dvc-storage")
    if fresh:
        for path in (project, clone, remote):
            if path.exists() and path != ROOT:
                shutil.rmtree(path)
    env = {"DVC_NO_ANALYTICS": "1"}

    banner(f"1. scaffold {project} from this checkout (copier copy --trust --defaults)")
    if (project / ".copier-answers.yml").exists():
        print(f"{project} exists: reusing it (--fresh starts over)")
    else:
        # 3.11 satisfies both the stand-in base (Debian 12) and the pinned upstream base (3.13)
        copier.run_copy(
            str(ROOT),
            project,
            data={"python_version": "3.11", "dvc_remote_url": f"../{remote.name}"},
            defaults=True,
            unsafe=True,
            vcs_ref="HEAD",
            quiet=True,
        )
    config = load_config(project)
    print(f"sample data: {config.dataset('pems').source.relative_to(project)}; remote: {remote}")

    with c.cd(str(project)):
        banner("2. compress the sample CSV to Parquet (dvc repro runs `invoke compress --dataset pems`)")
        c.run("dvc repro", pty=PTY, env=env)
        banner("   again: unchanged data and settings, so nothing re-runs")
        c.run("dvc repro", pty=PTY, env=env)
        c.run("git add -A && git commit -q -m 'demo: compressed sample data (dvc.lock)' || true", env=env)

        banner("3. share the data: invoke data.push to the local DVC remote")
        c.run("invoke data.push", pty=PTY, env=env)
        c.run("invoke data.status", pty=PTY, env=env)

    banner(f"4. a collaborator: git clone -> invoke data.pull ({clone})")
    if clone.exists():
        shutil.rmtree(clone)
    c.run(f"git clone -q {project} {clone}")
    with c.cd(str(clone)):
        c.run("invoke data.pull", pty=PTY, env=env)
    for relative in ("data/processed/pems", "data/raw/pems"):
        ours, theirs = tracked_files(project / relative), tracked_files(clone / relative)
        if not ours or ours != theirs:
            raise Exit(f"demo: {relative} differs between {project} and its clone", code=1)
        print(f"{relative}: {len(ours)} files, identical in the clone")

    if not (docker and docker_answers()):
        banner("5-6. skipping invoke build and invoke notebook (--no-docker, or no Docker engine answers)")
        return
    base = demo_base_image(c, config.base_image)
    if base is None:
        return
    with c.cd(str(project)):
        banner(f"5. invoke build (base image {base})")
        c.run(f"invoke build --variant {config.notebook().image} --base-image {base}", pty=PTY, env=env)
        banner("6. invoke notebook: the server with the sample data mounted read-only")
        c.run(f"invoke notebook --detach --base-image {base}", pty=PTY, env=env)
    print(f"\nStop the server with: cd {project} && invoke notebook --stop")


ns = namespace()
ns.add_task(demo)
ns.add_task(test)
ns.add_task(lint)
