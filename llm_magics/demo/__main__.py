"""``python -m llm_magics.demo``: ingest the bundled documents, then ask about them offline."""

from __future__ import annotations

import argparse
import sys
import time

from . import DATA, QUESTIONS


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m llm_magics.demo", description=__doc__)
    parser.add_argument("questions", nargs="*", help="Questions to ask (default: three about the bundled documents).")
    parser.add_argument("--store-path", default=".llm_magics/demo-store", help="Where the demo's Chroma collection lives.")
    parser.add_argument("--chain-type", default="stuff", help="stuff, refine, map_reduce or map_rerank.")
    args = parser.parse_args(argv)

    from llm_magics import Index, ask

    t0 = time.perf_counter()
    index = Index(collection="demo", path=args.store_path)
    report = index.add([str(DATA)], recursive=True)
    print(report)
    print(f"(ingest took {time.perf_counter() - t0:.1f}s)\n")

    for question in args.questions or QUESTIONS:
        print(f"Q: {question}")
        print("A: ", end="", flush=True)
        answer = ask(question, index=index, chain_type=args.chain_type, memory=None,
                     stream_to=lambda piece: print(piece, end="", flush=True))
        print()
        for number, source in enumerate(answer.sources, 1):
            print(f"   [{number}] {source.label}")
        print()
    return 0


if __name__ == "__main__":
    sys.exit(main())
