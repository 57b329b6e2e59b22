"""Evaluate a model artifact on labelled photos and write a report: ``dogbreed evaluate``.

The report (Markdown or HTML, with PNG plots and thumbnails) has the overall top-1/top-5, per-breed
precision and recall sorted worst first, the most confused breed pairs with example photos, a
confusion matrix picture and the training diagnostics recorded in the artifact; ``metrics.json``
holds the same numbers for machines.

Folder breeds are matched to the model's classes by name (``breeds.class_lookup``: case, spaces, ``_``
and ``-`` ignored, plus the ImageNet aliases of the starter model's breeds), so the starter model can be evaluated on
Stanford Dogs or dogImages folders; folders that match no class are listed in the report.
"""

from __future__ import annotations

import html
import json
import os
import shutil
import sys
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import csv

import click
import numpy as np
import torch
from PIL import Image

from .artifact import InputError
from .breeds import class_lookup, match_breed
from .choices import FORMATS, SPLIT_CHOICES
from .data import (
    DataError,
    ImageDataset,
    collate_skipping_unreadable,
    discover_class_folders,
    find_split_dirs,
    load_split_record,
)
from .serving.loading import ArtifactError, LoadedModel, load_model
from .serving.transforms import to_rgb

REPORT_FILES = (
    "report.md", "report.html", "metrics.json", "predictions.csv", "confusion_matrix.png", "per_breed.png", "examples",
)
TOP_CONFUSED = 10
EXAMPLES_PER_PAIR = 3
THUMBNAIL_SIZE = 160


class EvaluationError(ValueError):
    """Bad evaluation input (data folder, model/data mismatch); one line for the user."""


# --- which photos, with which labels ----------------------------------------------------------------


@dataclass
class LabelledImages:
    """Photos with the model class each one shows, and what could not be used."""

    paths: list[str]
    labels: list[int]  # index into the model's classes
    source: str  # human description of where they came from
    split: str  # the split actually scored: "all" when every image of a folder without splits was used
    unmapped_folders: dict[str, int] = field(default_factory=dict)  # breed name -> image count
    skipped: list[str] = field(default_factory=list)  # "path: reason"


def _every_image(folder: Path) -> tuple[list[tuple[str, str]], list[str]]:
    """(path, breed name) for every image in the class folders under ``folder``, and what was skipped."""
    data = discover_class_folders(folder, fractions=(1.0, 0.0, 0.0))
    samples = [(path, data.classes[label]) for path, label in data.splits["train"]]
    return samples, [f"{s.path}: {s.reason}" for s in data.skipped]


def _trained_on_this_folder(loaded: LoadedModel, root: Path) -> bool:
    data_arg = loaded.metadata.get("training_args", {}).get("data")
    return bool(data_arg) and Path(str(data_arg)).name == root.name


