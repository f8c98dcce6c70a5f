"""labship.images: tags, labels, build arguments, CA staging, builder choice, errors and the build-log
step counter; one tiny real legacy build for the labels. Real image builds and pushes are in tests/e2e."""

from __future__ import annotations

import dataclasses
import os
import re
import shutil
import subprocess
import uuid
from datetime import UTC, datetime
from pathlib import Path

import pytest
import yaml

from devtools import standin
from labship import images, notebook
from labship.config import ConfigError, load_config
from tests.conftest import import_tiny_image, require

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
    content = images.content_tag(load_config(experiment), models.variant)
    assert re.fullmatch(r"models-c[0-9a-f]{12}", content)
    assert models.tags == (
        "ghcr.io/acme/traffic-exp:models-latest",
        f"ghcr.io/acme/traffic-exp:{content}",
        f"ghcr.io/acme/traffic-exp:models-{head}",
    )
    assert models.labels["org.labship.content"] == content
    assert models.labels["org.labship.content.groups"] == "models,notebook"
    assert models.labels["org.labship.content.lock"].startswith("uv.lock sha256:")
    assert models.labels["org.opencontainers.image.revision"] == head
    assert models.labels["org.opencontainers.image.created"] == "2026-11-25T18:00:00Z"
    assert models.labels["org.labship.groups"] == "notebook,models"
    # the origin URL without the credentials it carried
    assert models.labels["org.opencontainers.image.source"] == "https://github.com/acme/traffic"


def test_dirty_tree_marks_the_commit_tag(experiment: Path) -> None:
    (experiment / "uv.lock").write_text("version = 1\n# edited\n")
    plan = images.plan_builds(load_config(experiment), variant="notebook", base_image="local/base:1")[0]
    head = git(experiment, "rev-parse", "HEAD").strip()
    assert plan.tags[2] == f"ghcr.io/acme/traffic-exp:notebook-{head}-dirty"
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


def test_legacy_build_writes_every_label_exactly_in_one_step(experiment: Path) -> None:
    """The legacy builder makes one step (one container commit) per `--label`; labship gives it one
    LABEL instruction instead, and each label still reads exactly as planned, hostile text included."""
    engine = (
        shutil.which("docker") is not None
        and subprocess.run(["docker", "info"], capture_output=True).returncode == 0
    )
    require(engine, "no Docker engine answers `docker info`")
    suffix = uuid.uuid4().hex[:12]
    base, tag = f"labship-label-base:{suffix}", f"labship-label-test:{suffix}"
    import_tiny_image(base)
    try:
        (experiment / "Dockerfile").write_text("ARG BASE_IMAGE=x\nFROM ${BASE_IMAGE}\nUSER 1000\n")
        config = load_config(experiment)
        (plan,) = images.plan_builds(config, "notebook", base_image=base)
        hostile = 'Bob\'s "lab" $(touch x) ${HOME} `id` {{ 7*7 }} \\ end \\'
        plan = dataclasses.replace(plan, tags=(tag,), labels={**plan.labels, "org.example.note": hostile})
        lines: list[str] = []
        result = images.build_image(config, plan, images.detect_builder("legacy"), log=lines.append)
        labels = images.image_labels(tag)
        assert {key: labels.get(key) for key in plan.labels} == plan.labels
        assert labels["org.example.note"] == hostile
        assert len([line for line in lines if re.search(r"Step \d+/\d+ : LABEL ", line)]) == 1
        assert result.image_id.startswith("sha256:")
    finally:
        subprocess.run(["docker", "rmi", "--force", tag, base], capture_output=True, check=False)


def test_label_with_a_line_break_is_refused_naming_it() -> None:
    with pytest.raises(images.ImageError, match=re.escape("'org.example.note' holds a line break")):
        images.with_labels("FROM x\n", {"org.example.note": "two\nlines"})


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
Step 1/6 : ARG BASE_IMAGE=x
Step 2/6 : FROM local/base:1 AS builder
Step 3/6 : USER 0
 ---> Using cache
Step 4/6 : COPY pyproject.toml uv.lock ./
 ---> Using cache
Step 5/6 : RUN uv sync
 ---> Running in 0f5186ec293d
Step 6/6 : COPY --from=builder /opt/venv /opt/venv
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


