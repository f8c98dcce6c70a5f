"""Real DVC remotes for the data tests, on 127.0.0.1 only: a private sshd, a moto S3 server, and a
byte-counting TCP relay that can kill a server (or a client) at an exact point of a transfer.

Also builds a small experiment repository (pyproject [tool.labship], tasks.py, the template's
dvc.yaml, git + dvc init, sample CSV tracked with `dvc add`) in a few DVC calls.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

from labship.sample import write_traffic_csv

REPO = Path(__file__).resolve().parent.parent
TEMPLATE = REPO / "template"
# compress's own bookkeeping, which the template's .dvcignore keeps out of the tracked data
DVC_IGNORED = {".labship-manifest.json"}
VENV_BIN = Path(sys.executable).parent
SSHD = Path("/usr/sbin/sshd")

PYPROJECT = """\
[project]
name = "exp"
version = "0.1.0"

[tool.labship]
uplink-mbps = 24.5

[tool.labship.datasets.pems]
source = "data/raw/pems"
target = "data/processed/pems"
columns = ["Timestamp", "Station", "Total Flow", "Avg Speed", "Lane 1 Flow"]

[tool.labship.images.notebook]
groups = ["notebook"]

[tool.labship.notebooks.traffic]
path = "notebooks/traffic.ipynb"
image = "notebook"
data = ["data/processed/pems"]
"""

EMPTY_AWS_FILE = Path(tempfile.gettempdir()) / "labship-tests-empty-aws-config"
EMPTY_AWS_FILE.touch()


def env() -> dict[str, str]:
    """Environment for subprocesses: this venv first on PATH, no analytics, no AWS files of the user."""
    return {
        **os.environ,
        "PATH": f"{VENV_BIN}{os.pathsep}{os.environ.get('PATH', '')}",
        "DVC_NO_ANALYTICS": "1",
        "AWS_CONFIG_FILE": str(EMPTY_AWS_FILE),
        "AWS_SHARED_CREDENTIALS_FILE": str(EMPTY_AWS_FILE),
        "GIT_AUTHOR_NAME": "t",
        "GIT_AUTHOR_EMAIL": "t@example.org",
        "GIT_COMMITTER_NAME": "t",
        "GIT_COMMITTER_EMAIL": "t@example.org",
    }


def run(
    cwd: Path, *command: str, check: bool = True, timeout: float = 120
) -> subprocess.CompletedProcess[str]:
    result = subprocess.run(command, cwd=cwd, env=env(), capture_output=True, text=True, timeout=timeout)
    if check and result.returncode != 0:
        raise AssertionError(f"{command} exited {result.returncode}:\n{result.stdout}\n{result.stderr}")
    return result


def invoke(
    cwd: Path, *args: str, timeout: float = 180, extra_env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    """`invoke ARGS` in an experiment, as a user runs it (exit code and output kept)."""
    command = (str(VENV_BIN / "invoke"), *args)
    result = subprocess.run(
        command, cwd=cwd, env={**env(), **(extra_env or {})}, capture_output=True, text=True, timeout=timeout
    )
    return result


def make_experiment(root: Path, remote_url: str, *, files: int = 6, rows: int = 400) -> Path:
    """A committed experiment repository with sample raw CSV tracked and the compress stage run."""
    root.mkdir(parents=True)
    (root / "pyproject.toml").write_text(PYPROJECT, encoding="utf-8")
    (root / "tasks.py").write_text(
        "from labship.tasks import namespace\n\nns = namespace()\n", encoding="utf-8"
    )
    for name in ("dvc.yaml", ".dvcignore"):
        shutil.copyfile(TEMPLATE / name, root / name)
    write_traffic_csv(root / "data" / "raw" / "pems", files=files, rows_per_file=rows)
    run(root, "git", "init", "-q", "-b", "main")
    dvc = str(VENV_BIN / "dvc")
    run(root, dvc, "init", "-q")
    run(root, dvc, "config", "core.analytics", "false")
    run(root, dvc, "remote", "add", "-d", "storage", remote_url)
    run(root, dvc, "add", "-q", "data/raw/pems")
    run(root, dvc, "repro", "-q")
    run(root, "git", "add", "-A")
    run(root, "git", "commit", "-q", "-m", "experiment")
    return root


def tree_digest(directory: Path) -> dict[str, str]:
    """Relative path -> sha256 of every file under `directory` that DVC tracks (see .dvcignore)."""
    return {
        path.relative_to(directory).as_posix(): hashlib.sha256(path.read_bytes()).hexdigest()
        for path in sorted(directory.rglob("*"))
        if path.is_file() and path.name not in DVC_IGNORED
    }


def data_files(repo: Path, *paths: str) -> int:
    """How many files DVC tracks under `paths` (default: raw CSV and Parquet) of an experiment."""
    return sum(len(tree_digest(repo / path)) for path in paths or ("data/raw/pems", "data/processed/pems"))


def remote_objects(directory: Path) -> set[str]:
    """Content-addressed objects (md5) in a local or SSH remote directory (temporary partials excluded)."""
    base = directory / "files" / "md5"
    return (
        {
            f"{path.parent.name}{path.name}"
            for path in base.rglob("*")
            if path.is_file() and not path.name.startswith(".")
        }
        if base.exists()
        else set()
    )


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def wait_for_port(port: int, timeout: float = 20, banner: bytes | None = None) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=1) as connection:
                if banner is None or connection.recv(64).startswith(banner):
                    return
        except OSError:
            time.sleep(0.05)
    raise AssertionError(f"nothing answers on 127.0.0.1:{port} after {timeout} s")


def stop(process: subprocess.Popen[bytes]) -> None:
    """Stop a server started by these helpers: its whole process group (sshd session children too)."""
    if process.poll() is None:
        os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(5)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()


def kill_hard(process: subprocess.Popen[bytes]) -> None:
    """SIGKILL a server and its session children: the server 'goes down' mid-transfer."""
    with contextlib.suppress(ProcessLookupError):
        os.killpg(process.pid, signal.SIGKILL)
    # sshd's per-connection children call setsid(), leaving the group: kill them by parent id.
    for child in _children(process.pid):
        with contextlib.suppress(ProcessLookupError):
            os.kill(child, signal.SIGKILL)
    process.wait()


def _children(pid: int) -> list[int]:
    found = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[1]) == pid:
            found.append(int(stat.parent.name))
    return found


# --- sshd -----------------------------------------------------------------------------------------
@dataclass
class SshServer:
    port: int
    user: str
    key: Path
    other_key: Path
    storage: Path
    config: Path
    process: subprocess.Popen[bytes] | None = None

    def url(self, port: int | None = None) -> str:
        return f"ssh://{self.user}@127.0.0.1:{port or self.port}{self.storage}"

    def start(self) -> None:
        self.process = subprocess.Popen(
            [str(SSHD), "-D", "-e", "-f", str(self.config)],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            start_new_session=True,
        )
        wait_for_port(self.port, banner=b"SSH-")

    def stop(self) -> None:
        if self.process is not None:
            kill_hard(self.process)
            self.process = None


def sshd_available() -> bool:
    return SSHD.is_file() and shutil.which("ssh-keygen") is not None


def make_sshd(directory: Path) -> SshServer:
    """A private sshd on a free 127.0.0.1 port accepting one throwaway key for the current user."""
    import getpass

    directory.mkdir(parents=True, exist_ok=True)
    for name in ("host_key", "client_key", "stranger_key"):
        subprocess.run(
            ["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(directory / name)], check=True
        )
    shutil.copy(directory / "client_key.pub", directory / "authorized_keys")
    user = getpass.getuser()
    port = free_port()
    config = directory / "sshd_config"
    config.write_text(
        "\n".join(
            [
                f"Port {port}",
                "ListenAddress 127.0.0.1",
                f"HostKey {directory / 'host_key'}",
                f"PidFile {directory / 'sshd.pid'}",
                f"AuthorizedKeysFile {directory / 'authorized_keys'}",
                "PubkeyAuthentication yes",
                "PasswordAuthentication no",
                "KbdInteractiveAuthentication no",
                "UsePAM no",
                "StrictModes no",
                "PermitRootLogin prohibit-password",
                f"AllowUsers {user}",
                "Subsystem sftp internal-sftp",
                "",
            ]
        )
    )
    if os.geteuid() == 0:
        Path("/run/sshd").mkdir(mode=0o755, exist_ok=True)
    subprocess.run([str(SSHD), "-t", "-f", str(config)], check=True)
    storage = directory / "storage"
    storage.mkdir()
    return SshServer(port, user, directory / "client_key", directory / "stranger_key", storage, config)


# --- moto S3 --------------------------------------------------------------------------------------
@dataclass
class MotoServer:
    port: int
    process: subprocess.Popen[bytes]
    bucket: str = "dvc-remote"

    @property
    def endpoint(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def client(self, key: str = "testing", secret: str = "testing"):  # type: ignore[no-untyped-def]
        import boto3

        return boto3.client(
            "s3",
            endpoint_url=self.endpoint,
            aws_access_key_id=key,
            aws_secret_access_key=secret,
            region_name="us-east-1",
        )

    def objects(self, prefix: str = "") -> dict[str, int]:
        """Key -> size of every object in the bucket under `prefix`."""
        found: dict[str, int] = {}
        for page in (
            self.client().get_paginator("list_objects_v2").paginate(Bucket=self.bucket, Prefix=prefix)
        ):
            found.update({item["Key"]: item["Size"] for item in page.get("Contents", [])})
        return found


def start_moto(extra_env: dict[str, str] | None = None, log: Path | None = None) -> MotoServer:
    """moto's S3/IAM server on a free 127.0.0.1 port; with `log`, its request log goes there."""
    port = free_port()
    sink = log.open("ab") if log is not None else subprocess.DEVNULL
    process = subprocess.Popen(
        [str(VENV_BIN / "moto_server"), "-H", "127.0.0.1", "-p", str(port)],
        stdout=sink,
        stderr=sink,
        env={**env(), **(extra_env or {})},
        start_new_session=True,
    )
    wait_for_port(port)
    return MotoServer(port, process)