def find_labelled_images(
    loaded: LoadedModel, data_dir: str | os.PathLike, split: str = "test", split_file: str | os.PathLike | None = None
) -> LabelledImages:
    """The photos of ``split`` in ``data_dir`` labelled with the model's classes.

    Split folders (dogImages layout): the ``split`` folder (``all``: every split folder). Class folders
    (Stanford layout): ``split_file`` (the split record ``dogbreed train`` wrote) picks the split;
    without one, every image is used unless the model was trained on this very folder, in which case
    that would score it on its training photos and ``split_file`` (or ``--split all``) is required.
    """
    root = Path(data_dir)
    if not root.is_dir():
        raise EvaluationError(f"--data {root}: no such directory")
    if split not in SPLIT_CHOICES:
        raise EvaluationError(f"unknown split {split!r}; choose one of: {', '.join(SPLIT_CHOICES)}")
    samples: list[tuple[str, str]] = []
    skipped: list[str] = []
    try:
        split_dirs = find_split_dirs(root)
        if split_dirs:
            wanted = list(split_dirs) if split == "all" else [split]
            if split not in split_dirs and split != "all":
                raise EvaluationError(
                    f"--data {root} has no {split!r} folder; found: {', '.join(sorted(split_dirs))} "
                    f"(choose one with --split, or --split all)"
                )
            for name in wanted:
                found, skipped_here = _every_image(split_dirs[name])
                samples += found
                skipped += skipped_here
            source = f"{root} ({'every split' if split == 'all' else split_dirs[split].name + '/'})"
            scored = split
        elif split_file is not None and split != "all":
            data = load_split_record(split_file, root)
            samples = [(path, data.classes[label]) for path, label in data.splits[split]]
            if not samples:
                raise EvaluationError(f"split file {split_file} has no {split!r} images")
            source = f"{root} ({split} split of {split_file})"
            scored = split
        else:
            if split != "all" and _trained_on_this_folder(loaded, root):
                raise EvaluationError(
                    f"the model was trained on {root.name}, which has no split folders: give --split-file "
                    "(the split record written by dogbreed train) or --split all"
                )
            samples, skipped = _every_image(root)
            source = f"{root} (every image: no split folders)"
            scored = "all"
    except DataError as exc:
        raise EvaluationError(f"--data {root}: {exc}") from None
    if not samples:
        raise EvaluationError(f"--data {root}: no labelled images found")

    lookup = class_lookup(loaded.classes)
    paths, labels, unmapped = [], [], {}
    for path, breed in samples:
        index = match_breed(breed, lookup)
        if index is None:
            unmapped[breed] = unmapped.get(breed, 0) + 1
        else:
            paths.append(path)
            labels.append(index)
    if not paths:
        examples = ", ".join(sorted(unmapped)[:3])
        raise EvaluationError(
            f"none of the {len(unmapped)} breed folders in {root} matches the model's classes (e.g. {examples})"
        )
    return LabelledImages(paths, labels, source, scored, unmapped, skipped)


def labelled_images_from(loaded: LoadedModel, data, split: str, split_file=None) -> LabelledImages:
    """Accepts a folder, ``[(path, class index or class name), ...]``, or a dataset with ``.samples``
    (pairs of path and index into its ``.classes``)."""
    if isinstance(data, (str, os.PathLike)):
        return find_labelled_images(loaded, data, split, split_file)
    if hasattr(data, "samples") and hasattr(data, "classes"):
        data = [(path, data.classes[label]) for path, label in data.samples]
    lookup = class_lookup(loaded.classes)
    paths, labels, unmapped = [], [], {}
    for path, label in data:
        if isinstance(label, str):
            index = match_breed(label, lookup)
            if index is None:
                unmapped[label] = unmapped.get(label, 0) + 1
                continue
        else:
            index = int(label)
            if not 0 <= index < len(loaded.classes):
                raise EvaluationError(f"label {index} of {path} is not a class of the model")
        paths.append(str(path))
        labels.append(index)
    if not paths:
        raise EvaluationError("no evaluation images match the model's classes")
    return LabelledImages(paths, labels, f"{len(paths)} images of the {split} split", split, unmapped)


# --- running the model ----------------------------------------------------------------------------


@dataclass
class Predictions:
    paths: list[str]
    labels: np.ndarray  # [N] true class index
    probs: np.ndarray  # [N, C] breed probabilities
    dog_prob: np.ndarray | None  # [N]
    unreadable: list[str]
    seconds: float


