"""The SFT throughput benchmark behind ``benchmarks/sft_throughput.py`` (method: ``benchmarks/README.md``).

* ``cli``: the command-line flags and defaults, the printed report, the JSON file;
* ``run``: the run from start to end: data, probe, every configuration, the results;
* ``layouts``: the three batching layouts and their ``SFTConfig`` changes;
* ``data``: synthetic conversations with a chat-like length distribution;
* ``model``: the recipe's tokenizer and the model, with fp32 master weights;
* ``train``: one configuration trained and measured, in its own process;
* ``measure``: peak memory, token counts per batch, step times, held-out loss;
* ``isolation``: do packed conversations see one another? (logits packed vs alone);
* ``probe``: the machine, its datasheet peak (GPUs) and a dense-matmul probe of its FLOP/s;
* ``report``: ratios, the Markdown table and the findings in plain words.
"""

import os

# The parent process tokenizes before forking the workers; keep the Rust tokenizer single-threaded
# so that the forked children do not inherit a half-used thread pool.
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
