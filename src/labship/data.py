"""Share an experiment's data with DVC: remote setup, push / pull / status, and the compress stage.

Thin wrappers over the `dvc` command line (the stable contract; `dvc.repo.Repo` is not a public
API). Each wrapper streams DVC's own output (with its progress bars when stderr is a terminal),
masks every credential found in `.dvc/config.local`, and turns DVC's failures into a `DataError`
naming the remote and what to do, with an exit code a script can act on (see `EXIT_*`).

What moved is computed from DVC's per-file cloud status taken before the transfer ("new" = only
in the local cache, "deleted" = only on the remote) and the sizes of those objects in the cache.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TextIO
from urllib.parse import urlsplit, urlunsplit

from labship._fs import SECRET_MODE, atomic_file
from labship.config import Dataset, LabshipConfig, Notebook
from labship.errors import LabshipError
from labship.report import format_bytes, format_duration, transfer_seconds

# Exit codes of the data tasks (documented in their --help).
EXIT_OK = 0
EXIT_OUT_OF_SYNC = 1  # data.status: local data and remote differ
EXIT_FAILED = 1  # push/pull: DVC failed for another reason (its message is shown)
EXIT_CONFIG = 2  # no remote, broken .dvc/config(.local), not a DVC repository, bad option
EXIT_UNREACHABLE = 3  # the remote's server does not answer
EXIT_DENIED = 4  # the remote refused the credentials
EXIT_MISSING = 5  # data referenced by the repository is on neither the cache nor the remote
EXIT_INTERRUPTED = 130

# Remote options that are secrets: written only to .dvc/config.local and never shown.
SECRET_OPTIONS = frozenset(
    {"access_key_id", "secret_access_key", "session_token", "password", "passphrase", "key", "token"}
)
MASK = "****"
# Per-user options naming who you are on an S3 remote. Choosing one source (a profile, a key, or the
# environment) unsets the others in .dvc/config.local: DVC prefers stored keys over a profile and a
# profile over the environment, so a stale key would otherwise silently outrank the new choice.
S3_IDENTITY_OPTIONS = ("profile", "access_key_id", "secret_access_key", "session_token", "credentialpath")
# `invoke data.remote --access-key-id ID` reads the secret from here (or stdin), never from argv,
# which every local user can read in /proc/<pid>/cmdline (`ps`) and which lands in shell history.
SECRET_ENV = "LABSHIP_SECRET_ACCESS_KEY"
# Secrets a `dvc` child may read from the environment (botocore's chain): masked in its output too.
ENVIRONMENT_SECRETS = (SECRET_ENV, "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", "AWS_SECURITY_TOKEN")

_UNREACHABLE = re.compile(
    r"Could not connect to the endpoint URL|Connect call failed|Connection refused|Connection not open"
    r"|Name or service not known|Temporary failure in name resolution|timed out|Connection reset"
    r"|Connection lost|No route to host|EndpointConnectionError",
    re.IGNORECASE,
)
_DENIED = re.compile(
    r"Forbidden|\(403\)|InvalidAccessKeyId|SignatureDoesNotMatch|AccessDenied|Permission denied"
    r"|Unable to locate credentials|Authentication failed|No such file or directory: '[^']*key",
    re.IGNORECASE,
)
# botocore's messages (DVC prints them after "ERROR: unexpected error - "); an AccessDenied on a
# named operation means the identity was recognised and lacks that operation's permission.
_PERMISSION_DENIED = re.compile(r"\(AccessDenied\) when calling the (\w+) operation")
_NO_CREDENTIALS = re.compile(
    r"Unable to locate credentials|NoCredentialsError|The config profile \([^)]*\) could not be found",
    re.IGNORECASE,
)
_EXPIRED = re.compile(
    r"ExpiredToken|RequestExpired|token has expired|session .{0,40}has expired|InvalidToken"
    r"|security token included in the request is (?:expired|invalid)|Error when retrieving token from sso",
    re.IGNORECASE,
)
# S3 answers a HEAD request carrying an expired (or otherwise invalid) session token with a bare
# 400: a HEAD response has no body, so botocore cannot show the error code (ExpiredToken).
_HEAD_REFUSED = re.compile(r"\(400\) when calling the HeadObject operation")
_NO_REMOTE = re.compile(r"no default remote set|remote '[^']*' doesn't exist", re.IGNORECASE)
_MISSING = re.compile(
    r"Checkout failed|do not exist neither locally nor on remote|missing cache files", re.IGNORECASE
)


class DataError(LabshipError):
    """A DVC operation failed; the message names the remote and the next step."""

    def __init__(self, message: str, exit_code: int = EXIT_FAILED) -> None:
        super().__init__(message, exit_code=exit_code)


# --- running dvc ---------------------------------------------------------------------------------
@dataclass(frozen=True)
class DvcRun:
    """One finished `dvc` command: its exit code, its (masked) combined output, its duration."""

    args: tuple[str, ...]
    exit_code: int
    output: str  # stdout and stderr as they came (forwarded) or stdout then stderr (captured)
    seconds: float
    stdout: str = ""  # alone, when captured (not forwarded): what `--json` commands print


def dvc_executable() -> str:
    """The `dvc` next to this Python (the venv labship lives in), else the one on PATH."""
    beside = Path(sys.executable).parent / ("dvc.exe" if sys.platform == "win32" else "dvc")
    if beside.is_file():
        return str(beside)
    found = shutil.which("dvc")
    if found is None:
        raise DataError(
            "the `dvc` command is not installed: install labship with its dependencies "
            "(`pipx install labship`), or `pip install 'dvc[s3,ssh]'`",
            EXIT_CONFIG,
        )
    return found


def _dvc_environment(progress: bool) -> dict[str, str]:
    """The environment of a `dvc` child: no analytics, this venv's tools on PATH, bars if asked."""
    env = {**os.environ, "DVC_NO_ANALYTICS": "1"}
    # stage commands (`invoke compress`) come from the same environment as labship, activated or not
    tools = str(Path(sys.executable).parent)
    if tools not in env.get("PATH", "").split(os.pathsep):
        env["PATH"] = os.pathsep.join(filter(None, (tools, env.get("PATH"))))
    if progress:
        env["DVC_IGNORE_ISATTY"] = "true"
    return env


