"""Hardening (issue 8): hostile or careless answers, destinations, environments and notebook settings.

Each test is the regression test of one finding of the security review: it fails on the commit
before the fix (1b0a140). Renders go through copier's Python API without the post-copy tasks
(no lock, no network) unless the hook itself is under test; the hook is then run as Copier runs it,
with the argv of `_tasks` in copier.yml rendered from the same answers.
"""

from __future__ import annotations

import dataclasses
import fcntl
import json
import os
import re
import subprocess
import sys
import tomllib
import warnings
from pathlib import Path
from typing import Any

import copier
import jinja2
import pytest
import yaml
from copier.errors import DirtyLocalWarning
from markdown_it import MarkdownIt

from labship import notebook
from labship.config import LabshipConfig, load_config
from labship.errors import EXIT_CONFIG
from tests.conftest import require
from tests.scaffold import TEMPLATE, TEST_PYTHON

HOSTILE_NAME = 'Bob\'s "traffic" $(touch {marker}) `touch {marker}` {{{{ 7*7 }}}} 🚀 \\'


def render(dest: Path, answers: dict[str, Any]) -> Path:
    """Render the template into `dest` with `answers` over the defaults; no tasks (no hook)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DirtyLocalWarning)
        copier.run_copy(
            str(TEMPLATE),
            dest,
            data={"python_version": TEST_PYTHON, **answers},
            defaults=True,
            unsafe=True,
            skip_tasks=True,
            vcs_ref="HEAD",
            quiet=True,
        )
    return dest


def refusal(tmp_path: Path, answers: dict[str, Any]) -> str | None:
    """Copier's message when it refuses `answers`, or None when it renders them."""
    dest = tmp_path / "refused"
    try:
        render(dest, answers)
    except ValueError as error:
        assert not dest.exists() or not any(dest.iterdir()), "a refused copy left files behind"
        return str(error)
    return None


def assert_refused(tmp_path: Path, question: str, value: Any, *words: str, **other: Any) -> str:
    message = refusal(tmp_path, {question: value, **other})
    assert message is not None, f"{question}={value!r} was accepted"
    assert f"question '{question}'" in message, message
    for word in words:
        assert word in message, message
    return message


# --- answers: anchors, control characters, passwords, leading dashes -------------------------------

TRAILING_NEWLINE = [
    ("project_slug", "traffic\n"),
    ("package_name", "traffic\n"),
    ("image_name", "traffic\n"),
    ("registry", "ghcr.io/acme\n"),
    ("base_image", "quay.io/jupyter/minimal-notebook:2025-12-31\n"),
    ("python_version", "3.13\n"),
    ("author_email", "jane@example.org\n"),
    ("image_variants", {"notebook\n": "notebook"}),
    ("image_variants", {"notebook": "notebook,models\n"}),
]


@pytest.mark.parametrize(("question", "value"), TRAILING_NEWLINE, ids=[q for q, _ in TRAILING_NEWLINE])
def test_validators_anchor_at_the_very_end(question: str, value: Any, tmp_path: Path) -> None:
    """`$` matched before a trailing newline: "traffic\\n" passed and broke pyproject.toml."""
    assert_refused(tmp_path, question, value)


CONTROL = [
    ("project_name", "Traffic\nRUN touch /tmp/x"),
    ("project_name", "Traffic\x1b[31m"),
    ("description", "line one\nline two"),
    ("author_name", "Jane\tDoe"),
    ("dvc_remote_url", "../storage\n"),
]


@pytest.mark.parametrize(("question", "value"), CONTROL, ids=[f"{q}-{i}" for i, (q, _) in enumerate(CONTROL)])
def test_control_characters_are_refused(question: str, value: str, tmp_path: Path) -> None:
    """A newline in a free-text answer added lines to the Dockerfile, compose.yaml and pyproject."""
    assert_refused(tmp_path, question, value, "control character")


