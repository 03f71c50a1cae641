"""Run every benchmark: ``python -m bench`` (or ``make bench``)."""

from __future__ import annotations

import importlib
import os
import pkgutil
import sys
from pathlib import Path

import bench
from bench import SMOKE_ENV


def main() -> int:
    args = sys.argv[1:]
    if "--smoke" in args:
        # Before any benchmark module is imported: they read it at import time.
        os.environ[SMOKE_ENV] = "1"
        args.remove("--smoke")
        importlib.reload(bench)
    names = sorted(
        m.name for m in pkgutil.iter_modules([str(Path(__file__).parent)]) if not m.name.startswith("_")
    )
    wanted = args or names
    for name in wanted:
        module = importlib.import_module(f"bench.{name}")
        if hasattr(module, "main"):
            print(f"== {name}", flush=True)
            module.main()
    return 0


if __name__ == "__main__":
    sys.exit(main())
