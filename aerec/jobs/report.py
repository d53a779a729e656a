"""`aerec report DIR --out report.html`: one self-contained HTML page (the plots embedded
as PNG data) about a published directory or a model directory. Needs matplotlib (the
`plot` extra).

A published directory: the current table's item exposure against the items' popularity
in the model's training data (and its Lorenz curve), catalogue coverage, top-item share
and churn over the kept runs, and the distribution of the model's scores. A model
directory: each version's training curve and the quality gate's comparison of each
retrain's candidate with the model then current.
"""

from __future__ import annotations

import base64
import html
import io
import json
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl

from aerec.contracts import (
    CHECKPOINT_DIR,
    CHECKPOINT_HISTORY,
    CURRENT_LINK,
    HEALTH_SAMPLE_FILE,
    MANIFEST_FILE,
    OWNED_MODELS,
    OWNED_PUBLISHED,
    RUNS_DIR,
    SUCCESS_FILE,
    TABLE_DIR,
    VERSIONS_DIR,
)
from aerec.errors import file_error, require
from aerec.io.atomic import write_text_atomic
from aerec.io.outputs import marked_kind
from aerec.io.pointer import resolve
from aerec.io.stamped import stamped_dirs
from aerec.jobs.attempts import read_attempts
from aerec.jobs.status import directory_status, format_status


@dataclass(frozen=True)
class Figure:
    title: str
    caption: str  # what the plot shows, in words
    png: bytes


def write_report(directory: Path, out: Path) -> Path:
    """Write the report of `directory` to `out` (atomically); returns `out`."""
    require("matplotlib", "plot")
    import matplotlib

    matplotlib.use("Agg")
    kind = marked_kind(directory) if directory.is_dir() else None
    if kind not in (OWNED_PUBLISHED, OWNED_MODELS):
        raise file_error(directory, "is not a directory aerec nightly or aerec retrain writes")
    figures = _published(directory) if kind == OWNED_PUBLISHED else _models(directory)
    summary = format_status(directory_status(directory))
    write_text_atomic(out, _page(directory, summary, figures))
    return out


def _published(directory: Path) -> list[Figure]:
    figures = []
    runs = [r for r in stamped_dirs(directory / RUNS_DIR) if (r / SUCCESS_FILE).is_file()]
    manifests = [json.loads((r / MANIFEST_FILE).read_text()) for r in runs]
    current = resolve(directory / CURRENT_LINK)
    if current is not None:
        exposure = (
            pl.scan_parquet(current / TABLE_DIR / "*.parquet").group_by("item_id").len().collect()
        )
        version = dict(zip([r.name for r in runs], manifests, strict=True))[current.name]
        trained = _training_counts(directory, current, version["model_version"])
        figures.append(_exposure(exposure, trained))
        sample = current / HEALTH_SAMPLE_FILE
        if sample.is_file():
            scores = pl.read_parquet(sample).filter(pl.col("source") == "model")["score"]
            figures.append(_scores(scores.to_numpy()))
    health = [(r.name, m.get("health")) for r, m in zip(runs, manifests, strict=True)]
    figures.append(_over_runs([(name, h) for name, h in health if h]))
    return figures


def _training_counts(directory: Path, current: Path, version: str) -> pl.DataFrame | None:
    """The items' rating counts in the training data of the current run's model (of
    `version`: from the model file its attempt used, when it is still there and is it)."""
    from aerec.score.session import ModelFile, describe_model

    used = [a for a in read_attempts(directory) if a["details"].get("run") == current.name]
    model = used[-1]["details"].get("model") if used else None
    if model is None or not Path(model).is_file():
        return None
    info = describe_model(ModelFile.read(Path(model)))
    if info.version != version or info.item_counts is None:
        return None
    return pl.DataFrame({"item_id": info.items.ids, "trained": info.item_counts})


def _exposure(exposure: pl.DataFrame, trained: pl.DataFrame | None) -> Figure:
    import matplotlib.pyplot as plt

    figure, axes = plt.subplots(1, 2 if trained is not None else 1, figsize=(11, 4), squeeze=False)
    shown = np.sort(exposure["len"].to_numpy())
    catalogue = shown if trained is None else np.zeros(trained.height)
    if trained is not None:
        joined = trained.join(exposure, on="item_id", how="left").fill_null(0)
        catalogue = np.sort(joined["len"].to_numpy())
        right = axes[0][1]
        right.scatter(joined["trained"] + 1, joined["len"] + 1, s=4, alpha=0.4)
        right.set(xscale="log", yscale="log", xlabel="ratings in the training data + 1")
        right.set(ylabel="lists holding the item + 1", title="exposure against popularity")
    left = axes[0][0]
    share = np.cumsum(catalogue) / max(catalogue.sum(), 1)
    left.plot(np.linspace(0, 1, len(share)), share, label="recommendations")
    left.plot([0, 1], [0, 1], linestyle="--", color="grey", label="equal exposure")
    left.set(xlabel="share of the catalogue (least shown first)", ylabel="share of the rows")
    left.set(title="Lorenz curve of item exposure")
    left.legend()
    caption = (
        "Left: how unequally the lists expose the catalogue (the further below the diagonal, "
        "the more the rows go to a few items; the Gini index is twice the area between). "
    )
    if trained is not None:
        caption += "Right: each item's lists against its rating count in the training data."
    return Figure("Item exposure", caption, _png(figure))


