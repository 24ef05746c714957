"""The `trl sft` recipe is the notebook's recipe, and it trains offline on the tiny default."""

import ast
import os
import re
import shlex
import shutil
import subprocess
import sys
import time

import nbformat
import pytest
import torch
import yaml
from accelerate.commands.config.config_args import load_config_from_file
from transformers import AutoModelForCausalLM, AutoTokenizer

from course_harness import fixture_data
from course_harness.runner import offline_environment
from course_helpers import CHATML_TEMPLATE, chat_metrics
from tests.paths import FIXTURES, ROOT, load_module

RECIPES = ROOT / "1_instruction_tuning" / "recipes"
RECIPE = RECIPES / "sft_smollm2.yaml"
NOTEBOOK = ROOT / "1_instruction_tuning" / "notebooks" / "sft_finetuning_example.ipynb"
LESSON = ROOT / "1_instruction_tuning" / "supervised_fine_tuning.md"
ACCELERATE_CONFIGS = {"single_gpu": "NO", "multi_gpu_ddp": "MULTI_GPU", "fsdp": "FSDP"}

# recipe key -> notebook parameter with the same meaning (the rest are SFTConfig keywords of the notebook)
SAME_AS_PARAMETER = {
    "model_name_or_path": "model_name",
    "dataset_name": "dataset_name",
    "dataset_config": "dataset_config",
}


def recipe():
    return yaml.safe_load(RECIPE.read_text())


def notebook_recipe(**overrides):
    """The notebook's parameters (with ``overrides``), and its SFTConfig keywords evaluated with them."""
    cells = [c for c in nbformat.read(NOTEBOOK, as_version=4).cells if c.cell_type == "code"]
    parameters = {}
    exec([c for c in cells if "parameters" in c.metadata.get("tags", [])][0].source, {}, parameters)
    parameters |= overrides
    source = "\n".join(c.source for c in cells)
    cell = ast.parse(next(c.source for c in cells if "SFTConfig(" in c.source))
    assignment = next(
        statement
        for statement in cell.body
        if isinstance(statement, ast.Assign)
        and isinstance(statement.value, ast.Call)
        and getattr(statement.value.func, "id", None) == "SFTConfig"
    )
    # what the cell computes before SFTConfig (the batching options) is computed here too
    namespace = dict(parameters)
    exec(compile(ast.Module(cell.body[: cell.body.index(assignment)], []), "notebook", "exec"), namespace)

    def value(node):
        return eval(compile(ast.Expression(node), "notebook", "eval"), namespace)

    config = {}
    for keyword in assignment.value.keywords:
        if keyword.arg is not None:
            config[keyword.arg] = value(keyword.value)
        elif ast.unparse(keyword.value) != "precision":  # precision depends on the hardware: see bf16 below
            config |= value(keyword.value)
    return parameters, config, source


def test_recipe_shares_the_notebook_values():
    parameters, config, source = notebook_recipe()
    shared = recipe()
    compared = []
    for key, value in shared.items():
        if key in SAME_AS_PARAMETER:
            assert value == parameters[SAME_AS_PARAMETER[key]], f"{key}: recipe {value!r}, notebook {parameters}"
            compared.append(key)
        elif key in config:
            assert value == config[key], f"{key}: recipe {value!r}, notebook {config[key]!r}"
            compared.append(key)
    # what the notebook sets outside SFTConfig
    assert shared["eos_token"] == "<|im_end|>" and 'tokenizer.eos_token = "<|im_end|>"' in source
    assert (ROOT / shared["chat_template_path"]).read_text() == CHATML_TEMPLATE
    assert "tokenizer.chat_template = CHATML_TEMPLATE" in source
    assert shared["dtype"] == "float32" and "dtype=torch.float32" in source
    assert len(compared) >= 12, compared
    assert {"padding_free", "max_length", "assistant_only_loss"} <= set(compared), "the batching is not compared"
    print("compared with the notebook:", ", ".join(compared + ["eos_token", "chat_template_path", "dtype"]))


@pytest.mark.parametrize(
    "batching, expected",
    [
        ("padding", {"max_length": 1024}),
        ("padding_free", {"padding_free": True, "max_length": None}),
        ("packing", {"packing": True, "packing_strategy": "bfd", "max_length": 1024}),
    ],
)
def test_batching_parameter_sets_the_documented_sftconfig_options(batching, expected):
    _, config, _ = notebook_recipe(batching=batching)
    assert set(expected) <= set(config), f"missing from SFTConfig: {set(expected) - set(config)}"
    assert {key: config[key] for key in expected} == expected
    assert not {"padding_free", "packing"} - set(expected) & set(config), "options of another batching leaked in"


def test_unknown_batching_is_refused_with_the_choices():
    with pytest.raises(ValueError, match="batching must be one of .*'padding_free'.*not 'padding-free'"):
        notebook_recipe(batching="padding-free")


