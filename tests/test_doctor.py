"""`invoke doctor`: each check fails for a real reason (engine stopped, port taken, remote down,
credentials refused, lock out of date, registry unreachable, no git identity), and a ready machine
exits 0. Everything runs against real parts on 127.0.0.1: the machine's Docker engine, a moto S3
server, a listening socket, the real `uv`."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from labship import doctor
from labship.config import load_config
from labship.errors import EXIT_CONFIG, EXIT_CREDENTIALS, EXIT_UNREACHABLE
from tests.conftest import import_tiny_image, require
from tests.data_servers import EMPTY_AWS_FILE, free_port, invoke, moto_with_lab_user, run


def docker_answers() -> bool:
    return shutil.which("docker") is not None and (
        subprocess.run(["docker", "info"], capture_output=True, check=False).returncode == 0
    )


def rows(output: str) -> dict[str, str]:
    """check name -> status of the doctor's table (first line of each row)."""
    found = {}
    for line in output.split("\n\n")[0].splitlines()[1:]:  # the table ends at the blank line
        name, status = line[: doctor.NAME_WIDTH].strip(), line[doctor.NAME_WIDTH + 1 :].split(" ")[0]
        if name:
            found[name] = status
    return found


def flat(output: str) -> str:
    """The output with the table's wrapping undone (one space between words)."""
    return " ".join(output.replace(" " * (doctor.NAME_WIDTH + doctor.STATUS_WIDTH + 2), " ").split())


def assert_fits_80_columns(output: str) -> None:
    too_wide = [line for line in output.splitlines() if len(line) > 80]
    assert not too_wide, too_wide


@pytest.fixture
def aws_isolated(monkeypatch: pytest.MonkeyPatch) -> None:
    """No AWS files or keys of the person running the tests reach DVC."""
    monkeypatch.setenv("AWS_CONFIG_FILE", str(EMPTY_AWS_FILE))
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(EMPTY_AWS_FILE))
    for name in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", "AWS_PROFILE"):
        monkeypatch.delenv(name, raising=False)


@pytest.fixture(scope="module")
def tiny_image() -> Iterator[str]:
    """A one-file image made with `docker import` (no registry needed), removed afterwards."""
    require(docker_answers(), "no Docker engine answers `docker info`")
    tag = f"labship-doctor-test:{uuid.uuid4().hex[:12]}"
    import_tiny_image(tag)
    yield tag
    subprocess.run(["docker", "rmi", "--force", tag], capture_output=True, check=False)


def set_base_image(experiment: Path, image: str) -> None:
    pyproject = experiment / "pyproject.toml"
    text = pyproject.read_text().replace("[tool.labship]\n", f'[tool.labship]\nbase-image = "{image}"\n', 1)
    pyproject.write_text(text)


# --- the whole preflight, as a user runs it ----------------------------------------------------------
def test_ready_machine_exits_0(experiment: Path, tiny_image: str) -> None:
    require(doctor.compose_version()[0] is not None, "no Compose v2 here (plugin or labship's pinned one)")
    set_base_image(experiment, tiny_image)
    run(experiment, str(Path(doctor.sys.executable).parent / "uv"), "lock")

    result = invoke(experiment, "doctor", "--port", str(free_port()))

    assert result.returncode == 0, result.stdout + result.stderr
    assert result.stdout.splitlines()[-1] == "ready"
    statuses = rows(result.stdout)
    expected = ["docker engine", "compose v2", "image builder", "base image", "free disk", "git identity"]
    expected += ["lock file", "dvc remote", "notebook port"]
    assert list(statuses) == expected
    assert set(statuses.values()) == {"ok"}, result.stdout
    assert "the first push creates it" in flat(result.stdout)  # ../remote does not exist before a push
    assert_fits_80_columns(result.stdout)


