"""Benchmark `invoke build` and `invoke notebook`, uv vs Poetry side by side (not a test).

    python benchmarks/bench_images.py [--managers uv,poetry] [--builder buildkit|legacy] [--json FILE]
    python benchmarks/bench_images.py --team [--builder ...]    # pull vs cold build, to ready

For each package manager: scaffold the template, compress the sample data, then measure
1. cold build (--no-cache) time and image size of each variant (notebook, models);
2. rebuild after editing a file in src/ and a notebook (target: nothing rebuilt, under 5 s);
3. rebuild of `models` after adding one dependency to the `models` group and re-locking (only the
   dependency layers should rebuild);
4. `invoke notebook --detach`, from command to ready (target: under 5 s with a built image).
Builds run on the stand-in base image (our machines cannot pull quay.io). Images it makes are removed.

`--team` measures a teammate's first `invoke notebook`, to a ready server, three ways against a
`docker-registry` it starts on 127.0.0.1: after a cold build (`invoke build --no-cache`, then the
launch; publishing with `invoke build --push` is timed apart), pulling the published content-tagged
image into a clone whose store lacks it, and with the image already local.
The base image is local in every case.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import secrets
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from devtools import standin  # noqa: E402
from labship import images  # noqa: E402
from labship.config import load_config  # noqa: E402
from labship.report import format_bytes, format_duration  # noqa: E402
from tests.scaffold import scaffold  # noqa: E402

EXTRA_DEPENDENCY = "tabulate>=0.9"


def timed_build(root: Path, variant: str, base: str, builder: images.DockerBuilder, no_cache: bool = False):
    config = load_config(root)
    plan = images.plan_builds(config, variant, base)[0]
    return images.build_image(config, plan, builder, no_cache=no_cache, log=lambda _line: None)


def lock(root: Path, manager: str) -> None:
    tools = Path(sys.executable).parent  # uv and poetry come with labship's test extra
    command = [str(tools / "uv"), "lock"] if manager == "uv" else [str(tools / "poetry"), "lock"]
    env = {**os.environ, "UV_PYTHON_DOWNLOADS": "never"}
    subprocess.run(command, cwd=root, check=True, capture_output=True, env=env)


def bench_manager(manager: str, base: str, builder: images.DockerBuilder, workdir: Path) -> dict[str, object]:
    root = scaffold(
        workdir / manager,
        {"package_manager": manager, "registry": "", "image_name": f"labship-bench-{manager}"},
    )
    subprocess.run([sys.executable, "-m", "invoke", "compress"], cwd=root, check=True, capture_output=True)
    config = load_config(root)
    images.stage_host_ca(root)
    row: dict[str, object] = {"manager": manager}
    try:
        for variant in config.images:
            result = timed_build(root, variant, base, builder, no_cache=True)
            row[f"cold_{variant}_s"] = result.seconds
            row[f"size_{variant}_bytes"] = result.size_bytes
        package = next((root / "src").iterdir())
        (package / "__init__.py").write_text((package / "__init__.py").read_text() + "\nANSWER = 42\n")
        notebook_file = root / "notebooks" / "traffic.ipynb"
        notebook_file.write_text(
            notebook_file.read_text().replace("Traffic sensors", "Traffic sensors (edited)")
        )
        result = timed_build(root, "notebook", base, builder)
        row["edit_rebuild_s"] = result.seconds
        row["edit_rebuild_cached"] = f"{result.cached_steps}/{result.steps}"

        pyproject = root / "pyproject.toml"
        pyproject.write_text(
            pyproject.read_text().replace("models = [\n", f'models = [\n    "{EXTRA_DEPENDENCY}",\n', 1)
        )
        started = time.monotonic()
        lock(root, manager)
        row["relock_s"] = time.monotonic() - started
        result = timed_build(root, "models", base, builder)
        row["dep_rebuild_s"] = result.seconds
        row["dep_rebuild_cached"] = f"{result.cached_steps}/{result.steps}"

        started = time.monotonic()
        subprocess.run(
            [sys.executable, "-m", "invoke", "notebook", "--detach"],
            cwd=root,
            check=True,
            capture_output=True,
        )
        row["notebook_ready_s"] = time.monotonic() - started
        started = time.monotonic()
        subprocess.run(
            [sys.executable, "-m", "invoke", "notebook", "--stop"], cwd=root, check=True, capture_output=True
        )
        row["notebook_stop_s"] = time.monotonic() - started
    finally:
        subprocess.run(
            [sys.executable, "-m", "invoke", "notebook", "--stop"], cwd=root, capture_output=True, check=False
        )
        tags = subprocess.run(
            ["docker", "images", "--format", "{{.Repository}}:{{.Tag}}", config.image_repository()],
            capture_output=True,
            text=True,
            check=False,
        ).stdout.split()
        if tags:
            subprocess.run(["docker", "rmi", "--force", *tags], capture_output=True, check=False)
    return row


def start_registry(directory: Path) -> tuple[subprocess.Popen, str]:
    """Debian's `docker-registry` on a free 127.0.0.1 port; (process, host:port)."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    config = directory / "registry.yml"
    config.write_text(
        f"version: 0.1\nstorage:\n  filesystem:\n    rootdirectory: {directory / 'data'}\n"
        f"http:\n  addr: 127.0.0.1:{port}\n"
    )
    binary = shutil.which("docker-registry")
    if binary is None:
        raise SystemExit("docker-registry is not installed (apt-get install docker-registry)")
    process = subprocess.Popen(
        [binary, "serve", str(config)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        with socket.socket() as probe:
            if probe.connect_ex(("127.0.0.1", port)) == 0:
                return process, f"127.0.0.1:{port}"
        time.sleep(0.2)
    process.kill()
    raise SystemExit("docker-registry did not start")


def timed_invoke(root: Path, *args: str, env: dict[str, str] | None = None) -> tuple[float, str]:
    started = time.monotonic()
    result = subprocess.run(
        [sys.executable, "-m", "invoke", *args], cwd=root, capture_output=True, text=True,
        env={**os.environ, **(env or {})}, check=False,
    )  # fmt: skip
    if result.returncode != 0:
        raise SystemExit(f"invoke {' '.join(args)} failed:\n{result.stdout}\n{result.stderr}")
    return time.monotonic() - started, result.stdout + result.stderr


def local_tags(repository: str) -> list[str]:
    listed = subprocess.run(
        ["docker", "images", "--format", "{{.Repository}}:{{.Tag}}", repository],
        capture_output=True,
        text=True,
    ).stdout.split()
    return [tag for tag in listed if not tag.endswith(":<none>")]


def bench_team(base: str, builder: images.DockerBuilder, workdir: Path) -> dict[str, float]:
    """Cold build vs pull vs local image, each measured to a ready Jupyter server."""
    process, registry = start_registry(workdir)
    name = f"labship-bench-team-{secrets.token_hex(3)}"
    repository = f"{registry}/bench/{name}"
    root = scaffold(
        workdir / "a", {"package_manager": "uv", "registry": f"{registry}/bench", "image_name": name}
    )
    env = {"LABSHIP_BUILDER": "buildkit" if builder.buildkit else "legacy"}
    row: dict[str, float] = {}
    clone = workdir / "b"
    try:
        subprocess.run(
            [sys.executable, "-m", "invoke", "compress"], cwd=root, check=True, capture_output=True
        )
        pyproject = root / "pyproject.toml"
        pyproject.write_text(
            re.sub(r'(?m)^base-image = ".*"$', f'base-image = "{base}"', pyproject.read_text())
        )
        identity = ["-c", "user.name=bench", "-c", "user.email=bench@example.org"]
        subprocess.run(["git", *identity, "commit", "-qam", "bench base"], cwd=root, check=True)
        build = ("build", "--variant", "notebook")
        row["cold_build_s"], _ = timed_invoke(root, *build, "--no-cache", env=env)
        row["push_s"], _ = timed_invoke(root, *build, "--push", env=env)  # a cached build, then the push
        row["cold_launch_s"], _ = timed_invoke(root, "notebook", "--detach")
        timed_invoke(root, "notebook", "--stop")
        subprocess.run(["git", "clone", "-q", str(root), str(clone)], check=True)
        shutil.copytree(root / "data" / "processed", clone / "data" / "processed", dirs_exist_ok=True)
        subprocess.run(["docker", "rmi", "--force", *local_tags(repository)], capture_output=True, check=True)
        row["pull_launch_s"], output = timed_invoke(clone, "notebook", "--detach")
        if "building" in output:
            raise SystemExit(f"the clone built instead of pulling:\n{output}")
        timed_invoke(clone, "notebook", "--stop")
        row["local_launch_s"], _ = timed_invoke(clone, "notebook", "--detach")
        timed_invoke(clone, "notebook", "--stop")
        cloned = load_config(clone)
        pulled = images.content_image(cloned, cloned.image("notebook"))
        size = subprocess.run(
            ["docker", "image", "inspect", "--format", "{{.Size}}", pulled],
            capture_output=True, text=True, check=False,
        ).stdout.strip()  # fmt: skip
        row["stored_bytes"] = float(
            sum(f.stat().st_size for f in (workdir / "data").rglob("*") if f.is_file())
        )
        row["image_bytes"] = float(size or 0)
    finally:
        for checkout in (root, clone):
            if checkout.exists():
                subprocess.run(
                    [sys.executable, "-m", "invoke", "notebook", "--stop"], cwd=checkout, capture_output=True
                )
        if tags := local_tags(repository):
            subprocess.run(["docker", "rmi", "--force", *tags], capture_output=True, check=False)
        process.terminate()
        process.wait(10)
    return row


def print_team(row: dict[str, float]) -> None:
    cold = row["cold_build_s"] + row["cold_launch_s"]
    lines = [
        ("first launch, to a ready server", "time", "vs cold build"),
        ("cold build (--no-cache) + launch", format_duration(cold), "1.00x"),
        ("  of which the build", format_duration(row["cold_build_s"]), ""),
        ("publishing: invoke build --push (cached)", format_duration(row["push_s"]), ""),
        (
            "pull the published image + launch",
            format_duration(row["pull_launch_s"]),
            f"{row['pull_launch_s'] / cold:.2f}x",
        ),
        (
            "local image + launch",
            format_duration(row["local_launch_s"]),
            f"{row['local_launch_s'] / cold:.2f}x",
        ),
        ("image size (local store)", format_bytes(row["image_bytes"]), ""),
        ("compressed, in the registry", format_bytes(row["stored_bytes"]), ""),
    ]
    widths = [max(len(line[index]) for line in lines) for index in range(3)]
    for line in lines:
        print("  ".join(cell.ljust(width) for cell, width in zip(line, widths, strict=True)))


def print_table(rows: list[dict[str, object]]) -> None:
    def seconds(key: str):
        return lambda row: format_duration(float(row[key]))  # type: ignore[arg-type]

    def size(key: str):
        return lambda row: format_bytes(float(row[key]))  # type: ignore[arg-type]

    measures = [
        ("cold build, notebook", seconds("cold_notebook_s"), "cold_notebook_s"),
        ("cold build, models", seconds("cold_models_s"), "cold_models_s"),
        ("image size, notebook", size("size_notebook_bytes"), "size_notebook_bytes"),
        ("image size, models", size("size_models_bytes"), "size_models_bytes"),
        ("rebuild after src/ + notebook edit", seconds("edit_rebuild_s"), "edit_rebuild_s"),
        ("  cached steps", lambda row: str(row["edit_rebuild_cached"]), None),
        ("re-lock after adding a models dep", seconds("relock_s"), "relock_s"),
        ("rebuild models after the new dep", seconds("dep_rebuild_s"), "dep_rebuild_s"),
        ("  cached steps", lambda row: str(row["dep_rebuild_cached"]), None),
        ("invoke notebook -> ready", seconds("notebook_ready_s"), "notebook_ready_s"),
        ("invoke notebook --stop", seconds("notebook_stop_s"), "notebook_stop_s"),
    ]
    header = ["measure", *[str(row["manager"]) for row in rows]]
    if len(rows) == 2:
        header.append(f"{rows[1]['manager']}/{rows[0]['manager']}")
    lines = [header]
    for label, show, key in measures:
        line = [label, *[show(row) for row in rows]]
        if len(rows) == 2:
            ratio = float(rows[1][key]) / float(rows[0][key]) if key and float(rows[0][key]) else None  # type: ignore[arg-type]
            line.append(f"{ratio:.2f}x" if ratio is not None else "")
        lines.append(line)
    widths = [max(len(line[index]) for line in lines) for index in range(len(header))]
    for line in lines:
        print("  ".join(cell.ljust(width) for cell, width in zip(line, widths, strict=True)))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--managers", default="uv,poetry", help="comma list of package managers")
    parser.add_argument("--builder", choices=images.BUILDERS, help="force a builder (default: detect)")
    parser.add_argument("--json", type=Path, help="also write the numbers as JSON here")
    parser.add_argument("--team", action="store_true", help="only the pull vs cold build comparison")
    args = parser.parse_args()
    os.environ.setdefault("DVC_NO_ANALYTICS", "1")
    base = standin.build_standin_base(log=lambda line: print(line, file=sys.stderr))
    builder = images.detect_builder(args.builder)
    print(
        f"base {base}, {builder.name}, {os.cpu_count()} CPUs, load {os.getloadavg()[0]:.1f}", file=sys.stderr
    )
    if args.team:
        with tempfile.TemporaryDirectory(prefix="labship-bench-team-") as workdir:
            row = bench_team(base, builder, Path(workdir))
        print_team(row)
        if args.json:
            args.json.write_text(json.dumps(row, indent=2) + "\n")
        return 0
    rows = []
    with tempfile.TemporaryDirectory(prefix="labship-bench-") as workdir:
        for manager in args.managers.split(","):
            print(f"benchmarking {manager} ...", file=sys.stderr, flush=True)
            rows.append(bench_manager(manager, base, builder, Path(workdir)))
    print_table(rows)
    if args.json:
        args.json.write_text(json.dumps(rows, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
