"""Rebuild the scale study's table, CSV and plot from its raw record, running nothing (the same as
`python -m bench.bench_scale --report`; how they are computed: podsearch/scale_report.py).

    python -m bench.scale_report     # bench/results/scale.json -> bench/results/scale.{md,csv,png}
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

from podsearch.scale_report import load_record, write_report


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--record", type=Path, default=Path("bench/results/scale.json"),
                        help="bench/bench_scale.py's raw record; the table, CSV and plot are written beside it")
    args = parser.parse_args(argv)
    if not args.record.exists():
        print(f"{args.record}: not found; `python -m bench.bench_scale` records it")
        return 1
    print(write_report(load_record(args.record), args.record.parent))
    return 0


if __name__ == "__main__":
    sys.exit(main())
