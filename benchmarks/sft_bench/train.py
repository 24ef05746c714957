"""One configuration: the notebook's recipe with one batching layout, trained for one timed epoch."""

import gc
import shutil
import time
import warnings
from pathlib import Path

import torch

from .isolation import check_a_packed_row
from .layouts import sft_config_kwargs
from .measure import CountingCollator, PeakMemory, Phases, StepTimer, assistant_loss, load_average
from .model import build_model, load_tokenizer


def make_trainer(name, settings, conversations, precision):
    """The notebook's ``SFTTrainer``, quiet, with a token counter around its collator and a step timer."""
    from datasets import Dataset
    from transformers import PrinterCallback, ProgressCallback
    from trl import SFTConfig, SFTTrainer

    tokenizer = load_tokenizer(settings["tokenizer_path"])
    args = SFTConfig(
        output_dir=str(Path(settings["work_dir"]) / f"trainer-{name}"),
        num_train_epochs=1,
        learning_rate=settings["learning_rate"],
        assistant_only_loss=True,
        activation_checkpointing=False,
        logging_steps=1,
        save_strategy="no",
        report_to="none",
        disable_tqdm=True,
        seed=settings["seed"],
        **precision,
        **sft_config_kwargs(name, settings),
    )
    trainer = SFTTrainer(
        model=build_model(settings, tokenizer),
        args=args,
        train_dataset=Dataset.from_list([{"messages": m} for m in conversations]),
        processing_class=tokenizer,
    )
    for callback in (PrinterCallback, ProgressCallback):
        trainer.remove_callback(callback)
    trainer.data_collator = CountingCollator(trainer.data_collator)
    trainer.add_callback(StepTimer(next(trainer.model.parameters()).device.type))
    return trainer, tokenizer


def timed_train(trainer, device):
    """One timed epoch. No warm-up: the first step's one-off costs (optimizer state, first touch of
    the gradient buffers) are paid by every real run too; "steady" numbers leave step 1 out."""
    memory = PeakMemory(device)
    memory.start()
    load_before = load_average()
    cpu_start, start = time.process_time(), time.perf_counter()
    trainer.train()
    if device == "cuda":
        torch.cuda.synchronize()
    train_seconds = time.perf_counter() - start
    return memory.stop() | {
        "train_seconds": train_seconds,
        "cpu_seconds": time.process_time() - cpu_start,
        "load_average_at_start": load_before,
    }


def step_figures(trainer, train_seconds):
    """Tokens, losses and times per step, from the counting collator and the step timer."""
    timer = next(c for c in trainer.callback_handler.callbacks if isinstance(c, StepTimer))
    batches = trainer.data_collator.batches[: trainer.state.global_step]
    real = sum(b["real"] for b in batches)
    processed = sum(b["processed"] for b in batches)
    losses = [h["loss"] for h in trainer.state.log_history if "loss" in h]
    loss_tokens = [b["loss_tokens"] for b in batches]
    steady_seconds = sum(timer.durations[1:])
    return {
        "steps": trainer.state.global_step,
        "rows": sum(b["rows"] for b in batches),
        "conversations": sum(b["sequences"] for b in batches),
        "real_tokens": real,
        "processed_tokens": processed,
        "pad_tokens": processed - real,
        "pad_fraction": (processed - real) / processed,
        "step_seconds": timer.durations,
        "real_tokens_per_s": real / train_seconds,
        "processed_tokens_per_s": processed / train_seconds,
        "steady_real_tokens_per_s": sum(b["real"] for b in batches[1:]) / steady_seconds if steady_seconds else None,
        "real_tokens_per_step": [b["real"] for b in batches],
        "processed_tokens_per_step": [b["processed"] for b in batches],
        "step_losses": losses,
        "final_train_loss": losses[-1] if losses else None,
        "train_loss_token_weighted": (
            sum(loss * n for loss, n in zip(losses, loss_tokens)) / sum(loss_tokens)
            if len(losses) == len(loss_tokens)
            else None
        ),
        "train_dataset_rows": len(trainer.train_dataset),
    }


def trained_dtypes(model):
    """The dtypes of the weights the optimizer updates (fp32 master weights expected)."""
    return sorted({str(p.dtype) for p in model.parameters() if p.requires_grad})


def run_config(name, settings, conversations, eval_conversations, with_initial_loss, with_isolation):
    """Train one configuration and return everything measured (runs in its own process on a CPU)."""
    import transformers
    from datasets import disable_progress_bars

    from course_helpers import pick_device_and_precision

    disable_progress_bars()
    transformers.logging.set_verbosity_error()
    warnings.filterwarnings("ignore")
    _, precision = pick_device_and_precision()
    phases = Phases()
    trainer, tokenizer = make_trainer(name, settings, conversations, precision)
    model = trainer.model
    device = next(model.parameters()).device.type
    result = {
        "config": name,
        "sft_config": sft_config_kwargs(name, settings),
        "precision": precision,
        "parameters": model.num_parameters(),  # tied input and output embeddings counted once
        "torch_threads": torch.get_num_threads(),
    }
    phases.done("build model and trainer")
    if with_initial_loss:
        result["initial_eval_loss"] = assistant_loss(model, tokenizer, eval_conversations, device, precision)
        phases.done("initial held-out loss")
    result.update(timed_train(trainer, device))
    phases.done("train")
    result.update(step_figures(trainer, result["train_seconds"]))
    result["trained_parameter_dtypes"] = trained_dtypes(model)
    result["eval_loss"] = assistant_loss(model, tokenizer, eval_conversations, device, precision)
    phases.done("held-out loss")
    if with_isolation:
        collator = trainer.data_collator.inner
        result["isolation_check"] = check_a_packed_row(
            trainer, collator, settings["attn_implementation"], device, precision
        )
        phases.done("isolation check")
    result["phase_seconds"] = phases.seconds
    del trainer, model
    gc.collect()
    if device == "cuda":
        torch.cuda.empty_cache()
    shutil.rmtree(Path(settings["work_dir"]) / f"trainer-{name}", ignore_errors=True)
    return result
