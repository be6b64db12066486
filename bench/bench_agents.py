"""Agent benchmark: task success, steps, malformed calls and time per task, against LangChain.

    .venv/bin/python bench/bench_agents.py                          # every config, every task
    .venv/bin/python bench/bench_agents.py --limit 4 --configs ours-grammar,langchain-react

Tasks: ``bench/agents_tasks.jsonl`` (24: arithmetic that needs the calculator, questions over
a real SQLite database of the planets and the first ten elements, questions over the bundled
demo documents ingested into a real Chroma collection, and tasks that need two tools), each
with gold answers; a task succeeds when a gold string is in the final answer (commas ignored).

Configs, alternating per task (A, B, C, A, B, C ...), all greedy, the same step budget,
the same tools (the very same Python objects) and the same model weights:
- ``ours-grammar``: ``Agent`` ReAct on the local runtime, each step constrained by the tools' grammar;
- ``ours-react``: the same without the grammar (prompt + lenient parser);
- ``langchain-react``: LangChain's classic ReAct agent (``create_react_agent`` + ``AgentExecutor``,
  ``handle_parsing_errors=True``) on the same runtime model, wrapped as a LangChain LLM;
- ``ours-native`` / ``langchain-native`` (with ``--server URL``): native tool calls on an
  OpenAI-compatible server (llama.cpp), ours against LangChain ``create_agent`` + ``ChatOpenAI``.
Results go to bench/results_agents.md (and every run, one JSON line per task, to results_agents.jsonl).
"""

from __future__ import annotations

import argparse
import json
import os
import re
import sqlite3
import statistics
import sys
import tempfile
import time
from datetime import date
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
sys.path.insert(0, str(ROOT))
os.environ.setdefault("ANONYMIZED_TELEMETRY", "False")
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")

REACT_TEMPLATE = """Answer the following questions as best you can. You have access to the following tools:

{tools}

Use the following format:

Question: the input question you must answer
Thought: you should always think about what to do
Action: the action to take, should be one of [{tool_names}]
Action Input: the input to the action
Observation: the result of the action
... (this Thought/Action/Action Input/Observation can repeat N times)
Thought: I now know the final answer
Final Answer: the final answer to the original input question

Begin!

Question: {input}
Thought:{agent_scratchpad}"""  # LangChain hub's hwchase17/react, the prompt create_react_agent is documented with


def success(answer: str, gold: list[str]) -> bool:
    """A gold string in the answer as a whole word ("Ne" is not found in "Neon"), commas ignored."""
    text = (answer or "").replace(",", "").lower()
    return any(re.search(rf"(?<![a-z0-9]){re.escape(g.replace(',', '').lower())}(?![a-z0-9])", text) for g in gold)


# ─── the setting both sides share ──────────────────────────────────────────────


def setup(workdir: Path):
    from llm_magics import Index

    db = workdir / "planets.db"
    with sqlite3.connect(db) as c:
        c.executescript((ROOT / "tests" / "agents" / "data" / "planets.sql").read_text())
    index = Index(collection="agent-bench", path=str(workdir / "chroma"))
    index.add([str(ROOT / "llm_magics" / "demo" / "data")], recursive=True, progress=False)
    return f"sqlite:///{db}", index


def our_tools(names, db, index):
    from llm_magics.agents import get_tools

    return get_tools(list(names), db=db, index=index)


# ─── our side ──────────────────────────────────────────────────────────────────


def run_ours(task, backend, tools, constrained, args, mode="react"):
    from llm_magics.agents import Agent

    agent = Agent(tools, backend, mode=mode, constrained=constrained if mode == "react" else None,
                  max_steps=args.max_steps, max_tokens=args.max_tokens)  # fmt: skip
    r = agent.run(task["task"])
    return {"answer": r.answer, "steps": len(r.steps), "malformed": r.malformed_calls, "finish": r.finish_reason}


# ─── LangChain's side ──────────────────────────────────────────────────────────


def langchain_tools(tools):
    from langchain_core.tools import Tool as LCTool

    from llm_magics.agents.react import coerce_arguments

    def wrap(t):
        def call(text: str) -> str:
            try:
                value = json.loads(text)
            except (json.JSONDecodeError, TypeError):
                value = text
            try:
                return t(**t.validate(coerce_arguments(t, value))).content
            except Exception as e:  # noqa: BLE001 - as our loop does: the error is the observation
                return f"Error: {type(e).__name__}: {e}"

        return LCTool(name=t.name, func=call, description=f"{t.description} Input: {json.dumps(t.parameters.get('properties', {}))}")

    return [wrap(t) for t in tools]


def runtime_llm(backend):
    """Our runtime model as a LangChain LLM: the prompt as one user turn in the model's chat template."""
    from langchain_core.language_models.llms import LLM

    class RuntimeLLM(LLM):
        @property
        def _llm_type(self) -> str:
            return "llm-magics-runtime"

        def _call(self, prompt, stop=None, run_manager=None, **kwargs):
            from llm_magics.backends import GenerationParams

            params = GenerationParams(temperature=0.0, max_tokens=kwargs.get("max_tokens", ARGS.max_tokens), stop=list(stop or []))
            return backend.complete([{"role": "user", "content": prompt}], params).text

    return RuntimeLLM()