@pytest.mark.parametrize("host", ["tcp://127.0.0.1:{port}", "unix://{tmp}/no-such-docker.sock"])
def test_engine_unreachable(experiment: Path, tmp_path: Path, host: str) -> None:
    docker_host = host.format(port=free_port(), tmp=tmp_path)

    result = invoke(experiment, "doctor", extra_env={"DOCKER_HOST": docker_host})

    assert result.returncode == EXIT_UNREACHABLE, result.stdout + result.stderr
    statuses = rows(result.stdout)
    assert statuses["docker engine"] == "FAIL"
    assert statuses["image builder"] == "skip" and statuses["base image"] == "skip"
    assert "Cannot connect to the Docker daemon" in flat(result.stdout)  # the engine's own words
    assert "fix: start the engine" in flat(result.stdout)
    assert result.stdout.splitlines()[-1].startswith("not ready: docker engine")
    assert_fits_80_columns(result.stdout)


def test_outside_an_experiment_checks_the_machine(tmp_path: Path) -> None:
    result = subprocess.run(
        [doctor.sys.executable, "-m", "labship.doctor", "--port", str(free_port())],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        check=False,
    )
    statuses = rows(result.stdout)
    assert statuses["experiment"] == "skip"
    assert "lock file" not in statuses and "dvc remote" not in statuses
    assert "docker engine" in statuses and "notebook port" in statuses


# --- one check at a time, each failing for a real reason -----------------------------------------
def test_port_taken_is_a_warning_and_fails_strict() -> None:
    with socket.socket() as holder:
        holder.bind(("127.0.0.1", 0))
        holder.listen()
        port = holder.getsockname()[1]
        check = doctor.check_port(port)
    assert check.status == doctor.WARN
    assert f"127.0.0.1:{port} is taken" in check.found and "will use another port" in check.found
    assert f"sport = :{port}" in check.fix
    assert doctor.exit_code([check]) == 0
    assert doctor.exit_code([check], strict=True) != 0
    assert doctor.check_port(port).status == doctor.OK  # released: free again


def test_missing_local_remote_is_unreachable(experiment: Path, tmp_path: Path) -> None:
    unmounted = tmp_path / "not-mounted" / "share" / "dvc"
    run(
        experiment,
        str(Path(doctor.sys.executable).parent / "dvc"),
        "remote",
        "add",
        "-d",
        "-f",
        "nas",
        str(unmounted),
    )

    check = doctor.check_remote(load_config(experiment))

    assert check.status == doctor.FAIL and check.exit_code == EXIT_UNREACHABLE
    assert str(unmounted) in check.found and "mounted" in check.found
    assert f"mkdir -p {unmounted}" in check.fix


def use_remote(experiment: Path, url: str, *, endpoint: str = "", key: str = "", secret: str = "") -> None:
    """Make `url` the default remote by writing DVC's config files as `invoke data.remote` does
    (written directly: three DVC start-ups cost 5-15 s on a busy machine)."""
    committed = (
        f"[core]\n    remote = doctor\n    analytics = false\n['remote \"doctor\"']\n    url = {url}\n"
    )
    if endpoint:
        committed += f"    endpointurl = {endpoint}\n"
    (experiment / ".dvc" / "config").write_text(committed)
    if key:
        local = f"['remote \"doctor\"']\n    access_key_id = {key}\n    secret_access_key = {secret}\n"
        (experiment / ".dvc" / "config.local").write_text(local)


def test_s3_endpoint_down_is_unreachable(experiment: Path, aws_isolated: None) -> None:
    use_remote(
        experiment, "s3://dvc-remote/doctor", endpoint=f"http://127.0.0.1:{free_port()}",
        key="AKIAEXAMPLE", secret="secret-example",
    )  # fmt: skip

    check = doctor.check_remote(load_config(experiment))

    assert check.status == doctor.FAIL and check.exit_code == EXIT_UNREACHABLE, check
    assert "does not answer" in check.found and "server is up" in check.fix
    assert "secret-example" not in check.found + check.fix