def predict(
    loaded: LoadedModel, images: LabelledImages, batch_size: int = 32, num_workers: int = 0, progress: bool = False
) -> Predictions:
    """Batched inference under ``torch.inference_mode`` (via ``predict_proba``); skips unreadable files."""
    # The dataset's "label" is the sample's position, so skipped files cannot misalign the results.
    dataset = ImageDataset([(path, i) for i, path in enumerate(images.paths)], loaded.preset)
    loader = torch.utils.data.DataLoader(
        dataset, batch_size=batch_size, num_workers=num_workers, collate_fn=collate_skipping_unreadable
    )
    positions, probs, dog_probs = [], [], []
    started = time.perf_counter()
    done = 0
    for batch in loader:
        done += batch_size
        if batch is None:
            continue
        tensors, index = batch
        breed_probs, dog_prob = loaded.predict_proba(tensors)
        positions.append(index.numpy())
        probs.append(breed_probs.numpy())
        if dog_prob is not None:
            dog_probs.append(dog_prob.numpy())
        if progress:
            click.echo(f"\r{progress_line(min(done, len(dataset)), len(dataset), time.perf_counter() - started)}",
                       err=True, nl=False)
    if progress:
        click.echo("", err=True)
    seconds = time.perf_counter() - started
    seen = np.concatenate(positions) if positions else np.zeros(0, dtype=np.int64)
    unreadable = sorted(set(images.paths) - {images.paths[i] for i in seen})
    labels = np.asarray(images.labels)[seen]
    return Predictions(
        paths=[images.paths[i] for i in seen],
        labels=labels,
        probs=np.concatenate(probs) if probs else np.zeros((0, len(loaded.classes)), dtype=np.float32),
        dog_prob=np.concatenate(dog_probs) if dog_probs else None,
        unreadable=unreadable,
        seconds=seconds,
    )


def progress_line(done: int, total: int, elapsed: float) -> str:
    """``120/538 images  14.2 images/s  ETA 29 s``, padded so a shorter line overwrites a longer one."""
    rate = done / elapsed if elapsed > 0 else 0.0
    eta = f"ETA {(total - done) / rate:.0f} s" if rate > 0 and done < total else ""
    return f"{done}/{total} images  {rate:.1f} images/s  {eta}".ljust(48)


# --- metrics ----------------------------------------------------------------------------------------


def compute_metrics(predictions: Predictions, classes: Sequence[str]) -> dict:
    """Top-1/top-5, per-breed precision/recall/F1 (breeds present in the data), confused pairs."""
    labels, probs = predictions.labels, predictions.probs
    n, num_classes = probs.shape
    if n == 0:
        raise EvaluationError("no image could be read")
    predicted = probs.argmax(axis=1)
    k = min(5, num_classes)
    top_k = np.argpartition(-probs, k - 1, axis=1)[:, :k]
    correct = predicted == labels
    evaluated = sorted(set(labels.tolist()))
    per_breed = []
    for c in evaluated:
        support = int((labels == c).sum())
        true_positives = int(((labels == c) & correct).sum())
        predicted_count = int((predicted == c).sum())
        recall = true_positives / support
        precision = true_positives / predicted_count if predicted_count else 0.0
        f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
        wrong = predicted[(labels == c) & ~correct]
        mistaken_for = None
        if wrong.size:
            values, counts = np.unique(wrong, return_counts=True)
            mistaken_for = classes[int(values[counts.argmax()])]
        per_breed.append({
            "breed": classes[c], "class_id": c, "images": support, "recall": recall, "precision": precision,
            "f1": f1, "predicted": predicted_count, "most_mistaken_for": mistaken_for,
        })
    per_breed.sort(key=lambda row: (row["recall"], row["precision"], row["breed"]))
    pairs: dict[tuple[int, int], list[int]] = {}
    for i in np.flatnonzero(~correct):
        pairs.setdefault((int(labels[i]), int(predicted[i])), []).append(int(i))
    confused = []
    for (true, pred), rows in sorted(pairs.items(), key=lambda item: (-len(item[1]), item[0]))[:TOP_CONFUSED]:
        rows.sort(key=lambda i: -probs[i, pred])  # the most confident mistakes first
        confused.append({
            "true": classes[true], "predicted": classes[pred], "count": len(rows),
            "share_of_true": len(rows) / int((labels == true).sum()),
            "examples": [predictions.paths[i] for i in rows[:EXAMPLES_PER_PAIR]],
        })
    metrics = {
        "images": int(n),
        "breeds_evaluated": len(evaluated),
        "model_classes": num_classes,
        "top1": float(correct.mean()),
        f"top{k}": float((top_k == labels[:, None]).any(axis=1).mean()),
        "mean_per_breed_recall": float(np.mean([row["recall"] for row in per_breed])),
        "predicted_outside_evaluated_breeds": int((~np.isin(predicted, evaluated)).sum()),
        "mean_confidence": float(probs.max(axis=1).mean()),
        "images_per_second": n / predictions.seconds if predictions.seconds > 0 else None,
        "per_breed": per_breed,
        "confused_pairs": confused,
    }
    if predictions.dog_prob is not None:
        metrics["mean_dog_probability"] = float(predictions.dog_prob.mean())
        metrics["judged_not_a_dog"] = int((predictions.dog_prob < 0.5).sum())
    return metrics


