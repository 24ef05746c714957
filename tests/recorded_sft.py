"""TRL's own ``trl sft`` script, with a record of what each process trained on.

``trl sft --config R --accelerate_config C ARGS`` runs ``accelerate launch --config_file C trl/scripts/sft.py
--config R ARGS``; this file takes the script's place (same arguments, then ``--record_dir DIR``). Each
process writes ``DIR/rank<N>.json``: for every step a fingerprint of each sequence in its batch; at the
end its log history, how the model was wrapped, the dtypes of its parameters and a hash of its weights.
The parser, the trainer and the training are TRL's.
"""

import hashlib
import json
import os
import sys
from contextlib import contextmanager
from pathlib import Path

import torch
from trl import SFTTrainer
from trl.scripts.sft import main, make_parser


def fingerprint(ids):
    return hashlib.sha1(str(ids).encode()).hexdigest()[:12]


def sequence_fingerprints(inputs):
    """One short hash per sequence of a batch: a padded row without its padding, or, in a padding-free
    batch, each stretch that starts where position_ids is 0."""
    if "position_ids" not in inputs:
        rows, masks = inputs["input_ids"].tolist(), inputs["attention_mask"].tolist()
        return [fingerprint([t for t, m in zip(row, mask) if m]) for row, mask in zip(rows, masks)]
    ids, positions = inputs["input_ids"].flatten().tolist(), inputs["position_ids"].flatten().tolist()
    starts = [i for i, p in enumerate(positions) if p == 0] + [len(ids)]
    return [fingerprint(ids[a:b]) for a, b in zip(starts, starts[1:])]


def weights_hash(model):
    digest = hashlib.sha256()
    for name, tensor in sorted(model.state_dict().items()):
        tensor = tensor.full_tensor() if hasattr(tensor, "full_tensor") else tensor  # a sharded (FSDP 2) weight
        digest.update(name.encode() + tensor.detach().cpu().contiguous().view(torch.uint8).numpy().tobytes())
    return digest.hexdigest()


def record(trainer, steps):
    return {
        "rank": trainer.accelerator.process_index,
        "processes": trainer.accelerator.num_processes,
        "distributed_type": trainer.accelerator.distributed_type.value,
        "wrapped_as": type(trainer.model_wrapped).__name__,
        "mixed_precision": trainer.accelerator.mixed_precision,
        "steps": steps,
        "log_history": trainer.state.log_history,
        "parameter_dtypes": sorted({str(p.dtype) for p in trainer.model.parameters()}),
        "weights_sha256": weights_hash(trainer.model),
    }


KEPT = []  # the trainers, alive until the process leaves (see the end of this file)


@contextmanager
def recording(record_dir):
    """Within the block, every SFTTrainer writes its record into ``record_dir`` when it has trained."""
    steps = []
    training_step, train = SFTTrainer.training_step, SFTTrainer.train

    def recorded_training_step(self, model, inputs, num_items_in_batch=None):
        steps.append({"step": self.state.global_step, "sequences": sequence_fingerprints(inputs)})
        return training_step(self, model, inputs, num_items_in_batch)

    def recorded_train(self, *args, **kwargs):
        KEPT.append(self)  # see the end of this file
        result = train(self, *args, **kwargs)
        content = json.dumps(record(self, steps), indent=1)
        Path(record_dir, f"rank{self.accelerator.process_index}.json").write_text(content)
        return result

    SFTTrainer.training_step, SFTTrainer.train = recorded_training_step, recorded_train
    try:
        yield
    finally:
        SFTTrainer.training_step, SFTTrainer.train = training_step, train


def run(arguments, record_dir):
    """What ``trl/scripts/sft.py ARGUMENTS`` does, recorded into ``record_dir``."""
    with recording(record_dir):
        main(*make_parser().parse_args_and_config(arguments, fail_with_unknown_args=False))


if __name__ == "__main__":
    arguments = sys.argv[1:]
    at = arguments.index("--record_dir")
    run(arguments[:at] + arguments[at + 2 :], arguments[at + 1])
    # Leave without tearing down gloo: when the other process has already exited, ProcessGroupGloo's
    # destructor can wait forever for a thread (seen under load, with py-spy, as sft.py's main returned
    # and freed the DDP model). KEPT holds the trainer until here; all is written by now.
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(0)