def _scores(scores: np.ndarray) -> Figure:
    import matplotlib.pyplot as plt

    figure, axis = plt.subplots(figsize=(6, 4))
    axis.hist(scores, bins=50)
    axis.set(xlabel="score", ylabel="rows", title="scores of the current table (sample)")
    caption = "The model's scores of the rows of the sampled users (source model)."
    return Figure("Score distribution", caption, _png(figure))


def _over_runs(health: list[tuple[str, dict[str, Any]]]) -> Figure:
    import matplotlib.pyplot as plt

    figure, axis = plt.subplots(figsize=(8, 4))
    names = [name[:15] for name, _ in health]
    for key, label in (
        ("catalogue_coverage", "catalogue coverage"),
        ("top_item_share", "top item's share of the lists"),
    ):
        axis.plot(names, [h[key] for _, h in health], marker="o", label=label)
    churn = [h["churn"]["changed_share"] if h.get("churn") else np.nan for _, h in health]
    axis.plot(names, churn, marker="s", label="users whose list changed")
    axis.set(ylim=(0, 1), xlabel="run", ylabel="share", title="health over the kept runs")
    axis.tick_params(axis="x", rotation=30)
    axis.legend()
    caption = "Coverage, concentration and churn of each kept run, oldest first."
    return Figure("Coverage and churn over runs", caption, _png(figure))


def _models(directory: Path) -> list[Figure]:
    import matplotlib.pyplot as plt

    figure, (loss, validation) = plt.subplots(1, 2, figsize=(11, 4))
    for version in stamped_dirs(directory / VERSIONS_DIR):
        history = version / CHECKPOINT_DIR / CHECKPOINT_HISTORY
        if history.is_file():
            curve = pl.read_csv(history)
            loss.plot(curve["epoch"], curve["train_loss"], label=version.name[:15])
            metric = next((c for c in curve.columns if c.startswith("val_")), None)
            if metric is not None:
                validation.plot(
                    curve["epoch"], curve[metric], label=f"{version.name[:15]} {metric}"
                )
    loss.set(xlabel="epoch", ylabel="training loss", title="training loss of the versions")
    validation.set(xlabel="epoch", ylabel="validation metric", title="validation metric")
    for axis in (loss, validation):
        if axis.get_legend_handles_labels()[0]:
            axis.legend(fontsize="small")
    curves = Figure(
        "Training curves",
        "Each kept version's training loss and, where its training had a validation slice, "
        "its validation metric by epoch (its checkpoint's history.csv; a version refit on "
        "every rating has no validation slice).",
        _png(figure),
    )
    gated = [a for a in read_attempts(directory) if a["details"].get("gate")]
    figure, axis = plt.subplots(figsize=(8, 4))
    names = [a["details"]["candidate"][:15] for a in gated]
    positions = np.arange(len(gated))
    for offset, side in ((-0.2, "candidate"), (0.2, "current")):
        values = [a["details"]["gate"][side] for a in gated]
        axis.bar(positions + offset, values, width=0.4, label=side)
    axis.set_xticks(positions, names, rotation=30)
    axis.set(ylabel="held-out NDCG@k", title="the quality gate of each retrain")
    axis.legend()
    promoted = ", ".join(
        f"{n}: {'promoted' if a['details'].get('promoted') else 'kept the current'}"
        for n, a in zip(names, gated, strict=True)
    )
    gate = Figure(
        "Quality gate",
        "Each retrain's candidate and the model then current on the same held-out users. "
        + (promoted or "No retrain has been judged against a current model yet."),
        _png(figure),
    )
    return [curves, gate]


def _png(figure: Any) -> bytes:
    import matplotlib.pyplot as plt

    buffer = io.BytesIO()
    figure.tight_layout()
    figure.savefig(buffer, format="png", dpi=100)
    plt.close(figure)
    return buffer.getvalue()


def _page(directory: Path, summary: str, figures: list[Figure]) -> str:
    made = datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M:%S UTC")
    sections = "\n".join(
        f"<section><h2>{html.escape(f.title)}</h2>"
        f'<img alt="{html.escape(f.title)}" src="data:image/png;base64,'
        f'{base64.b64encode(f.png).decode()}">'
        f"<p>{html.escape(f.caption)}</p></section>"
        for f in figures
    )
    return f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8">
<title>aerec report: {html.escape(str(directory))}</title>
<style>body {{ font-family: sans-serif; max-width: 72em; margin: 2em auto; }}
img {{ max-width: 100%; }}
pre {{ background: #f4f4f4; padding: 1em; white-space: pre-wrap; }}</style>
</head><body>
<h1>aerec report: {html.escape(str(directory))}</h1>
<p>Written {made}. <span id="figures-shown"></span></p>
<pre>{html.escape(summary)}</pre>
{sections}
<script>
window.addEventListener("load", () => {{
  const images = [...document.images];
  const shown = images.filter((image) => image.complete && image.naturalWidth > 0).length;
  document.getElementById("figures-shown").textContent =
    `${{shown}} of ${{images.length}} figures shown.`;
}});
</script>
</body></html>
"""
