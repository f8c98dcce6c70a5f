"""A stand-in for the jupyter/docker-stacks base image, built without any container registry.

Our CI machines (and some company networks) cannot pull `quay.io/jupyter/*`. This module builds a
local image honouring the same contract the generated Dockerfile relies on:

- Python at `/opt/conda/bin/python` (a venv made from Debian's python3), on PATH;
- JupyterLab / jupyter_server startable on 8888 by `start-notebook.py`, honouring `JUPYTER_TOKEN`;
- user `jovyan`, uid 1000, gid 100, owning the group-writable `/home/jovyan` and `/opt/conda`;
- `NB_USER`, `NB_UID`, `NB_GID`, `CONDA_DIR`, `HOME` set as upstream does;
- the host's extra CA certificates (`/usr/local/share/ca-certificates/*.crt`) in the trust store,
  so pip works behind a TLS-intercepting proxy.

Steps: debootstrap a minimal Debian rootfs (mirror read from the host's apt sources), `docker
import` it, then one Dockerfile layer installs the Jupyter server from PyPI. The tag is a hash of the
recipe (and of the CA files), so an existing image is reused: `docker image inspect` first.

    python -m devtools.standin [--tag T] [--force]
"""

from __future__ import annotations

import argparse
import hashlib
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from labship.errors import LabshipError

REPOSITORY = "labship/standin-base"
SUITE = "bookworm"
DEBIAN_PACKAGES = ("python3", "python3-venv", "ca-certificates", "tini")
# The server side of the contract; upstream minimal-notebook ships JupyterLab (nbconvert comes with
# jupyter_server, so `jupyter nbconvert --execute` works as upstream).
SERVER_REQUIREMENTS = ("jupyterlab==4.6.6", "jupyter-server==2.21.1")
HOST_CA_DIR = Path("/usr/local/share/ca-certificates")
CA_BUNDLE = "/etc/ssl/certs/ca-certificates.crt"
APT_SOURCES = (Path("/etc/apt/sources.list.d/debian.sources"), Path("/etc/apt/sources.list"))
FALLBACK_MIRROR = "http://deb.debian.org/debian"
CACHE_DIR = Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "labship" / "debootstrap"

DOCKERFILE = """\
FROM {rootfs}
ENV NB_USER=jovyan NB_UID=1000 NB_GID=100 CONDA_DIR=/opt/conda HOME=/home/jovyan \\
    SHELL=/bin/bash JUPYTER_PORT=8888 \\
    PATH=/opt/conda/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin
RUN useradd --no-log-init --create-home --shell /bin/bash --no-user-group --uid 1000 --gid 100 jovyan \\
 && python3 -m venv /opt/conda \\
 && /opt/conda/bin/pip install --no-cache-dir --disable-pip-version-check {requirements} \\
 && mkdir -p /etc/jupyter /home/jovyan/work \\
 && chown -R 1000:100 /opt/conda /home/jovyan \\
 && chmod -R g+rwX /opt/conda /home/jovyan \\
 && find /opt/conda /home/jovyan -type d -exec chmod g+s {{}} +
COPY start-notebook.py docker_healthcheck.py /usr/local/bin/
COPY jupyter_server_config.py /etc/jupyter/
EXPOSE 8888
HEALTHCHECK --interval=3s --timeout=1s --start-period=3s --retries=3 \\
    CMD ["/usr/local/bin/docker_healthcheck.py"]
WORKDIR /home/jovyan
USER 1000
ENTRYPOINT ["tini", "-g", "--"]
CMD ["start-notebook.py"]
"""

# Upstream's start-notebook.py runs `jupyter ${DOCKER_STACKS_JUPYTER_CMD:-lab}` with NOTEBOOK_ARGS and
# the command-line arguments; jupyter_server itself reads JUPYTER_TOKEN / JUPYTER_TOKEN_FILE.
START_NOTEBOOK = """\
#!/opt/conda/bin/python
import os
import shlex
import sys

command = ["jupyter", os.environ.get("DOCKER_STACKS_JUPYTER_CMD", "lab")]
command += shlex.split(os.environ.get("NOTEBOOK_ARGS", ""))
command += sys.argv[1:]
os.execvp(command[0], command)
"""

