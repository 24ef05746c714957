"""The recipe trained by two processes, as `accelerate launch` runs it on two GPUs, here on the CPU (gloo).

The configs are the learners' files with only the process count and the CPU set
(course_harness/accelerate_cpu.py). tests/recorded_sft.py runs TRL's own sft script and records, per
process, the sequences of every batch and a hash of the final weights. The reference is the same script
in one process, with the same effective batch.
"""

import json
import subprocess
import sys
import time

import pytest
import torch
import yaml
from safetensors.torch import load_file

from course_harness.accelerate_cpu import CPU_OVERRIDES, cpu_variant, write_cpu_variant
from course_harness.runner import offline_environment
from tests import recorded_sft
from tests.paths import FIXTURES, ROOT
from tests.real_layout import real_layout_fixture  # noqa: F401 (the real_layout fixture)
from tests.test_recipe import RECIPES, cpu_command, trl_cli_split

PROCESSES, PER_DEVICE, STEPS = 2, 4, 4
# Both runs compute in fp32 and see the same sequences per step; DDP sums the two half-batch gradients
# in another order, so the figures differ by rounding only.
LOSS_TOLERANCE = 1e-4  # absolute, on each step's logged loss (about 6.2)
WEIGHT_TOLERANCE = 1e-6  # absolute, on every weight after training


def script_arguments(model, output_dir, per_device):
    """The documented CPU command's arguments for the script, on the tiny default, a few steps logged one by one."""
    with pytest.MonkeyPatch.context() as monkeypatch:
        _, arguments = trl_cli_split(cpu_command(), monkeypatch)
    return [*arguments,
        "--model_name_or_path", str(model), "--dataset_name", str(FIXTURES / "smoltalk"),
        "--output_dir", str(output_dir), "--max_steps", str(STEPS), "--per_device_train_batch_size", str(per_device),
        "--eval_strategy", "no", "--logging_steps", "1",
    ]  # fmt: skip


def records(record_dir):
    return [json.loads(path.read_text()) for path in sorted(record_dir.glob("rank*.json"))]