def confusion_matrix(predictions: Predictions, evaluated: Sequence[int]) -> np.ndarray:
    """Rows: true breeds in ``evaluated`` order; columns: the same, plus "other" (any other class)."""
    column = {c: i for i, c in enumerate(evaluated)}
    matrix = np.zeros((len(evaluated), len(evaluated) + 1), dtype=np.int64)
    for true, pred in zip(predictions.labels, predictions.probs.argmax(axis=1), strict=True):
        matrix[column[int(true)], column.get(int(pred), len(evaluated))] += 1
    return matrix


# --- pictures ---------------------------------------------------------------------------------------


def _figure(width: float, height: float):
    from matplotlib.figure import Figure  # the object API: no pyplot state, no display needed

    return Figure(figsize=(width, height), dpi=100, layout="constrained")


def plot_confusion_matrix(matrix: np.ndarray, names: Sequence[str], path: Path) -> None:
    has_other = matrix[:, -1].any()
    shown = matrix if has_other else matrix[:, :-1]
    rows = shown.sum(axis=1, keepdims=True)
    normalised = shown / np.maximum(rows, 1)
    n = len(names)
    size = min(4 + 0.22 * n, 30)
    fig = _figure(size + 1.5, size)
    ax = fig.add_subplot()
    image = ax.imshow(normalised, cmap="Blues", vmin=0, vmax=1, aspect="auto")
    fig.colorbar(image, ax=ax, label="share of the true breed's images")
    ax.set_xlabel("predicted breed")
    ax.set_ylabel("true breed")
    if n <= 60:
        column_names = [*names, "other breeds"] if has_other else list(names)
        ax.set_xticks(range(len(column_names)), column_names, rotation=90, fontsize=7)
        ax.set_yticks(range(n), names, fontsize=7)
        if n <= 15:
            for (i, j), value in np.ndenumerate(shown):
                if value:
                    ax.text(j, i, str(value), ha="center", va="center", fontsize=8,
                            color="white" if normalised[i, j] > 0.5 else "black")
    ax.set_title("Confusion matrix (rows normalised)")
    fig.savefig(path)


def plot_per_breed(per_breed: Sequence[dict], path: Path, worst: int = 30) -> None:
    rows = list(per_breed[:worst])[::-1]  # worst at the top
    fig = _figure(8, 1.2 + 0.3 * len(rows))
    ax = fig.add_subplot()
    y = np.arange(len(rows))
    ax.barh(y - 0.2, [r["recall"] for r in rows], height=0.4, label="recall")
    ax.barh(y + 0.2, [r["precision"] for r in rows], height=0.4, label="precision")
    ax.set_yticks(y, [r["breed"] for r in rows], fontsize=8)
    ax.set_xlim(0, 1)
    ax.legend(loc="upper left", bbox_to_anchor=(1.01, 1.0))
    ax.set_title(f"Per-breed recall and precision ({'worst ' + str(len(rows)) if len(per_breed) > worst else 'all'})")
    fig.savefig(path)


def write_thumbnail(source: str, destination: Path) -> bool:
    try:
        with Image.open(source) as image:
            image.draft("RGB", (THUMBNAIL_SIZE * 2, THUMBNAIL_SIZE * 2))
            image = to_rgb(image)  # upright per EXIF, like the model saw it
            image.thumbnail((THUMBNAIL_SIZE, THUMBNAIL_SIZE))
            image.save(destination, "JPEG", quality=85)
        return True
    except Exception:  # noqa: BLE001 - a photo Pillow cannot render is left out of the report, nothing more
        return False


