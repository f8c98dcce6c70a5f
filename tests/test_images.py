"""labship.images without building: tags, labels, build arguments, CA staging, builder choice, errors,
and the build-log step counter. Real builds and pushes are in tests/e2e."""

from __future__ import annotations

import shutil
import subprocess
from datetime import UTC, datetime
from pathlib import Path

import pytest

from devtools import standin
from labship import images
from labship.config import ConfigError, load_config
from tests.conftest import require

PYPROJECT = """\
[project]
name = "traffic"
version = "0.1.0"

[tool.labship]
registry = "ghcr.io/acme"
image = "traffic-exp"
package-manager = "uv"
base-image = "quay.io/jupyter/minimal-notebook:2025-11-24"

[tool.labship.images.notebook]
groups = ["notebook"]

[tool.labship.images.models]
groups = ["notebook", "models"]
"""


def git(root: Path, *args: str) -> str:
    return subprocess.run(["git", "-C", str(root), *args], capture_output=True, text=True, check=True).stdout


@pytest.fixture
def experiment(tmp_path: Path) -> Path:
    (tmp_path / "pyproject.toml").write_text(PYPROJECT)
    (tmp_path / "Dockerfile").write_text("ARG BASE_IMAGE=x\nFROM ${BASE_IMAGE}\n")
    (tmp_path / "uv.lock").write_text("version = 1\n")
    git(tmp_path, "init", "-q")
    git(tmp_path, "add", ".")
    git(tmp_path, "-c", "user.name=t", "-c", "user.email=t@example.org", "commit", "-qm", "init")
    git(tmp_path, "remote", "add", "origin", "https://user:secret-token@github.com/acme/traffic.git")
    return tmp_path