def _environment_secrets() -> list[str]:
    """Secrets DVC may read from this process's environment: masked in its output too."""
    return [os.environ[name] for name in ENVIRONMENT_SECRETS if os.environ.get(name)]


def run_dvc(
    root: Path,
    args: Sequence[str],
    *,
    echo: TextIO | None = None,
    secrets: Iterable[str] = (),
    progress: bool | None = None,
) -> DvcRun:
    """Run `dvc ARGS` in `root`, forwarding its output to `echo` line by line with secrets masked.

    DVC draws progress bars only on a terminal; with `progress` (default: `echo` is a terminal)
    they are forced on through DVC_IGNORE_ISATTY and forwarded as they come (they end in `\\r`).
    """
    if progress is None:
        progress = bool(echo is not None and hasattr(echo, "isatty") and echo.isatty())
    env = _dvc_environment(progress)
    masked = sorted((s for s in {*secrets, *_environment_secrets()} if len(s) >= 3), key=len, reverse=True)
    command = [dvc_executable(), *args]
    if echo is None:
        return _run_captured(root, command, env, masked)
    return _run_forwarded(root, command, env, masked, echo)


def _run_captured(root: Path, command: list[str], env: dict[str, str], masked: Sequence[str]) -> DvcRun:
    """Run to completion with stdout and stderr captured (stdout alone kept for `--json`)."""
    started = time.monotonic()
    try:
        done = subprocess.run(command, cwd=root, env=env, capture_output=True, check=False)
    except OSError as error:
        raise DataError(f"could not run {command[0]}: {error}", EXIT_CONFIG) from error
    except KeyboardInterrupt:
        raise DataError("interrupted: re-run the same command to continue", EXIT_INTERRUPTED) from None
    stdout = _mask(done.stdout.decode("utf-8", "replace"), masked)
    output = stdout + _mask(done.stderr.decode("utf-8", "replace"), masked)
    return DvcRun(tuple(command[1:]), done.returncode, output, time.monotonic() - started, stdout)


def _run_forwarded(
    root: Path, command: list[str], env: dict[str, str], masked: Sequence[str], echo: TextIO
) -> DvcRun:
    """Run with stdout and stderr merged and forwarded to `echo` as each line (or `\\r` update) ends."""
    started = time.monotonic()
    try:
        process = subprocess.Popen(
            command, cwd=root, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT
        )
    except OSError as error:
        raise DataError(f"could not run {command[0]}: {error}", EXIT_CONFIG) from error
    assert process.stdout is not None
    captured: list[str] = []
    pending = b""
    try:
        while chunk := process.stdout.read1(65536):
            pending += chunk
            cut = max(pending.rfind(b"\n"), pending.rfind(b"\r"))
            if cut < 0:
                continue
            text = _mask(pending[: cut + 1].decode("utf-8", "replace"), masked)
            pending = pending[cut + 1 :]
            captured.append(text)
            echo.write(text)
            echo.flush()
        if pending:
            text = _mask(pending.decode("utf-8", "replace"), masked)
            captured.append(text)
            echo.write(text)
        exit_code = process.wait()
    except KeyboardInterrupt:
        process.wait()
        raise DataError("interrupted: re-run the same command to continue", EXIT_INTERRUPTED) from None
    finally:
        process.stdout.close()
    return DvcRun(tuple(command[1:]), exit_code, "".join(captured), time.monotonic() - started)


def _mask(text: str, secrets: Sequence[str]) -> str:
    for secret in secrets:
        text = text.replace(secret, MASK)
    return text


# --- remotes -------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Remote:
    """One DVC remote as the repository's config files define it (`local` = from config.local)."""

    name: str
    url: str
    options: dict[str, str] = field(default_factory=dict)
    local_options: dict[str, str] = field(default_factory=dict)
    config_dir: Path | None = None  # a relative directory URL is relative to this (.dvc/)

    @property
    def kind(self) -> str:
        return remote_kind(self.url)

    @property
    def location(self) -> str:
        """The URL with any password masked; a relative directory as the absolute path it means."""
        if self.kind == "local" and self.config_dir is not None and not Path(self.url).is_absolute():
            return str(Path(os.path.normpath(self.config_dir / self.url)))
        return mask_url(self.url)

    def secrets(self) -> list[str]:
        """Secret values, so they can be masked in anything printed."""
        values = [v for k, v in {**self.options, **self.local_options}.items() if k in SECRET_OPTIONS]
        password = urlsplit(self.url).password if "://" in self.url else None
        return [*values, *([password] if password else [])]

    def describe(self) -> str:
        """The remote for a message: name and URL with any password masked."""
        return f"'{self.name}' ({self.location})"

    def settings(self) -> list[tuple[str, str, str]]:
        """(key, shown value, file) rows with secrets masked, committed settings first."""
        rows = [("url", mask_url(self.url), ".dvc/config")]
        if self.location != mask_url(self.url):
            rows.append(("(directory)", self.location, ""))
        for source, options in ((".dvc/config", self.options), (".dvc/config.local", self.local_options)):
            for key, value in sorted(options.items()):
                if key != "url":
                    rows.append((key, MASK if key in SECRET_OPTIONS else value, source))
        return rows