def write_predictions_csv(predictions: Predictions, classes: Sequence[str], path: Path, top: int = 5) -> None:
    """One row per evaluated image: true and predicted breed, probability, the top-k, dog probability."""
    top = min(top, len(classes))
    with path.open("w", newline="", encoding="utf-8") as file:
        writer = csv.writer(file)
        writer.writerow(["image", "true_breed", "predicted_breed", "probability", "correct", f"top{top}", "dog_probability"])
        for i, image in enumerate(predictions.paths):
            row = predictions.probs[i]
            ranked = np.argsort(-row)[:top]
            writer.writerow([
                image,
                classes[int(predictions.labels[i])],
                classes[int(ranked[0])],
                f"{row[ranked[0]]:.4f}",
                int(ranked[0] == predictions.labels[i]),
                "; ".join(f"{classes[int(c)]} {row[c]:.4f}" for c in ranked),
                "" if predictions.dog_prob is None else f"{predictions.dog_prob[i]:.4f}",
            ])


# --- the report document ------------------------------------------------------------------------------


class Document:
    """A report as blocks, rendered to Markdown or HTML (one content, two formats)."""

    def __init__(self):
        self.blocks: list[tuple] = []

    def heading(self, text: str, level: int = 2):
        self.blocks.append(("heading", level, text))

    def paragraph(self, text: str):
        self.blocks.append(("paragraph", text))

    def bullets(self, items: Sequence[str]):
        self.blocks.append(("bullets", list(items)))

    def table(self, header: Sequence[str], rows: Sequence[Sequence]):
        """Cells are text, or ("image", path, alt) tuples, or lists of those."""
        self.blocks.append(("table", list(header), [list(r) for r in rows]))

    def image(self, path: str, alt: str):
        self.blocks.append(("image", path, alt))

    @staticmethod
    def _md_cell(cell) -> str:
        if isinstance(cell, list):
            return " ".join(Document._md_cell(c) for c in cell)
        if isinstance(cell, tuple):
            return f"![{cell[2]}]({cell[1]})"
        return str(cell).replace("|", "\\|").replace("\n", " ")

    @staticmethod
    def _html_cell(cell) -> str:
        if isinstance(cell, list):
            return " ".join(Document._html_cell(c) for c in cell)
        if isinstance(cell, tuple):
            return f'<img src="{html.escape(cell[1])}" alt="{html.escape(cell[2])}">'
        return html.escape(str(cell))

    def markdown(self) -> str:
        out = []
        for block in self.blocks:
            kind = block[0]
            if kind == "heading":
                out.append("#" * block[1] + " " + block[2])
            elif kind == "paragraph":
                out.append(block[1])
            elif kind == "bullets":
                out.append("\n".join(f"- {item}" for item in block[1]))
            elif kind == "table":
                header, rows = block[1], block[2]
                lines = ["| " + " | ".join(header) + " |", "|" + "|".join(" --- " for _ in header) + "|"]
                lines += ["| " + " | ".join(self._md_cell(c) for c in row) + " |" for row in rows]
                out.append("\n".join(lines))
            elif kind == "image":
                out.append(f"![{block[2]}]({block[1]})")
        return "\n\n".join(out) + "\n"

    def html(self, title: str) -> str:
        body = []
        for block in self.blocks:
            kind = block[0]
            if kind == "heading":
                body.append(f"<h{block[1]}>{html.escape(block[2])}</h{block[1]}>")
            elif kind == "paragraph":
                body.append(f"<p>{html.escape(block[1])}</p>")
            elif kind == "bullets":
                body.append("<ul>" + "".join(f"<li>{html.escape(i)}</li>" for i in block[1]) + "</ul>")
            elif kind == "table":
                head = "".join(f"<th>{html.escape(h)}</th>" for h in block[1])
                rows = "".join(
                    "<tr>" + "".join(f"<td>{self._html_cell(c)}</td>" for c in row) + "</tr>" for row in block[2]
                )
                body.append(f"<table><thead><tr>{head}</tr></thead><tbody>{rows}</tbody></table>")
            elif kind == "image":
                body.append(f'<p><img src="{html.escape(block[1])}" alt="{html.escape(block[2])}"></p>')
        style = (
            "body{font-family:system-ui,sans-serif;max-width:1100px;margin:2em auto;padding:0 1em}"
            "table{border-collapse:collapse}td,th{border:1px solid #ccc;padding:.25em .5em;text-align:left}"
            "img{max-width:100%}"
        )
        return (
            f"<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\"><title>{html.escape(title)}</title>"
            f"<style>{style}</style></head><body>\n" + "\n".join(body) + "\n</body></html>\n"
        )


