"""evaluation.py: metrics on known predictions, folder-to-class matching, the report, `dogbreed evaluate`."""

from __future__ import annotations

import csv
import json
import re
import shutil
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner
from PIL import Image

from dogbreed.cli import main
from dogbreed.breeds import breed_from_folder, breed_key, class_lookup
from dogbreed.data import discover, write_split_record
from dogbreed.evaluation import (
    EvaluationError,
    Predictions,
    compute_metrics,
    confusion_matrix,
    find_labelled_images,
    progress_line,
    write_report,
)
from dogbreed.imagenet import dog_breed_names
from dogbreed.serving.loading import load_model

CLASSES = ["Affenpinscher", "Afghan hound", "Labrador retriever", "Pug"]


# ---- metrics on predictions we know ----------------------------------------------------------------


def known_predictions() -> Predictions:
    # true labels and the predicted class of 8 images (class 3 is never the truth)
    labels = np.array([0, 0, 0, 0, 1, 1, 2, 2])
    predicted = np.array([0, 0, 1, 3, 1, 1, 1, 2])
    probs = np.full((8, 4), 0.1, dtype=np.float32)
    probs[np.arange(8), predicted] = 0.7
    probs[2, 1] = 0.8  # the most confident of the 0 -> 1 mistakes
    probs[6, 0] = 0.15  # image 6: truth (2) is third, inside the top 5 anyway
    return Predictions([f"img{i}.jpg" for i in range(8)], labels, probs, None, [], seconds=2.0)


def test_metrics_of_known_predictions():
    metrics = compute_metrics(known_predictions(), CLASSES)
    assert metrics["images"] == 8 and metrics["breeds_evaluated"] == 3 and metrics["model_classes"] == 4
    assert metrics["top1"] == pytest.approx(5 / 8)
    assert metrics["top4"] == 1.0  # top-k is capped at the number of classes
    assert metrics["mean_per_breed_recall"] == pytest.approx((2 / 4 + 2 / 2 + 1 / 2) / 3)
    assert metrics["predicted_outside_evaluated_breeds"] == 1
    assert metrics["images_per_second"] == 4.0
    rows = {row["breed"]: row for row in metrics["per_breed"]}
    assert rows["Affenpinscher"]["recall"] == 0.5 and rows["Affenpinscher"]["precision"] == 1.0
    assert rows["Afghan hound"]["recall"] == 1.0 and rows["Afghan hound"]["precision"] == pytest.approx(2 / 4)
    assert rows["Labrador retriever"]["recall"] == 0.5 and rows["Labrador retriever"]["precision"] == 1.0
    assert rows["Labrador retriever"]["most_mistaken_for"] == "Afghan hound"
    # worst first: recall, then precision
    assert [row["breed"] for row in metrics["per_breed"]] == ["Affenpinscher", "Labrador retriever", "Afghan hound"]
    pairs = [(p["true"], p["predicted"], p["count"]) for p in metrics["confused_pairs"]]
    assert pairs == [("Affenpinscher", "Afghan hound", 1), ("Affenpinscher", "Pug", 1), ("Labrador retriever", "Afghan hound", 1)]
    assert metrics["confused_pairs"][0]["examples"] == ["img2.jpg"]


def test_top5_counts_the_truth_anywhere_in_the_five_most_probable():
    labels = np.array([0, 0])
    probs = np.tile(np.linspace(0.01, 0.1, 10, dtype=np.float32), (2, 1))  # class 9 most probable, class 0 least
    probs[1, 0] = 0.065  # image 1: the truth is 4th
    metrics = compute_metrics(Predictions(["a", "b"], labels, probs, None, [], 1.0), [f"c{i}" for i in range(10)])
    assert metrics["top1"] == 0.0 and metrics["top5"] == 0.5


def test_confusion_matrix_puts_predictions_outside_the_evaluated_breeds_in_other():
    matrix = confusion_matrix(known_predictions(), [0, 1, 2])
    assert matrix.tolist() == [[2, 1, 0, 1], [0, 2, 0, 0], [0, 1, 1, 0]]


# ---- matching folders to classes -------------------------------------------------------------------


def test_folder_names_match_model_classes_across_layouts_and_imagenet_aliases():
    lookup = class_lookup(dog_breed_names())
    names = dog_breed_names()
    for folder, expected in [
        ("n02110185-Siberian_husky", "Siberian husky"),  # Stanford layout
        ("016.Beagle", "Beagle"),  # dogImages layout
        ("n02088238-basset", "Basset hound"),  # the raw ImageNet name
        ("n02086240-Shih-Tzu", "Shih Tzu"),
        ("015.Basset_hound", "Basset hound"),
        ("021.Belgian_sheepdog", "Groenendael"),
        ("n02096051-Airedale", "Airedale terrier"),
    ]:
        assert names[lookup[breed_key(breed_from_folder(folder))]] == expected, folder
    assert breed_key(breed_from_folder("001.Affenpinscher")) in lookup
    assert breed_key(breed_from_folder("040.Bulldog")) not in lookup