@dataclass(frozen=True)
class RemoteConfig:
    """The remotes of a repository and which one is the default."""

    default: str | None
    remotes: dict[str, Remote]

    def pick(self, name: str | None = None) -> Remote:
        chosen = name or self.default
        if chosen is None:
            raise DataError(
                "no default DVC remote: set one with `invoke data.remote --url DIR|s3://BUCKET/PREFIX|"
                "ssh://USER@HOST/PATH`, then commit .dvc/config",
                EXIT_CONFIG,
            )
        if chosen not in self.remotes:
            known = ", ".join(sorted(self.remotes)) or "none"
            raise DataError(
                f"no DVC remote named '{chosen}' in .dvc/config (defined: {known}): see `invoke data.remote`",
                EXIT_CONFIG,
            )
        return self.remotes[chosen]

    def secrets(self) -> list[str]:
        return [secret for remote in self.remotes.values() for secret in remote.secrets()]


def remote_kind(url: str) -> str:
    """'s3', 'ssh', 'local' or the URL scheme of another DVC remote type."""
    if re.match(r"^[a-zA-Z][a-zA-Z0-9+.-]+://", url):
        return url.split("://", 1)[0].lower()
    return "local"


def mask_url(url: str) -> str:
    """The URL with any embedded password replaced by ****."""
    if "://" not in url:
        return url
    parts = urlsplit(url)
    if parts.password is None:
        return url
    host = parts.hostname or ""
    if parts.port:
        host = f"{host}:{parts.port}"
    return urlunsplit(parts._replace(netloc=f"{parts.username}:{MASK}@{host}"))


def read_remotes(root: Path) -> RemoteConfig:
    """The remotes of `.dvc/config` merged with `.dvc/config.local`; names the file when broken."""
    import configobj  # a DVC dependency: the format of its config files

    if not (root / ".dvc").is_dir():
        raise DataError(
            f"{root} is not a DVC repository (no .dvc/ directory): run `dvc init` there and commit .dvc/",
            EXIT_CONFIG,
        )
    sections: dict[str, tuple[dict[str, str], dict[str, str]]] = {}
    default = None
    for level, file in enumerate((root / ".dvc" / "config", root / ".dvc" / "config.local")):
        if not file.is_file():
            continue
        try:
            parsed = configobj.ConfigObj(str(file), list_values=False, interpolation=False)
        except configobj.ConfigObjError as error:
            raise DataError(f"{file}: not a valid DVC config file: {error}", EXIT_CONFIG) from error
        default = str(parsed.get("core", {}).get("remote", default) or "") or default
        for section, values in parsed.items():
            match = re.fullmatch(r"""remote\s+["'](.+)["']""", section.strip())
            if match:
                committed, local = sections.setdefault(match.group(1), ({}, {}))
                (local if level else committed).update({k: str(v) for k, v in values.items()})
    remotes: dict[str, Remote] = {}
    for name, (committed, local) in sections.items():
        url = local.get("url") or committed.get("url")
        if not url:
            where = ".dvc/config.local" if local and not committed else ".dvc/config"
            raise DataError(
                f"{root / where}: remote '{name}' has no url, which makes every DVC command fail: "
                f"delete its ['remote \"{name}\"'] section from .dvc/config.local, or add the remote "
                f"with `invoke data.remote --name {name} --url ...`",
                EXIT_CONFIG,
            )
        remotes[name] = Remote(name, url, committed, local, root / ".dvc")
    return RemoteConfig(default, remotes)


def set_remote(
    root: Path,
    url: str,
    *,
    name: str | None = None,
    endpoint_url: str | None = None,
    region: str | None = None,
    profile: str | None = None,
    access_key_id: str | None = None,
    secret_access_key: str | None = None,
    environment: bool = False,
    keyfile: str | None = None,
    echo: TextIO | None = None,
) -> Remote:
    """Make `url` the default remote: shared settings to .dvc/config, who you are to config.local.

    A remote of the same kind is changed in place; another kind gets a new remote (named after
    its kind unless `name` is given), so the old one and its data stay reachable by name.
    S3 identity: a named AWS `profile`, a key pair, or `environment` (store none: every command
    uses AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY/AWS_SESSION_TOKEN or AWS_PROFILE, as botocore
    reads them); giving one replaces whatever was stored before. A relative directory stays
    relative in the committed config, so every clone finds the remote next to itself.
    """
    kind = remote_kind(url)
    _check_remote_options(
        kind,
        url,
        s3_only={
            "--endpoint-url": endpoint_url,
            "--region": region,
            "--profile": profile,
            "--access-key-id": access_key_id,
            "--secret-access-key": secret_access_key,
            "--env-credentials": environment,
        },
        keyfile=keyfile,
    )
    _check_identity(profile=profile, access_key_id=access_key_id, secret=secret_access_key, env=environment)
    if keyfile:
        keyfile = str(Path(keyfile).expanduser().absolute())
        if not Path(keyfile).is_file():
            raise DataError(f"--keyfile {keyfile}: no such file", EXIT_CONFIG)

    current = read_remotes(root)
    if name is None:
        default = current.remotes.get(current.default or "")
        name = default.name if default is not None and default.kind == kind else kind
    shared = {"endpointurl": endpoint_url, "region": region}
    if kind == "ssh" and urlsplit(url).username:
        shared["user"] = urlsplit(url).username
    secrets = [*current.secrets(), *(s for s in (access_key_id, secret_access_key) if s)]
    _register_remote(
        root, name, _stored_url(root, url, kind), kind, current.remotes.get(name), shared, secrets
    )
    if kind == "s3" and (environment or profile or access_key_id):
        chosen = {"profile": profile, "access_key_id": access_key_id, "secret_access_key": secret_access_key}
        _write_local_options(root, name, {key: chosen.get(key) for key in S3_IDENTITY_OPTIONS})
    elif keyfile:
        _write_local_options(root, name, {"keyfile": keyfile})
    if echo is not None:
        echo.write(f"default remote is now {read_remotes(root).pick(name).describe()}\n")
    return read_remotes(root).pick(name)