def _pct(value: float | None) -> str:
    return "-" if value is None else f"{100 * value:.1f}%"


def build_document(loaded: LoadedModel, images: LabelledImages, predictions: Predictions, metrics: dict,
                   thumbnails: dict[str, str]) -> Document:
    meta = loaded.metadata
    k = min(5, len(loaded.classes))
    doc = Document()
    doc.heading(f"Evaluation report: {meta['name']}", 1)
    doc.bullets([
        f"Model: {meta['name']} version {meta.get('version', '?')} ({meta['backbone']}, runtime {meta['runtime']}, "
        f"{len(loaded.classes)} classes)",
        f"Data: {images.source}",
        f"Images evaluated: {metrics['images']} of {metrics['breeds_evaluated']} breeds",
        f"Speed: {metrics['images_per_second']:.1f} images/s" if metrics.get("images_per_second") else "Speed: -",
    ])
    doc.heading("Overall")
    rows = [
        ["Top-1 accuracy", _pct(metrics["top1"])],
        [f"Top-{k} accuracy", _pct(metrics[f"top{k}"])],
        ["Mean per-breed recall", _pct(metrics["mean_per_breed_recall"])],
        ["Mean confidence (top-1 probability)", _pct(metrics["mean_confidence"])],
        ["Predictions outside the evaluated breeds", str(metrics["predicted_outside_evaluated_breeds"])],
    ]
    if "mean_dog_probability" in metrics:
        rows.append(["Mean dog probability", _pct(metrics["mean_dog_probability"])])
        rows.append(["Dog photos judged not a dog (dog probability < 50%)", str(metrics["judged_not_a_dog"])])
    doc.table(["Metric", "Value"], rows)

    warnings = (meta.get("metrics") or {}).get("warnings") or []
    if warnings:
        doc.heading("Training diagnostics")
        doc.paragraph("The trainer's monitor raised these warnings while this model trained:")
        doc.bullets([str(w) for w in warnings])
    trained = {key: value for key, value in (meta.get("metrics") or {}).items()
               if key != "warnings" and isinstance(value, (int, float)) and not isinstance(value, bool)}
    if trained:
        doc.heading("Metrics recorded at training time")
        doc.table(["Metric", "Value"], [[key, f"{value:.4g}"] for key, value in sorted(trained.items())])

    doc.heading("Per-breed precision and recall (worst first)")
    doc.paragraph("Sorted by recall, then precision. Precision counts every image predicted as the breed.")
    doc.image("per_breed.png", "per-breed recall and precision")
    doc.table(
        ["Breed", "Images", "Recall", "Precision", "F1", "Most often mistaken for"],
        [[r["breed"], r["images"], _pct(r["recall"]), _pct(r["precision"]), _pct(r["f1"]), r["most_mistaken_for"] or "-"]
         for r in metrics["per_breed"]],
    )

    doc.heading("Most confused pairs")
    row_of = {path: i for i, path in enumerate(predictions.paths)}

    def example(path: str, true: str, predicted: str) -> list:
        probability = _pct(float(predictions.probs[row_of[path], loaded.classes.index(predicted)]))
        caption = f"{true} → {predicted} {probability}"
        return [("image", thumbnails[path], f"{Path(path).name}: {caption}"), caption]

    if metrics["confused_pairs"]:
        doc.table(
            ["True breed", "Predicted as", "Images", "Share of the true breed", "Examples (most confident first)"],
            [[p["true"], p["predicted"], p["count"], _pct(p["share_of_true"]),
              [cell for e in p["examples"] if e in thumbnails for cell in example(e, p["true"], p["predicted"])]]
             for p in metrics["confused_pairs"]],
        )
    else:
        doc.paragraph("No mistakes.")

    doc.heading("Confusion matrix")
    doc.image("confusion_matrix.png", "confusion matrix")

    notes = []
    if images.unmapped_folders:
        names = ", ".join(f"{name} ({count})" for name, count in sorted(images.unmapped_folders.items()))
        notes.append(f"Breed folders that match no class of the model (not evaluated): {names}")
    if predictions.unreadable or images.skipped:
        notes.append(f"Unreadable or non-image files skipped: {len(predictions.unreadable) + len(images.skipped)}")
    if notes:
        doc.heading("Not evaluated")
        doc.bullets(notes)
        skipped = images.skipped + [f"{p}: unreadable" for p in predictions.unreadable]
        if skipped:
            doc.bullets(skipped[:50] + ([f"... and {len(skipped) - 50} more"] if len(skipped) > 50 else []))
    return doc


