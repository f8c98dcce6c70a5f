"""This repository's own dev tasks: demo, test, lint, bench, screenshot.

The product tasks (compress, build, notebook, data.*) live in the labship package
(`labship.tasks`) and run inside an experiment. Run these through the quickstart wrapper
(`bash dev.sh demo`, `bash dev.sh test`) or, inside the venv, with `invoke --list`.
"""

from __future__ import annotations

import hashlib
import os
import re
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from invoke import Collection, Context, Exit, task

PTY = sys.platform != "win32"
ROOT = Path(__file__).resolve().parent
README_IMAGE = ROOT / "docs" / "notebook.png"
URL = re.compile(r"http://127\.0\.0\.1:\d+/lab/tree/\S+\?token=[0-9a-f]+")


@task(
    help={
        "k": "only run tests matching this pytest -k expression",
        "x": "stop at the first failure",
        "fast": "skip the tests that need a Docker engine",
        "no_install": "do not install missing system packages (debootstrap, docker-registry, sshd, chromium)",
    },
    positional=[],
)
def test(c: Context, k: str = "", x: bool = False, fast: bool = False, no_install: bool = False) -> None:
    """Run the test suite (pytest), first installing missing system packages when root with apt."""
    from devtools import sysdeps

    if not (fast or no_install):
        command = sysdeps.ensure_packages()
        if command:
            print(f"some tests will be skipped: missing system packages; install them with: {command}")
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


@task(help={"name": "run only benchmarks/bench_NAME.py (default: all of them, one after the other)"})
def bench(c: Context, name: str = "") -> None:
    """Run the benchmark scripts of benchmarks/ (each prints side-by-side ratios vs its peers)."""
    scripts = sorted((ROOT / "benchmarks").glob(f"bench_{name or '*'}.py"))
    if not scripts:
        raise Exit(f"no benchmarks/bench_{name}.py", code=2)
    for script in scripts:
        banner(f"benchmarks/{script.name}")
        c.run(f"{sys.executable} {script}", pty=PTY)


@task(help={"dest": "the demo experiment whose running server is photographed (default ./demo)"})
def screenshot(c: Context, dest: str = "demo") -> None:
    """Refresh the README image docs/notebook.png: Run All in headless Chromium on the demo's server
    (start it with `bash dev.sh demo`), as the browser test does."""
    from devtools.jupyterlab import Server, screenshot_after_run_all
    from labship.config import load_config
    from labship.notebook import container_state, read_launch

    project = (ROOT / dest).resolve()
    config = load_config(project)
    launch = read_launch(config, "traffic")
    if launch is None or container_state(config, "traffic") != "running":
        raise Exit(f"no running demo server in {project}: run `bash dev.sh demo` first", code=1)
    screenshot_after_run_all(Server(project, launch.port, launch.token), README_IMAGE)
    print(f"{README_IMAGE.relative_to(ROOT)} updated (Run All on {launch.base_url})")


def banner(text: str) -> None:
    print(f"\n\033[1m== {text}\033[0m", flush=True)


class Steps:
    """Times each demo step, for the summary at the end."""

    def __init__(self) -> None:
        self.seconds: list[tuple[str, float]] = []

    @contextmanager
    def step(self, title: str) -> Iterator[None]:
        banner(title)
        started = time.monotonic()
        try:
            yield
        finally:
            self.seconds.append((title.split(" (")[0], time.monotonic() - started))

    def summary(self) -> str:
        width = max(len(name) for name, _ in self.seconds)
        return "\n".join(f"  {name:<{width}}  {seconds:6.1f} s" for name, seconds in self.seconds)


def tracked_files(directory: Path) -> dict[str, str]:
    """Relative path -> sha256 of the data files under `directory` (hidden bookkeeping files, which
    .dvcignore keeps out of DVC, are left out)."""
    return {
        path.relative_to(directory).as_posix(): hashlib.sha256(path.read_bytes()).hexdigest()
        for path in sorted(directory.rglob("*"))
        if path.is_file() and not path.name.startswith(".")
    }


def template_default_base() -> str:
    """The template's pinned base image (copier.yml's `base_image` default)."""
    import yaml

    return str(yaml.safe_load((ROOT / "copier.yml").read_text())["base_image"]["default"])


def docker_preflight() -> None:
    """`labship doctor`'s table first; then stop before any work, with the fix, when the engine or
    Compose v2 is missing (the other rows are advice: the demo makes its own experiment)."""
    from labship import doctor
    from labship.compose import ComposeError, compose_argv

    checks = doctor.run_checks(ROOT)
    print(doctor.format_table(checks) + "\n" + doctor.verdict(checks))

    if shutil.which("docker") is None:
        raise Exit(
            "demo: no `docker` command: install Docker (Debian: `apt-get install -y docker.io`), "
            "or run the data steps only with `bash dev.sh demo --no-docker`",
            code=1,
        )
    info = subprocess.run(["docker", "info"], capture_output=True, text=True, check=False)
    if info.returncode != 0:
        raise Exit(
            f"demo: the Docker engine does not answer ({info.stderr.strip().splitlines()[-1:]}): start it "
            "(`sudo systemctl start docker`, or `sudo dockerd &`), or run `bash dev.sh demo --no-docker`",
            code=1,
        )
    try:
        print("Compose v2: " + " ".join(compose_argv()))
    except ComposeError as error:
        raise Exit(f"demo: {error}", code=1) from error