# moto checks request signatures once this many unauthenticated calls are used up: exactly the four
# set-up calls of `moto_with_lab_user` (user, policy, key, bucket).
SETUP_CALLS_WITHOUT_AUTH = "4"
ALLOW_ALL_S3 = (
    '{"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "s3:*", "Resource": "*"}]}'
)


@contextlib.contextmanager
def moto_with_lab_user() -> Iterator[tuple[MotoServer, dict[str, str]]]:
    """moto checking signatures, with IAM user `lab` (allowed s3:*) whose key made the bucket.

    Yields (server, the user's access key: `AccessKeyId`, `SecretAccessKey`); stops the server after.
    """
    import boto3

    server = start_moto({"INITIAL_NO_AUTH_ACTION_COUNT": SETUP_CALLS_WITHOUT_AUTH})
    try:
        admin = boto3.client(
            "iam", endpoint_url=server.endpoint, aws_access_key_id="x", aws_secret_access_key="x",
            region_name="us-east-1",
        )  # fmt: skip
        admin.create_user(UserName="lab")
        admin.put_user_policy(UserName="lab", PolicyName="s3", PolicyDocument=ALLOW_ALL_S3)
        key = admin.create_access_key(UserName="lab")["AccessKey"]
        server.client(key["AccessKeyId"], key["SecretAccessKey"]).create_bucket(Bucket=server.bucket)
        yield server, key
    finally:
        stop(server.process)