def test_password_in_remote_url_is_refused(tmp_path: Path) -> None:
    """`ssh://alice:secret@host/...` was committed in .dvc/config, the answers file and the README."""
    for url in ("ssh://alice:secret@host/srv/dvc", "s3://KEY:SECRET@lab-bucket/data"):
        message = assert_refused(tmp_path, "dvc_remote_url", url, "password", "invoke data.remote")
        assert "secret" not in message.lower().replace("secret_", ""), "the refusal echoes the password"
    assert refusal(tmp_path, {"dvc_remote_url": "ssh://alice@host:2222/srv/dvc"}) is None  # a user alone


def test_password_in_s3_endpoint_is_refused(tmp_path: Path) -> None:
    for endpoint in ("https://KEY:SECRET@minio.example.org:9000", "http://KEY@127.0.0.1:9000"):
        assert_refused(
            tmp_path,
            "dvc_s3_endpoint",
            endpoint,
            "credentials",
            "invoke data.remote",
            dvc_remote_url="s3://lab-bucket/data",
        )


LEADING_DASH = [
    ("dvc_remote_url", "--help"),
    ("dvc_remote_url", "-storage"),
    ("dvc_remote_url", "ssh://-oProxyCommand=touch@host/srv/dvc"),
    ("registry", "-ghcr.io/acme"),
    ("base_image", "-quay.io/jupyter/minimal-notebook:2025-12-31"),
]


@pytest.mark.parametrize(("question", "value"), LEADING_DASH, ids=[v for _, v in LEADING_DASH])
def test_leading_dash_is_refused(question: str, value: str, tmp_path: Path) -> None:
    """`--help` as remote reached `dvc remote add` as an option: the copy said OK, no remote was set."""
    assert_refused(tmp_path, question, value)


def test_uplink_must_be_a_finite_positive_number(tmp_path: Path) -> None:
    """nan passed `<= 0` and TOML accepts `nan`: every transfer estimate became nan."""
    for value in ("nan", "inf"):
        assert_refused(tmp_path, "uplink_mbps", value, "positive number")


# --- project_name and other free text: escaped where they land --------------------------------------