SERVER_CONFIG = """\
c = get_config()  # noqa: F821
c.ServerApp.ip = ""
c.ServerApp.port = int(__import__("os").environ.get("JUPYTER_PORT", "8888"))
c.ServerApp.open_browser = False
"""

# As upstream: find the running server in the runtime dir and GET <url>api (needs no token).
HEALTHCHECK = """\
#!/opt/conda/bin/python
import json
import pathlib
import urllib.request

from jupyter_core.paths import jupyter_runtime_dir

servers = sorted(pathlib.Path(jupyter_runtime_dir()).glob("*server-*.json"))
url = json.loads(servers[-1].read_bytes())["url"]
urllib.request.urlopen(url.rstrip("/") + "/api", timeout=1)
"""

SHIM_FILES = {
    "start-notebook.py": START_NOTEBOOK,
    "docker_healthcheck.py": HEALTHCHECK,
    "jupyter_server_config.py": SERVER_CONFIG,
}


class StandinError(LabshipError):
    """Building the stand-in base failed; the message says which step and what to do."""


def host_ca_files(directory: Path = HOST_CA_DIR) -> list[Path]:
    """The host's extra CA certificates (a TLS-intercepting proxy's CA lives here), sorted."""
    return sorted(directory.glob("*.crt")) if directory.is_dir() else []


def debian_mirror(sources: tuple[Path, ...] = APT_SOURCES) -> str:
    """The Debian mirror the host's apt already uses (first `URIs:` or `deb` line), or deb.debian.org."""
    for file in sources:
        if not file.is_file():
            continue
        for line in file.read_text(encoding="utf-8").splitlines():
            deb822 = re.match(r"\s*URIs:\s*(\S+)", line)
            one_line = re.match(r"\s*deb\s+(?:\[[^\]]*\]\s+)?(\S+)", line)
            match = deb822 or one_line
            if match and "security" not in match.group(1):
                return match.group(1)
    return FALLBACK_MIRROR


def recipe_digest(ca_files: list[Path] | None = None) -> str:
    """A short hash of everything that goes into the image, so an unchanged recipe reuses the image."""
    digest = hashlib.sha256()
    for part in (SUITE, *DEBIAN_PACKAGES, *SERVER_REQUIREMENTS, DOCKERFILE, *SHIM_FILES.values()):
        digest.update(part.encode() + b"\0")
    for file in host_ca_files() if ca_files is None else ca_files:
        digest.update(file.read_bytes())
    return digest.hexdigest()[:12]


def default_tag() -> str:
    return f"{REPOSITORY}:{recipe_digest()}"


def image_exists(tag: str) -> bool:
    """Whether the local engine has an image `tag` (no pull is ever attempted)."""
    result = subprocess.run(["docker", "image", "inspect", tag], capture_output=True, check=False)
    return result.returncode == 0


def build_standin_base(
    tag: str | None = None, *, force: bool = False, log: Callable[[str], None] = print
) -> str:
    """Build (or reuse) the stand-in base image and return its tag.

    Needs root (debootstrap, chroot), `debootstrap` and a Docker engine. Takes about 1-2 minutes
    cold on 2 cores; an image with the same recipe hash is reused.
    """
    tag = tag or default_tag()
    if not force and image_exists(tag):
        log(f"stand-in base {tag} already built: reusing it")
        return tag
    if shutil.which("debootstrap") is None:
        raise StandinError("debootstrap not found: install it with `apt-get install debootstrap` (as root)")
    if os.geteuid() != 0:
        raise StandinError("building the stand-in base needs root (debootstrap and chroot)")
    started = time.monotonic()
    rootfs_tag = f"{REPOSITORY}-rootfs:{recipe_digest()}"
    with tempfile.TemporaryDirectory(prefix="labship-standin-") as workdir:
        rootfs = Path(workdir) / "rootfs"
        _debootstrap(rootfs, log)
        _import_rootfs(rootfs, rootfs_tag, log)
        shutil.rmtree(rootfs)
        context = Path(workdir) / "context"
        context.mkdir()
        requirements = " ".join(f"'{item}'" for item in SERVER_REQUIREMENTS)
        (context / "Dockerfile").write_text(DOCKERFILE.format(rootfs=rootfs_tag, requirements=requirements))
        for name, text in SHIM_FILES.items():
            (context / name).write_text(text)
            (context / name).chmod(0o755)
        log("installing the Jupyter server from PyPI (docker build)")
        _run(
            ["docker", "build", "--network", "host", "--rm", "--force-rm", "-t", tag, str(context)],
            "docker build of the stand-in layer",
            env={**os.environ, "DOCKER_BUILDKIT": "0"},
        )
    # The rootfs stays as the parent layer; dropping its tag keeps `docker images` tidy.
    subprocess.run(["docker", "rmi", rootfs_tag], capture_output=True, check=False)
    log(f"stand-in base {tag} built in {time.monotonic() - started:.0f} s")
    return tag


