"""The example notebook declares the columns it reads, and the template's dataset keeps exactly those,
so `invoke compress` drops every other column of the sample."""

from __future__ import annotations

import ast
import json
import re
from pathlib import Path

from labship.sample import COLUMNS

TEMPLATE = Path(__file__).resolve().parent.parent / "template"


def notebook_columns() -> list[str]:
    cells = json.loads((TEMPLATE / "notebooks" / "traffic.ipynb").read_text())["cells"]
    for cell in cells:
        for node in ast.walk(ast.parse("".join(cell["source"]))) if cell["cell_type"] == "code" else ():
            if isinstance(node, ast.Assign) and getattr(node.targets[0], "id", "") == "COLUMNS":
                return list(ast.literal_eval(node.value))
    raise AssertionError("the example notebook has no COLUMNS = [...]")


def test_the_dataset_keeps_exactly_the_columns_the_notebook_reads() -> None:
    pyproject = (TEMPLATE / "pyproject.toml.jinja").read_text()
    section = pyproject.split("[tool.labship.datasets.pems]", 1)[1].split("\n[", 1)[0]
    match = re.search(r"^columns = (\[.*\])$", section, re.MULTILINE)
    assert match, "no `columns` in [tool.labship.datasets.pems]"
    declared = json.loads(match.group(1))
    assert declared == notebook_columns()
    assert set(declared) < set(COLUMNS)  # real sample columns, and not all of them
    assert len(declared) <= len(COLUMNS) // 4
