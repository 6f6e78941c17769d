"""Small helpers that turn core results into Dagster metadata values."""


import base64
from collections.abc import Mapping
from typing import Any

import dagster as dg


def png_markdown(png: bytes, alt: str) -> dg.MetadataValue:
    """A PNG embedded in markdown, shown inline in the Dagster UI."""
    encoded = base64.b64encode(png).decode("ascii")
    return dg.MetadataValue.md(f"![{alt}](data:image/png;base64,{encoded})")


def rate_text(rate: Mapping[str, Any]) -> str:
    """``0.930 [0.900, 0.957]`` from a ``rate_with_ci`` dict (bootstrap CI)."""
    return f"{rate['mean']:.3f} [{rate['ci_low']:.3f}, {rate['ci_high']:.3f}]"


def rate_table(per_seed: Mapping[str, Mapping[str, Any]], pooled: Mapping[str, Any]) -> dg.MetadataValue:
    """Per-seed and pooled success / collision rates with 95% CIs as a markdown table."""
    lines = ["| evaluation seed | episodes | success [95% CI] | collision [95% CI] |", "|---|---|---|---|"]
    for seed, block in per_seed.items():
        lines.append(f"| {seed} | {block['n_episodes']} | {rate_text(block['success'])} | {rate_text(block['collision'])} |")
    lines.append(f"| pooled | {pooled['n_episodes']} | {rate_text(pooled['success'])} | {rate_text(pooled['collision'])} |")
    return dg.MetadataValue.md("\n".join(lines))
