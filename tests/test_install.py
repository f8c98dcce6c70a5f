"""The README's install path, as a new user follows it: build the wheel, install it as a uv tool
into a fresh tool directory (nothing of this checkout's venv on PATH), scaffold with the tool's own
`copier copy --trust`, then `invoke --list` and `invoke compress` in the new experiment.

Also the lock step of the scaffold: a Python the lock tool cannot get stops the copy with a clear
message instead of committing a repository without a lock file.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from copier.errors import TaskError

from tests.scaffold import TEMPLATE, TEST_PYTHON, scaffold

VENV_BIN = Path(sys.executable).parent


def clean_env(tmp_path: Path, bin_dir: Path) -> dict[str, str]:
    """A user's shell: the tool bin directory and the system PATH, no venv, private uv tool dirs."""
    system_path = [p for p in os.environ.get("PATH", "").split(os.pathsep) if Path(p) != VENV_BIN]
    env = {k: v for k, v in os.environ.items() if k not in ("VIRTUAL_ENV", "PYTHONPATH")}
    return {
        **env,
        "PATH": os.pathsep.join([str(bin_dir), *system_path]),
        "UV_TOOL_DIR": str(tmp_path / "tools"),
        "UV_TOOL_BIN_DIR": str(bin_dir),
        "UV_PYTHON_DOWNLOADS": "never",
        "DVC_NO_ANALYTICS": "1",
        "GIT_AUTHOR_NAME": "t",
        "GIT_AUTHOR_EMAIL": "t@example.org",
        "GIT_COMMITTER_NAME": "t",
        "GIT_COMMITTER_EMAIL": "t@example.org",
    }


def sh(command: list[str], cwd: Path, env: dict[str, str], timeout: float = 600) -> str:
    result = subprocess.run(command, cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout)
    assert result.returncode == 0, f"{command} exited {result.returncode}:\n{result.stdout}\n{result.stderr}"
    return result.stdout + result.stderr


@pytest.mark.slow
def test_wheel_installed_as_uv_tool_scaffolds_and_compresses(tmp_path: Path) -> None:
    bin_dir = tmp_path / "bin"
    env = clean_env(tmp_path, bin_dir)
    uv = str(VENV_BIN / "uv")
    sh([uv, "build", "--wheel", "--out-dir", str(tmp_path / "dist"), str(TEMPLATE)], tmp_path, env)
    (wheel,) = (tmp_path / "dist").glob("labship-*.whl")

    # the README's command, with the wheel in place of the checkout / git URL
    sh(
        [
            uv,
            "tool",
            "install",
            "--python",
            sys.executable,
            "--with-executables-from",
            "invoke,dvc,copier",
            str(wheel),
        ],
        tmp_path,
        env,
    )
    for program in ("labship", "invoke", "dvc", "copier"):
        assert (bin_dir / program).is_file(), f"the tool install put no {program} on PATH"
    assert sh([str(bin_dir / "labship"), "version"], tmp_path, env).strip() == wheel.name.split("-")[1]

    # --vcs-ref HEAD: this checkout's working tree (a user gets the newest release tag)
    sh(
        [str(bin_dir / "copier"), "copy", "--trust", "--defaults", "--vcs-ref", "HEAD",
         "--data", f"python_version={TEST_PYTHON}", str(TEMPLATE), str(tmp_path / "exp")],
        tmp_path,
        env,
    )  # fmt: skip
    experiment = tmp_path / "exp"
    assert (experiment / "uv.lock").is_file()
    readme = (experiment / "README.md").read_text()
    assert f"uv tool install --with-executables-from invoke,dvc,copier {TEMPLATE}" in readme

    listing = sh([str(bin_dir / "invoke"), "--list"], experiment, env)
    for name in ("compress", "build", "notebook", "doctor", "data.push", "data.pull"):
        assert name in listing
    report = sh([str(bin_dir / "invoke"), "compress"], experiment, env)
    assert "pems" in report
    assert list((experiment / "data" / "processed" / "pems").rglob("*.parquet"))
    committed = subprocess.run(
        ["git", "ls-files", "uv.lock"], cwd=experiment, capture_output=True, text=True, check=True
    )
    assert committed.stdout.strip() == "uv.lock"


# Poetry's "unable to find a compatible version" takes the same path; its run costs ~100 s (it
# probes every interpreter on PATH), so only uv is run here.
@pytest.mark.parametrize("manager", ["uv"])
def test_scaffold_stops_when_the_lock_tool_has_no_python(
    tmp_path: Path, capfd: pytest.CaptureFixture[str], manager: str
) -> None:
    # no Python 3.19 on any machine of ours, and the scaffold sets UV_PYTHON_DOWNLOADS=never
    destination = tmp_path / "exp"
    with pytest.raises(TaskError):
        scaffold(destination, {"python_version": "3.19", "sample_data": False, "package_manager": manager})
    err = " ".join(capfd.readouterr().err.split())
    assert f"`{manager} lock` needs a Python >=3.19 (requires-python) and none is available here" in err
    assert f"{manager} python install 3.19" in err and "--data python_version=X.Y" in err
    # never a commit without a lock file: Copier removes the unfinished repository
    assert not (destination / ".git").exists()