# --- a relay that pulls the plug at a chosen byte count ----------------------------------------------
@dataclass
class Relay:
    """TCP relay 127.0.0.1:port -> 127.0.0.1:target counting bytes each way.

    When `upstream_bytes` (client -> server) or `downstream_bytes` (server -> client) passes the
    limit, it calls `on_limit` once (e.g. SIGKILL the server or the client) and, with
    `close_on_limit`, stops accepting and cuts every connection: the remote is down.
    With `mbps`, each direction is capped at that many megabits a second over all connections
    (an uplink on loopback, for benchmarks).
    """

    target: int
    on_limit: Callable[[], None] = lambda: None
    mbps: float | None = None
    upstream_limit: int | None = None
    downstream_limit: int | None = None
    close_on_limit: bool = True
    port: int = 0
    upstream: int = 0
    downstream: int = 0
    tripped: threading.Event = field(default_factory=threading.Event)
    _sockets: list[socket.socket] = field(default_factory=list)
    _lock: threading.Lock = field(default_factory=threading.Lock)
    _free_at: dict[bool, float] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self._listener = socket.create_server(("127.0.0.1", 0))
        self.port = self._listener.getsockname()[1]
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while not self.tripped.is_set():
            try:
                client, _ = self._listener.accept()
            except OSError:
                return
            try:
                server = socket.create_connection(("127.0.0.1", self.target))
            except OSError:
                client.close()
                continue
            for end in (client, server):  # small SSH/HTTP packets: no Nagle delays in the relay
                end.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            with self._lock:
                self._sockets += [client, server]
            threading.Thread(target=self._pump, args=(client, server, True), daemon=True).start()
            threading.Thread(target=self._pump, args=(server, client, False), daemon=True).start()

    def _pump(self, source: socket.socket, sink: socket.socket, is_upstream: bool) -> None:
        try:
            while chunk := source.recv(65536):
                with self._lock:
                    if is_upstream:
                        self.upstream += len(chunk)
                    else:
                        self.downstream += len(chunk)
                    over = (self.upstream_limit is not None and self.upstream > self.upstream_limit) or (
                        self.downstream_limit is not None and self.downstream > self.downstream_limit
                    )
                if over:
                    self.trip()
                    return
                if self.mbps:
                    self._throttle(len(chunk), is_upstream)
                sink.sendall(chunk)
        except OSError:
            pass
        finally:
            for end in (source, sink):
                with contextlib.suppress(OSError):
                    end.shutdown(socket.SHUT_RDWR)

    def _throttle(self, size: int, is_upstream: bool) -> None:
        """Sleep until this direction's shared link has had time to carry `size` more bytes."""
        assert self.mbps is not None
        with self._lock:
            now = time.monotonic()
            start = max(now, self._free_at.get(is_upstream, now))
            self._free_at[is_upstream] = start + size * 8 / (self.mbps * 1_000_000)
            wait = self._free_at[is_upstream] - now
        if wait > 0:
            time.sleep(wait)

    def trip(self) -> None:
        with self._lock:
            if self.tripped.is_set():
                return
            self.tripped.set()
        self.on_limit()
        if self.close_on_limit:
            self.close()

    def close(self) -> None:
        self._listener.close()
        with self._lock:
            for end in self._sockets:
                with contextlib.suppress(OSError):
                    end.shutdown(socket.SHUT_RDWR)
                end.close()


@dataclass
class Servers:
    """Everything a test module needs, created once per session."""

    moto: MotoServer | None = None
    ssh: SshServer | None = None
    extra: list[subprocess.Popen[bytes]] = field(default_factory=list)


def session_servers(directory: Path) -> Iterator[Servers]:
    servers = Servers()
    servers.moto = start_moto()
    servers.moto.client().create_bucket(Bucket=servers.moto.bucket)
    if sshd_available():
        servers.ssh = make_sshd(directory / "sshd")
        servers.ssh.start()
    try:
        yield servers
    finally:
        stop(servers.moto.process)
        if servers.ssh is not None:
            servers.ssh.stop()
