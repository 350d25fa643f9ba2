"""Whether this machine's CPU caches hold a process's data across the idle gaps a trading runtime sees.

A symbol ticking 50 times a second leaves its process idle ~20 ms between ticks; `tick_cpu.py --gap-ms 20`
shows what the same tick then costs. This separates the machine from the code: a C walk over SIZE KiB of
memory (`native/cache_survival.c`), timed back to back and after a gap spent sleeping or spinning on the clock
(touching no memory). If a walk after a spin is slower than back to back, something other than this process
evicted its data (another tenant of the core or its cache, on a shared virtual machine): no change to the
runtime's code can keep a tick's working set warm there. Needs a C compiler (`cc`).

    python benchmarks/cache_survival.py [--sizes 64,512] [--gaps-ms 0,1,6,20] [--json]
"""

from __future__ import annotations

import argparse
import json
import pathlib
import shutil
import subprocess
import sys
import tempfile

SOURCE = pathlib.Path(__file__).parent / "native" / "cache_survival.c"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", default="64,512", help="KiB walked, comma-separated")
    parser.add_argument("--gaps-ms", default="0,1,6,20", help="idle gaps before each walk, comma-separated")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    compiler = shutil.which("cc") or shutil.which("gcc")
    if compiler is None:
        sys.exit("cache_survival: no C compiler (cc) on this machine")
    with tempfile.TemporaryDirectory() as work:
        binary = pathlib.Path(work) / "cache_survival"
        subprocess.run([compiler, "-O2", "-o", str(binary), str(SOURCE)], check=True)
        results = []
        for size in args.sizes.split(","):
            for gap_ms in (float(g) for g in args.gaps_ms.split(",")):
                for wait in (("sleep", "spin") if gap_ms else ("sleep",)):
                    out = subprocess.run([str(binary), size, str(gap_ms / 1000), wait], check=True,
                                         capture_output=True, text=True).stdout
                    results.append(json.loads(out))
    if args.json:
        print(json.dumps(results, indent=2))
    else:
        for r in results:
            print(f"{r['size_kib']:>6} KiB after {1000 * r['gap_s']:>5g} ms {r['wait']:>5}: "
                  f"p50 {r['walk_p50_us']:>8.1f} µs  p95 {r['walk_p95_us']:>8.1f} µs")


if __name__ == "__main__":
    main()