def plan_base_image(c: Context) -> str | None:
    """The base to build on: the template's pinned base when the engine has it or can pull it, else
    None (the stand-in base). Installs debootstrap for the stand-in when root with apt; otherwise
    stops with the command that does."""
    from devtools import standin, sysdeps

    default_base = template_default_base()
    if c.run(f"docker image inspect {default_base}", hide=True, warn=True).ok:
        return default_base
    if c.run(f"docker pull -q {default_base}", hide=True, warn=True).ok:
        return default_base
    print(f"cannot pull {default_base}: the demo builds on labship's stand-in base instead")
    if standin.image_exists(standin.default_tag()):
        return None
    command = sysdeps.ensure_packages(["debootstrap"])
    if command:
        raise Exit(f"demo: the stand-in base needs debootstrap; install it with: {command}", code=1)
    if os.geteuid() != 0:
        raise Exit(
            "demo: building the stand-in base needs root (debootstrap, chroot): run `sudo bash dev.sh demo`"
        )
    return None


def data_report(project: Path, uplink_mbps: float) -> str:
    """Raw CSV vs Parquet bytes on disk, the ratio and the upload times at the experiment's uplink."""
    from labship.report import format_bytes, transfer_change

    csv_bytes = sum(p.stat().st_size for p in (project / "data/raw/pems").glob("*.csv"))
    parquet_bytes = sum(p.stat().st_size for p in (project / "data/processed/pems").rglob("*.parquet"))
    return (
        f"  data/raw/pems {format_bytes(csv_bytes)} CSV -> data/processed/pems {format_bytes(parquet_bytes)} "
        f"Parquet: {csv_bytes / parquet_bytes:.1f}x smaller\n"
        f"  upload at {uplink_mbps:g} Mbit/s: {transfer_change(csv_bytes, parquet_bytes, uplink_mbps)}"
    )


def scaffold_demo(project: Path, remote: Path) -> None:
    import copier

    if (project / ".copier-answers.yml").exists():
        print(f"{project} exists: reusing it (--fresh starts over)")
        return
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


def share_data(c: Context, project: Path, clone: Path, env: dict[str, str]) -> None:
    """push from the project, clone, pull in the clone; the data must be byte-identical."""
    with c.cd(str(project)):
        c.run("invoke data.push", pty=PTY, env=env)
        c.run("invoke data.status", pty=PTY, env=env)
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


@task(
    help={
        "dest": "directory of the demo experiment (default ./demo)",
        "fresh": "delete an existing demo experiment (and its clone and remote) first",
        "docker": "build the image and start the notebook server (--no-docker: the data steps only)",
    },
)
def demo(c: Context, dest: str = "demo", fresh: bool = False, docker: bool = True) -> None:
    """The main job end to end on embedded defaults: scaffold, compress, share, build, open."""
    from labship.config import load_config

    project = (ROOT / dest).resolve()
    clone = project.with_name(project.name + "-clone")
    remote = project.with_name(project.name + "-dvc-storage")
    env = {"DVC_NO_ANALYTICS": "1"}
    steps = Steps()
    base: str | None = None
    if docker:
        with steps.step("0. preflight: Docker engine, Compose v2, base image"):
            docker_preflight()
            base = plan_base_image(c)
    if fresh:
        for path in (project, clone, remote):
            if path.exists() and path != ROOT:
                shutil.rmtree(path)

    with steps.step(f"1. scaffold {project} (copier copy --trust --defaults; sample data generated)"):
        scaffold_demo(project, remote)
    config = load_config(project)
    print(f"sample data: {config.dataset('pems').source.relative_to(project)}; remote: {remote}")

    with c.cd(str(project)):
        with steps.step(
            "2. compress the sample CSV to Parquet (dvc repro runs `invoke compress --dataset pems`)"
        ):
            c.run("dvc repro", pty=PTY, env=env)
        with steps.step("   again: unchanged data and settings, so nothing re-runs"):
            c.run("dvc repro", pty=PTY, env=env)
            c.run("git add -A && git commit -q -m 'demo: compressed sample data (dvc.lock)' || true", env=env)
    report = data_report(project, config.uplink_mbps)
    print(report)

    with steps.step(f"3. share: invoke data.push, then a collaborator clones and pulls ({clone})"):
        share_data(c, project, clone, env)

    url = ""
    if docker:
        url = images_and_server(c, steps, project, base, config.notebook().image, env)
    banner("demo summary")
    print(report)
    print("time of each step:\n" + steps.summary())
    if url:
        print(f"\nJupyter is running: {url}\nStop it with: cd {project} && invoke notebook --stop")
    else:
        print("\n(--no-docker: the image and notebook steps were not run)")


def images_and_server(
    c: Context, steps: Steps, project: Path, base: str | None, variant: str, env: dict[str, str]
) -> str:
    """Steps 4-6: the base (stand-in if needed), `invoke build`, `invoke notebook`; return the URL."""
    if base is None:
        from devtools import standin

        with steps.step("4. stand-in base image (debootstrap; reused once built)"):
            try:
                base = standin.build_standin_base()
            except standin.StandinError as error:
                raise Exit(f"demo: {error}", code=1) from error
    with c.cd(str(project)):
        with steps.step(f"5. invoke build (base image {base})"):
            c.run(f"invoke build --variant {variant} --base-image {base}", pty=PTY, env=env)
        with steps.step("6. invoke notebook --detach: the server, the sample data mounted read-only"):
            c.run("invoke notebook --stop", hide=True, warn=True, env=env)  # a demo run before
            result = c.run(f"invoke notebook --detach --base-image {base}", pty=PTY, env=env)
    found = URL.findall(result.stdout)
    if not found:
        raise Exit("demo: `invoke notebook` printed no URL", code=1)
    return found[-1]


ns = Collection(demo, test, lint, bench, screenshot)
