"""Who you are on a shared remote: secrets from stdin or the environment (never required on the
command line), named AWS profiles and environment credentials replacing each other in the
git-ignored .dvc/config.local, relative directory remotes kept relative in the committed config,
and git URLs stripped of their credentials before they label an image."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from labship import images
from tests.data_servers import VENV_BIN, env, invoke, remote_objects, run, tree_digest

SECRET = "wJalrXUtnFEMI-K7MDENG-stdinSECRETkey0"
KEY_ID = "AKIAIOSFODNN7STDIN01"
S3 = ("--url", "s3://team-bucket/traffic", "--endpoint-url", "http://127.0.0.1:9")


def local_config(repo: Path) -> str:
    file = repo / ".dvc" / "config.local"
    return file.read_text() if file.exists() else ""


def remote_with_stdin(repo: Path, *args: str, stdin: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(VENV_BIN / "invoke"), "data.remote", *args],
        cwd=repo, env=env(), input=stdin, capture_output=True, text=True, timeout=120,
    )  # fmt: skip


def test_secret_comes_from_stdin_or_the_environment_not_the_command_line(experiment: Path) -> None:
    piped = remote_with_stdin(
        experiment, *S3, "--access-key-id", KEY_ID, "--secret-access-key-stdin", stdin=SECRET + "\n"
    )
    assert piped.returncode == 0, piped.stderr
    assert f"secret_access_key = {SECRET}" in local_config(experiment)
    assert (experiment / ".dvc" / "config.local").stat().st_mode & 0o077 == 0
    assert SECRET not in (experiment / ".dvc" / "config").read_text()
    assert SECRET not in piped.stdout + piped.stderr and "warning" not in piped.stderr

    other = SECRET.replace("stdin", "envir")
    from_env = invoke(
        experiment,
        "data.remote",
        *S3,
        "--access-key-id",
        KEY_ID,
        extra_env={"LABSHIP_SECRET_ACCESS_KEY": other},
    )
    assert from_env.returncode == 0, from_env.stderr
    assert f"secret_access_key = {other}" in local_config(experiment) and SECRET not in local_config(
        experiment
    )

    # no secret anywhere (and no terminal to prompt on): refused, saying where a secret may come from
    missing = invoke(experiment, "data.remote", *S3, "--access-key-id", KEY_ID)
    assert missing.returncode == 2
    assert "--secret-access-key-stdin" in missing.stderr and "LABSHIP_SECRET_ACCESS_KEY" in missing.stderr
    empty = remote_with_stdin(
        experiment, *S3, "--access-key-id", KEY_ID, "--secret-access-key-stdin", stdin=""
    )
    assert empty.returncode == 2 and "standard input is empty" in empty.stderr
    assert f"secret_access_key = {other}" in local_config(experiment)  # a refused call changes nothing

    # still accepted on the command line, with a warning that others can read it there
    argv = invoke(experiment, "data.remote", *S3, "--access-key-id", KEY_ID, "--secret-access-key", SECRET)
    assert argv.returncode == 0 and "visible to other users" in argv.stderr and SECRET not in argv.stderr


def test_profile_key_and_environment_credentials_replace_each_other(experiment: Path) -> None:
    keyed = invoke(
        experiment,
        "data.remote",
        *S3,
        "--access-key-id",
        KEY_ID,
        extra_env={"LABSHIP_SECRET_ACCESS_KEY": SECRET},
    )
    assert keyed.returncode == 0, keyed.stderr

    profiled = invoke(experiment, "data.remote", *S3, "--profile", "alice-sso")
    assert profiled.returncode == 0, profiled.stderr
    local = local_config(experiment)
    # DVC prefers a stored key over a profile: the old key must go, or alice would still be the key
    assert "profile = alice-sso" in local and KEY_ID not in local and SECRET not in local
    assert "alice-sso" not in (experiment / ".dvc" / "config").read_text()
    shown = invoke(experiment, "data.remote")
    assert "profile" in shown.stdout and "alice-sso" in shown.stdout and ".dvc/config.local" in shown.stdout

    environment = invoke(experiment, "data.remote", *S3, "--env-credentials")
    assert environment.returncode == 0, environment.stderr
    assert "alice-sso" not in local_config(experiment) and "profile" not in local_config(experiment)
    assert "s3://team-bucket/traffic" in (experiment / ".dvc" / "config").read_text()
    assert run(experiment, "dvc", "remote", "list").returncode == 0  # what is left is valid for DVC

    both = invoke(experiment, "data.remote", *S3, "--profile", "bob", "--env-credentials")
    assert both.returncode == 2 and "choose one of --profile" in both.stderr
    ssh_only = invoke(experiment, "data.remote", "--url", "ssh://me@host/srv/dvc", "--env-credentials")
    assert ssh_only.returncode == 2 and "--env-credentials applies to s3:// remotes only" in ssh_only.stderr


def test_relative_directory_remote_stays_relative_so_each_clone_uses_its_neighbour(
    experiment: Path, tmp_path: Path
) -> None:
    subdirectory = experiment / "data"
    result = subprocess.run(
        [str(VENV_BIN / "invoke"), "data.remote", "--name", "shared", "--url", "../../shared-dvc"],
        cwd=subdirectory, env=env(), capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    committed = (experiment / ".dvc" / "config").read_text()
    # relative to .dvc/, as DVC stores relative directories: no absolute path of this machine
    assert "url = ../../shared-dvc" in committed and str(tmp_path) not in committed
    assert invoke(experiment, "data.push").returncode == 0
    assert remote_objects(tmp_path / "shared-dvc")

    run(experiment, "git", "add", "-A")
    run(experiment, "git", "commit", "-q", "-m", "shared remote")
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    (elsewhere / "shared-dvc").symlink_to(tmp_path / "shared-dvc")  # the team's share, mounted here
    clone = elsewhere / "clone"
    run(tmp_path, "git", "clone", "-q", str(experiment), str(clone))
    pulled = invoke(clone, "data.pull")
    assert pulled.returncode == 0, pulled.stderr
    assert str(elsewhere / "shared-dvc") in pulled.stdout
    assert tree_digest(clone / "data/processed/pems") == tree_digest(experiment / "data/processed/pems")

    dashed = invoke(experiment, "data.remote", "--name", "dashed", "--url", "--help")
    assert dashed.returncode == 0, dashed.stderr  # a directory named --help, never an option of dvc
    assert "url = ../--help" in (experiment / ".dvc" / "config").read_text()


@pytest.mark.parametrize(
    ("origin", "shown"),
    [
        (
            "https://x-access-token:ghp_S3cr3tT0ken@github.com/acme/traffic.git",
            "https://github.com/acme/traffic",
        ),
        # a password containing '@' used to leave its tail (and the host) in the label
        (
            "https://alice:p@ss@w0rd@gitlab.example.org/lab/traffic.git",
            "https://gitlab.example.org/lab/traffic",
        ),
        (
            "https://glpat-T0ken@gitlab.example.org:8443/lab/traffic?private_token=T0ken#x",
            "https://gitlab.example.org:8443/lab/traffic",
        ),
        ("git@github.com:acme/traffic.git", "https://github.com/acme/traffic"),
        ("ssh://git:S3cr3t@github.com:22/acme/traffic.git", "https://github.com/acme/traffic"),
        ("/srv/git/traffic.git", ""),
    ],
)
def test_image_source_label_never_carries_credentials(tmp_path: Path, origin: str, shown: str) -> None:
    run(tmp_path, "git", "init", "-q")
    run(tmp_path, "git", "remote", "add", "origin", origin)
    url = images.git_source_url(tmp_path)
    assert url == shown
    for secret in ("S3cr3t", "T0ken", "p@ss", "w0rd", "alice", "x-access-token"):
        assert secret not in url


def test_remote_from_the_terraform_outputs_of_infra(experiment: Path, tmp_path: Path) -> None:
    # the shape `terraform -chdir=infra output -json` prints for the template's outputs.tf
    outputs = tmp_path / "outputs.json"
    outputs.write_text(
        '{"dvc_remote_url": {"sensitive": false, "type": "string", "value": "s3://lab-dvc-bucket/traffic"},'
        ' "region": {"sensitive": false, "type": "string", "value": "eu-central-1"},'
        ' "writers_group": {"sensitive": false, "type": "string", "value": "lab-dvc-bucket-writers"}}'
    )
    result = invoke(experiment, "data.remote", "--terraform-outputs", str(outputs), "--profile", "me")
    assert result.returncode == 0, result.stderr
    committed = (experiment / ".dvc" / "config").read_text()
    assert "url = s3://lab-dvc-bucket/traffic" in committed and "region = eu-central-1" in committed
    assert "profile = me" in local_config(experiment)

    outputs.write_text('{"region": {"value": "eu-central-1"}}')
    wrong = invoke(experiment, "data.remote", "--terraform-outputs", str(outputs))
    assert wrong.returncode == 2 and "dvc_remote_url" in wrong.stderr and "outputs.json" in wrong.stderr