# --- writing --------------------------------------------------------------------------------------------


def _move_into(staging: Path, output_dir: Path) -> None:
    """Put the report files into ``output_dir``, replacing an older report's files, nothing else."""
    if not output_dir.exists():
        output_dir.parent.mkdir(parents=True, exist_ok=True)
        os.replace(staging, output_dir)
        return
    for name in REPORT_FILES:
        old = output_dir / name
        if old.is_dir():
            shutil.rmtree(old)
        elif old.exists():
            old.unlink()
    for item in staging.iterdir():
        os.replace(item, output_dir / item.name)
    staging.rmdir()


def write_report(
    model: LoadedModel | str | os.PathLike,
    data,
    output_dir: str | os.PathLike,
    *,
    split: str = "test",
    split_file: str | os.PathLike | None = None,
    report_format: str = "md",
    batch_size: int = 32,
    num_workers: int = 0,
    progress: bool = False,
) -> Path:
    """Evaluate ``model`` on ``data`` and write the report into ``output_dir``; return the report's path.

    ``model``: a :class:`LoadedModel` or an artifact path. ``data``: a folder (see
    :func:`find_labelled_images`), ``[(path, class index or name), ...]``, or a dataset with
    ``.samples``/``.classes``. Writes ``report.md`` (or ``report.html``), ``metrics.json``,
    ``confusion_matrix.png``, ``per_breed.png`` and ``examples/``; other files in ``output_dir`` are
    left alone, and nothing is written when the input is bad (:class:`EvaluationError`,
    :class:`~dogbreed.serving.loading.ArtifactError`).
    """
    if report_format not in FORMATS:
        raise EvaluationError(f"unknown report format {report_format!r}; choose one of: {', '.join(FORMATS)}")
    output_dir = Path(output_dir)
    if output_dir.exists() and not output_dir.is_dir():
        raise EvaluationError(f"--output-dir {output_dir} exists and is not a directory")
    loaded = model if isinstance(model, LoadedModel) else load_model(model)
    images = labelled_images_from(loaded, data, split, split_file)
    predictions = predict(loaded, images, batch_size=batch_size, num_workers=num_workers, progress=progress)
    metrics = compute_metrics(predictions, loaded.classes)
    evaluated = sorted(set(predictions.labels.tolist()))

    output_dir.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{output_dir.name}.", suffix=".tmp", dir=output_dir.parent))
    try:
        examples = staging / "examples"
        examples.mkdir()
        thumbnails = {}
        for pair_number, pair in enumerate(metrics["confused_pairs"], 1):
            for example_number, path in enumerate(pair["examples"], 1):
                name = f"pair{pair_number:02d}_{example_number}.jpg"
                if path not in thumbnails and write_thumbnail(path, examples / name):
                    thumbnails[path] = f"examples/{name}"
        plot_confusion_matrix(confusion_matrix(predictions, evaluated), [loaded.classes[c] for c in evaluated],
                              staging / "confusion_matrix.png")
        plot_per_breed(metrics["per_breed"], staging / "per_breed.png")
        write_predictions_csv(predictions, loaded.classes, staging / "predictions.csv")
        document = build_document(loaded, images, predictions, metrics, thumbnails)
        report_name = f"report.{report_format}"
        text = document.markdown() if report_format == "md" else document.html(f"Evaluation report: {loaded.name}")
        (staging / report_name).write_text(text, encoding="utf-8")
        summary = {
            "model": {"name": loaded.name, "version": loaded.version, "backbone": loaded.metadata["backbone"]},
            "data": images.source,
            "split": images.split,
            **metrics,
            "confusion_matrix": {
                "breeds": [loaded.classes[c] for c in evaluated],
                "columns": [loaded.classes[c] for c in evaluated] + ["other"],
                "counts": confusion_matrix(predictions, evaluated).tolist(),
            },
            "unmapped_folders": images.unmapped_folders,
            "unreadable": predictions.unreadable + images.skipped,
            "training_warnings": (loaded.metadata.get("metrics") or {}).get("warnings") or [],
        }
        (staging / "metrics.json").write_text(json.dumps(summary, indent=2) + "\n", encoding="utf-8")
        _move_into(staging, output_dir)
    finally:
        if staging.exists():
            shutil.rmtree(staging, ignore_errors=True)
    return output_dir / report_name