def test_hostile_project_name_is_text_everywhere(tmp_path: Path) -> None:
    """Quotes, $(...), backticks, braces and a trailing backslash stay text in every generated file."""
    marker = tmp_path / "pwned"
    name = HOSTILE_NAME.format(marker=marker)
    repo = render(tmp_path / "exp", {"project_name": name, "project_slug": "traffic", "description": name})

    document = tomllib.loads((repo / "pyproject.toml").read_text())
    assert document["project"]["description"] == name

    # the kernel's display name is one shell word: the shell prints it, and runs nothing
    dockerfile = (repo / "Dockerfile").read_text()
    word = re.search(r"--display-name (.*) \\\n", dockerfile)
    assert word, "no --display-name line"
    printed = subprocess.run(
        ["sh", "-c", f"printf %s {word[1]}"], capture_output=True, text=True, check=True
    ).stdout
    assert printed == f"Python ({name})"
    assert name not in dockerfile.replace(word[1], "")  # nowhere else, not even in a comment

    package = repo / "src/traffic"
    imported = subprocess.run(
        [sys.executable, "-c", "import traffic; print(traffic.__doc__.splitlines()[0])"],
        cwd=package.parent,
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    assert imported == f"{name}: the experiment's reusable code, imported by the notebooks.\n"

    readme = MarkdownIt("commonmark").parse((repo / "README.md").read_text())
    heading = next(token for token in readme if token.type == "inline")
    assert heading.content and heading.children is not None
    assert "".join(child.content for child in heading.children) == name
    assert [token.type for token in readme[:3]] == ["heading_open", "inline", "heading_close"]
    assert not marker.exists()


def test_astral_characters_keep_pyproject_valid(tmp_path: Path) -> None:
    """`tojson` wrote 🚀 as the surrogate pair \\ud83d\\ude80, which TOML refuses: pyproject broke."""
    repo = render(tmp_path / "exp", {"description": "Speeds 🚀 on 𝄞 I-80", "author_name": "Zoë 🙂"})
    document = tomllib.loads((repo / "pyproject.toml").read_text())
    assert document["project"]["description"] == "Speeds 🚀 on 𝄞 I-80"
    assert document["project"]["authors"] == [{"name": "Zoë 🙂", "email": "lab.member@example.com"}]


def test_project_name_rule_is_written_in_copier_yml() -> None:
    questions = yaml.safe_load((TEMPLATE / "copier.yml").read_text())
    help_text = questions["project_name"]["help"]
    assert "free text" in help_text and "escapes" in help_text and "control characters" in help_text


# --- the post-copy hook -------------------------------------------------------------------------------


def hook_argv(repo: Path) -> list[str]:
    """The hook's command as Copier runs it: `_tasks` of copier.yml rendered with the repo's answers."""
    settings = yaml.safe_load((TEMPLATE / "copier.yml").read_text())
    answers = yaml.safe_load((repo / ".copier-answers.yml").read_text())
    context = {
        "dvc_s3_endpoint": "",
        **answers,
        "_copier_python": sys.executable,
        "_copier_conf": {"src_path": str(TEMPLATE), "dst_path": str(repo)},
    }
    environment = jinja2.Environment(undefined=jinja2.StrictUndefined)
    return [environment.from_string(part).render(context) for part in settings["_tasks"][0]["command"]]


def run_hook(repo: Path, argv: list[str], home: Path) -> subprocess.CompletedProcess[str]:
    """Run the hook in `repo` on a machine with no git identity (the answers' author is used)."""
    env = {
        **os.environ,
        "HOME": str(home),
        "GIT_CONFIG_GLOBAL": os.devnull,
        "GIT_CONFIG_NOSYSTEM": "1",
        "DVC_NO_ANALYTICS": "1",
    }
    return subprocess.run(argv, cwd=repo, env=env, capture_output=True, text=True, check=False)


def git(repo: Path, *args: str) -> str:
    return subprocess.run(["git", *args], cwd=repo, capture_output=True, text=True, check=True).stdout


def dvc_remote(repo: Path) -> str:
    """The default remote's URL as DVC reads it from the committed .dvc/config (configobj, as DVC)."""
    from configobj import ConfigObj

    config = ConfigObj(str(repo / ".dvc/config"))
    assert config["core"]["remote"] == "storage"
    return str(config['remote "storage"']["url"])


PLANTED = {
    "id_rsa": "-----BEGIN OPENSSH PRIVATE KEY-----\n",
    ".aws/credentials": "[default]\n",
    "notes.txt": "x\n",
}


def files_under(root: Path) -> set[str]:
    return {
        path.relative_to(root).as_posix()
        for path in root.rglob("*")
        if path.is_file() and ".git" not in path.relative_to(root).parts
    }


@pytest.mark.parametrize("kind", ["shell", "options"])
def test_hook_commits_only_its_files_and_takes_answers_as_arguments(kind: str, tmp_path: Path) -> None:
    """Into a destination that already held a private key and AWS credentials: the first commit holds
    the rendered files and the hook's own (DVC files) only, and a warning lists what was left out
    (on main `git add --all` committed both). The remote, author name and e-mail reach git and dvc
    as plain arguments: nothing runs, and `--help` as a directory name becomes the remote (on main
    dvc read it as its option, printed its usage and left no remote)."""
    marker = tmp_path / "pwned"
    if kind == "shell":
        author = f'Bob\'s "q" $(touch {marker}) `touch {marker}`'
        remote = f'../store\'s "q" $(touch {marker}) `touch {marker}` {{{{ 7*7 }}}}'
        email = "bob$HOME`id`{x}@example.org"
    else:
        author, remote, email = "--author {{ 7*7 }}", "--help", "-x@example.org"
    dest = tmp_path / "exp"
    for name, text in PLANTED.items():
        (dest / name).parent.mkdir(parents=True, exist_ok=True)
        (dest / name).write_text(text)
    # the lock step needs the network and is tested by tests/test_template.py: a stand-in skips it
    (dest / "uv.lock").write_text("# stand-in\n")
    answers = {
        "project_name": author,
        "project_slug": "traffic",
        "author_name": author,
        "author_email": email,
    }
    answers |= {"sample_data": False, "dvc_remote_url": remote if kind == "shell" else "../storage"}
    repo = render(dest, answers)
    rendered = files_under(repo) - set(PLANTED) - {"uv.lock"}
    argv = hook_argv(repo)
    if kind == "options":  # refused by copier.yml; the hook must hold on its own too
        argv = [part.replace("--remote-url=../storage", f"--remote-url={remote}") for part in argv]
    result = run_hook(repo, argv, tmp_path)
    assert result.returncode == 0, result.stderr

    committed = set(git(repo, "ls-files").splitlines())
    assert committed == rendered | {".dvc/config", ".dvc/.gitignore"}
    left_out = sorted({*PLANTED, "uv.lock"})
    assert git(repo, "status", "--porcelain", "--untracked-files=all").splitlines() == [
        f"?? {name}" for name in left_out
    ]
    warning = next(line for line in result.stderr.splitlines() if "left out of the first commit" in line)
    assert warning.endswith(": " + ", ".join(left_out)), warning
    assert all((repo / name).read_text() == text for name, text in PLANTED.items())  # untouched

    # DVC stores a relative directory relative to .dvc/: it must be the answer's directory
    assert (repo / ".dvc" / dvc_remote(repo)).resolve() == (repo / remote).resolve()
    assert git(repo, "log", "-1", "--format=%an <%ae>") == f"{author} <{email}>\n"
    assert not marker.exists()


# --- notebook launch ----------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def experiment(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A rendered experiment (no hook) with its notebook's data directory present."""
    repo = render(tmp_path_factory.mktemp("launch") / "exp", {"registry": "ghcr.io/acme"})
    (repo / "data/processed/pems").mkdir(parents=True)
    return repo


def launch_for(config: LabshipConfig, port: int = 18888) -> notebook.Launch:
    project = notebook.compose_project(config, "traffic")
    return notebook.Launch(
        "traffic", project, "ghcr.io/acme/traffic-experiment:notebook-latest", port, "t" * 48
    )


def test_shell_variables_cannot_override_the_launch(
    experiment: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """compose gives the shell precedence over --env-file: `HOST_UID=0 JUPYTER_TOKEN=weak invoke
    notebook` ran the server as root with the weak token. The resolved compose model must hold
    labship's values whatever the caller exported."""
    from labship.compose import ComposeError, compose_argv

    try:
        compose_argv()  # the plugin, a standalone v2, or labship's pinned binary
    except ComposeError as error:
        require(False, f"Compose v2: {error}")
    hostile = {
        "JUPYTER_TOKEN": "weak",
        "HOST_UID": "4242",  # labship runs the server as the host user, whatever the shell says
        "HOST_GID": "4242",
        "JUPYTER_HOST_PORT": "1",
        "LABSHIP_IMAGE": "evil/image:latest",
        "COMPOSE_FILE": os.devnull,
        "COMPOSE_PROJECT_NAME": "hijacked",
    }
    for key, value in hostile.items():
        monkeypatch.setenv(key, value)
    config = load_config(experiment)
    launch = launch_for(config)
    notebook.write_launch_files(config, config.notebook("traffic"), launch)
    model = yaml.safe_load(notebook._compose(config, "traffic", "config"))
    service = model["services"]["jupyter"]
    uid, gid = notebook.container_user()
    assert service["environment"]["JUPYTER_TOKEN"] == launch.token
    assert service["user"] == f"{uid}:{gid}"
    assert [port["published"] for port in service["ports"]] == [str(launch.port)]
    assert service["image"] == launch.image
    assert model["name"] == launch.project


def test_data_paths_must_stay_inside_the_repository(experiment: Path, tmp_path: Path) -> None:
    """`data = ["/root", "../../../etc"]` mounted host directories anywhere (even over /etc)."""
    (tmp_path / "outside").mkdir()
    (experiment / "data/escape").unlink(missing_ok=True)
    (experiment / "data/escape").symlink_to(tmp_path / "outside")
    config = load_config(experiment)
    base = config.notebook("traffic")
    for bad in ("/root", "../../../etc", "data/../..", ".", "data/escape"):
        chosen = dataclasses.replace(base, data=(Path(bad),))
        with pytest.raises(notebook.NotebookError) as raised:
            notebook.write_launch_files(config, chosen, launch_for(config))
        message = str(raised.value)
        assert str(config.pyproject) in message and "[tool.labship.notebooks.traffic] data" in message
        assert repr(bad) in message and raised.value.exit_code == EXIT_CONFIG
    # a roundabout path inside the repository is mounted at its plain place
    chosen = dataclasses.replace(base, data=(Path("data/../data/processed/pems"),))
    assert notebook.data_mounts(config, chosen) == [
        ((experiment / "data/processed/pems").resolve(), "/home/jovyan/project/data/processed/pems")
    ]


def test_second_start_waits_for_the_first(experiment: Path) -> None:
    """Two starts of one notebook raced (same port, same files): the second now waits on the
    notebook's lock file, and says so; past its wait it fails naming the lock."""
    config = load_config(experiment)
    holder = subprocess.Popen(
        [sys.executable, "-c", HOLD_LOCK, str(notebook.lock_file(config, "traffic"))],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert holder.stdout is not None and holder.stdout.readline() == "held\n"
        with (
            pytest.raises(notebook.NotebookError, match=r"being started by another .*notebook-traffic\.lock"),
            notebook.launch_lock(config, "traffic", wait=0.3, log=lambda _line: None),
        ):
            pass
        said: list[str] = []
        with notebook.launch_lock(config, "traffic", wait=30, log=said.append):
            assert holder.poll() is not None  # got the lock only once the first start let go
        assert said and "waiting" in said[0]
    finally:
        holder.kill()
        holder.wait()


HOLD_LOCK = """
import fcntl, os, sys, time
descriptor = os.open(sys.argv[1], os.O_RDWR | os.O_CREAT, 0o600)
fcntl.flock(descriptor, fcntl.LOCK_EX)
print("held", flush=True)
time.sleep(1.5)
"""


def test_start_checks_and_launches_under_the_lock(experiment: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """start_notebook holds the lock from the "already running?" check to `up` and the ready wait, and
    retries on another port when the engine says the port was taken meanwhile."""
    config = load_config(experiment)
    lock = notebook.lock_file(config, "traffic")
    seen: list[tuple[str, bool]] = []
    ports: list[str] = []

    def locked() -> bool:
        descriptor = os.open(lock, os.O_RDWR)
        try:
            fcntl.flock(descriptor, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            return True
        finally:
            os.close(descriptor)
        return False

    def compose(config: LabshipConfig, name: str, *args: str, check: bool = True) -> str:
        seen.append((args[0], locked()))
        if args[0] == "up":
            ports.append(notebook._read_env_file(notebook.env_file(config, name))["JUPYTER_HOST_PORT"])
            if len(ports) == 1:
                message = "Bind for 127.0.0.1:8888 failed: port is already allocated"
                raise notebook.ComposeError(message, stderr=message)
        return ""

    monkeypatch.setattr(notebook, "_compose", compose)
    monkeypatch.setattr(notebook.images, "check_engine", lambda: None)
    monkeypatch.setattr(
        notebook,
        "resolve_image",
        lambda *_args, **_kw: notebook.ImageChoice("exp:notebook-c0", "local", "test"),
    )
    monkeypatch.setattr(notebook, "check_compose_available", lambda: None)
    monkeypatch.setattr(notebook, "ensure_data", lambda *_args: None)
    monkeypatch.setattr(notebook, "wait_until_ready", lambda *_args: seen.append(("ready", locked())) or 0.1)
    launch = notebook.start_notebook(config, "traffic", log=lambda _line: None)
    assert [step for step in seen if step[0] != "ps"] == [("up", True), ("up", True), ("ready", True)]
    assert ("ps", True) in seen  # the "already running?" check
    assert len(set(ports)) == 2 and ports[-1] == str(launch.port)
    assert not locked()


# --- CI workflow --------------------------------------------------------------------------------------

VENV_BIN = Path(sys.executable).parent


@pytest.fixture(scope="module")
def workflow_repo(tmp_path_factory: pytest.TempPathFactory) -> Path:
    repo = render(tmp_path_factory.mktemp("ci") / "exp", {"ci_provider": "github"})
    subprocess.run(["git", "init", "-q", str(repo)], check=True)  # actionlint looks for the repository
    return repo


def run_read_step(repo: Path, tmp_path: Path) -> tuple[subprocess.CompletedProcess[str], str]:
    workflow = yaml.safe_load((repo / ".github/workflows/images.yml").read_text())
    step = next(step for step in workflow["jobs"]["variants"]["steps"] if step.get("id") == "read")
    output = tmp_path / "github_output"
    output.write_text("")
    env = {"GITHUB_OUTPUT": str(output), "REPOSITORY_NAME": "Experiment", "PATH": os.environ["PATH"]}
    result = subprocess.run(
        ["bash", "-e", "-c", step["run"]], cwd=repo, env=env, capture_output=True, text=True, check=False
    )
    return result, output.read_text()


@pytest.mark.parametrize(
    ("key", "value"),
    [
        ("base-image", "quay.io/jupyter/minimal-notebook:1\nregistry-host=evil.example"),
        ("registry", "ghcr.io/acme\nimage=evil.example/x"),
        ("image", "traffic\nbase-image=evil.example/base:1"),
    ],
)
def test_workflow_outputs_are_validated(key: str, value: str, workflow_repo: Path, tmp_path: Path) -> None:
    """A newline in a [tool.labship] value reached $GITHUB_OUTPUT and added outputs (another registry)."""
    repo = tmp_path / "copy"
    subprocess.run(["cp", "-a", str(workflow_repo), str(repo)], check=True)
    pyproject = repo / "pyproject.toml"
    line = f"{key} = {json.dumps(value)}"  # a TOML basic string with \\n
    text = re.sub(rf'^{key} = ".*"$', lambda _match: line, pyproject.read_text(), flags=re.M)
    pyproject.write_text(text)
    assert tomllib.loads(text)["tool"]["labship"][key] == value
    result, outputs = run_read_step(repo, tmp_path)
    assert result.returncode != 0
    assert f"::error file=pyproject.toml::[tool.labship]: {key}" in result.stdout
    assert "evil" not in outputs


def test_pull_requests_reach_no_secret_and_cannot_push(workflow_repo: Path) -> None:
    """Registry secrets were passed to the build job on pull_request events too."""
    workflow = yaml.safe_load((workflow_repo / ".github/workflows/images.yml").read_text())
    text_of = {name: yaml.safe_dump(job) for name, job in workflow["jobs"].items()}
    for name, job in workflow["jobs"].items():
        condition = job.get("if", "")
        runs_on_pull_requests = condition != "github.event_name != 'pull_request'"
        if runs_on_pull_requests:
            assert "secrets." not in text_of[name], f"job {name} runs for pull requests and reads secrets"
            assert job["permissions"] == {"contents": "read"}, (
                f"job {name} runs for pull requests with {job['permissions']}"
            )
        else:
            assert job.get("environment") == "images"
    publish = workflow["jobs"]["publish"]
    assert publish["if"] == "github.event_name != 'pull_request'"
    assert publish["permissions"] == {"contents": "read", "packages": "write"}
    assert workflow["jobs"]["build"]["if"] == "github.event_name == 'pull_request'"  # still checked


def test_zizmor_auditor_is_clean(workflow_repo: Path) -> None:
    """`zizmor --persona=auditor` reported secrets-outside-env twice; now nothing, and every inline
    ignore says why on the same line."""
    result = subprocess.run(
        [VENV_BIN / "zizmor", "--offline", "--no-progress", "--persona=auditor", ".github"],
        cwd=workflow_repo,
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    for path in (workflow_repo / ".github").rglob("*.yml"):
        for line in path.read_text().splitlines():
            if "zizmor: ignore" in line:
                assert line.strip().startswith("- uses: ./") and "self-repository" in line
    actionlint = subprocess.run(
        [VENV_BIN / "actionlint", "-no-color"], cwd=workflow_repo, capture_output=True, text=True, check=False
    )
    assert actionlint.returncode == 0, actionlint.stdout


# --- the hostile-answers matrix -------------------------------------------------------------------------

QUESTIONS = [key for key in yaml.safe_load((TEMPLATE / "copier.yml").read_text()) if not key.startswith("_")]
HOSTILE = {
    "quotes": 'it\'s "quoted"',
    "newline": "two\nlines",
    "command": "$(touch {marker})",
    "backticks": "`touch {marker}`",
    "jinja": "{{{{ 7*7 }}}}{{% if true %}}x{{% endif %}}",
    "dash": "--help",
    "password": "ssh://alice:secret@127.0.0.1/srv/dvc",
}
# questions whose answer copier casts before any validator runs: a string that is not a number (or,
# for a bool, anything) fails or converts in copier itself, whose message names the value only
# questions Copier converts to a number or a boolean: its conversion error names the value only
TYPED = {
    key
    for key, spec in yaml.safe_load((TEMPLATE / "copier.yml").read_text()).items()
    if not key.startswith("_") and isinstance(spec, dict) and spec.get("type") in ("int", "float", "bool")
}
HADOLINT = VENV_BIN / "hadolint"


@pytest.fixture(scope="module")
def plain_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """This checkout's template as plain files: copier renders it without cloning a git repository."""
    copy = tmp_path_factory.mktemp("template")
    for name in ("copier.yml", "template", "hooks"):
        subprocess.run(["cp", "-a", str(TEMPLATE / name), str(copy / name)], check=True)
    return copy


@pytest.fixture(scope="module")
def baseline(plain_template: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The matrix's base answers rendered: a file equal to its baseline needs no new tool check."""
    return render_plain(
        plain_template, tmp_path_factory.mktemp("baseline") / "exp", {"project_slug": "traffic"}
    )


def render_plain(template: Path, dest: Path, answers: dict[str, Any]) -> Path:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DirtyLocalWarning)
        copier.run_copy(
            str(template),
            dest,
            data={"python_version": TEST_PYTHON, **answers},
            defaults=True,
            unsafe=True,
            skip_tasks=True,
            quiet=True,
        )
    return dest


@pytest.mark.parametrize("kind", list(HOSTILE))
@pytest.mark.parametrize("question", QUESTIONS)
def test_hostile_answer_is_refused_or_inert(
    question: str, kind: str, plain_template: Path, baseline: Path, tmp_path: Path
) -> None:
    """Every question x every hostile value: refused with a message naming the question, or rendered
    into files that parse (pyproject.toml, Dockerfile, compose.yaml, workflows, the package) and whose
    import runs nothing from the answer."""
    marker = tmp_path / "pwned"
    value: Any = HOSTILE[kind].format(marker=marker)
    if question == "image_variants":
        value = {value: "notebook"}  # a YAML answer: the hostile text as a variant name
    answers = {"project_slug": "traffic", question: value}
    if question == "dvc_s3_endpoint":
        answers["dvc_remote_url"] = "s3://lab-bucket/data"
    dest = tmp_path / "exp"
    try:
        render_plain(plain_template, dest, answers)
    except ValueError as error:
        if question not in TYPED:
            assert f"'{question}'" in str(error), str(error)
        assert not dest.exists() or not any(dest.iterdir())
        assert not marker.exists()
        return
    assert kind != "newline" or question in TYPED, f"{question} accepted {value!r}"
    assert kind != "password" or question not in ("dvc_remote_url", "dvc_s3_endpoint"), "password accepted"
    assert_inert(dest, baseline, marker)


def assert_inert(repo: Path, baseline: Path, marker: Path) -> None:
    """The generated files parse, the package imports, and nothing the answers held ran. The tools
    that cost a process (hadolint, an import) run on the files that differ from the baseline."""
    tomllib.loads((repo / "pyproject.toml").read_text())
    compose = yaml.safe_load((repo / "compose.yaml").read_text())
    assert set(compose["services"]) == {"jupyter"}
    for workflow in (repo / ".github").rglob("*.yml"):
        assert isinstance(yaml.safe_load(workflow.read_text()), dict)
    if (repo / "Dockerfile").read_text() != (baseline / "Dockerfile").read_text():
        lint = subprocess.run(
            [HADOLINT, "--no-color", "Dockerfile"], cwd=repo, capture_output=True, text=True
        )
        assert lint.returncode == 0, lint.stdout + lint.stderr
    (package,) = (repo / "src").iterdir()
    if (package / "__init__.py").read_text() != (baseline / "src/traffic/__init__.py").read_text():
        subprocess.run([sys.executable, "-c", f"import {package.name}"], cwd=repo / "src", check=True)
    MarkdownIt("commonmark").parse((repo / "README.md").read_text())
    assert not marker.exists()
