"""The `trl sft` recipe is the notebook's recipe, and it trains offline on the tiny default."""

import ast
import os
import re
import shlex
import shutil
import subprocess
import time
from types import SimpleNamespace

import datasets.config
import nbformat
import pytest
import torch
import transformers.training_args
import trl.cli.accelerate_launcher
import trl.trainer.sft_trainer
import yaml
from accelerate.commands.config.config_args import load_config_from_file
from accelerate.commands.launch import _validate_launch_command, launch_command_parser
from accelerate.utils.launch import prepare_multi_gpu_env, prepare_simple_launcher_cmd_env
from safetensors import safe_open
from transformers import AutoModelForCausalLM, AutoTokenizer
from trl import SFTTrainer
from trl.cli.main import main as trl_main
from trl.scripts.sft import main as sft_main
from trl.scripts.sft import make_parser

from course_harness import fixture_data
from course_harness.runner import offline_environment
from course_helpers import CHATML_TEMPLATE, chat_metrics
from tests.paths import FIXTURES, ROOT, load_module
from tests.real_layout import real_layout_fixture  # noqa: F401 (the real_layout fixture)

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
    # (the format the notebook's dataset check found: the recipe's dataset, smoltalk, is conversational)
    namespace = dict(parameters, data_check=SimpleNamespace(format="conversational"))
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
    assert shared["pad_token"] == "<|endoftext|>" and 'tokenizer.pad_token = "<|endoftext|>"' in source
    assert (ROOT / shared["chat_template_path"]).read_text() == CHATML_TEMPLATE
    assert "tokenizer.chat_template = CHATML_TEMPLATE" in source
    assert shared["dtype"] == "float32" and "dtype=torch.float32" in source
    assert len(compared) >= 12, compared
    assert {"max_length", "assistant_only_loss", "warmup_steps", "lr_scheduler_type"} <= set(compared), compared
    layout = {key for key in ("padding_free", "packing") if config.get(key)}
    assert layout == {key for key in ("padding_free", "packing") if shared.get(key)}, "the batching layouts differ"
    outside = ["eos_token", "pad_token", "chat_template_path", "dtype"]
    print("compared with the notebook:", ", ".join(compared + outside))


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


def documented_flags():
    """The flags that the lesson and the recipe's comments add to a command for a T4 or a CPU."""
    text = LESSON.read_text(encoding="utf-8") + RECIPE.read_text()
    return sorted(set(re.findall(r"`(--bf16 false[^`]*)`", text)))


def hardware(command):
    """What a command is for, by its flags: 'cpu', 't4' (fp16) or 'gpu' (the recipe's bf16)."""
    options = dict(zip(command, command[1:]))
    if options.get("--use_cpu") == "true":
        return "cpu"
    return "t4" if options.get("--fp16") == "true" else "gpu"


# what the lesson says each kind of hardware computes in (TrainingArguments.mixed_precision; "no" is fp32)
PRECISION = {"gpu": "bf16", "t4": "fp16", "cpu": "no"}


def every_command():
    """Every command the lesson shows; those without precision flags also with each documented set of flags."""
    shown = lesson_commands()
    plain = [command for command in shown if "--bf16" not in command]
    variants = [command + shlex.split(flags) for command in plain for flags in documented_flags()]
    return list({tuple(command): command for command in shown + variants}.values())


def cpu_command():
    """The first command for a CPU: what a learner without a GPU runs."""
    return next(command for command in every_command() if hardware(command) == "cpu")


def command_id(command):
    return f"{command[command.index('--accelerate_config') + 1].rsplit('/', 1)[-1][:-5]}-{hardware(command)}"


def test_lesson_commands_use_the_recipe_and_the_tested_configs():
    commands = lesson_commands()
    configs = [c[c.index("--accelerate_config") + 1] for c in commands]
    assert configs[0].endswith("/single_gpu.yaml"), "the first command is the one-GPU command"
    assert set(configs) == {f"1_instruction_tuning/recipes/accelerate/{name}.yaml" for name in ACCELERATE_CONFIGS}
    for command in commands:
        assert command[:4] == ["trl", "sft", "--config", str(RECIPE.relative_to(ROOT))]
    assert {hardware(["trl", *shlex.split(flags)]) for flags in documented_flags()} == {"t4", "cpu"}


def trl_cli_split(command, monkeypatch):
    """What `trl sft` hands to `accelerate launch` and what to the training script, for ``command``."""
    launched = {}

    def launch(script_name, launch_args, training_script_args):
        launched.update(launch=launch_args, script=training_script_args)

    monkeypatch.setattr(trl.cli.accelerate_launcher, "launch_training_script", launch)
    monkeypatch.chdir(ROOT)
    assert trl_main(command[1:]) == 0
    return launched["launch"], launched["script"]