def _check_remote_options(
    kind: str, url: str, *, s3_only: dict[str, str | bool | None], keyfile: str | None
) -> None:
    """Refuse a URL with a password and options that do not apply to the remote's kind."""
    if kind != "local" and urlsplit(url).password:
        raise DataError(
            "the remote URL contains a password, which would be committed in .dvc/config: "
            "use a key (--keyfile), --profile or --access-key-id with the secret on stdin instead",
            EXIT_CONFIG,
        )
    for flag, value in s3_only.items():
        if value and kind != "s3":
            raise DataError(f"{flag} applies to s3:// remotes only (the URL is a {kind} remote)", EXIT_CONFIG)
    if keyfile and kind != "ssh":
        raise DataError(f"--keyfile applies to ssh:// remotes only (the URL is a {kind} remote)", EXIT_CONFIG)


def _check_identity(*, profile: str | None, access_key_id: str | None, secret: str | None, env: bool) -> None:
    """One identity source at a time, and a key id only with its secret (which never comes from argv)."""
    if sum((bool(profile), bool(access_key_id or secret), env)) > 1:
        raise DataError(
            "choose one of --profile, --access-key-id (with its secret) and --env-credentials: "
            "each replaces the others in .dvc/config.local",
            EXIT_CONFIG,
        )
    if access_key_id and not secret:
        raise DataError(
            f"--access-key-id needs its secret: pipe it in with --secret-access-key-stdin or set "
            f"{SECRET_ENV} (never on the command line, where other users of this machine can read it)",
            EXIT_CONFIG,
        )
    if secret and not access_key_id:
        raise DataError("a secret access key needs its --access-key-id", EXIT_CONFIG)


def _stored_url(root: Path, url: str, kind: str) -> str:
    """The URL as `dvc remote add` run in `root` gets it: a relative directory (relative to the
    current directory, as the user typed it) becomes relative to `root`; DVC then stores it
    relative to .dvc/, so clones resolve it next to themselves."""
    if kind != "local":
        return url
    path = Path(url).expanduser()
    if path.is_absolute():
        return str(path)
    return os.path.relpath(Path.cwd() / path, root)


def _register_remote(
    root: Path,
    name: str,
    url: str,
    kind: str,
    previous: Remote | None,
    shared: dict[str, str | None],
    secrets: Sequence[str],
) -> None:
    """Add or update remote `name` in the committed .dvc/config and make it the default."""

    def dvc(*args: str) -> None:
        run = run_dvc(root, args, secrets=secrets)
        if run.exit_code:
            raise _failure(run, f"dvc {args[0]} {args[1]}", None)

    if previous is not None and previous.kind != kind:
        # Options of the old kind (in either file) would fail validation for the new one; unset the
        # local ones first, or the repository is left with a config.local section DVC rejects.
        for key in previous.local_options:
            dvc("remote", "modify", "--local", name, "--unset", key)
        dvc("remote", "add", "--force", "--default", "--", name, url)
    elif previous is None:
        dvc("remote", "add", "--default", "--", name, url)
    else:
        # `--` ends the options: a URL or directory starting with '-' is a value, never a flag
        dvc("remote", "modify", "--", name, "url", url)
        dvc("remote", "default", "--", name)
    for key, value in shared.items():
        if value:
            dvc("remote", "modify", "--", name, key, value)


def _write_local_options(root: Path, name: str, options: dict[str, str | None]) -> None:
    """Set (or, for None, remove) per-user options of remote `name` in .dvc/config.local.

    Mode 0600 and an atomic rename (`labship._fs.atomic_file`); written here rather than with
    `dvc remote modify --local` so that a secret never appears in a process's argument list,
    which other local users can read.
    """
    import configobj

    file = root / ".dvc" / "config.local"
    parsed = configobj.ConfigObj(
        str(file) if file.is_file() else None, list_values=False, interpolation=False
    )
    section = f'remote "{name}"'
    values = dict(parsed.get(section, {}))
    values.update({key: value for key, value in options.items() if value})
    for key in (key for key, value in options.items() if not value):
        values.pop(key, None)
    if values == dict(parsed.get(section, {})):
        return
    if values:
        parsed[section] = values
    else:
        del parsed[section]  # an empty section of a remote still breaks nothing, but says nothing
    with atomic_file(file, mode=SECRET_MODE) as handle:
        parsed.write(handle)


def terraform_remote(file: Path) -> tuple[str, str | None]:
    """The remote URL and region from `terraform -chdir=infra output -json` saved in `file`."""
    try:
        outputs = json.loads(file.read_text(encoding="utf-8"))
        url = outputs["dvc_remote_url"]["value"]
    except (OSError, ValueError, KeyError, TypeError) as error:
        raise DataError(
            f"{file}: not the JSON of `terraform -chdir=infra output -json` with a dvc_remote_url "
            f"output ({type(error).__name__}: {error}); apply infra/ first, then save its outputs",
            EXIT_CONFIG,
        ) from error
    region = outputs.get("region", {}).get("value") if isinstance(outputs.get("region"), dict) else None
    if not isinstance(url, str) or not url.startswith("s3://"):
        raise DataError(f"{file}: dvc_remote_url must be an s3:// URL, got {url!r}", EXIT_CONFIG)
    return url, region if isinstance(region, str) and region else None