def run_langchain_react(task, backend, tools, args):
    from langchain_classic.agents import AgentExecutor, create_react_agent
    from langchain_core.prompts import PromptTemplate

    lc_tools = langchain_tools(tools)
    agent = create_react_agent(runtime_llm(backend), lc_tools, PromptTemplate.from_template(REACT_TEMPLATE))
    executor = AgentExecutor(agent=agent, tools=lc_tools, max_iterations=args.max_steps, handle_parsing_errors=True,
                             return_intermediate_steps=True)  # fmt: skip
    out = executor.invoke({"input": task["task"]})
    steps = out.get("intermediate_steps", [])
    malformed = sum(1 for action, _ in steps if action.tool in ("_Exception", "invalid_tool")
                    or action.tool not in {t.name for t in lc_tools})  # fmt: skip
    answer = out.get("output", "")
    stopped = "Agent stopped" in answer
    return {"answer": "" if stopped else answer, "steps": len(steps) + (0 if stopped else 1), "malformed": malformed,
            "finish": "max_steps" if stopped else "final_answer"}  # fmt: skip


def run_langchain_native(task, server, tools, args):
    from langchain.agents import create_agent
    from langchain_core.tools import StructuredTool
    from langchain_openai import ChatOpenAI

    def wrap(t):
        return StructuredTool.from_function(func=lambda **kw: t(**t.validate(kw)).content, name=t.name, description=t.description,
                                            args_schema=t.parameters)  # fmt: skip

    model = ChatOpenAI(base_url=server, api_key="none", model=args.model, temperature=0, max_tokens=args.max_tokens)
    agent = create_agent(model, [wrap(t) for t in tools], system_prompt="You answer questions. Call a tool whenever it helps.")
    out = agent.invoke({"messages": [{"role": "user", "content": task["task"]}]}, {"recursion_limit": 2 * args.max_steps + 1})
    messages = out["messages"]
    calls = sum(len(getattr(m, "tool_calls", []) or []) for m in messages)
    return {"answer": messages[-1].content if messages else "", "steps": calls + 1, "malformed": 0, "finish": "final_answer"}


# ─── the run ───────────────────────────────────────────────────────────────────


def main():
    global ARGS
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--configs", default="ours-grammar,ours-react,langchain-react")
    p.add_argument("--model", default="smollm2")
    p.add_argument("--server", help="OpenAI-compatible base URL (llama.cpp with a function-calling chat format) for the *-native configs.")
    p.add_argument("--limit", type=int, default=0, help="Only the first N tasks (0: all).")
    p.add_argument("--kinds", default="", help="Only these task kinds (comma-separated).")
    p.add_argument("--max-steps", type=int, default=4)
    p.add_argument("--max-tokens", type=int, default=128)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--out", default=str(HERE / "results_agents.md"))
    p.add_argument("--report-only", action="store_true", help="Write the report from the latest run in results_agents.jsonl (e.g. one cut short).")
    p.add_argument("--run", help="With --report-only: the run (its start time in the log) instead of the latest.")
    ARGS = args = p.parse_args()
    if args.report_only:
        return report_from_log(p, args.run)
    import torch

    torch.set_num_threads(args.threads)
    from llm_magics.backends import get_model

    tasks = [json.loads(line) for line in (HERE / "agents_tasks.jsonl").read_text().splitlines() if line.strip()]
    if args.kinds:
        tasks = [t for t in tasks if t["kind"] in args.kinds.split(",")]
    by_kind: dict[str, list] = {}
    for t in tasks:
        by_kind.setdefault(t["kind"], []).append(t)
    tasks = [t for group in zip(*by_kind.values()) for t in group] + [t for g in by_kind.values() for t in g[min(map(len, by_kind.values())):]]
    # round-robin over the kinds, so a run cut short still covers every kind
    if args.limit:
        tasks = tasks[: args.limit]
    configs = [c.strip() for c in args.configs.split(",") if c.strip()]
    workdir = Path(tempfile.mkdtemp(prefix="bench-agents-"))
    db, index = setup(workdir)
    backend = get_model(args.model, capture_attention=False)  # both sides on the fast path
    t0 = time.perf_counter()
    if any(not c.endswith("-native") for c in configs):  # the native configs run on the server only
        backend.runtime_model
    load_s = time.perf_counter() - t0
    # the server's model by the name given to it (llama_cpp.server --model_alias MODEL)
    server_backend = get_model(f"openai:{args.model}", base_url=args.server, api_key="none") if args.server else None
    rows: list[dict] = []
    run = time.strftime("%Y-%m-%dT%H:%M:%S")
    header = {"run": run, "header": True, "configs": configs, "argv": sys.argv[1:], "load_s": load_s, "tasks": len(tasks)}
    (HERE / "results_agents.jsonl").open("a").write(json.dumps(header) + "\n")
    log = (HERE / "results_agents.jsonl").open("a")
    for n, task in enumerate(tasks):
        tools = our_tools(task["tools"], db, index)
        order = configs[n % len(configs):] + configs[: n % len(configs)]  # rotate who goes first
        for config in order:
            started = time.perf_counter()
            try:
                if config == "ours-grammar":
                    out = run_ours(task, backend, tools, True, args)
                elif config == "ours-react":
                    out = run_ours(task, backend, tools, False, args)
                elif config == "langchain-react":
                    out = run_langchain_react(task, backend, tools, args)
                elif config == "ours-native":
                    out = run_ours(task, server_backend, tools, None, args, mode="native")
                elif config == "langchain-native":
                    out = run_langchain_native(task, args.server, tools, args)
                else:
                    raise SystemExit(f"unknown config {config}")
            except Exception as e:  # noqa: BLE001 - a crash is a failed task, recorded
                out = {"answer": "", "steps": 0, "malformed": 0, "finish": f"crash: {type(e).__name__}: {e}"[:200]}
            out.update(run=run, config=config, id=task["id"], kind=task["kind"], seconds=time.perf_counter() - started,
                       ok=success(out["answer"], task["gold"]), model=args.model, date=str(date.today()))  # fmt: skip
            rows.append(out)
            log.write(json.dumps(out) + "\n")
            log.flush()
            print(f"{task['id']:<9} {config:<16} ok={out['ok']!s:<5} steps={out['steps']} malformed={out['malformed']} "
                  f"{out['seconds']:.1f}s {out['finish']:<13} {out['answer'][:60]!r}", flush=True)  # fmt: skip
    write_report(rows, configs, args, load_s, len(tasks))


