"""Rewrite the summaries (summary.md, summary.html, frontier.png) of committed bench folders from their
suite.json and results.json, with the running code's presentation (tables, intervals, plot).

The rows themselves are not recomputed: each keeps the code hash of the cell it came from, and this
script refuses a folder whose rows were computed by different code versions. Use it after changing how
summaries are written when the cells behind a committed folder are no longer on disk.

    python bench/resummarize.py bench/results/frontier [more folders...]
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from safecompress.benchmark import Suite, write_summaries


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("folders", nargs="+", type=Path)
    args = ap.parse_args(argv)
    for folder in args.folders:
        suite = Suite(**json.loads((folder / "suite.json").read_text()))
        rows = json.loads((folder / "results.json").read_text())
        codes = sorted({r.get("code") or "unknown" for r in rows})
        if len(codes) != 1:
            print(
                f"{folder}: rows from several code versions ({', '.join(codes)}); re-run the suite instead",
                file=sys.stderr,
            )
            return 2
        write_summaries(suite, rows, folder)
        print(f"{folder}: {len(rows)} rows (code {codes[0]}) -> summary.md, summary.html, frontier.png")
    return 0


if __name__ == "__main__":
    sys.exit(main())