def test_wrong_s3_credentials_are_refused_and_right_ones_accepted(
    experiment: Path, aws_isolated: None
) -> None:
    with moto_with_lab_user() as (server, key):
        url = f"s3://{server.bucket}/doctor"
        use_remote(
            experiment,
            url,
            endpoint=server.endpoint,
            key=key["AccessKeyId"],
            secret="not-" + key["SecretAccessKey"],
        )
        refused = doctor.check_remote(load_config(experiment))
        assert refused.status == doctor.FAIL and refused.exit_code == EXIT_CREDENTIALS, refused
        assert "refused the credentials" in refused.found and "--secret-access-key" in refused.fix
        assert key["SecretAccessKey"] not in refused.found + refused.fix

        use_remote(
            experiment, url, endpoint=server.endpoint, key=key["AccessKeyId"], secret=key["SecretAccessKey"]
        )
        accepted = doctor.check_remote(load_config(experiment))
        assert accepted.status == doctor.OK and "credentials accepted" in accepted.found


def test_lock_file_out_of_date_and_missing(experiment: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    config = load_config(experiment)
    missing = doctor.check_lock(config)
    assert missing.status == doctor.FAIL and missing.exit_code == EXIT_CONFIG
    assert "uv.lock is missing" in missing.found and "uv lock" in missing.fix

    run(experiment, str(Path(doctor.sys.executable).parent / "uv"), "lock")
    assert doctor.check_lock(config).status == doctor.OK
    pyproject = experiment / "pyproject.toml"
    pyproject.write_text(
        pyproject.read_text().replace('version = "0.1.0"\n', 'version = "0.1.0"\ndependencies = ["six"]\n', 1)
    )

    stale = doctor.check_lock(config)
    assert stale.status == doctor.FAIL and stale.exit_code == EXIT_CONFIG, stale
    assert "does not match pyproject.toml" in stale.found and "commit uv.lock" in stale.fix

    # a Python uv cannot find (nor download) is named as such, not as a stale lock
    monkeypatch.setenv("UV_PYTHON_DOWNLOADS", "never")
    pyproject.write_text(
        pyproject.read_text().replace(
            'version = "0.1.0"\n', 'version = "0.1.0"\nrequires-python = ">=3.19"\n', 1
        )
    )
    no_python = doctor.check_lock(config)
    assert no_python.status == doctor.FAIL and "needs a Python matching requires-python" in no_python.found
    assert "uv python install" in no_python.fix


def test_base_image_neither_present_nor_pullable(experiment: Path) -> None:
    require(docker_answers(), "no Docker engine answers `docker info`")
    image = f"127.0.0.1:{free_port()}/nobody/base:1"  # a registry that is not running
    set_base_image(experiment, image)

    check = doctor.check_base_image(load_config(experiment))

    assert check.status == doctor.FAIL and check.exit_code == EXIT_UNREACHABLE, check
    assert f"{image} is not present and cannot be pulled" in check.found
    assert "LABSHIP_BASE_IMAGE" in check.fix


def test_git_without_identity(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HOME", str(tmp_path))
    monkeypatch.setenv("GIT_CONFIG_GLOBAL", os.devnull)
    monkeypatch.setenv("GIT_CONFIG_NOSYSTEM", "1")
    for name in ("GIT_AUTHOR_NAME", "GIT_AUTHOR_EMAIL"):
        monkeypatch.delenv(name, raising=False)
    subprocess.run(["git", "init", "-q", str(tmp_path / "repo")], check=True)

    check = doctor.check_git_identity(tmp_path / "repo")

    assert check.status == doctor.FAIL and check.exit_code == EXIT_CONFIG
    assert "no user.name and no user.email" in check.found
    assert "git config --global user.name" in check.fix


def test_table_wraps_long_text_within_80_columns() -> None:
    long = doctor.Check("dvc remote", doctor.FAIL, "x " * 120, "run " * 40)
    table = doctor.format_table([long, doctor.Check("free disk", doctor.OK, "70 GB free")])
    assert_fits_80_columns(table)
    assert rows(table) == {"dvc remote": "FAIL", "free disk": "ok"}
    assert "fix: run run" in table