def secret_from(
    *,
    stdin: TextIO | None,
    environ: Mapping[str, str],
    given: str | None = None,
    prompt: Callable[[], str] | None = None,
) -> str | None:
    """The secret access key for `invoke data.remote`: from `stdin` when asked (first line), else
    the command line (`given`, discouraged), else $LABSHIP_SECRET_ACCESS_KEY, else `prompt` (a
    terminal). None when no source has one."""
    if stdin is not None:
        value = stdin.readline().rstrip("\r\n")
        if not value:
            raise DataError(
                "--secret-access-key-stdin: standard input is empty: pipe the secret in, e.g. `pass show "
                "lab/s3 | invoke data.remote --url ... --access-key-id ID --secret-access-key-stdin`",
                EXIT_CONFIG,
            )
        return value
    if given:
        return given
    if environ.get(SECRET_ENV):
        return environ[SECRET_ENV]
    return prompt() if prompt is not None else None


def show_remotes(root: Path) -> str:
    """A table of the repository's remotes with the default marked and credentials masked."""
    config = read_remotes(root)
    if not config.remotes:
        return "no DVC remote: set one with `invoke data.remote --url ...`\n"
    lines = []
    for name, remote in sorted(config.remotes.items()):
        marker = " (default)" if name == config.default else ""
        lines.append(f"remote '{name}'{marker}: {remote.kind}")
        for key, value, source in remote.settings():
            lines.append(f"  {key:<18} {value:<50} {source}")
    return "\n".join(lines) + "\n"


# --- what is where -------------------------------------------------------------------------------
@dataclass(frozen=True)
class Transfer:
    """What a push or pull moved (or would move), and how long it took."""

    action: str  # "pushed" | "fetched"
    remote: str
    files: int
    manifests: int
    size_bytes: int
    seconds: float
    uplink_mbps: float

    @property
    def estimate_seconds(self) -> float:
        return transfer_seconds(self.size_bytes, self.uplink_mbps)

    def summary(self) -> str:
        if self.files == 0 and self.manifests == 0:
            return f"nothing to transfer: {self.remote} is up to date ({format_duration(self.seconds)})"
        direction = "to" if self.action == "pushed" else "from"
        return (
            f"{self.action} {self.files} files ({format_bytes(self.size_bytes)}) {direction} {self.remote} "
            f"in {format_duration(self.seconds)}; at the {self.uplink_mbps:g} Mbit/s uplink this takes "
            f"~{format_duration(self.estimate_seconds)}"
        )


@dataclass(frozen=True)
class SyncStatus:
    """Local data versus its records (dvc.yaml / .dvc files) and versus the remote."""

    remote: str
    local_changes: dict[str, list[str]]
    to_push: list[str]
    to_pull: list[str]
    missing: list[str]

    @property
    def in_sync(self) -> bool:
        return not (self.local_changes or self.to_push or self.to_pull or self.missing)

    @property
    def exit_code(self) -> int:
        if self.missing:
            return EXIT_MISSING
        return EXIT_OK if self.in_sync else EXIT_OUT_OF_SYNC

    def summary(self) -> str:
        if self.in_sync:
            return f"in sync: the workspace matches its records and {self.remote} holds all of it"
        lines = []
        for path, changes in sorted(self.local_changes.items()):
            lines.append(f"  changed locally  {path}: {', '.join(changes)}")
        lines += [f"  only local       {path}" for path in self.to_push]
        lines += [f"  only on remote   {path}" for path in self.to_pull]
        lines += [f"  lost             {path}" for path in self.missing]
        steps = []
        changes = " ".join(" ".join(items) for items in self.local_changes.values())
        if re.search(r"modified|new|changed command", changes):
            steps.append("`dvc repro` (or `dvc add` raw data) and commit dvc.lock / *.dvc")
        if self.to_push:
            steps.append("`invoke data.push`")
        if self.to_pull or re.search(r"deleted|not in cache", changes):
            steps.append("`invoke data.pull` (data missing here)")
        if self.missing:
            steps.append("ask whoever committed the lost data to `invoke data.push` it")
        return f"out of sync with {self.remote}:\n" + "\n".join(lines) + "\nnext: " + "; ".join(steps)


def cache_dir(root: Path) -> Path:
    """The DVC cache directory (`cache.dir` of the repository's config, else .dvc/cache)."""
    import configobj

    directory = root / ".dvc" / "cache"
    for file in (root / ".dvc" / "config", root / ".dvc" / "config.local"):
        if file.is_file():
            configured = configobj.ConfigObj(str(file), list_values=False).get("cache", {}).get("dir")
            if configured:
                directory = (file.parent / configured).resolve()
    return directory


def tracked_objects(root: Path) -> dict[str, str]:
    """Workspace path -> md5 of every file and directory manifest the repository's records name.

    Reads the `.dvc` files and `dvc.lock`, and each directory's `.dir` manifest from the cache.
    """
    from ruamel.yaml import YAML

    yaml = YAML(typ="safe")
    outs: list[tuple[Path, dict]] = []
    lock = root / "dvc.lock"
    if lock.is_file():
        for stage in (yaml.load(lock.read_text(encoding="utf-8")) or {}).get("stages", {}).values():
            outs += [(root, out) for out in stage.get("outs", [])]
    for record in root.rglob("*.dvc"):
        if ".dvc" in record.relative_to(root).parts[:-1] or not record.is_file():
            continue
        outs += [
            (record.parent, out)
            for out in (yaml.load(record.read_text(encoding="utf-8")) or {}).get("outs", [])
        ]
    objects: dict[str, str] = {}
    cache = cache_dir(root)
    for base, out in outs:
        md5 = out.get("md5")
        if not md5:
            continue
        path = (base / out["path"]).resolve().relative_to(root.resolve()).as_posix()
        objects[path] = md5
        manifest = _cache_path(cache, md5)
        if md5.endswith(".dir") and manifest.is_file():
            for entry in json.loads(manifest.read_text(encoding="utf-8")):
                objects[f"{path}/{entry['relpath']}"] = entry["md5"]
    return objects


