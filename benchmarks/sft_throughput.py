"""How fast is the SFT recipe we teach? Plain padding vs padding-free vs BFD packing.

Trains the recipe of ``1_instruction_tuning/notebooks/sft_finetuning_example.ipynb`` once per
batching layout (``padding``, ``padding_free``, ``packing_bfd``) on the same synthetic
conversations, and compares real tokens per second, peak memory and losses; a dense-matmul probe
measures what the machine can reach in the same run. The code is in ``benchmarks/sft_bench/``.

Usage (from the repository root)::

    python benchmarks/sft_throughput.py                  # SmolLM2-135M architecture, ~5 min on 2 CPU cores
    python benchmarks/sft_throughput.py --tiny           # the course's tiny model, seconds
    python benchmarks/sft_throughput.py --long           # max_length 1024, 4x longer turns, more data
    python benchmarks/sft_throughput.py --out results.json

See ``benchmarks/README.md`` for the method and the latest results.
"""

import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from benchmarks.sft_bench.cli import main  # noqa: E402
from benchmarks.sft_bench.layouts import sft_config_kwargs  # noqa: E402, F401 (tests/test_recipe.py reads it here)

if __name__ == "__main__":
    main()