def launch_two_processes(config_name, model, out):
    """`accelerate launch` of the recipe with the CPU variant of a learners' config; the records and the seconds."""
    config = write_cpu_variant(RECIPES / "accelerate" / f"{config_name}.yaml", out / "configs", PROCESSES)
    (out / "records").mkdir(parents=True)
    arguments = script_arguments(model, out / "model", PER_DEVICE)
    command = [sys.executable, "-m", "accelerate.commands.launch", "--config_file", str(config),
        str(ROOT / "tests" / "recorded_sft.py"), *arguments, "--record_dir", str(out / "records")]  # fmt: skip
    env = offline_environment(out / "datasets-cache")
    start = time.perf_counter()
    result = subprocess.run(command, cwd=ROOT, env=env, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    return records(out / "records"), time.perf_counter() - start


@pytest.fixture(scope="module")
def single_process(real_layout, tmp_path_factory):
    """The same script in this process, one process with the whole effective batch."""
    out = tmp_path_factory.mktemp("single")
    (out / "records").mkdir()
    with pytest.MonkeyPatch.context() as monkeypatch:
        monkeypatch.chdir(ROOT)
        monkeypatch.setattr("datasets.config.HF_DATASETS_CACHE", str(out / "datasets-cache"))
        recorded_sft.run(script_arguments(real_layout, out / "model", PER_DEVICE * PROCESSES), out / "records")
    (record,) = records(out / "records")
    return record, out / "model"


@pytest.fixture(scope="module")
def ddp(real_layout, tmp_path_factory):
    out = tmp_path_factory.mktemp("ddp")
    ranks, seconds = launch_two_processes("multi_gpu_ddp", real_layout, out)
    return ranks, seconds, out / "model"


def losses(record):
    return [entry["loss"] for entry in record["log_history"] if "loss" in entry]


def test_cpu_variant_changes_only_the_process_count_and_the_device():
    for name in ("multi_gpu_ddp", "fsdp"):
        path = RECIPES / "accelerate" / f"{name}.yaml"
        learners, derived = yaml.safe_load(path.read_text()), cpu_variant(path, num_processes=1)
        changed = {key for key in learners.keys() | derived.keys() if learners.get(key) != derived.get(key)}
        assert changed <= set(CPU_OVERRIDES), changed


def test_two_processes_train_on_different_batches_that_make_up_the_single_process_batch(ddp, single_process):
    ranks, seconds, _ = ddp
    reference, _ = single_process
    assert [r["processes"] for r in ranks] == [PROCESSES] * PROCESSES, "both processes joined one group"
    assert {(r["distributed_type"], r["wrapped_as"]) for r in ranks} == {("MULTI_CPU", "DistributedDataParallel")}
    print(f"\nDDP, {PROCESSES} processes on the CPU (gloo), {STEPS} steps of {PER_DEVICE} per process: {seconds:.1f} s")
    for step in range(STEPS):
        per_rank = [set(r["steps"][step]["sequences"]) for r in ranks]
        assert all(len(sequences) == PER_DEVICE for sequences in per_rank)
        assert not per_rank[0] & per_rank[1], f"step {step}: both processes trained on the same sequences"
        assert per_rank[0] | per_rank[1] == set(reference["steps"][step]["sequences"]), f"step {step}"
        print(f"  step {step}: " + " | ".join(f"rank {r}: {' '.join(sorted(s))}" for r, s in enumerate(per_rank)))


def test_two_processes_end_with_the_same_weights_in_fp32(ddp):
    ranks, _, _ = ddp
    assert len({r["weights_sha256"] for r in ranks}) == 1, [r["weights_sha256"] for r in ranks]
    assert all(r["parameter_dtypes"] == ["torch.float32"] for r in ranks), "bf16 checkpoint, fp32 master weights"
    assert all(r["mixed_precision"] == "no" for r in ranks), "the documented CPU command computes in fp32"
    print(f"\nweights after training, sha256 on both ranks: {ranks[0]['weights_sha256'][:16]}")


def test_two_processes_match_one_process_with_the_same_effective_batch(ddp, single_process):
    ranks, _, ddp_model = ddp
    reference, single_model = single_process
    two, one = losses(ranks[0]), losses(reference)
    loss_gap = max(abs(a - b) for a, b in zip(two, one, strict=True))
    trained, expected = load_file(ddp_model / "model.safetensors"), load_file(single_model / "model.safetensors")
    weight_gap = max((trained[name] - expected[name]).abs().max().item() for name in expected)
    print(f"\nlosses, 2 x {PER_DEVICE}: {[round(x, 6) for x in two]}")
    print(f"losses, 1 x {PER_DEVICE * PROCESSES}: {[round(x, 6) for x in one]}")
    print(f"largest gap: loss {loss_gap:.2e} (at most {LOSS_TOLERANCE}), weights {weight_gap:.2e} ({WEIGHT_TOLERANCE})")
    assert loss_gap <= LOSS_TOLERANCE and weight_gap <= WEIGHT_TOLERANCE
    assert {t.dtype for t in trained.values()} == {torch.float32}


def test_fsdp_config_runs_as_ddp_on_the_cpu(real_layout, tmp_path):
    """accelerate 1.15 turns on FSDP only for GPU-like devices (AcceleratorState keeps MULTI_CPU as it is):
    on the CPU the FSDP config trains unsharded, as DDP, without an error. Say so, and notice when it changes."""
    ranks, seconds = launch_two_processes("fsdp", real_layout, tmp_path)
    found = {(r["distributed_type"], r["wrapped_as"]) for r in ranks}
    print(f"\nFSDP config, {PROCESSES} processes on the CPU: {found} in {seconds:.1f} s")
    assert found == {("MULTI_CPU", "DistributedDataParallel")}, "FSDP now runs on the CPU: test it like DDP"
    assert len({r["weights_sha256"] for r in ranks}) == 1
