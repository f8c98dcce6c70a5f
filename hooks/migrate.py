"""Run labship's update migrations (src/labship/migrate.py of this template checkout) for Copier.

Loaded by path, not imported from an installed labship, so the migrations are always the ones of
the template version being updated to; see that module for what they do.
"""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

MODULE = Path(__file__).resolve().parent.parent / "src" / "labship" / "migrate.py"

if __name__ == "__main__":
    spec = importlib.util.spec_from_file_location("labship_template_migrate", MODULE)
    assert spec is not None and spec.loader is not None, MODULE
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up here
    spec.loader.exec_module(module)
    sys.exit(module.main())