def _cache_path(cache: Path, md5: str) -> Path:
    return cache / "files" / "md5" / md5[:2] / md5[2:]


def cloud_status(
    root: Path, targets: Sequence[str] = (), remote: str | None = None, secrets: Iterable[str] = ()
) -> dict[str, str]:
    """DVC's per-path cloud status: 'new' (local only), 'deleted' (remote only), 'missing' (lost)."""
    config = read_remotes(root)
    chosen = config.pick(remote)
    args = ["status", "--cloud", "--json", "--remote", chosen.name, *targets]
    run = run_dvc(root, args, secrets=[*config.secrets(), *secrets])
    if run.exit_code:
        raise _failure(run, "compare with the remote", chosen)
    return _json_object(run, "dvc status --cloud --json")


def _moved(
    root: Path, paths: Iterable[str], action: str, remote: Remote, seconds: float, uplink_mbps: float
) -> Transfer:
    """Count unique objects (files and .dir manifests) behind `paths` and their cached sizes."""
    objects = tracked_objects(root)
    cache = cache_dir(root)
    unique: dict[str, int] = {}
    for path in paths:
        md5 = objects.get(path)
        if md5 is None:
            continue
        cached = _cache_path(cache, md5)
        unique[md5] = cached.stat().st_size if cached.is_file() else 0
    manifests = sum(1 for md5 in unique if md5.endswith(".dir"))
    return Transfer(
        action,
        remote.describe(),
        len(unique) - manifests,
        manifests,
        sum(unique.values()),
        seconds,
        uplink_mbps,
    )


# --- push / pull / status ------------------------------------------------------------------------
def push(
    root: Path,
    *,
    targets: Sequence[str] = (),
    remote: str | None = None,
    jobs: int | None = None,
    uplink_mbps: float,
    echo: TextIO | None = None,
    progress: bool | None = None,
) -> Transfer:
    """Upload what the remote lacks; returns what moved. Idempotent: a re-run sends only the rest.

    Warns (on `echo`) when the workspace differs from dvc.lock / *.dvc: only recorded data is pushed.
    """
    if echo is not None:
        unrecorded = local_changes(root, targets, read_remotes(root).secrets())
        if unrecorded:
            echo.write(
                "warning: the workspace differs from what dvc.lock / *.dvc record, so the recorded version "
                f"is pushed, not this one: {', '.join(sorted(unrecorded))}. Run `dvc repro` (or `dvc add` / "
                "`dvc commit`), commit dvc.lock and *.dvc, then push again.\n"
            )
    return _transfer("push", root, targets, remote, jobs, uplink_mbps, echo, progress)


def pull(
    root: Path,
    *,
    targets: Sequence[str] = (),
    remote: str | None = None,
    jobs: int | None = None,
    uplink_mbps: float,
    echo: TextIO | None = None,
    progress: bool | None = None,
) -> Transfer:
    """Download what the cache lacks and check it out; a re-run after an interruption completes it."""
    return _transfer("pull", root, targets, remote, jobs, uplink_mbps, echo, progress)


# `dvc status --cloud` state of the objects each direction moves, and the verb of the summary
_DIRECTIONS = {"push": ("new", "pushed"), "pull": ("deleted", "fetched")}


def _transfer(
    action: str,
    root: Path,
    targets: Sequence[str],
    remote: str | None,
    jobs: int | None,
    uplink_mbps: float,
    echo: TextIO | None,
    progress: bool | None,
) -> Transfer:
    """`dvc push` or `dvc pull`, measuring beforehand what will move so the summary can say it."""
    config = read_remotes(root)
    chosen = config.pick(remote)
    state, verb = _DIRECTIONS[action]
    started = time.monotonic()
    if echo is not None:
        echo.write(f"comparing the local cache with remote {chosen.describe()}...\n")
    pending = cloud_status(root, targets, chosen.name)
    moving = [path for path, found in pending.items() if found == state]
    args = [action, "--remote", chosen.name, *(["--jobs", str(jobs)] if jobs else []), *targets]
    run = run_dvc(root, args, echo=echo, secrets=config.secrets(), progress=progress)
    if run.exit_code:
        raise _failure(run, action, chosen)
    return _moved(root, moving, verb, chosen, time.monotonic() - started, uplink_mbps)


def status(root: Path, *, targets: Sequence[str] = (), remote: str | None = None) -> SyncStatus:
    """Compare workspace, records and remote (two DVC calls: `status` and `status --cloud`)."""
    config = read_remotes(root)
    chosen = config.pick(remote)
    changes = local_changes(root, targets, config.secrets())
    cloud = cloud_status(root, targets, chosen.name)
    return SyncStatus(
        remote=chosen.describe(),
        local_changes=changes,
        to_push=sorted(p for p, s in cloud.items() if s == "new"),
        to_pull=sorted(p for p, s in cloud.items() if s == "deleted"),
        missing=sorted(p for p, s in cloud.items() if s == "missing"),
    )


def local_changes(
    root: Path, targets: Sequence[str] = (), secrets: Iterable[str] = ()
) -> dict[str, list[str]]:
    """Stages and .dvc files whose workspace differs from their record (`dvc status --json`)."""
    run = run_dvc(root, ["status", "--json", *targets], secrets=secrets)
    if run.exit_code:
        raise _failure(run, "check the workspace", None)
    local = _json_object(run, "dvc status --json")
    return {name: [_describe_change(item) for item in items] for name, items in local.items()}


