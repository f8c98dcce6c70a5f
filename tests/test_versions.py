"""Versions: what the experiment records, what the engine reads, and one test per update migration.

The template writes `format` and `labship-version` into `[tool.labship]`; labship.config reads
formats MIN_FORMAT..FORMAT and otherwise names the file, the key and the command to run; the
migrations of labship.migrate (run by `copier update`) upgrade older experiments.
"""

from __future__ import annotations

import re
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest
import yaml

import labship
from labship import config as config_module
from labship import migrate
from labship.config import FORMAT, ConfigError, load_config
from tests.scaffold import TEMPLATE
from tests.template_history import IDENTITY, git, render_files, require_commits, snapshot

EXPERIMENT = """
[project]
name = "traffic-exp"

[tool.labship]
{format}
[tool.labship.images.notebook]
groups = ["notebook"]

[tool.labship.notebooks.traffic]
path = "notebooks/traffic.ipynb"
"""


def experiment(tmp_path: Path, lines: str) -> Path:
    (tmp_path / "pyproject.toml").write_text(EXPERIMENT.format(format=lines), encoding="utf-8")
    return tmp_path


def test_versions_agree() -> None:
    """copier.yml, the engine, the migrations and the package state the same format and version."""
    questions = yaml.safe_load((TEMPLATE / "copier.yml").read_text(encoding="utf-8"))
    assert questions["labship_format"]["default"] == FORMAT == migrate.FORMAT
    assert questions["labship_format"]["when"] is False and questions["labship_version"]["when"] is False
    project = tomllib.loads((TEMPLATE / "pyproject.toml").read_text(encoding="utf-8"))["project"]
    assert questions["labship_version"]["default"] == labship.__version__ == project["version"]


def test_experiment_without_format_is_format_1(tmp_path: Path) -> None:
    """Experiments made before `format` was recorded load as format 1 (nothing in them broke)."""
    config = load_config(experiment(tmp_path, ""))
    assert config.format == 1 and config.labship_version is None


def test_current_format_loads(tmp_path: Path) -> None:
    config = load_config(experiment(tmp_path, f'format = {FORMAT}\nlabship-version = "0.1.0"\n'))
    assert config.format == FORMAT and config.labship_version == "0.1.0"


def test_newer_experiment_asks_for_a_newer_labship(tmp_path: Path) -> None:
    """An experiment from a newer labship names the file, the key, both versions and the upgrade."""
    root = experiment(tmp_path, f'format = {FORMAT + 1}\nlabship-version = "9.0.0"\n')
    with pytest.raises(ConfigError) as raised:
        load_config(root)
    message = str(raised.value)
    assert str(root.resolve() / "pyproject.toml") in message and "[tool.labship] format" in message
    assert "newer labship 9.0.0" in message and f"labship {labship.__version__}" in message
    assert "uv tool upgrade labship" in message
    assert raised.value.exit_code == 2


