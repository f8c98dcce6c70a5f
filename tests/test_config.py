"""[tool.labship] parsing: good settings load, bad ones name the file and key."""

from __future__ import annotations

from pathlib import Path

import pytest

from labship.config import ConfigError, find_root, load_config

GOOD = """
[project]
name = "traffic-exp"

[tool.labship]
uplink-mbps = 10
registry = "ghcr.io/acme"
default-notebook = "traffic"

[tool.labship.datasets.pems]
source = "data/raw/pems"
target = "data/processed/pems"
columns = ["Timestamp", "Station"]
types = { Station = "int32" }

[tool.labship.images.notebook]
groups = ["notebook"]

[tool.labship.images.models]
groups = ["notebook", "models"]

[tool.labship.notebooks.traffic]
path = "notebooks/traffic.ipynb"
image = "models"
data = ["data/processed/pems"]
"""


def write(tmp_path: Path, text: str) -> Path:
    (tmp_path / "pyproject.toml").write_text(text, encoding="utf-8")
    return tmp_path


def test_good_config_loads_from_a_subdirectory(tmp_path: Path) -> None:
    write(tmp_path, GOOD)
    (tmp_path / "notebooks").mkdir()
    config = load_config(tmp_path / "notebooks")
    assert config.root == tmp_path.resolve()
    assert config.uplink_mbps == 10.0
    assert config.image_repository() == "ghcr.io/acme/traffic-exp"
    pems = config.dataset("pems")
    assert pems.source == tmp_path.resolve() / "data/raw/pems"
    assert pems.columns == ("Timestamp", "Station") and pems.codec == "zstd"
    assert config.image("models").groups_arg == "notebook,models"
    assert config.notebook().image == "models"
    assert config.notebook().data == (Path("data/processed/pems"),)


@pytest.mark.parametrize(
    ("replace", "by", "expected"),
    [
        ("uplink-mbps = 10", "uplink-mbps = -1", "[tool.labship] uplink-mbps: must be a positive"),
        ("uplink-mbps = 10", "uplink-mbps = nan", "[tool.labship] uplink-mbps: must be a finite number"),
        (
            "[tool.labship.datasets.pems]",
            '[tool.labship.datasets."pems\\n"]',
            "the name 'pems\\n' must be lower-case",
        ),
        (
            'columns = ["Timestamp", "Station"]',
            'columns = "Station"',
            "datasets.pems] columns: must be a list",
        ),
        ('source = "data/raw/pems"\n', "", "datasets.pems] source: is required"),
        (
            'image = "models"',
            'image = "gpu"',
            "notebooks.traffic] image: names no image variant; declared: notebook, models",
        ),
        ('groups = ["notebook"]', "groups = []", "images.notebook] groups: list the dependency groups"),
        ('default-notebook = "traffic"', 'default-notebook = "other"', "default-notebook: names no notebook"),
        (
            "[tool.labship.images.models]",
            "[tool.labship.images.Models]",
            "the name 'Models' must be lower-case",
        ),
        (
            'types = { Station = "int32" }',
            'types = { Station = "int32" }\ndrop = ["x"]',
            "set either `columns`",
        ),
        (
            'types = { Station = "int32" }',
            'types = { Station = "int32" }\npack-mb = "big"',
            "datasets.pems] pack-mb: must be 0 (one Parquet file per CSV) or a size in MB",
        ),
    ],
)
def test_bad_settings_name_the_file_and_key(tmp_path: Path, replace: str, by: str, expected: str) -> None:
    assert replace in GOOD
    write(tmp_path, GOOD.replace(replace, by))
    with pytest.raises(ConfigError) as caught:
        load_config(tmp_path)
    message = str(caught.value)
    assert str(tmp_path / "pyproject.toml") in message
    assert expected in message


def test_unknown_names_list_what_is_declared(tmp_path: Path) -> None:
    config = load_config(write(tmp_path, GOOD))
    with pytest.raises(ConfigError, match=r"no \[tool.labship.datasets.climate\]; declared: pems"):
        config.dataset("climate")


def test_outside_an_experiment_says_how_to_make_one(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="copier copy --trust"):
        find_root(tmp_path)


def test_invalid_toml_is_reported_with_the_file(tmp_path: Path) -> None:
    write(tmp_path, "[tool.labship]\nuplink-mbps = = 3\n")
    with pytest.raises(ConfigError, match="not valid TOML"):
        load_config(tmp_path)