def report_from_log(parser, run: str | None = None):
    """The report of the latest run in the log (or of ``run``), scored again by ``success``."""
    records = [json.loads(line) for line in (HERE / "results_agents.jsonl").read_text().splitlines() if line.strip()]
    header = [r for r in records if r.get("header") and (run is None or r["run"] == run)][-1]
    rows = [r for r in records if r.get("run") == header["run"] and not r.get("header")]
    gold = {t["id"]: t["gold"] for t in (json.loads(line) for line in (HERE / "agents_tasks.jsonl").read_text().splitlines() if line.strip())}
    for r in rows:
        r["ok"] = success(r["answer"], gold[r["id"]])
    sys.argv[1:] = header["argv"]
    args = parser.parse_args(header["argv"])
    write_report(rows, header["configs"], args, header["load_s"], header["tasks"], partial=True)


def write_report(rows, configs, args, load_s, n_tasks, partial=False):
    done = len({r["id"] for r in rows})
    lines = [
        "# Agent benchmark", "",
        f"{date.today()} · `{' '.join(['.venv/bin/python bench/bench_agents.py', *sys.argv[1:]])}`", "",
        *([f"**Cut short:** {done} of {n_tasks} tasks ran before the deadline (the 2-core machine was shared and loaded; see below).", ""] if partial and done < n_tasks else []),
        f"{n_tasks} tasks from bench/agents_tasks.jsonl; model `{args.model}` (load {load_s:.1f} s); step budget {args.max_steps}, "
        f"{args.max_tokens} tokens per step, greedy, {args.threads} torch threads; configs alternate per task. "
        "Success: a gold string in the final answer.", "",
        "| config | success | malformed calls | steps / task (mean) | s / task (median) | by kind (success) |",
        "| --- | --- | --- | --- | --- | --- |",
    ]  # fmt: skip
    base = None
    for config in configs:
        mine = [r for r in rows if r["config"] == config]
        if not mine:
            continue
        ok = sum(r["ok"] for r in mine)
        kinds = {}
        for r in mine:
            kinds.setdefault(r["kind"], []).append(r["ok"])
        by_kind = ", ".join(f"{k} {sum(v)}/{len(v)}" for k, v in kinds.items())
        lines.append(f"| {config} | {ok}/{len(mine)} | {sum(r['malformed'] for r in mine)} | {statistics.mean(r['steps'] for r in mine):.1f} | "
                     f"{statistics.median(r['seconds'] for r in mine):.1f} | {by_kind} |")  # fmt: skip
        base = base or (config, ok)
    lines += ["", "Per task:", "", "| task | " + " | ".join(configs) + " |", "| --- |" + " --- |" * len(configs)]
    for tid in dict.fromkeys(r["id"] for r in rows):
        cells = []
        for config in configs:
            r = next((r for r in rows if r["id"] == tid and r["config"] == config), None)
            cells.append("—" if r is None else f"{'✓' if r['ok'] else '✗'} {r['steps']} st, {r['seconds']:.0f} s")
        lines.append(f"| {tid} | " + " | ".join(cells) + " |")
    Path(args.out).write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


ARGS = None

if __name__ == "__main__":
    main()
