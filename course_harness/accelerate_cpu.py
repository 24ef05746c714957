"""The CPU variant of a course accelerate config, derived from the one learners use on GPUs.

The recipes' DDP and FSDP configs are the single source of truth; a machine without GPUs runs them
as they are, with only the number of processes set and the CPU asked for (torch's gloo backend).
The training command must also pass ``--use_cpu true``, so that each process joins the group on the CPU.
"""

from pathlib import Path

import yaml

# the only keys a CPU run changes; everything else (distribution, FSDP settings, precision) is the GPU file's
CPU_OVERRIDES = ("num_processes", "use_cpu")


def cpu_variant(config_path, num_processes=2):
    """The config at ``config_path`` with ``num_processes`` processes on the CPU, as a dict."""
    config = yaml.safe_load(Path(config_path).read_text())
    if not isinstance(config, dict) or "distributed_type" not in config:
        raise ValueError(f"{config_path} is not an accelerate config: no distributed_type in it")
    return config | {"num_processes": num_processes, "use_cpu": True}


def write_cpu_variant(config_path, out_dir, num_processes=2):
    """Write the CPU variant of ``config_path`` into ``out_dir`` (same file name); return its path."""
    out = Path(out_dir) / Path(config_path).name
    out.parent.mkdir(parents=True, exist_ok=True)
    header = f"# {Path(config_path).name} with {', '.join(CPU_OVERRIDES)} set by course_harness/accelerate_cpu.py\n"
    out.write_text(header + yaml.safe_dump(cpu_variant(config_path, num_processes), sort_keys=False))
    return out
