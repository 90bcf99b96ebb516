"""Text summary of a prediction in the shape of ``vllm bench serve``'s result block."""

from __future__ import annotations

import html
from typing import Any

_LINE = "{:<40} {:<10}"


def _f(value: float) -> str:
    return f"{value:.2f}"


def _shape(config: dict[str, Any]) -> str:
    tp, dp = config["tensor_parallel_size"], config["data_parallel_size"]
    return f"{tp}" + (f"x dp{dp}" if dp > 1 else "") + (" EP" if config["expert_parallel_size"] > 1 else "")


def deployment_shape(config: dict[str, Any]) -> str:
    """A resolved configuration's parallelism in a few characters: 'tp2', 'tp1x dp8 EP', '3P1D of tp2'."""
    shape = _shape(config)
    if config["num_prefill_instances"]:
        decode = config.get("decode_instance")
        pd = f"{config['num_prefill_instances']}P{config['num_decode_instances']}D of tp{shape}"
        return pd if not decode else f"{pd} (decode tp{_shape(decode)})"
    if config["num_instances"] > 1:
        return f"{config['num_instances']} x tp{shape}"
    return f"tp{shape}"


def weight_precisions(module_dtypes: dict[str, str]) -> str:
    """Module classes by weight dtype, the most common dtype last as 'the rest': 'nvfp4 o_proj, ...; bf16 rest'."""
    by_dtype: dict[str, list[str]] = {}
    for module, dtype in module_dtypes.items():
        by_dtype.setdefault(dtype, []).append(module)
    common = max(by_dtype, key=lambda d: len(by_dtype[d]))
    parts = [f"{d} {', '.join(mods)}" for d, mods in by_dtype.items() if d != common]
    return "; ".join([*parts, f"{common} the rest" if parts else f"{common} everywhere"])


