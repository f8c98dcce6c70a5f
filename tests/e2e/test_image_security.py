"""Security of the built image: non-root, no build tooling, and no CA certificate, token or secret in
any layer or history entry the Dockerfile adds on top of the base image."""

from __future__ import annotations

import json
import subprocess
import tarfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from labship.images import HOST_CA_DIR
from tests.e2e.conftest import PLANTED_SECRET, BuiltExperiment

pytestmark = [pytest.mark.docker, pytest.mark.slow]


def ca_needles() -> list[bytes]:
    """A distinctive base64 line from each of the host's extra CA certificates (what a copy contains)."""
    needles = []
    for certificate in sorted(HOST_CA_DIR.glob("*.crt")):
        lines = [line for line in certificate.read_bytes().splitlines() if line and b"-----" not in line]
        needles.append(lines[len(lines) // 2])
    return needles


def own_layer_files(image: str, base: str, saved: Path) -> Iterator[tuple[str, bytes | None]]:
    """(path, content or None) of every entry in the layers of `image` that `base` does not have."""
    subprocess.run(["docker", "save", "--output", str(saved), image], check=True)
    base_layers = json.loads(
        subprocess.run(
            ["docker", "image", "inspect", "--format", "{{json .RootFS.Layers}}", base],
            capture_output=True, text=True, check=True,
        ).stdout
    )  # fmt: skip
    with tarfile.open(saved) as archive:
        manifest = json.load(archive.extractfile("manifest.json"))  # type: ignore[arg-type]
        layer_paths = manifest[0]["Layers"]
        assert len(layer_paths) > len(base_layers)
        for path in layer_paths[len(base_layers) :]:
            with tarfile.open(fileobj=archive.extractfile(path)) as layer:
                for member in layer:
                    small_file = member.isfile() and member.size < 50_000_000
                    content = layer.extractfile(member).read() if small_file else None  # type: ignore[union-attr]
                    yield member.name, content


def test_no_ca_secret_or_build_tool_in_the_final_layers(
    built_experiment: BuiltExperiment, tmp_path: Path
) -> None:
    needles = [*ca_needles(), PLANTED_SECRET.encode()]
    image = built_experiment.tags[0]
    names = []
    for name, content in own_layer_files(image, built_experiment.base_image, tmp_path / "image.tar"):
        names.append(name)
        for needle in needles:
            assert content is None or needle not in content, f"{name} holds a CA certificate or the secret"
    assert names, "no files in the image's own layers?"
    host_ca_names = {certificate.name for certificate in HOST_CA_DIR.glob("*.crt")}
    trust_store = ("etc/ssl/", "usr/local/share/ca-certificates/", "tmp/labship-ca")
    assert not [name for name in names if name.startswith(trust_store) or Path(name).name in host_ca_names]
    assert not [name for name in names if ".labship" in name]
    assert not [name for name in names if name.startswith(("tmp/uv", "tmp/poetry", "opt/venv/bin/uv"))]
    assert not [name for name in names if name.startswith(("notebooks/", "data/")) or "/data/raw/" in name]

    history = subprocess.run(
        ["docker", "history", "--no-trunc", "--format", "{{.CreatedBy}}", image],
        capture_output=True, text=True, check=True,
    ).stdout  # fmt: skip
    for needle in needles:
        assert needle.decode() not in history
    assert "labship-ca" not in history and "BEGIN CERTIFICATE" not in history
    config = json.loads(subprocess.run(["docker", "inspect", image], capture_output=True, check=True).stdout)[
        0
    ]
    environment = " ".join(config["Config"]["Env"] or [])
    assert "labship-ca" not in environment and PLANTED_SECRET not in environment
    assert "JUPYTER_TOKEN" not in environment


def test_runs_as_non_root_without_build_tools(built_experiment: BuiltExperiment) -> None:
    probe = subprocess.run(
        ["docker", "run", "--rm", "--entrypoint", "sh", built_experiment.tags[0], "-c",
         "id -u; command -v uv poetry || true; /opt/venv/bin/python -c 'import ipykernel, pyarrow'"],
        capture_output=True, text=True, check=True, timeout=120,
    )  # fmt: skip
    lines = probe.stdout.split()
    assert lines[0] == "1000"
    assert lines[1:] == [], f"build tools in the final image: {lines[1:]}"