def launched_training_arguments(command, monkeypatch):
    """The SFTConfig and ModelConfig that the training processes of ``command`` build, on the hardware it is for.

    TRL's command line splits the arguments (as `trl sft` does), accelerate validates its own and prepares the
    environment it launches the script in, and the script's parser builds the configs in that environment.
    """
    # the GPU the command is for computes in bf16 (a T4 command turns bf16 off, a CPU one is not asked)
    monkeypatch.setattr(transformers.training_args, "is_torch_bf16_gpu_available", lambda: True)
    launch_args, script_args = trl_cli_split(command, monkeypatch)
    args, _, _ = _validate_launch_command(launch_command_parser().parse_args([*launch_args, "sft.py", *script_args]))
    several = (args.multi_gpu or args.use_fsdp) and not args.cpu
    environment = prepare_multi_gpu_env(args) if several else prepare_simple_launcher_cmd_env(args)[1]
    for key, value in environment.items():
        if key.startswith(("ACCELERATE_", "FSDP_")):
            monkeypatch.setenv(key, value)
    _, training_args, model_args, _ = make_parser().parse_args_and_config(script_args, fail_with_unknown_args=False)
    return training_args, model_args, environment["ACCELERATE_MIXED_PRECISION"]


@pytest.mark.parametrize("command", every_command(), ids=command_id)
def test_every_lesson_command_trains_in_the_precision_it_claims(command, monkeypatch):
    training_args, model_args, exported = launched_training_arguments(command, monkeypatch)
    expected = PRECISION[hardware(command)]
    shown = f"{shlex.join(command)}: accelerate exports {exported!r}, the trainer computes in "
    assert training_args.mixed_precision == expected, shown + f"{training_args.mixed_precision!r}, not {expected!r}"
    assert (training_args.bf16, training_args.fp16) == (expected == "bf16", expected == "fp16")
    assert model_args.dtype == "float32", "master weights in fp32 whatever the arithmetic"
    print(f"\n{command_id(command)}: {training_args.mixed_precision} (accelerate exports {exported})")


class _Built(Exception):
    """Raised where training would start, to hand back the trainer a script has built."""


def trl_sft_trainer(arguments, monkeypatch, tmp_path):
    """The SFTTrainer that `trl sft`'s script builds from ``arguments``, stopped before training."""

    def stop(self, *args, **kwargs):
        raise _Built(self)

    monkeypatch.setattr(SFTTrainer, "train", stop)
    monkeypatch.setattr(datasets.config, "HF_DATASETS_CACHE", str(tmp_path / "datasets-cache"))
    with pytest.raises(_Built) as built:
        sft_main(*make_parser().parse_args_and_config(arguments, fail_with_unknown_args=False))
    return built.value.args[0]


def notebook_trainer(model_path, tmp_path, monkeypatch):
    """The SFTTrainer the notebook builds on ``model_path``: its cells up to the trainer, measurements left out."""
    cells = [c for c in nbformat.read(NOTEBOOK, as_version=4).cells if c.cell_type == "code"]
    namespace = {}
    monkeypatch.setattr(datasets.config, "HF_DATASETS_CACHE", str(tmp_path / "datasets-cache"))
    for cell in cells:
        if "%pip" in cell.source or "chat_metrics(" in cell.source:
            continue  # the Colab install, and the generation before training
        exec(cell.source, namespace)
        if "parameters" in cell.metadata.get("tags", []):
            namespace |= dict(model_name=str(model_path), dataset_name=str(FIXTURES / "smoltalk"))
            namespace |= dict(output_dir=str(tmp_path / "notebook"), max_steps=12)
        if "trainer" in namespace:
            return namespace["trainer"]
    raise AssertionError("the notebook builds no trainer")


def what_it_trains(trainer):
    tokenizer = trainer.processing_class
    return {
        "chat template": "course ChatML" if tokenizer.chat_template == CHATML_TEMPLATE else tokenizer.chat_template,
        "eos token": tokenizer.eos_token,
        "pad token": tokenizer.pad_token,
        "batches padded with": tokenizer.convert_ids_to_tokens(trainer.data_collator.pad_token_id),
        "generation stops at": tokenizer.convert_ids_to_tokens(trainer.model.generation_config.eos_token_id),
        "model's pad id": trainer.model.config.pad_token_id,
        "parameters": sorted({str(p.dtype) for p in trainer.model.parameters()}),
        "mixed precision": trainer.args.mixed_precision,
    }


def test_trl_sft_ends_up_with_the_notebook_tokenizer_and_precision(real_layout, tmp_path, monkeypatch):
    """From SmolLM2's checkpoint layout (bf16, no pad token), `trl sft` and the notebook train the same thing."""
    notebook = what_it_trains(notebook_trainer(real_layout, tmp_path, monkeypatch))
    _, script_args = trl_cli_split(cpu_command(), monkeypatch)  # this machine's; GPUs: the precision test above
    overrides = ["--model_name_or_path", str(real_layout), "--dataset_name", str(FIXTURES / "smoltalk")]
    overrides += ["--output_dir", str(tmp_path / "cli")]
    cli = what_it_trains(trl_sft_trainer([*script_args, *overrides], monkeypatch, tmp_path))
    print("\n" + "\n".join(f"{key:>22}: notebook {notebook[key]!r}, trl sft {cli[key]!r}" for key in notebook))
    assert cli == notebook
    assert notebook["chat template"] == "course ChatML" and notebook["parameters"] == ["torch.float32"]
    assert (notebook["eos token"], notebook["generation stops at"]) == ("<|im_end|>", "<|im_end|>")
    assert (notebook["pad token"], notebook["batches padded with"]) == ("<|endoftext|>", "<|endoftext|>")


