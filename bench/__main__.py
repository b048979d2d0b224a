"""Run every benchmark module in bench/ (each has a `main()`), one after the other, or the
ones named on the command line."""

from __future__ import annotations

import importlib
import pkgutil
import sys
from pathlib import Path


def main() -> None:
    folder = str(Path(__file__).parent)
    names = sorted(
        m.name
        for m in pkgutil.iter_modules([folder])
        if not m.name.startswith("_") and m.name != "common"
    )
    wanted = sys.argv[1:] or names
    unknown = [name for name in wanted if name not in names]
    if unknown:  # `--help` included: say what there is rather than fail to import it
        sys.exit(f"usage: python -m bench [{' '.join(names)}]  (unknown: {' '.join(unknown)})")
    for name in wanted:
        print(f"== bench.{name} ==", flush=True)
        importlib.import_module(f"bench.{name}").main()


if __name__ == "__main__":
    main()