# ---- the report on tiny generated data -------------------------------------------------------------


def evaluate(*argv: str):
    return CliRunner().invoke(main, ["evaluate", "--workers", "0", *argv])


def expected_top1(artifact: Path, folder: Path, classes: list[str]) -> float:
    loaded = load_model(artifact)
    correct = total = 0
    for class_dir in sorted(folder.iterdir()):
        for path in sorted(class_dir.iterdir()):
            with Image.open(path) as image:
                probs, _ = loaded.predict_proba(loaded.preset(image)[None])
            correct += int(probs.argmax()) == classes.index(breed_from_folder(class_dir.name))
            total += 1
    return correct / total


def test_markdown_report_on_a_dogimages_layout(tiny_artifact, dogimages_dir, tmp_path, tiny_classes):
    out = tmp_path / "report"
    result = evaluate("--model", str(tiny_artifact), "--data", str(dogimages_dir), "--output-dir", str(out))
    assert result.exit_code == 0, result.output
    assert result.stdout == f"{out / 'report.md'}\n"
    assert sorted(p.name for p in out.iterdir()) == [
        "confusion_matrix.png", "examples", "metrics.json", "per_breed.png", "predictions.csv", "report.md",
    ]
    for png in ("confusion_matrix.png", "per_breed.png"):
        with Image.open(out / png) as image:
            assert image.format == "PNG" and image.width > 200
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["images"] == 6 and metrics["breeds_evaluated"] == 3 and metrics["split"] == "test"
    assert metrics["top1"] == pytest.approx(expected_top1(tiny_artifact, dogimages_dir / "test", tiny_classes))
    assert sum(map(sum, metrics["confusion_matrix"]["counts"])) == 6
    report = (out / "report.md").read_text()
    for section in ("# Evaluation report: tiny-test", "## Overall", "## Per-breed precision and recall (worst first)",
                    "## Most confused pairs", "## Confusion matrix", "![confusion matrix](confusion_matrix.png)"):
        assert section in report
    assert f"| Top-1 accuracy | {100 * metrics['top1']:.1f}% |" in report
    for pair in metrics["confused_pairs"]:  # every example thumbnail the report shows exists
        assert f"| {pair['true']} | {pair['predicted']} | {pair['count']} |" in report
    for thumbnail in (out / "examples").iterdir():
        assert f"(examples/{thumbnail.name})" in report
    assert "## Training diagnostics" not in report
    assert result.stderr.startswith(f"top1={metrics['top1']:.4f} top3=")


@pytest.fixture()
def warned_artifact(tmp_path, make_tiny_model, make_tiny_metadata) -> Path:
    from dogbreed.artifact import write_artifact

    metadata = make_tiny_metadata(metrics={"val_acc1": 0.4, "warnings": ["gradient norm 1.2e+04 at step 30: exploding"]})
    return write_artifact(make_tiny_model(), metadata, tmp_path / "warned")


def test_html_report_lists_training_warnings_and_unmatched_folders(warned_artifact, dogimages_dir, tmp_path):
    unknown = dogimages_dir / "test" / "099.Unicorn"
    shutil.copytree(dogimages_dir / "test" / "001.Affenpinscher", unknown)
    out = tmp_path / "report"
    result = evaluate("--model", str(warned_artifact), "--data", str(dogimages_dir), "--output-dir", str(out), "--format", "html")
    # the Unicorn folder exists only in test/, but evaluation reads just that split
    assert result.exit_code == 0, result.output
    page = (out / "report.html").read_text()
    assert page.startswith("<!DOCTYPE html>")
    assert "<h2>Training diagnostics</h2>" in page
    assert "<li>gradient norm 1.2e+04 at step 30: exploding</li>" in page
    assert "<tr><td>val_acc1</td><td>0.4</td></tr>" in page  # metrics recorded at training time
    assert "Breed folders that match no class of the model (not evaluated): Unicorn (2)" in page
    assert '<img src="confusion_matrix.png" alt="confusion matrix">' in page
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["unmapped_folders"] == {"Unicorn": 2} and metrics["images"] == 6
    assert metrics["training_warnings"] == ["gradient norm 1.2e+04 at step 30: exploding"]