def test_chat_template_path_is_relative_to_the_repository_root(real_layout, tmp_path, monkeypatch):
    """Elsewhere TRL takes the recipe's template path for a Hub repository; the full path, as documented, works."""
    asked_for = []

    def clone_chat_template(model, tokenizer, source):
        asked_for.append(source)
        raise ConnectionError(f"would download {source!r} from the Hub")

    monkeypatch.setattr(trl.trainer.sft_trainer, "clone_chat_template", clone_chat_template)
    monkeypatch.chdir(tmp_path)
    arguments = ["--config", str(RECIPE), "--model_name_or_path", str(real_layout), "--output_dir", str(tmp_path / "o"),
        "--dataset_name", str(FIXTURES / "smoltalk"), "--bf16", "false", "--use_cpu", "true"]  # fmt: skip
    with pytest.raises(ConnectionError):
        trl_sft_trainer(arguments, monkeypatch, tmp_path)
    assert asked_for == [recipe()["chat_template_path"]]

    assert "--chat_template_path" in RECIPE.read_text(), "the recipe says how to run it from elsewhere"
    full_path = str(ROOT / recipe()["chat_template_path"])
    trainer = trl_sft_trainer([*arguments, "--chat_template_path", full_path], monkeypatch, tmp_path)
    assert trainer.processing_class.chat_template == CHATML_TEMPLATE


def tiny_cli_command(model, output_dir):
    """The lesson's CPU command, as documented, plus what puts it on the tiny default.

    100 steps at 1e-2 end with every held-out reply ending its turn (format adherence 1.0, measured when
    this was written); the suite ran 300 steps at 2e-3 until then, for the same check.
    """
    return [shutil.which("trl"), *cpu_command()[1:],
        "--model_name_or_path", str(model),
        "--dataset_name", str(FIXTURES / "smoltalk"),
        "--output_dir", str(output_dir),
        "--max_steps", "100", "--learning_rate", "1e-2", "--per_device_train_batch_size", "16",
        "--eval_steps", "50", "--logging_steps", "25",
    ]  # fmt: skip


def test_cli_recipe_trains_a_model_that_answers_in_chatml(real_layout, tmp_path):
    env = os.environ | offline_environment(tmp_path / "datasets-cache")
    start = time.perf_counter()
    command = tiny_cli_command(real_layout, tmp_path / "out")
    result = subprocess.run(command, cwd=ROOT, env=env, capture_output=True, text=True)
    seconds = time.perf_counter() - start
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    final_loss = float(re.findall(r"'train_loss': '([0-9.e-]+)'", result.stdout + result.stderr)[-1])
    print(f"\ntrl sft on the tiny default: {seconds:.1f} s wall, train_loss {final_loss:.3f}")

    with safe_open(tmp_path / "out" / "model.safetensors", "pt") as saved:
        dtypes = {saved.get_slice(name).get_dtype() for name in saved.keys()}
    assert dtypes == {"F32"}, f"trained from a bf16 checkpoint, saved in {dtypes}: the master weights were not fp32"
    tokenizer = AutoTokenizer.from_pretrained(tmp_path / "out")
    model = AutoModelForCausalLM.from_pretrained(tmp_path / "out", dtype=torch.float32)
    assert tokenizer.chat_template == CHATML_TEMPLATE
    assert (tokenizer.eos_token, tokenizer.pad_token) == ("<|im_end|>", "<|endoftext|>")
    assert model.generation_config.eos_token_id == tokenizer.eos_token_id
    held_out = fixture_data.smoltalk(tmp_path / "cache")["test"]["messages"]
    metrics = chat_metrics(model, tokenizer, held_out, max_new_tokens=32)
    print(f"held-out replies: format adherence {metrics['format_adherence']}, exact match {metrics['exact_match']}")
    assert metrics["format_adherence"] >= 0.9, metrics


@pytest.mark.parametrize("name", ACCELERATE_CONFIGS)
def test_accelerate_config_is_valid_and_leaves_precision_to_the_recipe(name):
    config = load_config_from_file(str(RECIPES / "accelerate" / f"{name}.yaml"))
    assert config.distributed_type.value == ACCELERATE_CONFIGS[name]
    assert config.mixed_precision == "no", "accelerate exports it, and the trainer uses it when bf16 and fp16 are off"
    assert config.num_processes >= 1 and config.use_cpu is False
