"""What the run found: ratios against padding, FLOP shares, the Markdown table, findings in words."""

HEADER = [
    "configuration",
    "steps",
    "real tokens",
    "processed tokens",
    "padding share",
    "real tok/s",
    "vs padding",
    "steady tok/s (after step 1)",
    "peak mem MB (+ during training)",
    "vs padding (+)",
    "final train loss",
    "held-out loss",
]
PROBE_COLUMN = "6N x real tok/s vs matmul probe"


def _ratio(result, base, key):
    return result[key] / base[key] if result.get(key) and base.get(key) else None


def ratios_against_padding(configs):
    base = configs.get("padding")
    if not base or "error" in base:
        return {}
    ratios = {}
    for name, result in configs.items():
        if "error" in result:
            continue
        ratios[name] = {
            "real_tokens_per_s": result["real_tokens_per_s"] / base["real_tokens_per_s"],
            "steady_real_tokens_per_s": _ratio(result, base, "steady_real_tokens_per_s"),
            "train_seconds": result["train_seconds"] / base["train_seconds"],
            "processed_tokens": result["processed_tokens"] / base["processed_tokens"],
            "peak_memory": result["peak_memory_mb"] / base["peak_memory_mb"],
            "peak_memory_increase": _ratio(result, base, "peak_memory_increase_mb"),
            "eval_loss_minus_padding": result["eval_loss"] - base["eval_loss"],
        }
    return ratios


def add_flop_shares(configs, n_params, peak, probe_flops):
    """6 x parameters x tokens per second, over the datasheet peak (MFU) and over the matmul probe."""
    for result in configs.values():
        if "error" in result:
            continue
        for tokens in ("real_tokens", "processed_tokens"):
            achieved = 6 * n_params * result[tokens] / result["train_seconds"]
            result[f"mfu_{tokens}"] = achieved / peak if peak else None
            result[f"probe_share_{tokens}"] = achieved / probe_flops if probe_flops else None


def _memory_cells(r, q):
    memory = f"{r['peak_memory_mb']:.0f}"
    if r.get("peak_memory_increase_mb") is not None:
        memory += f" (+{r['peak_memory_increase_mb']:.0f})"
    if not q:
        return [memory, "-"]
    if q.get("peak_memory_increase"):
        return [memory, f"{q['peak_memory']:.2f}x ({q['peak_memory_increase']:.2f}x)"]
    return [memory, f"{q['peak_memory']:.2f}x"]


def _row(name, r, q, probe, mfu):
    row = [
        name,
        str(r["steps"]),
        str(r["real_tokens"]),
        str(r["processed_tokens"]),
        f"{r['pad_fraction']:.1%}",
        f"{r['real_tokens_per_s']:.1f}",
        f"{q['real_tokens_per_s']:.2f}x" if q else "-",
        f"{r['steady_real_tokens_per_s']:.1f}" if r["steady_real_tokens_per_s"] else "-",
        *_memory_cells(r, q),
        f"{r['final_train_loss']:.4f}",
        f"{r['eval_loss']:.4f}",
    ]
    for shown, key in ((probe, "probe_share_real_tokens"), (mfu, "mfu_real_tokens")):
        if shown:
            row.append(f"{r[key]:.1%}" if r.get(key) is not None else "-")
    return row


def markdown_table(results):
    configs, ratios = results["configs"], results["ratios_vs_padding"]
    good = [r for r in configs.values() if "error" not in r]
    probe = any(r.get("probe_share_real_tokens") is not None for r in good)
    mfu = any(r.get("mfu_real_tokens") is not None for r in good)
    header = HEADER + ([PROBE_COLUMN] if probe else []) + (["MFU"] if mfu else [])
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for name, r in configs.items():
        if "error" in r:
            lines.append(f"| {name} | error: {r['error'].strip().splitlines()[-1]} |")
        else:
            lines.append("| " + " | ".join(_row(name, r, ratios.get(name, {}), probe, mfu)) + " |")
    return "\n".join(lines)


def _isolation_notes(check, device):
    if check.get("passed") is None:
        return [f"Isolation check not run: {check.get('reason')}."]
    notes = []
    for implementation, entry in check["implementations"].items():
        verdict = "isolates" if entry["isolated"] else "does NOT isolate"
        notes.append(
            f"BFD packing with attn_implementation={implementation} on {device} {verdict} the packed "
            f"conversations: max |logit difference| packed vs alone = {entry['max_abs_diff']:.2e} "
            f"(tolerance {entry['tolerance']:.1e}) over {len(check['segments'])} conversations."
        )
        for name, control in entry["controls"].items():
            notes.append(
                f"  control '{name}' ({implementation}): max |difference| {control['max_abs_diff']:.2e}, "
                f"leak {'detected' if control['leak_detected'] else 'NOT detected'}."
            )
    if not check["controls_detect_leaks"]:
        notes.append("A control showed no leak, so the check may be blind here: treat it as inconclusive.")
    return notes


def _probe_note(probe, configs):
    if not probe:
        return []
    when = ", ".join(
        f"{probe[key]['flops_per_s_best'] / 1e9:.1f} {label}"
        for key, label in (("before_training", "before training"), ("after_training", "after"))
        if key in probe
    )
    shares = ", ".join(f"{name} {r['probe_share_real_tokens']:.1%}" for name, r in configs.items())
    return [
        f"Matmul probe ({probe['device']}, {probe['dtype']}, {probe['size']}x{probe['size']}, "
        f"{probe['threads']} threads): best GFLOP/s {when}. 6 x parameters x real tokens/s reaches, of the "
        f"best: {shares}."
    ]


def findings(results):
    configs = {k: v for k, v in results["configs"].items() if "error" not in v}
    device = results["machine"]["device"]
    attn = results["settings"]["attn_implementation"]
    notes = _isolation_notes(results["isolation_check"], device) if results.get("isolation_check") else []
    if "padding" in configs and "padding_free" in configs:
        diff = configs["padding_free"]["eval_loss"] - configs["padding"]["eval_loss"]
        same_batches = configs["padding_free"]["real_tokens_per_step"] == configs["padding"]["real_tokens_per_step"]
        notes.append(
            f"padding_free without FlashAttention ({attn}) trained on the same batches as padding "
            f"({'identical' if same_batches else 'DIFFERENT'} real tokens per step); held-out loss differs by "
            f"{diff:+.2e}, so the flattened conversations did {'not ' if abs(diff) < 1e-3 else ''}leak into each other."
        )
    notes += _probe_note(results.get("matmul_probe"), configs)
    if configs:
        fastest = max(configs, key=lambda k: configs[k]["real_tokens_per_s"])
        smallest = min(configs, key=lambda k: configs[k]["peak_memory_mb"])
        notes.append(f"Fastest on this {device} run: {fastest}; lowest peak memory: {smallest}.")
    return notes