def test_an_existing_report_folder_keeps_other_files(tiny_artifact, dogimages_dir, tmp_path):
    out = tmp_path / "outputs"
    out.mkdir()
    (out / "history.json").write_text("[]")
    (out / "report.html").write_text("old")
    result = evaluate("--model", str(tiny_artifact), "--data", str(dogimages_dir), "--output-dir", str(out), "--split", "valid")
    assert result.exit_code == 0, result.output
    assert (out / "history.json").read_text() == "[]"
    assert not (out / "report.html").exists()  # an older report's files are replaced, not mixed in
    assert json.loads((out / "metrics.json").read_text())["split"] == "valid"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["dogImages", "outputs"]  # no staging folder left


def test_write_report_takes_the_samples_training_passes(tiny_artifact, dogimages_dir, tmp_path):
    data = discover(dogimages_dir)
    path = write_report(tiny_artifact, data.splits["test"], tmp_path / "r", split="test")
    assert path == tmp_path / "r" / "report.md"
    metrics = json.loads((tmp_path / "r" / "metrics.json").read_text())
    assert metrics["images"] == len(data.splits["test"]) == 6


def test_unreadable_photos_are_skipped_and_listed(tiny_artifact, dogimages_dir, tmp_path):
    broken = dogimages_dir / "test" / "002.Afghan_hound" / "broken.jpg"
    broken.write_bytes((dogimages_dir / "test" / "002.Afghan_hound").glob("*.jpg").__next__().read_bytes()[:100])
    out = tmp_path / "report"
    result = evaluate("--model", str(tiny_artifact), "--data", str(dogimages_dir), "--output-dir", str(out))
    assert result.exit_code == 0, result.output
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["images"] == 6
    assert len(metrics["unreadable"]) == 1 and metrics["unreadable"][0].startswith(str(broken))
    assert "Unreadable or non-image files skipped: 1" in (out / "report.md").read_text()


def test_stanford_layout_uses_every_image_for_a_model_not_trained_on_it(tiny_artifact, tmp_path):
    root = tmp_path / "stanford"
    for folder in ("n02085782-Afghan_hound", "n02099712-Labrador_retriever"):
        (root / folder).mkdir(parents=True)
        for i in range(3):
            Image.new("RGB", (40, 40), (i * 80, 100, 50)).save(root / folder / f"{i}.jpg")
    loaded = load_model(tiny_artifact)
    images = find_labelled_images(loaded, root, split="test")
    assert len(images.paths) == 6 and sorted(set(images.labels)) == [1, 2]
    assert images.source == f"{root} (every image: no split folders)"
    assert images.split == "all"  # what was scored, whatever --split said
    out = tmp_path / "report"
    result = evaluate("--model", str(tiny_artifact), "--data", str(root), "--output-dir", str(out))
    assert result.exit_code == 0, result.output
    assert json.loads((out / "metrics.json").read_text())["split"] == "all"


def test_stanford_layout_of_the_training_data_needs_its_split_file(tmp_path, stanford_dir, make_tiny_model, make_tiny_metadata):
    from dogbreed.artifact import write_artifact

    data = discover(stanford_dir)
    metadata = make_tiny_metadata(classes=data.classes, training_args={"data": str(stanford_dir)})
    artifact_path = write_artifact(make_tiny_model(), metadata, tmp_path / "m")
    out = tmp_path / "report"
    result = evaluate("--model", str(artifact_path), "--data", str(stanford_dir), "--output-dir", str(out))
    assert result.exit_code == 2
    assert result.stderr == (
        "Error: the model was trained on stanford, which has no split folders: give --split-file "
        "(the split record written by dogbreed train) or --split all\n"
    )
    assert not out.exists()
    split_file = write_split_record(data.split_record, tmp_path / "split.json")
    result = evaluate("--model", str(artifact_path), "--data", str(stanford_dir), "--output-dir", str(out),
                      "--split-file", str(split_file))
    assert result.exit_code == 0, result.output
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["images"] == len(data.splits["test"]) == 6