# --- content tags -------------------------------------------------------------------------------
ACTION = (
    Path(__file__).resolve().parent.parent
    / "template"
    / "{% if ci_provider == 'github' %}.github{% endif %}"
    / "actions"
    / "docker-publish"
    / "action.yml"
)


def tag_of(root: Path, variant: str = "models", base: str | None = None) -> str:
    config = load_config(root)
    return images.content_tag(config, config.image(variant), base)


def edit(path: Path, old: str, new: str) -> None:
    path.write_text(path.read_text().replace(old, new))


def test_content_tag_changes_with_the_lock_file(experiment: Path) -> None:
    before = tag_of(experiment)
    (experiment / "uv.lock").write_text("version = 1\n[[package]]\nname = 'six'\n")
    assert tag_of(experiment) != before


def test_content_tag_changes_with_the_dockerfile(experiment: Path) -> None:
    before = tag_of(experiment)
    (experiment / "Dockerfile").write_text("ARG BASE_IMAGE=x\nFROM ${BASE_IMAGE}\nUSER 1000\n")
    assert tag_of(experiment) != before


def test_content_tag_changes_with_the_groups_not_their_order(experiment: Path) -> None:
    before = tag_of(experiment)
    pyproject = experiment / "pyproject.toml"
    edit(pyproject, 'groups = ["notebook", "models"]', 'groups = ["models", "notebook"]')
    assert tag_of(experiment) == before
    edit(pyproject, 'groups = ["models", "notebook"]', 'groups = ["models", "notebook", "extra"]')
    assert tag_of(experiment) != before


