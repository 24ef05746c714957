"""The machine: what it is, its datasheet peak (known GPUs), and what a dense matmul reaches on it now."""

import os
import platform

import torch

# Dense tensor-core peaks (TFLOP/s) in bf16 (fp16 where the GPU has no bf16), no sparsity, from
# the vendors' datasheets. First match wins, so the more specific names come first.
GPU_PEAK_TFLOPS = (
    ("H100 PCIe", 756.0),
    ("H100", 989.0),
    ("H200", 989.0),
    ("A100", 312.0),
    ("L40S", 362.0),
    ("L4", 121.0),
    ("A10", 125.0),
    ("V100", 125.0),
    ("T4", 65.0),
)

# Square matrices for the probe: large enough that one multiply is compute-bound, small enough
# that the probe takes a few seconds (2048: 17 GFLOP per multiply; 8192: 1.1 TFLOP).
PROBE_SIZE = {"cpu": 2048}
PROBE_SIZE_ACCELERATOR = 8192
PROBE_SECONDS = 1.0


def machine_description(device):
    cpu = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo") as info:
            cpu = next(line.split(":", 1)[1].strip() for line in info if line.startswith("model name"))
    except (OSError, StopIteration):
        pass
    description = {
        "platform": platform.platform(),
        "cpu": cpu,
        "cpu_count": os.cpu_count(),
        "torch_threads": torch.get_num_threads(),
        "device": device,
    }
    if device == "cuda":
        description["gpu"] = torch.cuda.get_device_name(0)
    return description


def device_peak_flops(device, requested_tflops):
    if requested_tflops:
        return requested_tflops * 1e12, f"given on the command line ({requested_tflops} TFLOP/s)"
    if device != "cuda":
        return None, None
    name = torch.cuda.get_device_name(0)
    for key, tflops in GPU_PEAK_TFLOPS:
        if key in name:
            return tflops * 1e12, f"{name}: {tflops} TFLOP/s dense bf16/fp16 tensor-core peak (datasheet)"
    return None, f"{name}: unknown peak, pass --peak-tflops"


def compute_dtype(precision):
    """The dtype the training's matrix multiplies run in: fp32, or the autocast dtype on a GPU."""
    if precision.get("bf16"):
        return torch.bfloat16
    if precision.get("fp16"):
        return torch.float16
    return torch.float32


def matmul_probe(device, dtype, threads, seconds=PROBE_SECONDS):
    """FLOP/s of ``a @ b`` for two square random matrices, timed by ``torch.utils.benchmark``.

    ``blocked_autorange`` first sizes its blocks by running the multiply (which warms it up), then
    times blocks of multiplies for at least ``seconds``; it synchronizes an accelerator itself.
    """
    from torch.utils import benchmark

    size = PROBE_SIZE.get(device, PROBE_SIZE_ACCELERATOR)
    generator = torch.Generator().manual_seed(0)
    a, b = (torch.randn(size, size, generator=generator).to(device=device, dtype=dtype) for _ in range(2))
    timer = benchmark.Timer(stmt="a @ b", globals={"a": a, "b": b}, num_threads=threads)
    measurement = timer.blocked_autorange(min_run_time=seconds)
    flop = 2 * size**3
    return {
        "multiplies": measurement.number_per_run * len(measurement.times),
        "seconds_per_multiply_median": measurement.median,
        "flops_per_s_median": flop / measurement.median,
        "flops_per_s_best": flop / min(measurement.times),
    }


def probe_description(device, dtype, threads):
    size = PROBE_SIZE.get(device, PROBE_SIZE_ACCELERATOR)
    return {
        "device": device,
        "dtype": str(dtype).removeprefix("torch."),
        "size": size,
        "threads": threads,
        "work": f"{size}x{size} @ {size}x{size}, 2*{size}^3 FLOP per multiply",
        "reference": "flops_per_s: the best block of either probe (before or after training)",
    }