# ---- bad input -------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--data", "{tmp}/nowhere"], "--data {tmp}/nowhere: no such directory"),
        (["--model", "{tmp}/missing.tar.gz"], "{tmp}/missing.tar.gz: no such file or directory"),
        (["--data", "{tmp}/cats"], "none of the 2 breed folders in {tmp}/cats matches the model's classes (e.g. Persian, Siamese)"),
        (["--data", "{tmp}/empty"], "--data {tmp}/empty: no breed folders in {tmp}/empty; expected split folders train/, valid/ "
         "(or val/, validation/) and optionally test/, each with one folder per breed (dogImages layout), or one folder per "
         "breed with no split (Stanford Dogs layout)"),
        (["--data", "{tmp}/notest"], "--data {tmp}/notest has no 'test' folder; found: train, valid (choose one with --split, or --split all)"),
        (["--output-dir", "{tmp}/file.txt"], "--output-dir {tmp}/file.txt exists and is not a directory"),
    ],
    ids=["missing-data", "missing-model", "no-matching-breed", "empty-data", "no-test-split", "output-is-a-file"],
)
def test_bad_input_is_one_line_exit_2_and_writes_nothing(tiny_artifact, tmp_path, argv, message):
    for breed in ("Persian", "Siamese"):
        (tmp_path / "cats" / breed).mkdir(parents=True)
        Image.new("RGB", (40, 40)).save(tmp_path / "cats" / breed / "1.jpg")
    (tmp_path / "empty").mkdir()
    for split in ("train", "valid"):
        (tmp_path / "notest" / split / "001.Pug").mkdir(parents=True)
    (tmp_path / "file.txt").write_text("x")
    options = {"--model": str(tiny_artifact), "--data": str(tmp_path / "cats"), "--output-dir": str(tmp_path / "report")}
    argv = [a.format(tmp=tmp_path) for a in argv]
    options.update(zip(argv[::2], argv[1::2], strict=True))
    before = sorted(p.relative_to(tmp_path) for p in tmp_path.rglob("*"))
    result = evaluate(*[x for pair in options.items() for x in pair])
    assert result.exit_code == 2, result.output
    assert result.stdout == ""
    assert result.stderr == f"Error: {message.format(tmp=tmp_path)}\n"
    assert sorted(p.relative_to(tmp_path) for p in tmp_path.rglob("*")) == before


def test_write_report_refuses_an_unknown_format(tiny_artifact, tmp_path):
    with pytest.raises(EvaluationError, match="unknown report format 'pdf'; choose one of: md, html"):
        write_report(tiny_artifact, [], tmp_path / "r", report_format="pdf")
    assert not (tmp_path / "r").exists()


def test_predictions_csv_has_one_row_per_image_matching_the_metrics(tiny_artifact, dogimages_dir, tmp_path):
    out = tmp_path / "report"
    result = evaluate("--model", str(tiny_artifact), "--data", str(dogimages_dir), "--output-dir", str(out))
    assert result.exit_code == 0, result.output
    with (out / "predictions.csv").open(newline="") as file:
        rows = list(csv.DictReader(file))
    metrics = json.loads((out / "metrics.json").read_text())
    assert len(rows) == metrics["images"] == 6
    assert list(rows[0]) == ["image", "true_breed", "predicted_breed", "probability", "correct", "top3", "dog_probability"]
    assert sum(int(row["correct"]) for row in rows) / len(rows) == pytest.approx(metrics["top1"])
    for row in rows:
        assert Path(row["image"]).is_file()
        assert row["top3"].split("; ")[0] == f"{row['predicted_breed']} {row['probability']}"
        assert int(row["correct"]) == (row["true_breed"] == row["predicted_breed"])


def test_example_thumbnails_are_upright_and_captioned(tiny_artifact, dogimages_dir, tmp_path):
    # A portrait photo stored sideways with EXIF orientation 6 (rotate 90): the thumbnail must be upright.
    for path in (dogimages_dir / "test").rglob("*.jpg"):
        exif = Image.Exif()
        exif[0x0112] = 6
        Image.new("RGB", (80, 40), (200, 30, 30)).save(path, exif=exif)
    out = tmp_path / "report"
    result = evaluate("--model", str(tiny_artifact), "--data", str(dogimages_dir), "--output-dir", str(out))
    assert result.exit_code == 0, result.output
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["confused_pairs"], "every photo is the same, so some must be confused"
    thumbnails = sorted((out / "examples").iterdir())
    assert thumbnails
    with Image.open(thumbnails[0]) as thumbnail:
        assert thumbnail.height > thumbnail.width
    report = (out / "report.md").read_text()
    with (out / "predictions.csv").open(newline="") as file:
        probability = {row["image"]: row["probability"] for row in csv.DictReader(file)}
    pair = metrics["confused_pairs"][0]
    caption = re.escape(f"{pair['true']} → {pair['predicted']} ") + r"(\d+\.\d)%"
    name = re.escape(Path(pair["examples"][0]).name)
    match = re.search(rf"!\[{name}: {caption}\]\(examples/pair01_1\.jpg\) {caption}", report)
    assert match, report
    assert float(match.group(1)) == pytest.approx(100 * float(probability[pair["examples"][0]]), abs=0.06)


def test_progress_line_shows_rate_and_eta():
    assert progress_line(10, 40, 2.0).rstrip() == "10/40 images  5.0 images/s  ETA 6 s"
    assert progress_line(40, 40, 4.0).rstrip() == "40/40 images  10.0 images/s"