def _json_object(run: DvcRun, what: str) -> dict:
    text = run.stdout.strip()
    try:
        parsed = json.loads(text) if text else {}
    except json.JSONDecodeError as error:
        raise DataError(f"could not read the output of `{what}`: {text[-500:]}") from error
    if not isinstance(parsed, dict):
        raise DataError(f"unexpected output of `{what}`: {text[-500:]}")
    return parsed


def _describe_change(item: object) -> str:
    if isinstance(item, dict):
        parts = []
        for kind, changes in item.items():
            if isinstance(changes, dict):
                parts.append(f"{kind} ({', '.join(f'{k}: {v}' for k, v in changes.items())})")
            else:
                parts.append(str(kind))
        return "; ".join(parts)
    return str(item)


def _failure(run: DvcRun, action: str, remote: Remote | None) -> DataError:
    """A DataError for a failed DVC run: what failed, on which remote, and what to do next."""
    errors = [line.strip() for line in re.split(r"[\r\n]+", run.output) if line.strip().startswith("ERROR")]
    detail = errors[-1] if errors else (run.output.strip().splitlines() or [""])[-1]
    for explain in (_dvc_state_failure, _credentials_failure, _transport_failure):
        error = explain(run, action, remote, detail)
        if error is not None:
            return error
    if remote is None:
        return DataError(f"cannot {action}: {detail} (dvc exit code {run.exit_code})")
    return DataError(
        f"cannot {action} with remote {remote.describe()}: {detail} (dvc exit code {run.exit_code})"
    )


def _dvc_state_failure(run: DvcRun, action: str, remote: Remote | None, detail: str) -> DataError | None:
    """Not a repository, broken configuration, interrupted, or no remote configured."""
    if run.exit_code == 253:
        return DataError(f"not a DVC repository: run `dvc init` and commit .dvc/ ({detail})", EXIT_CONFIG)
    if run.exit_code == 251:
        return DataError(
            f"DVC configuration error ({detail}): fix .dvc/config, or delete the remote's section from "
            ".dvc/config.local if the remote no longer exists in .dvc/config",
            EXIT_CONFIG,
        )
    if run.exit_code == 252:
        return DataError(f"{action} interrupted: re-run the same command to continue", EXIT_INTERRUPTED)
    if _NO_REMOTE.search(run.output):
        return DataError(
            f"cannot {action}: {detail}; set a remote with `invoke data.remote --url ...`", EXIT_CONFIG
        )
    return None


def _credentials_failure(run: DvcRun, action: str, remote: Remote | None, detail: str) -> DataError | None:
    """Exit 4: a permission the identity lacks, no or expired credentials, or credentials refused."""
    where = remote.describe() if remote is not None else "the DVC remote"
    text = run.output
    if (denied := _PERMISSION_DENIED.search(text)) and remote is not None:
        return _permission_error(action, remote, denied.group(1))
    if _NO_CREDENTIALS.search(text):
        return DataError(
            f"cannot {action}: no credentials for remote {where} ({detail}). {login_hint(remote)}",
            EXIT_DENIED,
        )
    if _EXPIRED.search(text) or (_HEAD_REFUSED.search(text) and _temporary_credentials(remote)):
        return DataError(
            f"cannot {action}: your session for remote {where} has expired or is invalid ({detail}). "
            f"{login_hint(remote)}",
            EXIT_DENIED,
        )
    if _DENIED.search(text):
        return DataError(
            f"cannot {action}: remote {where} refused the credentials ({detail}). {login_hint(remote)}",
            EXIT_DENIED,
        )
    return None


def _transport_failure(run: DvcRun, action: str, remote: Remote | None, detail: str) -> DataError | None:
    """Exit 3 (the server does not answer) or 5 (data on neither side)."""
    where = remote.describe() if remote is not None else "the DVC remote"
    if _UNREACHABLE.search(run.output):
        return DataError(
            f"cannot {action}: remote {where} does not answer ({detail}). Check that the server is up "
            "and the URL right (`invoke data.remote`), then re-run: what already moved is kept and "
            "only the rest is transferred",
            EXIT_UNREACHABLE,
        )
    if _MISSING.search(run.output):
        return DataError(
            f"cannot {action}: some data is neither in the local cache nor on remote {where} ({detail}): "
            "ask whoever committed it to run `invoke data.push`",
            EXIT_MISSING,
        )
    return None


def _temporary_credentials(remote: Remote | None) -> bool:
    """Whether the remote's identity is a session (token in the environment, stored, or a profile)."""
    if os.environ.get("AWS_SESSION_TOKEN") or os.environ.get("AWS_PROFILE"):
        return True
    options = {**remote.options, **remote.local_options} if remote is not None else {}
    return bool(options.get("session_token") or options.get("profile"))


def login_hint(remote: Remote | None) -> str:
    """How to (re)establish who you are on `remote`, for the source of credentials it uses."""
    if remote is None:
        return "See `invoke data.remote --help` for how to give credentials."
    url = mask_url(remote.url)
    stored_key = "`invoke data.remote --url {url} --access-key-id ID --secret-access-key-stdin`"
    if remote.kind == "ssh":
        return (
            f"Set your SSH key with `invoke data.remote --url {url} --keyfile PATH` "
            "(stored in .dvc/config.local only)."
        )
    profile = remote.local_options.get("profile") or remote.options.get("profile")
    if profile:
        return (
            f"Log in with `aws sso login --profile {profile}` (AWS IAM Identity Center), or give the "
            f"profile keys with `aws configure --profile {profile}`; another identity: "
            f"`invoke data.remote --url {url} --profile NAME`."
        )
    if remote.local_options.get("access_key_id"):
        return (
            f"Store a valid key with {stored_key.format(url=url)} (the secret read from standard input; "
            "kept in .dvc/config.local only)."
        )
    return (
        "Log in with `aws sso login --profile NAME` and use it with "
        f"`invoke data.remote --url {url} --profile NAME`, export AWS_ACCESS_KEY_ID and "
        f"AWS_SECRET_ACCESS_KEY (or AWS_PROFILE), or store a key with {stored_key.format(url=url)}."
    )