def test_older_experiment_asks_for_copier_update(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Once an engine stops reading an old format, the error names `copier update` and where."""
    monkeypatch.setattr(config_module, "MIN_FORMAT", FORMAT)
    root = experiment(tmp_path, 'format = 1\nlabship-version = "0.0.9"\n')
    with pytest.raises(ConfigError) as raised:
        load_config(root)
    message = str(raised.value)
    assert "[tool.labship] format: 1 was written by an older labship 0.0.9 template" in message
    assert f"copier update --trust --defaults` in {root.resolve()}" in message


@pytest.mark.parametrize("value", ['"2"', "0", "true", "2.0"])
def test_bad_format_is_refused(tmp_path: Path, value: str) -> None:
    with pytest.raises(ConfigError, match=r"\[tool.labship\] format: must be a positive integer"):
        load_config(experiment(tmp_path, f"format = {value}\n"))


# ---- migrations: one test each -------------------------------------------------------------------

FORMAT_1_COMMIT = "5dd8243"  # a format-1 template (image variants rendered in answer order)


@pytest.fixture(scope="module")
def template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    require_commits(FORMAT_1_COMMIT)
    return snapshot(tmp_path_factory.mktemp("template") / "labship")


def table_order(text: str) -> list[str]:
    return re.findall(r"^\[tool\.labship\.images\.([a-z0-9_-]+)\]$", text, flags=re.MULTILINE)


def test_format_2_migration_rebases_on_the_sorted_render(template: Path, tmp_path: Path) -> None:
    """Format 1 -> 2 (`before`): the user's files move to the order Copier compares, edits kept."""
    repo = render_files(template, tmp_path / "experiment", FORMAT_1_COMMIT)
    pyproject = repo / "pyproject.toml"
    assert table_order(pyproject.read_text()) == ["notebook", "models"]  # answer order, as made
    pyproject.write_text(pyproject.read_text().replace("uplink-mbps = 24.5", "uplink-mbps = 100.0"))
    git(repo, *IDENTITY, "commit", "--quiet", "--all", "-m", "my uplink")

    changed = migrate.run(repo, "before")

    assert changed == ["README.md", "pyproject.toml"]
    text = pyproject.read_text()
    assert table_order(text) == ["models", "notebook"] and "uplink-mbps = 100.0" in text
    readme = (repo / "README.md").read_text()
    assert readme.index("`models` (notebook, models),") < readme.index("`notebook` (notebook).")
    # staged, because Copier compares the index (`git write-tree`) with the old render
    assert git(repo, "diff", "--cached", "--name-only").split() == ["README.md", "pyproject.toml"]
    assert migrate.run(repo, "after") == []
    assert git(repo, "diff", "--cached", "--name-only") == ""  # unstaged again; the files keep it
    assert table_order(pyproject.read_text()) == ["models", "notebook"]


def test_format_2_migration_leaves_current_experiments_alone(template: Path, tmp_path: Path) -> None:
    """An experiment that already records format 2 is not touched (and nothing is rendered)."""
    repo = render_files(template, tmp_path / "experiment", "HEAD")
    assert f"format = {FORMAT}\n" in (repo / "pyproject.toml").read_text()
    assert migrate.run(repo, "before") == []
    assert git(repo, "status", "--porcelain") == ""


def test_after_stage_names_conflicts(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """The `after` stage lists conflict markers and .rej files with what to do about them."""
    git(tmp_path, "init", "--quiet")
    (tmp_path / "pyproject.toml").write_text("[tool.labship]\n")
    (tmp_path / "README.md").write_text("a\n<<<<<<< before updating\nb\n=======\nc\n>>>>>>> after updating\n")
    (tmp_path / "Dockerfile.rej").write_text("@@ -1 +1 @@\n")
    found = migrate.run(tmp_path, "after")
    assert [entry.split(" ")[0] for entry in found] == ["Dockerfile.rej", "README.md"]
    assert "resolve the conflicts above" in capsys.readouterr().err


def test_migrations_run_by_copier_from_the_template_checkout() -> None:
    """copier.yml runs hooks/migrate.py (which loads this module by path) at both stages."""
    questions = yaml.safe_load((TEMPLATE / "copier.yml").read_text(encoding="utf-8"))
    (entry,) = questions["_migrations"]
    assert "version" not in entry  # no release tags: run on every update, select by `format`
    assert entry["command"][1] == "{{ _copier_conf.src_path }}/hooks/migrate.py"
    result = subprocess.run(
        [sys.executable, str(TEMPLATE / "hooks/migrate.py"), "--help"],
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0 and "--stage" in result.stdout


def test_invoke_in_a_newer_experiment_says_so(tmp_path: Path) -> None:
    """`invoke compress` in an experiment from a newer labship exits 2 naming the upgrade."""
    root = experiment(tmp_path, f'format = {FORMAT + 1}\nlabship-version = "9.0.0"\n')
    (root / "tasks.py").write_text((TEMPLATE / "template/tasks.py").read_text(encoding="utf-8"))
    invoke = Path(sys.executable).parent / "invoke"
    result = subprocess.run([str(invoke), "compress"], cwd=root, capture_output=True, text=True, check=False)
    assert result.returncode == 2, result.stdout + result.stderr
    assert "newer labship 9.0.0" in result.stderr and "uv tool upgrade labship" in result.stderr
