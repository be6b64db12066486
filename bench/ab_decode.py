"""Decode tok/s of one checkout, for A/B runs of a runtime change on the same machine (no peer: use
bench_runtime.py / bench_qwen.py for the ratios against llama.cpp and transformers).

    PYTHONPATH=/path/to/old/checkout .venv/bin/python bench/ab_decode.py smollm2-135m-instruct int8 old
    PYTHONPATH=. .venv/bin/python bench/ab_decode.py smollm2-135m-instruct int8 new

Loads the model at q4, sets the decode activations (float32 or int8), and prints the best of 5
(65-token minus 1-token generations, a 64-token prompt, greedy, 2 threads) as JSON. Run the two
checkouts alternately, several times: a shared VM moves by 15 % or more between runs.
"""

import json
import sys
import time

import torch

from llm_magics import models, runtime
from llm_magics.runtime import quantize

name, mode, label = sys.argv[1], sys.argv[2], sys.argv[3]
torch.set_num_threads(2)
lm = runtime.load(models.resolve(name), dtype="q4")
quantize.set_decode(lm.module, mode)
ids = list(range(1000, 1064))
run = dict(stop_token_ids=[], stop_on_loop=False, threads=2)
lm.generate(ids, max_new_tokens=8, **run)  # warm-up: kernels compiled, pages touched
best = 0.0
for _ in range(5):
    t = time.perf_counter()
    lm.generate(ids, max_new_tokens=1, **run)
    first = time.perf_counter() - t
    t = time.perf_counter()
    lm.generate(ids, max_new_tokens=65, **run)
    best = max(best, 64 / (time.perf_counter() - t - first))
print(json.dumps({"tree": label, "model": name, "mode": mode, "tok_s": round(best, 1)}))
