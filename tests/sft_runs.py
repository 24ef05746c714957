"""Every extra run of the SFT notebook the suite makes, in two kernels side by side (``run_variants``).

Each kernel runs its share one after the other, the namespace emptied between runs, which saves a
kernel start and the notebook's imports (about 11 s) per run. One short own-data run is made twice:
first in a fresh kernel, then in the other kernel after LoRA, so that
``test_same_seed_gives_the_same_final_loss`` also shows that a shared kernel carries nothing over.
Steps and rates, measured when they were chosen (exact match on the 40 held-out chats; the bound is 0.8):

* full fine-tuning: 200 steps at 1e-2 (the tiny parameters, ``course_harness/runner.py``) reach 0.85,
  0.825, 0.85 on seeds 42, 1, 2 with padding (150 steps: 0.6; 200 at 8e-3: 0.775 to 0.725); the suite
  ran 600 steps at 2e-3 until then (0.925, 0.875);
* the other seeds train with the other batching options: every seed and every layout learns, in three
  runs where there were five (the default seed with each layout, and two more seeds with padding);
* packing fills a 128-token row with about two fixture chats, so 8 rows a step see the chats of 16
  padded rows: 250 packed steps reach 0.925 on seed 42 (200: 0.825). 16 packed rows make one
  2,048-token row for the attention, 4x slower a step on the CPU;
* LoRA trains fewer weights and wants more steps: 400 at 7e-3 reach 0.875 (400 at 1e-2: 0.85, 300 at
  1e-2: 0.75, 200 at 2e-2: 0.275); the suite ran 600 at 5e-3 until then (0.95).
"""

from course_harness.runner import OWN_DATA_SHAPES, run_variants

SFT = "sft_finetuning_example.ipynb"
OTHER_SEEDS = {1: "sft-seed-1-padding_free", 2: "sft-seed-2-packing"}
OTHER_BATCHING = {"padding_free": OTHER_SEEDS[1], "packing": OTHER_SEEDS[2]}
LORA = "sft-lora"
VARIANTS = {
    OTHER_SEEDS[1]: {"seed": 1, "batching": "padding_free"},
    OTHER_SEEDS[2]: {"seed": 2, "batching": "packing", "max_steps": 250, "batch_size": 8},
    LORA: {"use_lora": True, "max_steps": 400, "learning_rate": 7e-3},
}
# Own data (test_sft_own_data.py): short runs on small fixtures prove the plumbing. After 30 steps no reply
# ended its turn; after 120, all of them did, given 48 new tokens (with 24, a quarter of the support-chats
# replies, longer than that, could not).
SHORT_RUN = {"max_steps": 120, "eval_prompts": 8, "max_new_tokens": 48, "batch_size": 8}
REJECTED = "rejected-text-column"
SHAPES = {name: parameters | SHORT_RUN for name, parameters in OWN_DATA_SHAPES.items()}
SHAPES[REJECTED] = OWN_DATA_SHAPES["language-modeling-named-split"] | {"text_field": "body"}
# the same run twice, the shortest one (3 to 5 s of training): first in a fresh kernel, then after LoRA
SAME_SEED = ("prompt-completion-train-only", "prompt-completion-train-only-again")
REPEATS = {SAME_SEED[1]: SHAPES[SAME_SEED[0]]}
# dealt to the two kernels in turn, about 100 s each:
# LoRA, the repeat, two shapes, the rejected one | the repeated shape, packing, padding-free, one shape
ORDER = [
    LORA,
    SAME_SEED[0],
    SAME_SEED[1],
    OTHER_SEEDS[2],
    "conversational-validation",
    OTHER_SEEDS[1],
    "language-modeling-named-split",
    "chat-prompt-completion-test",
    REJECTED,
]


def run_every_sft_variant(tiny):
    """name → summary entry, for VARIANTS and SHAPES."""
    runs = VARIANTS | SHAPES | REPEATS
    assert sorted(ORDER) == sorted(runs), "ORDER must name every run once"
    return run_variants(SFT, {name: runs[name] for name in ORDER}, tiny)