def test_content_tag_changes_with_the_base_image(experiment: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("LABSHIP_BASE_IMAGE", raising=False)
    before = tag_of(experiment)
    assert tag_of(experiment, base="quay.io/jupyter/minimal-notebook:2025-11-24") == before  # same reference
    assert tag_of(experiment, base="local/base:1") != before
    monkeypatch.setenv("LABSHIP_BASE_IMAGE", "local/base:1")
    assert tag_of(experiment) == tag_of(experiment, base="local/base:1")  # as `invoke build` resolves it


def test_content_tag_changes_with_any_other_build_argument(experiment: Path) -> None:
    config = load_config(experiment)
    variant = config.image("models")
    plain = images.content_tag(config, variant)
    assert images.content_tag(config, variant, build_args={"DEPENDENCY_GROUPS": "x"}) == plain  # covered
    assert images.content_tag(config, variant, build_args={"PYTHON_VERSION": "3.12"}) != plain


def test_content_tag_ignores_code_notebooks_readme_and_line_endings(experiment: Path) -> None:
    before = {variant: tag_of(experiment, variant) for variant in ("notebook", "models")}
    (experiment / "README.md").write_text("# traffic\nnew words\n")
    (experiment / "notebooks").mkdir()
    (experiment / "notebooks" / "traffic.ipynb").write_text("{}")
    (experiment / "src").mkdir()
    (experiment / "src" / "traffic.py").write_text("ANSWER = 42\n")
    edit(experiment / "pyproject.toml", 'version = "0.1.0"', 'version = "0.2.0"')
    for name in ("Dockerfile", "uv.lock"):  # a Windows checkout with core.autocrlf
        (experiment / name).write_bytes((experiment / name).read_bytes().replace(b"\n", b"\r\n"))
    assert {variant: tag_of(experiment, variant) for variant in ("notebook", "models")} == before
    assert before["notebook"].startswith("notebook-c") and before["notebook"] != before["models"]


def run_ci_recipe(root: Path, variant: str, groups: str, base: str) -> dict[str, str]:
    """The docker-publish action's `content` step, run by bash as GitHub runs it."""
    step = next(
        step for step in yaml.safe_load(ACTION.read_text())["runs"]["steps"] if step.get("id") == "content"
    )
    output = root / "github-output"
    output.write_text("")
    env = {
        **os.environ,
        "GITHUB_OUTPUT": str(output),
        "CONTENT_VARIANT": variant,
        "CONTENT_GROUPS": groups,
        "CONTENT_BASE": base,
    }
    subprocess.run(["bash", "-e", "-c", step["run"]], cwd=root, env=env, check=True)
    return dict(line.split("=", 1) for line in output.read_text().splitlines())


@pytest.mark.parametrize(
    ("manager", "base"),
    [("uv", "local/base:1"), ("uv", ""), ("poetry", "quay.io/jupyter/minimal-notebook:x")],
)
def test_ci_action_computes_the_same_content_tag(
    experiment: Path, monkeypatch: pytest.MonkeyPatch, manager: str, base: str
) -> None:
    monkeypatch.delenv("LABSHIP_BASE_IMAGE", raising=False)
    pyproject = experiment / "pyproject.toml"
    edit(pyproject, 'base-image = "quay.io/jupyter/minimal-notebook:2025-11-24"\n', "")
    if manager == "poetry":
        edit(pyproject, 'package-manager = "uv"', 'package-manager = "poetry"')
        (experiment / "poetry.lock").write_text("# poetry\n[[package]]\nname = 'six'\n")
    (experiment / "Dockerfile").write_bytes(b"ARG BASE_IMAGE=quay.io/x:1\r\nFROM ${BASE_IMAGE}\r\n")
    config = load_config(experiment)
    # images.yml hands the groups over as pyproject lists them (unsorted)
    computed = run_ci_recipe(experiment, "models", "notebook,models", base)
    variant = config.image("models")
    assert computed["tag"] == images.content_tag(config, variant, base)
    inputs = images.content_inputs(config, variant, base)
    assert {key: computed[key] for key in inputs} == inputs
    assert computed["base"] == (base or "quay.io/x:1")


def test_missing_lock_file_names_it_before_any_tag(experiment: Path) -> None:
    (experiment / "uv.lock").unlink()
    with pytest.raises(images.ImageError, match=r"uv\.lock is missing"):
        tag_of(experiment)


class FakeEngine:
    """The engine calls `resolve_image` makes, recorded; `local` and `published` are the tags present."""

    def __init__(self, local: set[str], published: set[str]) -> None:
        self.local, self.published, self.calls = local, published, []

    def install(self, monkeypatch: pytest.MonkeyPatch) -> None:
        monkeypatch.setattr(images, "image_exists", lambda tag: tag in self.local)
        monkeypatch.setattr(images, "pull_image", self.pull)
        monkeypatch.setattr(images, "build_images", self.build)
        monkeypatch.setattr(images, "describe_change", lambda *_a, **_k: "uv.lock changed since X")

    def pull(self, tag: str) -> tuple[bool, str]:
        self.calls.append(("pull", tag))
        if tag in self.published:
            self.local.add(tag)
            return True, ""
        return False, f"registry ghcr.io: it has no {tag} (not published yet)"

    def build(self, config, *, variant, base_image, log):  # type: ignore[no-untyped-def]
        self.calls.append(("build", variant))
        return []


@pytest.mark.parametrize(
    ("local", "published", "force", "action", "calls"),
    [
        ({"content"}, set(), False, "local", []),
        ({"latest"}, {"content"}, False, "pull", ["pull"]),
        ({"latest"}, set(), False, "build", ["pull", "build"]),  # a stale -latest is never run
        ({"content"}, {"content"}, True, "build", ["build"]),
    ],
)
def test_launch_uses_local_else_pulls_else_builds(
    experiment: Path,
    monkeypatch: pytest.MonkeyPatch,
    local: set[str],
    published: set[str],
    force: bool,
    action: str,
    calls: list[str],
) -> None:
    config = load_config(experiment)
    variant = config.image("models")
    names = {"content": images.content_image(config, variant), "latest": images.latest_tag(config, "models")}
    engine = FakeEngine({names[n] for n in local}, {names[n] for n in published})
    engine.install(monkeypatch)
    said: list[str] = []
    chosen_notebook = notebook.Notebook("n", Path("n.ipynb"), "models")
    choice = notebook.resolve_image(config, chosen_notebook, build=force, log=said.append)
    assert (choice.tag, choice.action) == (names["content"], action)
    assert [call[0] for call in engine.calls] == calls
    if action == "build":
        assert said[-1].endswith(f": building {names['content']}") and choice.reason in said[-1]
        assert ("--build" if force else "uv.lock changed since X") in choice.reason


def test_pull_from_an_unreachable_registry_says_so() -> None:
    require(
        shutil.which("docker") is not None
        and subprocess.run(["docker", "info"], capture_output=True).returncode == 0,
        "no Docker engine",
    )
    pulled, why_not = images.pull_image(
        "127.0.0.1:9/lab/nothing:notebook-c000000000000"
    )  # port 9: discard, closed
    assert not pulled
    assert why_not.startswith("registry 127.0.0.1:9 could not be reached (") and "refused" in why_not
