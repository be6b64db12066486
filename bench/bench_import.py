"""Import and %load_ext time: llm-magics against jupyter-ai-magics (BENCH.md protocol).

    .venv/bin/python bench/bench_import.py [--peer-python /path/to/python-with-jupyter_ai_magics] [--repeats 7]

Each figure is the wall time of a fresh interpreter doing only the import (minus a bare
interpreter start measured in the same run), alternating ours and the peer's, median of
the repeats after one warm-up. The peer runs in its own virtual environment because its
dependencies (langchain and friends) are not ours; install it with
`python3 -m venv /tmp/peer && /tmp/peer/bin/pip install jupyter-ai-magics`.
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import time

OURS = {
    "import llm_magics": "import llm_magics",
    "%load_ext llm_magics": (
        "from IPython.core.interactiveshell import InteractiveShell\n"
        "s = InteractiveShell.instance()\n"
        "import time; t = time.perf_counter()\n"
        "s.run_cell('%load_ext llm_magics').raise_error()\n"
    ),
}
PEER = {
    "import llm_magics": "import jupyter_ai_magics",
    "%load_ext llm_magics": (
        "from IPython.core.interactiveshell import InteractiveShell\n"
        "s = InteractiveShell.instance()\n"
        "import time; t = time.perf_counter()\n"
        "s.run_cell('%load_ext jupyter_ai_magics').raise_error()\n"
    ),
}


def timed(python: str, code: str) -> float:
    start = time.perf_counter()
    subprocess.run([python, "-c", code], check=True, capture_output=True)
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--peer-python", default="/tmp/peer/bin/python")
    parser.add_argument("--repeats", type=int, default=7)
    args = parser.parse_args()

    try:
        subprocess.run([args.peer_python, "-c", "import jupyter_ai_magics"], check=True, capture_output=True)
        peer_ok = True
    except (OSError, subprocess.CalledProcessError):
        peer_ok = False
        print(f"(peer jupyter_ai_magics not importable with {args.peer_python}: ours only)")

    print("| what | ours (s) | jupyter-ai-magics (s) | ratio peer/ours |")
    print("|---|---|---|---|")
    for row in OURS:
        bare_ours = statistics.median(timed(sys.executable, "pass") for _ in range(args.repeats))
        bare_peer = statistics.median(timed(args.peer_python, "pass") for _ in range(args.repeats)) if peer_ok else 0.0
        if row.startswith("%"):  # the shell itself costs the same on both sides: measure it and subtract
            bare_ours = statistics.median(timed(sys.executable, OURS[row].rsplit("\n", 2)[0]) for _ in range(args.repeats))
            if peer_ok:
                bare_peer = statistics.median(timed(args.peer_python, PEER[row].rsplit("\n", 2)[0]) for _ in range(args.repeats))
        ours, peer = [], []
        timed(sys.executable, OURS[row])  # warm-up (file cache)
        if peer_ok:
            timed(args.peer_python, PEER[row])
        for _ in range(args.repeats):
            ours.append(timed(sys.executable, OURS[row]) - bare_ours)
            if peer_ok:
                peer.append(timed(args.peer_python, PEER[row]) - bare_peer)
        o = statistics.median(ours)
        if peer_ok:
            p = statistics.median(peer)
            print(f"| {row} | {o:.3f} | {p:.3f} | {p / o:.1f}x |")
        else:
            print(f"| {row} | {o:.3f} | n/a | n/a |")


if __name__ == "__main__":
    main()
