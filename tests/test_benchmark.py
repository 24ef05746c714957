"""benchmarks/sft_throughput.py: runs on the tiny model, reports sane numbers, packing isolates.

Not a timed test: it checks what the benchmark reports, never how fast this machine is.
"""

import json
import math
import re
import subprocess
import sys

import pytest

from benchmarks.sft_bench import data
from benchmarks.sft_bench.cli import build_parser
from benchmarks.sft_bench.model import load_tokenizer
from benchmarks.sft_bench.report import PROBE_COLUMN
from tests.paths import ROOT

SCRIPT = ROOT / "benchmarks" / "sft_throughput.py"
CONFIGS = {"padding", "padding_free", "packing_bfd"}
# A handful of steps on the course's tiny model: 8 conversations, 2 steps per configuration.
QUICK = ["--tiny", "--conversations", "8", "--eval-conversations", "2", "--batch-size", "4"]


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    out = tmp_path_factory.mktemp("sft-throughput") / "results.json"
    completed = subprocess.run(
        [sys.executable, str(SCRIPT), *QUICK, "--out", str(out)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert completed.returncode == 0, completed.stdout[-2000:] + completed.stderr[-4000:]
    return json.loads(out.read_text()), completed.stdout


def test_the_three_configurations_ran_without_errors(run):
    results, _ = run
    assert set(results["configs"]) == CONFIGS
    for name, result in results["configs"].items():
        assert "error" not in result, f"{name}: {result.get('error')}"


def test_fields_are_sane(run):
    results, _ = run
    for name, r in results["configs"].items():
        assert r["steps"] >= 1, name
        assert 0 < r["real_tokens"] <= r["processed_tokens"], name
        assert r["pad_tokens"] == r["processed_tokens"] - r["real_tokens"], name
        assert 0 <= r["pad_fraction"] < 1, name
        assert r["train_seconds"] > 0 and r["real_tokens_per_s"] > 0, name
        assert r["peak_memory_mb"] > 0 and r["memory_kind"], name
        assert len(r["step_seconds"]) == r["steps"] == len(r["step_losses"]), name
        for key in ("final_train_loss", "eval_loss", "train_loss_token_weighted"):
            assert math.isfinite(r[key]) and 0 < r[key] < 20, (name, key, r[key])
    assert results["model"]["parameters"] > 0
    assert results["machine"]["device"] in {"cpu", "cuda", "mps"}


def test_every_configuration_trains_fp32_master_weights(run):
    """What the notebook trains: fp32 weights under the optimizer, whatever dtype the checkpoint stores."""
    for name, r in run[0]["configs"].items():
        assert r["trained_parameter_dtypes"] == ["torch.float32"], name


def test_every_configuration_trains_the_same_real_tokens(run):
    results, _ = run
    total = results["dataset"]["conversation_tokens"]["total"]
    assert results["equal_real_tokens"] is True
    assert {r["real_tokens"] for r in results["configs"].values()} == {total}
    assert {r["conversations"] for r in results["configs"].values()} == {results["settings"]["conversations"]}


def test_only_plain_padding_pads(run):
    configs = run[0]["configs"]
    assert configs["padding"]["pad_tokens"] > 0
    assert configs["padding_free"]["pad_tokens"] == 0
    assert configs["packing_bfd"]["pad_tokens"] == 0


def test_ratios_are_against_plain_padding(run):
    results, stdout = run
    ratios = results["ratios_vs_padding"]
    assert set(ratios) == CONFIGS
    assert ratios["padding"]["real_tokens_per_s"] == pytest.approx(1.0)
    for name in CONFIGS:
        assert ratios[name]["real_tokens_per_s"] > 0 and ratios[name]["peak_memory"] > 0
    for name in CONFIGS:
        assert f"| {name} |" in stdout, "the results table was not printed"


def test_padding_free_trains_exactly_like_padding(run):
    """Same batches, same seed: if the flattened conversations leaked, the losses would drift apart."""
    configs = run[0]["configs"]
    assert configs["padding_free"]["real_tokens_per_step"] == configs["padding"]["real_tokens_per_step"]
    assert configs["padding_free"]["eval_loss"] == pytest.approx(configs["padding"]["eval_loss"], abs=1e-4)
    assert configs["padding_free"]["step_losses"] == pytest.approx(configs["padding"]["step_losses"], abs=1e-4)


def test_packed_conversations_do_not_attend_to_one_another(run):
    results, stdout = run
    check = results["isolation_check"]
    assert len(check["segments"]) >= 2, "the packed row should hold several conversations"
    # The check can see a leak: both controls (positions that do not restart, an all-ones
    # attention mask) change the logits of the later conversations.
    assert check["controls_detect_leaks"], check
    assert {"sdpa", "eager"} <= set(check["implementations"])
    for implementation, entry in check["implementations"].items():
        assert entry["isolated"], (
            f"with {implementation}, a packed conversation's logits differ from its logits alone by "
            f"{entry['max_abs_diff']:.2e} (tolerance {entry['tolerance']:.1e}): packing leaks across examples"
        )
        assert f"attn_implementation={implementation} on {results['machine']['device']} isolates" in stdout
    assert check["passed"] is True


def test_synthetic_data_is_deterministic_and_fits(tiny):
    tokenizer = load_tokenizer(str(tiny["base"]))
    first, clipped = data.make_conversations(tokenizer, 12, seed=3, max_length=64, scale=1.0)
    again, _ = data.make_conversations(tokenizer, 12, seed=3, max_length=64, scale=1.0)
    other, _ = data.make_conversations(tokenizer, 12, seed=4, max_length=64, scale=1.0)
    assert first == again and first != other
    assert clipped > 0, "a 64-token limit should clip some of the long tail"
    for messages in first:
        assert [m["role"] for m in messages] == ["user", "assistant"] * (len(messages) // 2)
        assert data.conversation_length(tokenizer, messages) <= 64


def test_matmul_probe_gives_each_configuration_a_share_of_the_machine(run):
    results, stdout = run
    probe = results["matmul_probe"]
    assert (probe["device"], probe["dtype"]) == ("cpu", "float32")
    assert probe["threads"] == results["settings"]["threads"]
    bests = [probe[when]["flops_per_s_best"] for when in ("before_training", "after_training")]
    assert all(best > 0 for best in bests) and probe["flops_per_s"] == max(bests)
    n_params = results["model"]["parameters"]
    for name, r in results["configs"].items():
        achieved = 6 * n_params * r["real_tokens_per_s"]
        assert r["probe_share_real_tokens"] == pytest.approx(achieved / probe["flops_per_s"]), name
        assert f"{r['probe_share_real_tokens']:.1%} |" in stdout.split(f"| {name} |")[1].splitlines()[0], name
    assert PROBE_COLUMN in stdout


def test_readme_documents_exactly_the_scripts_flags():
    readme = (ROOT / "benchmarks" / "README.md").read_text(encoding="utf-8")
    documented = set(re.findall(r"(?<![\w-])--[a-z][a-z-]+", readme))
    flags = {flag for action in build_parser()._actions for flag in action.option_strings if flag.startswith("--")}
    assert documented == flags, "benchmarks/README.md and the script disagree on the flags"