# --- the command ----------------------------------------------------------------------------------------


@click.command(name="evaluate")
@click.option("--model", "model_path", required=True, type=click.Path(path_type=Path),
              help="Artifact to evaluate: model.tar.gz or its extracted folder. Required.")
@click.option("--data", "data_dir", required=True, type=click.Path(path_type=Path),
              help="Labelled photos: split folders (dogImages layout) or one folder per breed (Stanford layout). Required.")
@click.option("--split", type=click.Choice(SPLIT_CHOICES), default="test", show_default=True,
              help="Which split to evaluate; 'all' takes every image.")
@click.option("--split-file", type=click.Path(path_type=Path), default=None,
              help="Split record written by `dogbreed train` for data without split folders. Default: none.")
@click.option("--output-dir", type=click.Path(path_type=Path), default=Path("report"), show_default=True,
              help="Folder for the report, plots and metrics.json.")
@click.option("--format", "report_format", type=click.Choice(FORMATS), default="md", show_default=True,
              help="Report format: Markdown or HTML.")
@click.option("--batch-size", type=click.IntRange(min=1), default=32, show_default=True, help="Images per forward pass.")
@click.option("--workers", type=click.IntRange(min=0), default=2, show_default=True,
              help="Image-decoding worker processes (0: decode in the main process).")
def evaluate_command(model_path, data_dir, split, split_file, output_dir, report_format, batch_size, workers):
    """Evaluate a model artifact on labelled photos and write a report.

    Prints the report's path; the numbers are also in metrics.json next to it.
    """
    try:
        report = write_report(
            model_path, data_dir, output_dir, split=split, split_file=split_file, report_format=report_format,
            batch_size=batch_size, num_workers=workers, progress=sys.stderr.isatty(),
        )
    except (EvaluationError, ArtifactError) as exc:
        raise InputError(str(exc)) from None
    metrics = json.loads((report.parent / "metrics.json").read_text())
    k = min(5, metrics["model_classes"])
    click.echo(
        f"top1={metrics['top1']:.4f} top{k}={metrics[f'top{k}']:.4f} images={metrics['images']} "
        f"breeds={metrics['breeds_evaluated']}",
        err=True,
    )
    click.echo(str(report))