def test_plan_has_ci_build_args_tags_and_labels(experiment: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("LABSHIP_BASE_IMAGE", raising=False)
    head = git(experiment, "rev-parse", "HEAD").strip()
    now = datetime(2026, 11, 25, 18, 0, 0, tzinfo=UTC)
    plans = images.plan_builds(load_config(experiment), now=now)
    assert [plan.variant.name for plan in plans] == ["notebook", "models"]
    models = plans[1]
    assert models.build_args == {
        "DEPENDENCY_GROUPS": "notebook,models",
        "BASE_IMAGE": "quay.io/jupyter/minimal-notebook:2025-11-24",
    }
    assert models.tags == (
        "ghcr.io/acme/traffic-exp:models-latest",
        f"ghcr.io/acme/traffic-exp:models-{head}",
    )
    assert models.labels["org.opencontainers.image.revision"] == head
    assert models.labels["org.opencontainers.image.created"] == "2026-11-25T18:00:00Z"
    assert models.labels["org.labship.groups"] == "notebook,models"
    # the origin URL without the credentials it carried
    assert models.labels["org.opencontainers.image.source"] == "https://github.com/acme/traffic"


def test_dirty_tree_marks_the_commit_tag(experiment: Path) -> None:
    (experiment / "uv.lock").write_text("version = 1\n# edited\n")
    plan = images.plan_builds(load_config(experiment), variant="notebook", base_image="local/base:1")[0]
    head = git(experiment, "rev-parse", "HEAD").strip()
    assert plan.tags[1] == f"ghcr.io/acme/traffic-exp:notebook-{head}-dirty"
    assert plan.labels["org.opencontainers.image.revision"] == f"{head}-dirty"
    assert plan.build_args["BASE_IMAGE"] == "local/base:1"


def test_unknown_variant_names_the_declared_ones(experiment: Path) -> None:
    with pytest.raises(ConfigError, match=r"images\.gpu\]; declared: models, notebook"):
        images.plan_builds(load_config(experiment), variant="gpu")


def test_missing_lock_file_says_how_to_make_it(experiment: Path) -> None:
    (experiment / "uv.lock").unlink()
    with pytest.raises(images.ImageError, match=r"uv\.lock is missing.*run `uv lock`"):
        images.check_build_inputs(load_config(experiment))


def test_push_without_registry_names_the_key(experiment: Path) -> None:
    pyproject = experiment / "pyproject.toml"
    pyproject.write_text(pyproject.read_text().replace('registry = "ghcr.io/acme"\n', ""))
    with pytest.raises(ConfigError, match=r"pyproject\.toml: \[tool\.labship\] registry"):
        images.build_images(load_config(experiment), push=True)


def test_host_ca_is_mirrored_into_the_git_ignored_state_dir(experiment: Path, tmp_path_factory) -> None:
    host = tmp_path_factory.mktemp("host-ca")
    (host / "proxy.crt").write_text("-----BEGIN CERTIFICATE-----\nAAA\n-----END CERTIFICATE-----\n")
    (host / "old.crt").write_text("old")
    images.stage_host_ca(experiment, host)
    (host / "old.crt").unlink()
    staged = images.stage_host_ca(experiment, host)
    assert [path.name for path in staged] == ["proxy.crt"]
    assert git(experiment, "status", "--porcelain", "--untracked-files=all") == ""  # .labship ignores itself


def test_legacy_builder_can_be_forced(monkeypatch: pytest.MonkeyPatch) -> None:
    require(shutil.which("docker") is not None, "no docker client installed")
    monkeypatch.setenv("LABSHIP_BUILDER", "legacy")
    builder = images.detect_builder()
    assert not builder.buildkit and builder.env()["DOCKER_BUILDKIT"] == "0"
    monkeypatch.setenv("LABSHIP_BUILDER", "fast")
    with pytest.raises(images.ImageError, match="buildkit, legacy"):
        images.detect_builder()


BUILDKIT_LOG = """\
#4 [builder 1/7] FROM docker.io/local/base:1
#5 [builder 2/7] WORKDIR /home/jovyan/project
#5 CACHED
#7 [builder 3/7] COPY pyproject.toml .labship/ca/*.crt /tmp/labship-ca/
#7 CACHED
#8 [builder 4/7] RUN pip install uv
#8 DONE 6.6s
#1 [internal] load build definition from Dockerfile
"""

LEGACY_LOG = """\
Step 1/5 : ARG BASE_IMAGE=x
Step 2/5 : FROM local/base:1 AS builder
Step 3/5 : COPY pyproject.toml uv.lock ./
 ---> Using cache
Step 4/5 : RUN uv sync
 ---> Running in 0f5186ec293d
Step 5/5 : COPY --from=builder /opt/venv /opt/venv
"""


@pytest.mark.parametrize(
    ("buildkit", "log", "steps", "cached"), [(True, BUILDKIT_LOG, 3, 2), (False, LEGACY_LOG, 3, 1)]
)
def test_step_counter_reads_both_log_formats(buildkit: bool, log: str, steps: int, cached: int) -> None:
    counter = images.StepCounter(buildkit=buildkit)
    for line in log.splitlines():
        counter.feed(line)
    assert (counter.steps, counter.cached) == (steps, cached)


def test_summary_lists_image_size_time_and_cache() -> None:
    result = images.BuildResult(
        "notebook", ("r/i:notebook-latest", "r/i:notebook-abc"), "sha256:1", 721_000_000, 95.0, 9, 2
    )
    summary = images.format_summary([result])
    assert "r/i:notebook-latest" in summary and "721 MB" in summary and "2/9" in summary
    assert "r/i:notebook-abc" in summary


def test_unreachable_engine_says_what_to_do(monkeypatch: pytest.MonkeyPatch) -> None:
    require(shutil.which("docker") is not None, "no docker client installed")
    monkeypatch.setenv("DOCKER_HOST", "unix:///nonexistent/docker.sock")
    with pytest.raises(images.ImageError, match=r"Docker engine does not answer.*start it"):
        images.check_engine()


def test_standin_reads_the_mirror_from_apt_sources(tmp_path: Path) -> None:
    deb822 = tmp_path / "debian.sources"
    deb822.write_text("Types: deb\nURIs: http://mirror.example/debian\nSuites: bookworm\n")
    one_line = tmp_path / "sources.list"
    one_line.write_text("# comment\ndeb [arch=amd64] http://other.example/debian bookworm main\n")
    missing = tmp_path / "absent"
    assert standin.debian_mirror((missing, deb822, one_line)) == "http://mirror.example/debian"
    assert standin.debian_mirror((one_line,)) == "http://other.example/debian"
    assert standin.debian_mirror((missing,)) == standin.FALLBACK_MIRROR


def test_standin_tag_follows_the_recipe_and_the_host_ca(tmp_path: Path) -> None:
    certificate = tmp_path / "proxy.crt"
    certificate.write_text("one")
    first = standin.recipe_digest([certificate])
    assert standin.recipe_digest([certificate]) == first  # stable: the image is reused
    certificate.write_text("two")
    assert standin.recipe_digest([certificate]) != first  # a new proxy CA builds a new base