def _debootstrap(rootfs: Path, log: Callable[[str], None]) -> None:
    mirror = debian_mirror()
    CACHE_DIR.mkdir(parents=True, exist_ok=True)
    log(f"debootstrap {SUITE} from {mirror} (about a minute)")
    _run(
        [
            "debootstrap",
            "--variant=minbase",
            f"--include={','.join(DEBIAN_PACKAGES)}",
            f"--cache-dir={CACHE_DIR}",
            SUITE,
            str(rootfs),
            mirror,
        ],
        "debootstrap",
    )
    ca_files = host_ca_files()
    if ca_files:
        for file in ca_files:
            shutil.copy2(file, rootfs / "usr/local/share/ca-certificates" / file.name)
        _run(["chroot", str(rootfs), "update-ca-certificates"], "update-ca-certificates in the rootfs")
    for pattern in (
        "var/cache/apt/archives/*.deb",
        "var/lib/apt/lists/*",
        "usr/share/doc/*",
        "usr/share/man/*",
        "usr/share/locale/*",
        "var/log/*",
    ):
        for path in rootfs.glob(pattern):
            shutil.rmtree(path) if path.is_dir() and not path.is_symlink() else path.unlink()
    for cache in rootfs.glob("usr/lib/python3*/**/__pycache__"):
        shutil.rmtree(cache, ignore_errors=True)
    (rootfs / "etc/resolv.conf").write_text("")  # docker bind-mounts its own
    no_valid_until = rootfs / "etc/apt/apt.conf.d/99labship-no-valid-until"
    no_valid_until.write_text('Acquire::Check-Valid-Until "false";\n')


def _import_rootfs(rootfs: Path, rootfs_tag: str, log: Callable[[str], None]) -> None:
    log(f"docker import -> {rootfs_tag}")
    changes = ["ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin", "ENV LANG=C.UTF-8"]
    # pip from PyPI uses certifi and uv its own roots: point them all at the system bundle (with the CA).
    changes += [f"ENV {name}={CA_BUNDLE}" for name in ("PIP_CERT", "SSL_CERT_FILE", "REQUESTS_CA_BUNDLE")]
    changes.append('CMD ["/bin/bash"]')
    tar = subprocess.Popen(["tar", "-C", str(rootfs), "--numeric-owner", "-c", "."], stdout=subprocess.PIPE)
    command = ["docker", "import"]
    for change in changes:
        command += ["-c", change]
    try:
        _run([*command, "-", rootfs_tag], "docker import", stdin=tar.stdout)
    finally:
        assert tar.stdout is not None
        tar.stdout.close()
        tar.wait()


def _run(command: list[str], step: str, **kwargs: object) -> None:
    result = subprocess.run(command, check=False, **kwargs)  # type: ignore[call-overload]
    if result.returncode != 0:
        raise StandinError(f"{step} failed (exit {result.returncode}); see the output above")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m devtools.standin", description=__doc__.split("\n\n")[0])
    parser.add_argument("--tag", help=f"image tag (default {REPOSITORY}:<recipe hash>)")
    parser.add_argument("--force", action="store_true", help="rebuild even if the tag exists")
    parser.add_argument("--print-tag", action="store_true", help="print the default tag and exit")
    args = parser.parse_args(argv)
    if args.print_tag:
        print(default_tag())
        return 0
    try:
        print(build_standin_base(args.tag, force=args.force, log=lambda line: print(line, file=sys.stderr)))
    except StandinError as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
