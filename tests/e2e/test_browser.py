"""The notebook as a person sees it: headless Chromium (Debian's, driven by Playwright) against the
server `invoke notebook` started, on a host without a Compose v2 plugin (DOCKER_CONFIG points at an
empty directory, so labship's pinned compose runs).

JupyterLab loads, the example notebook opens in the project kernel, Run All completes and shows the
row count and a plot; without the token the login page appears; an edit saved in the browser lands
in the host file, owned by the host user. Screenshots go to test-artifacts/screenshots/ (CI keeps
them; `invoke screenshot` makes the README's docs/notebook.png the same way, on the demo's server).
"""

from __future__ import annotations

import os
import re
import time
from collections.abc import Iterator
from pathlib import Path

import pyarrow.dataset
import pytest

from devtools.jupyterlab import NOTEBOOK, Server, code_cell_count, open_notebook, run_all, shut_down_kernels
from labship import compose
from tests.conftest import require
from tests.e2e.conftest import BuiltExperiment, invoke

# one server for the module, in the uv experiment (the Poetry one is not built for these tests)
pytestmark = [
    pytest.mark.docker,
    pytest.mark.slow,
    pytest.mark.parametrize("built_experiment", ["uv"], indirect=True),
]

CHROMIUM = Path("/usr/bin/chromium")
SCREENSHOTS = Path(__file__).resolve().parents[2] / "test-artifacts" / "screenshots"
URL = re.compile(r"http://127\.0\.0\.1:(\d+)/lab/tree/notebooks/traffic\.ipynb\?token=([0-9a-f]{32,})")
TIMEOUT_MS = 180_000


def without_compose_plugin(tmp_path: Path) -> dict[str, str]:
    """The environment of a host with no Compose v2 of its own: an empty DOCKER_CONFIG (no CLI
    plugins). A `docker-compose` on PATH may stay: Debian's v1 is a script, which labship skips."""
    config = tmp_path / "docker-config"
    config.mkdir()
    return {"DOCKER_CONFIG": str(config)}


@pytest.fixture(scope="module")
def server(built_experiment: BuiltExperiment, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    """`invoke notebook --detach` in the uv experiment, with only labship's own compose available."""
    require(CHROMIUM.exists(), "chromium is not installed (apt-get install chromium)")
    env = without_compose_plugin(tmp_path_factory.mktemp("no-plugin"))
    # what `invoke notebook` will run: the pinned binary inside labship's dependencies
    assert compose.find_compose({**os.environ, **env}) == [str(compose.bundled_binary())]
    root = built_experiment.root
    output = invoke(root, "notebook", "--detach", env=env, timeout=300)
    match = URL.search(output)
    assert match, output
    try:
        yield Server(root, int(match.group(1)), match.group(2))
    finally:
        invoke(root, "notebook", "--stop", env=env)


@pytest.fixture(scope="module")
def browser(server: Server) -> Iterator[object]:
    playwright_api = pytest.importorskip("playwright.sync_api")
    with playwright_api.sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=str(CHROMIUM), headless=True)
        try:
            yield chromium
        finally:
            chromium.close()


@pytest.fixture
def page(browser: object, server: Server) -> Iterator[object]:
    context = browser.new_context(viewport={"width": 1280, "height": 900})  # type: ignore[attr-defined]
    page = context.new_page()
    page.set_default_timeout(TIMEOUT_MS)
    try:
        yield page
    finally:
        context.close()
        shut_down_kernels(server)


def screenshot(page: object, name: str) -> Path:
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    path = SCREENSHOTS / f"{name}.png"
    page.screenshot(path=str(path))  # type: ignore[attr-defined]
    return path


def test_jupyterlab_runs_all_cells_of_the_example_in_the_project_kernel(page: object, server: Server) -> None:
    panel = open_notebook(page, server)
    kernel_name = page.locator(".jp-KernelName").first.inner_text()  # type: ignore[attr-defined]
    assert kernel_name.startswith("Python (")  # the project kernel, "Python (<project name>)"
    code_cells = code_cell_count(server.root / NOTEBOOK)
    run_all(page, panel, code_cells)
    shot = screenshot(page, "notebook-run-all")
    errors = panel.locator('[data-mime-type="application/vnd.jupyter.stderr"]')  # type: ignore[attr-defined]
    assert errors.count() == 0 or "Error" not in errors.all_inner_texts()[0], errors.all_inner_texts()
    outputs = " ".join(panel.locator(".jp-OutputArea-output").all_inner_texts())  # type: ignore[attr-defined]
    rows = pyarrow.dataset.dataset(server.root / "data" / "processed" / "pems").count_rows()
    assert f"rows: {rows}" in outputs
    assert "date range: 2024-01-01" in outputs and "stations" in outputs
    plot = panel.locator(".jp-RenderedImage img")  # type: ignore[attr-defined]
    assert plot.count() == 1
    assert plot.first.evaluate("img => img.naturalWidth") > 300  # a drawn figure, not a broken image
    # no "get Jupyter news?" prompt over the page (turned off in the image)
    assert page.get_by_text("Jupyter news").count() == 0  # type: ignore[attr-defined]
    assert shot.stat().st_size > 10_000


def test_without_the_token_the_login_page_appears(page: object, server: Server) -> None:
    page.goto(server.lab_url(token=False))  # type: ignore[attr-defined]
    page.wait_for_url(re.compile(r"/login\?next="))  # type: ignore[attr-defined]
    assert page.get_by_text("Password or token").count() >= 1  # type: ignore[attr-defined]
    assert page.locator("input[type=password]").count() >= 1  # type: ignore[attr-defined]
    assert page.locator(".jp-Notebook").count() == 0  # type: ignore[attr-defined]
    screenshot(page, "login-without-token")


def test_an_edit_saved_in_the_browser_lands_in_the_host_file(page: object, server: Server) -> None:
    host_file = server.root / NOTEBOOK
    original = host_file.read_bytes()
    marker = f"edited in the browser {time.monotonic_ns()}"
    try:
        panel = open_notebook(page, server)
        editor = panel.locator(".jp-CodeCell .cm-content").first  # type: ignore[attr-defined]
        editor.click()
        page.keyboard.press("Control+End")  # type: ignore[attr-defined]
        page.keyboard.type(f"\n# {marker}")  # type: ignore[attr-defined]
        page.keyboard.press("Control+s")  # type: ignore[attr-defined]
        deadline = time.monotonic() + 30
        while marker not in host_file.read_text() and time.monotonic() < deadline:
            time.sleep(0.2)
        screenshot(page, "notebook-saved")
        assert marker in host_file.read_text()
        saved = host_file.stat()
        # written by Jupyter in the container, owned by the host user (root included)
        assert (saved.st_uid, saved.st_gid) == (os.getuid(), os.getgid())
        # JupyterLab holds it as saved: no unsaved-changes mark on the tab (a read-only notebook
        # would keep it, with a "read-only" badge)
        assert page.locator(".lm-TabBar-tab.jp-mod-dirty").count() == 0  # type: ignore[attr-defined]
    finally:
        host_file.write_bytes(original)
