"""Run every benchmark module in bench/ (each has a `main()`), one after the other, or the
ones named on the command line; options after one name are that benchmark's own
(`python -m bench webhooks --events 5000`)."""

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
    words = sys.argv[1:]
    options = next((i for i, word in enumerate(words) if word.startswith("-")), len(words))
    wanted = words[:options] or names
    if options < len(words) and len(wanted) != 1:
        sys.exit("usage: python -m bench NAME [its options]  (options go to one benchmark)")
    unknown = [name for name in wanted if name not in names]
    if unknown:  # `--help` included: say what there is rather than fail to import it
        sys.exit(f"usage: python -m bench [{' '.join(names)}]  (unknown: {' '.join(unknown)})")
    for name in wanted:
        print(f"== bench.{name} ==", flush=True)
        importlib.import_module(f"bench.{name}").main()


if __name__ == "__main__":
    main()