# What each S3 operation DVC calls needs (IAM action), as AWS documents it per API call.
_OPERATION_PERMISSION = {
    "PutObject": "s3:PutObject",
    "CreateMultipartUpload": "s3:PutObject",
    "UploadPart": "s3:PutObject",
    "CompleteMultipartUpload": "s3:PutObject",
    "CopyObject": "s3:PutObject",
    "GetObject": "s3:GetObject",
    "HeadObject": "s3:GetObject",
    "ListObjectsV2": "s3:ListBucket",
    "ListObjects": "s3:ListBucket",
    "HeadBucket": "s3:ListBucket",
    "DeleteObject": "s3:DeleteObject",
    "DeleteObjects": "s3:DeleteObject",
}
_WRITE_PERMISSIONS = {"s3:PutObject", "s3:DeleteObject"}


def _permission_error(action: str, remote: Remote, operation: str) -> DataError:
    """The identity was recognised but lacks a permission: name it, the resource, and who grants it."""
    permission = _OPERATION_PERMISSION.get(operation, f"s3:{operation}")
    parts = urlsplit(remote.url)
    bucket, prefix = parts.netloc, parts.path.strip("/")
    objects = f"{bucket}/{prefix}/*" if prefix else f"{bucket}/*"
    resource = f"arn:aws:s3:::{bucket}" if permission == "s3:ListBucket" else f"arn:aws:s3:::{objects}"
    role = "writers" if permission in _WRITE_PERMISSIONS else "readers"
    root = remote.config_dir.parent if remote.config_dir is not None else None
    if root is not None and (root / "infra").is_dir():
        grant = (
            f"Whoever administers the AWS account can grant it: add your IAM user name to `{role}` "
            'in infra/terraform.tfvars and run `terraform -chdir=infra apply` (README: "Working as a '
            f'team — the bucket"); that puts you in the IAM group `{bucket}-{role}`.'
        )
    else:
        grant = (
            f"Whoever administers bucket {bucket} can grant it with an IAM policy allowing {permission} "
            f"on {resource}."
        )
    return DataError(
        f"cannot {action}: remote {remote.describe()} accepted your credentials but your identity lacks "
        f"the permission {permission} on {resource} (AccessDenied on {operation}). {grant}",
        EXIT_DENIED,
    )


# --- lineage -------------------------------------------------------------------------------------
def track_raw(root: Path, dataset: Dataset) -> DvcRun:
    """`dvc add` the dataset's raw CSV directory (its .dvc file is what to commit)."""
    source = dataset.source.relative_to(root)
    run = run_dvc(root, ["add", source.as_posix()])
    if run.exit_code:
        raise _failure(run, f"track {source}", None)
    return run


def repro(root: Path, targets: Sequence[str] = (), *, echo: TextIO | None = None) -> DvcRun:
    """`dvc repro`: re-run only the stages whose raw data or settings changed."""
    run = run_dvc(root, ["repro", *targets], echo=echo)
    if run.exit_code:
        raise _failure(run, "reproduce the pipeline", None)
    return run


def stage_for_output(root: Path, output: Path) -> str | None:
    """The dvc.yaml stage whose outs include `output` (a path under `root`), if any."""
    from ruamel.yaml import YAML

    pipeline = root / "dvc.yaml"
    if not pipeline.is_file():
        return None
    wanted = output.resolve()
    stages = (YAML(typ="safe").load(pipeline.read_text(encoding="utf-8")) or {}).get("stages", {})
    for name, stage in stages.items():
        for out in stage.get("outs", []) if isinstance(stage, dict) else []:
            path = next(iter(out)) if isinstance(out, dict) else out
            if isinstance(path, str) and (root / path).resolve() == wanted:
                return str(name)
    return None


def record_compress(root: Path, dataset: Dataset) -> str | None:
    """After `invoke compress` run by hand, record its output in dvc.lock (`dvc commit STAGE`).

    Returns the stage committed, or None when DVC itself runs the command (`dvc repro` sets
    DVC_STAGE and records the result) or no stage outputs the dataset's target.
    """
    if os.environ.get("DVC_STAGE") or not (root / ".dvc").is_dir():
        return None
    stage = stage_for_output(root, dataset.target)
    if stage is None:
        return None
    run = run_dvc(root, ["commit", "--force", stage])
    if run.exit_code:
        raise _failure(run, f"record {dataset.target.relative_to(root)} in dvc.lock", None)
    return stage


def missing_data(config: LabshipConfig, notebook: Notebook) -> list[Path]:
    """The notebook's declared data paths that are absent, or empty directories, on this machine."""
    return [path for path in notebook.data if _absent(config.root / path)]


def ensure_data(config: LabshipConfig, notebook: Notebook, *, echo: TextIO | None = None) -> Transfer | None:
    """Pull the notebook's declared data paths that are missing or empty; None when all are there."""
    missing = [path.as_posix() for path in missing_data(config, notebook)]
    if not missing:
        return None
    return pull(config.root, targets=missing, uplink_mbps=config.uplink_mbps, echo=echo)


def _absent(path: Path) -> bool:
    if path.is_dir():
        return not any(path.iterdir())
    return not path.exists()
