"""Driving JupyterLab in headless Chromium (Playwright): shared by the browser test and `invoke screenshot`.

What makes it reliable is in the project notes (browser.md): `?reset` so no earlier workspace
restores hidden tabs, selectors scoped to the visible notebook panel, "kernel ready" as two
conditions, Run All from the menu, done when every code cell has a number (or an error shows).
"""

from __future__ import annotations

import json
import re
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from typing import Any

NOTEBOOK = "notebooks/traffic.ipynb"
VISIBLE_PANEL = ".jp-NotebookPanel:not(.lm-mod-hidden)"
CHROMIUM = Path("/usr/bin/chromium")


@dataclass(frozen=True)
class Server:
    root: Path
    port: int
    token: str

    def lab_url(self, *, token: bool = True) -> str:
        query = f"?reset&token={self.token}" if token else "?reset"
        return f"http://127.0.0.1:{self.port}/lab/tree/{NOTEBOOK}{query}"


def shut_down_kernels(server: Server) -> None:
    """Delete the notebook sessions (and their kernels) so a next page does not reconnect to them."""
    base = f"http://127.0.0.1:{server.port}/api/sessions"
    headers = {"Authorization": f"token {server.token}"}
    with urllib.request.urlopen(urllib.request.Request(base, headers=headers), timeout=10) as response:
        sessions = json.loads(response.read())
    for session in sessions:
        request = urllib.request.Request(f"{base}/{session['id']}", headers=headers, method="DELETE")
        urllib.request.urlopen(request, timeout=10).close()


def open_notebook(page: Any, server: Server) -> Any:
    """Open the example notebook and wait until its kernel is ready; return the visible panel."""
    page.goto(server.lab_url())
    panel = page.locator(VISIBLE_PANEL)
    panel.locator(".jp-Cell").first.wait_for()
    # "kernel ready" is two conditions (notes/browser.md): the toolbar indicator idle, and the
    # status bar naming the kernel (it reads "No Kernel" before the kernel exists)
    panel.locator('.jp-Notebook-ExecutionIndicator[data-status="idle"]').wait_for()
    page.wait_for_function(
        """() => [...document.querySelectorAll('.jp-StatusBar-TextItem')].some(
                 e => e.textContent.trim().endsWith('| Idle') && !e.textContent.startsWith('No Kernel'))"""
    )
    return panel


def run_all(page: Any, panel: Any, code_cells: int) -> None:
    """Run > Run All Cells from the menu; wait until every code cell has a number, or an error shows."""
    page.locator(".lm-MenuBar-itemLabel", has_text=re.compile(r"^Run$")).click()
    page.locator('li.lm-Menu-item[data-command="runmenu:run-all"]').click()
    page.wait_for_function(
        """(count) => {
             const panel = document.querySelector('.jp-NotebookPanel:not(.lm-mod-hidden)');
             if (panel.querySelector('[data-mime-type="application/vnd.jupyter.stderr"]')) return true;
             const prompts = [...panel.querySelectorAll('.jp-CodeCell .jp-InputArea-prompt')]
               .map(e => e.textContent.trim());
             return prompts.length === count && prompts.every(p => /^\\[\\d+\\]:$/.test(p));
           }""",
        arg=code_cells,
    )


def code_cell_count(notebook: Path) -> int:
    return sum(1 for cell in json.loads(notebook.read_text())["cells"] if cell["cell_type"] == "code")


def screenshot_after_run_all(server: Server, path: Path, *, timeout_ms: int = 180_000) -> None:
    """Open the example notebook, Run All, and save a screenshot of the page to `path`."""
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), headless=True)
        try:
            page = browser.new_context(viewport={"width": 1280, "height": 900}).new_page()
            page.set_default_timeout(timeout_ms)
            panel = open_notebook(page, server)
            run_all(page, panel, code_cell_count(server.root / NOTEBOOK))
            path.parent.mkdir(parents=True, exist_ok=True)
            page.screenshot(path=str(path))
        finally:
            browser.close()
            shut_down_kernels(server)