def test_benchmark_batches_the_way_the_notebook_does():
    """benchmarks/sft_throughput.py measures the notebook's three batching options, not its own variants."""
    benchmark = load_module(ROOT / "benchmarks" / "sft_throughput.py")
    settings = {"max_length": 1024, "batch_size": 8, "pack_batch_size": 3}
    same_layout = {"padding": "padding", "padding_free": "padding_free", "packing_bfd": "packing"}
    for benchmark_name, batching in same_layout.items():
        measured = benchmark.sft_config_kwargs(benchmark_name, settings)
        measured.pop("per_device_train_batch_size")  # the benchmark sizes packed steps by tokens (see its README)
        _, config, _ = notebook_recipe(batching=batching, max_length=settings["max_length"])
        batching_keys = ("padding_free", "packing", "packing_strategy", "max_length")
        taught = {key: config[key] for key in batching_keys if key in config}
        assert measured == taught, f"{benchmark_name}: benchmark {measured}, notebook {taught}"


def lesson_commands():
    """The `trl sft` commands the SFT lesson shows, split into arguments."""
    blocks = re.findall(r"```bash\n(.*?)```", LESSON.read_text(encoding="utf-8"), re.S)
    return [shlex.split(line) for block in blocks for line in block.splitlines() if line.startswith("trl sft")]


def test_lesson_commands_use_the_recipe_and_the_tested_configs():
    commands = lesson_commands()
    assert [c[c.index("--accelerate_config") + 1] for c in commands] == [
        f"1_instruction_tuning/recipes/accelerate/{name}.yaml" for name in ACCELERATE_CONFIGS
    ]
    for command in commands:
        assert command[:4] == ["trl", "sft", "--config", str(RECIPE.relative_to(ROOT))]


def tiny_cli_command(tiny, output_dir):
    """The lesson's one-GPU command, as shown, plus what puts it on this CPU and the tiny default."""
    shown = lesson_commands()[0]
    return [shutil.which("trl"), *shown[1:],
        "--cpu", "--mixed_precision", "no",  # accelerate: this machine has no GPU
        "--model_name_or_path", str(tiny["base"]),
        "--dataset_name", str(FIXTURES / "smoltalk"),
        "--output_dir", str(output_dir),
        "--max_steps", "300", "--learning_rate", "2e-3", "--per_device_train_batch_size", "16",
        "--eval_steps", "100", "--logging_steps", "50",
        "--bf16", "false", "--use_cpu", "true",
    ]  # fmt: skip


def test_cli_recipe_trains_a_model_that_answers_in_chatml(tiny, tmp_path):
    env = os.environ | offline_environment(tmp_path / "datasets-cache")
    start = time.perf_counter()
    result = subprocess.run(tiny_cli_command(tiny, tmp_path / "out"), cwd=ROOT, env=env, capture_output=True, text=True)
    seconds = time.perf_counter() - start
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    final_loss = float(re.findall(r"'train_loss': '([0-9.e-]+)'", result.stdout + result.stderr)[-1])
    print(f"\ntrl sft on the tiny default: {seconds:.1f} s wall, train_loss {final_loss:.3f}")

    tokenizer = AutoTokenizer.from_pretrained(tmp_path / "out")
    model = AutoModelForCausalLM.from_pretrained(tmp_path / "out", dtype=torch.float32)
    assert tokenizer.chat_template == CHATML_TEMPLATE and tokenizer.eos_token == "<|im_end|>"
    held_out = fixture_data.smoltalk(tmp_path / "cache")["test"]["messages"]
    metrics = chat_metrics(model, tokenizer, held_out, max_new_tokens=32)
    assert metrics["format_adherence"] >= 0.9, metrics


@pytest.mark.parametrize("name", ACCELERATE_CONFIGS)
def test_accelerate_config_is_valid_and_matches_the_recipe_precision(name):
    config = load_config_from_file(str(RECIPES / "accelerate" / f"{name}.yaml"))
    assert config.distributed_type.value == ACCELERATE_CONFIGS[name]
    assert config.mixed_precision == ("bf16" if recipe()["bf16"] else "no")
    assert config.num_processes >= 1 and config.use_cpu is False


def test_several_gpu_configs_need_gpus_to_run_distributed(tmp_path):
    """Without two GPUs, accelerate runs the DDP and FSDP configs as one process: say so, and check it."""
    if torch.cuda.device_count() >= 2:
        pytest.skip("this machine has several GPUs: run the DDP and FSDP configs for real")
    probe = tmp_path / "probe.py"
    probe.write_text("from accelerate import PartialState\nprint('processes', PartialState().num_processes)\n")
    for name in ("multi_gpu_ddp", "fsdp"):
        config = RECIPES / "accelerate" / f"{name}.yaml"
        result = subprocess.run(
            [sys.executable, "-m", "accelerate.commands.launch", "--config_file", str(config), "--cpu",
             "--num_processes", "2", "--mixed_precision", "no", str(probe)],
            capture_output=True, text=True,
        )  # fmt: skip
        assert "processes 1" in result.stdout, result.stdout + result.stderr[-2000:]