def format_prediction(r: dict[str, Any], label: str = "", notes: list[str] | None = None) -> str:
    """The bench-serve style block of a result ``r``, per-GPU figures, provenance and where the step time goes."""
    title = f" {label} " if label else " Serving Benchmark Result "
    lines = ["{s:{c}^{n}}".format(s=title, n=50, c="=")]
    add = lines.append
    add(_LINE.format("Successful requests:", r["completed"]))
    add(_LINE.format("Failed requests:", r["failed"]))
    if r["max_concurrency"] is not None:
        add(_LINE.format("Maximum request concurrency:", r["max_concurrency"]))
    if r["request_rate"] != "inf":
        add(_LINE.format("Request rate configured (RPS):", _f(r["request_rate"])))
    add(_LINE.format("Benchmark duration (s):", _f(r["duration"])))
    add(_LINE.format("Total input tokens:", r["total_input_tokens"]))
    add(_LINE.format("Total generated tokens:", r["total_output_tokens"]))
    add(_LINE.format("Request throughput (req/s):", _f(r["request_throughput"])))
    if r.get("request_goodput") is not None:
        add(_LINE.format("Request goodput (req/s):", _f(r["request_goodput"])))
    add(_LINE.format("Output token throughput (tok/s):", _f(r["output_throughput"])))
    add(_LINE.format("Peak output token throughput (tok/s):", _f(r["max_output_tokens_per_s"])))
    add(_LINE.format("Peak concurrent requests:", _f(r["max_concurrent_requests"])))
    add(_LINE.format("Total token throughput (tok/s):", _f(r["total_token_throughput"])))
    names = {
        "ttft": ("TTFT", "Time to First Token"),
        "tpot": ("TPOT", "Time per Output Token (excl. 1st token)"),
        "itl": ("ITL", "Inter-token Latency"),
        "e2el": ("E2EL", "End-to-end Latency"),
    }
    for key, (short, header) in names.items():
        if f"mean_{key}_ms" not in r:
            continue
        add("{s:{c}^{n}}".format(s=header, n=50, c="-"))
        add(_LINE.format(f"Mean {short} (ms):", _f(r[f"mean_{key}_ms"])))
        add(_LINE.format(f"Median {short} (ms):", _f(r[f"median_{key}_ms"])))
        for k, v in r.items():
            if k.startswith("p") and k.endswith(f"_{key}_ms"):
                add(_LINE.format(f"P{k[1:].split('_')[0]} {short} (ms):", _f(v)))
    if "spec_decode_acceptance_rate" in r:
        add("{s:{c}^{n}}".format(s="Speculative Decoding", n=50, c="-"))
        add(_LINE.format("Acceptance rate (%):", _f(r["spec_decode_acceptance_rate"])))
        add(_LINE.format("Acceptance length:", _f(r["spec_decode_acceptance_length"])))
    add("{s:{c}^{n}}".format(s=" perfsim ", n=50, c="-"))
    shape = deployment_shape(r["config"])
    add(_LINE.format("Checkpoint:", f"{r['config']['checkpoint']} ({r['config']['precision']})"))
    if r["config"].get("module_precisions"):
        add(_LINE.format("Weights:", weight_precisions(r["config"]["module_precisions"])))
    add(_LINE.format("GPUs:", f"{r['num_gpus']} x {r['config']['hw']} ({shape})"))
    add(_LINE.format("Total token throughput per GPU (tok/s):", _f(r["total_token_throughput_per_gpu"])))
    add(_LINE.format("Output token throughput per GPU (tok/s):", _f(r["output_throughput_per_gpu"])))
    add(_LINE.format("Mean running requests per engine:", _f(r["mean_running_requests"])))
    add(
        _LINE.format(
            "KV cache usage mean / peak (%):",
            f"{100 * r['mean_kv_cache_usage']:.1f} / {100 * r['peak_kv_cache_usage']:.1f}",
        )
    )
    add(_LINE.format("Preemptions:", r["num_preemptions"]))
    seeds = r.get("seed_band")
    if seeds:
        first, last = seeds["seeds"][0], seeds["seeds"][-1]
        add(
            _LINE.format(
                f"Over seeds {first}-{last}: mean TTFT (ms):",
                "{:.2f} - {:.2f}".format(*seeds["mean_ttft_ms"]),
            )
        )
        add(_LINE.format("  mean TPOT (ms):", "{:.2f} - {:.2f}".format(*seeds["mean_tpot_ms"])))
        add(
            _LINE.format(
                "  total token throughput (tok/s):",
                "{:.2f} - {:.2f}".format(*seeds["total_token_throughput"]),
            )
        )
    band = r.get("prediction", {})
    add(_LINE.format("Calibration:", band.get("calibration", "-")))
    for cls, eb in (band.get("error_band") or {}).items():
        add(
            _LINE.format(
                f"Expected {cls} error (median/p90):",
                f"+-{eb['median_abs_pct']:.0f}% / +-{eb['p90_abs_pct']:.0f}%"
                f"{' (extrapolated)' if band.get('extrapolated') else ''}",
            )
        )
    top = ", ".join(f"{k} {100 * v:.0f}%" for k, v in list(r["step_time_breakdown"].items())[:5])
    add(_LINE.format("Step time by category:", top))
    for note in notes or []:
        add(f"note: {note}")
    add("=" * 50)
    return "\n".join(lines)


def prediction_html(r: dict[str, Any], label: str = "", notes: list[str] | None = None) -> str:
    """The summary of ``format_prediction`` as an HTML table, for Jupyter's rich display."""
    rows: list[str] = []
    noted: list[str] = []
    for line in format_prediction(r, label, notes).splitlines():
        title = line.strip("=-").strip()
        if line.startswith(("===", "---")):
            if title:
                rows.append(f'<tr><th colspan="2" style="text-align:left">{html.escape(title)}</th></tr>')
        elif line.startswith("note: "):
            noted.append(f"<li>{html.escape(line[6:])}</li>")
        else:
            name, value = line[:40].strip(), line[40:].strip()
            rows.append(
                f'<tr><td style="text-align:left">{html.escape(name)}</td><td>{html.escape(value)}</td></tr>'
            )
    listed = f"<ul>{''.join(noted)}</ul>" if noted else ""
    return f"<table>{''.join(rows)}</table>{listed}"


def records_html(records: list[dict[str, Any]], max_rows: int = 60) -> str:
    """Flat records (one dict per row, keys in first-seen order) as an HTML table of at most ``max_rows`` rows."""
    keys: list[str] = []
    for record in records:
        keys += [k for k in record if k not in keys]
    head = "".join(f"<th>{html.escape(k)}</th>" for k in keys)

    def cell(value: Any) -> str:
        shown = f"{value:.4g}" if isinstance(value, float) else ("" if value is None else str(value))
        return f"<td>{html.escape(shown)}</td>"

    body = "".join("<tr>" + "".join(cell(r.get(k)) for k in keys) + "</tr>" for r in records[:max_rows])
    more = f"<p>{len(records) - max_rows} more rows</p>" if len(records) > max_rows else ""
    return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>{more}"
