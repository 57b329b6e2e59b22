"""Data folders in both layouts, the stratified split, unreadable files, and bad-input errors."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from trainer_testdata import make_class_folders, write_image

from dogbreed.breeds import breed_from_folder
from dogbreed.data import (
    DataError,
    ImageDataset,
    collate_skipping_unreadable,
    discover,
    discover_split_folders,
    load_split_record,
    write_split_record,
)
from dogbreed.presets import EvalPreset


@pytest.mark.parametrize(
    "folder, name",
    [
        ("096.Labrador_retriever", "Labrador retriever"),
        ("n02099712-Labrador_retriever", "Labrador retriever"),
        ("n02088364-beagle", "Beagle"),
        ("n02113624-toy_poodle", "Toy poodle"),
        ("054.Curly-coated_retriever", "Curly-coated retriever"),
        ("Border_collie", "Border collie"),
        ("001.", "001."),
    ],
)
def test_breed_names_are_human_readable(folder, name):
    assert breed_from_folder(folder) == name


def test_dogimages_layout(dogimages_dir):
    data = discover(dogimages_dir)
    assert data.layout == "split-folders"
    assert data.class_folders == ["001.Affenpinscher", "002.Afghan_hound", "003.Labrador_retriever"]
    assert data.classes == ["Affenpinscher", "Afghan hound", "Labrador retriever"]
    assert [len(data.splits[s]) for s in ("train", "valid", "test")] == [18, 6, 6]
    assert data.counts("train") == [6, 6, 6]
    path, label = data.splits["valid"][0]
    assert Path(path).parent.name == data.class_folders[label]
    assert data.split_record is None


def test_val_and_no_test_folder_are_accepted(tmp_path):
    folders = {"a": (255, 0, 0), "b": (0, 0, 255)}
    make_class_folders(tmp_path / "train", folders, 2)
    make_class_folders(tmp_path / "val", folders, 1)
    data = discover(tmp_path)
    assert len(data.splits["valid"]) == 2 and data.splits["test"] == []


def test_stanford_layout_gets_a_stratified_seeded_split(stanford_dir):
    data = discover(stanford_dir, fractions=(0.6, 0.2, 0.2), seed=1)
    assert data.layout == "class-folders"
    assert data.classes == ["Chihuahua", "Beagle", "Siberian husky"]
    for split, per_class in (("train", 6), ("valid", 2), ("test", 2)):
        assert data.counts(split) == [per_class] * 3, split
    every = [p for s in data.splits.values() for p, _ in s]
    assert len(every) == len(set(every)) == 30  # no image in two splits
    assert discover(stanford_dir, fractions=(0.6, 0.2, 0.2), seed=1).splits == data.splits
    assert discover(stanford_dir, fractions=(0.6, 0.2, 0.2), seed=2).splits != data.splits


def test_every_class_gets_at_least_one_validation_and_test_image(tmp_path):
    make_class_folders(tmp_path, {"a": (255, 0, 0), "b": (0, 255, 0)}, 3)
    data = discover(tmp_path)
    assert data.counts("train") == [1, 1] and data.counts("valid") == [1, 1] and data.counts("test") == [1, 1]


def test_split_record_round_trips(stanford_dir, tmp_path):
    data = discover(stanford_dir, seed=3)
    path = write_split_record(data.split_record, tmp_path / "out" / "split.json")
    record = json.loads(path.read_text())
    assert record["seed"] == 3 and record["fractions"] == [0.7, 0.15, 0.15]
    assert record["splits"]["test"][0].startswith("n0")  # relative to the data folder
    assert not list(path.parent.glob(".*"))  # no temporary file left behind
    again = load_split_record(path, stanford_dir)
    assert again.splits == data.splits and again.classes == data.classes


def test_split_record_naming_missing_files_is_an_error(stanford_dir, tmp_path):
    data = discover(stanford_dir)
    path = write_split_record(data.split_record, tmp_path / "split.json")
    Path(data.splits["test"][0][0]).unlink()
    with pytest.raises(DataError, match="which is missing from"):
        load_split_record(path, stanford_dir)


def test_unreadable_and_non_image_files_are_reported_and_skipped(dogimages_dir, caplog):
    breed = dogimages_dir / "train" / "001.Affenpinscher"
    (breed / "notes.txt").write_text("not a photo")
    (breed / "broken.jpg").write_bytes(b"this is not a jpeg")
    (breed / "empty.png").write_bytes(b"")
    (breed / ".DS_Store").write_bytes(b"\0")
    with caplog.at_level("WARNING", logger="dogbreed"):
        data = discover(dogimages_dir)
    assert len(data.splits["train"]) == 18
    reasons = {Path(s.path).name: s.reason for s in data.skipped}
    assert set(reasons) == {"notes.txt", "broken.jpg", "empty.png"}
    assert reasons["notes.txt"].startswith("not an image file (extension .txt")
    assert reasons["broken.jpg"].startswith("cannot be decoded")
    assert "skipping 3 unusable file(s)" in caplog.text


def test_a_truncated_image_is_dropped_from_its_batch_not_the_epoch(tmp_path, caplog):
    good = write_image(tmp_path / "good.jpg", (10, 20, 30), seed=1)
    truncated = tmp_path / "truncated.jpg"
    truncated.write_bytes(write_image(tmp_path / "whole.jpg", (10, 20, 30), seed=2).read_bytes()[:300])
    dataset = ImageDataset([(str(good), 0), (str(truncated), 1)], EvalPreset(32, 36, [0.5] * 3, [0.5] * 3))
    with caplog.at_level("WARNING", logger="dogbreed"):
        items = [dataset[0], dataset[1]]
    assert items[1] is None
    assert "skipping unreadable image" in caplog.text and "truncated.jpg" in caplog.text
    images, labels = collate_skipping_unreadable(items)
    assert images.shape == (1, 3, 32, 32) and labels.tolist() == [0]
    assert collate_skipping_unreadable([None, None]) is None


# --- bad input: one line naming the problem and what is allowed ---------------------------------------


def test_missing_folder(tmp_path):
    with pytest.raises(DataError, match=r"^data folder not found: .*nowhere$"):
        discover(tmp_path / "nowhere")


def test_empty_folder_names_the_accepted_layouts(tmp_path):
    with pytest.raises(DataError) as error:
        discover(tmp_path)
    message = str(error.value)
    assert message.startswith(f"data folder is empty: {tmp_path}; expected split folders train/, valid/")
    assert "Stanford Dogs layout" in message and "\n" not in message


def test_folder_of_loose_images_has_no_breed_folders(tmp_path):
    write_image(tmp_path / "dog.jpg", (1, 2, 3), seed=0)
    with pytest.raises(DataError, match="no breed folders in"):
        discover(tmp_path)


def test_breed_without_images(dogimages_dir):
    empty = dogimages_dir / "valid" / "002.Afghan_hound"
    for path in empty.iterdir():
        path.unlink()
    (empty / "readme.txt").write_text("x")
    with pytest.raises(DataError, match=r"breed folder has no readable images: .*valid/002.Afghan_hound \(accepted image types: \.jpg"):
        discover(dogimages_dir)


def test_mismatched_breeds_between_splits(dogimages_dir):
    (dogimages_dir / "test" / "003.Labrador_retriever").rename(dogimages_dir / "test" / "004.Poodle")
    with pytest.raises(DataError) as error:
        discover(dogimages_dir)
    assert str(error.value) == (
        "breed folders differ between splits (every split needs the same breeds): "
        "test lacks 003.Labrador_retriever; test has extra 004.Poodle"
    )


def test_too_few_images_to_split(tmp_path):
    make_class_folders(tmp_path, {"a": (255, 0, 0)}, 5)
    make_class_folders(tmp_path, {"b": (0, 255, 0)}, 2)
    with pytest.raises(DataError, match=r"breed folder .*/b has only 2 image\(s\): too few to split"):
        discover(tmp_path)


def test_train_split_is_required(tmp_path):
    make_class_folders(tmp_path / "valid", {"a": (255, 0, 0)}, 2)
    with pytest.raises(DataError, match="no train data given"):
        discover(tmp_path)


def test_explicit_split_folders(dogimages_dir):
    data = discover_split_folders({"train": dogimages_dir / "train", "valid": dogimages_dir / "valid"})
    assert len(data.splits["train"]) == 18 and data.splits["test"] == []
    with pytest.raises(DataError, match="valid data folder not found"):
        discover_split_folders({"train": dogimages_dir / "train", "valid": dogimages_dir / "missing"})


def test_dataset_yields_normalised_tensors(dogimages_dir):
    data = discover(dogimages_dir)
    dataset = ImageDataset(data.splits["train"], EvalPreset(32, 36, [0.5] * 3, [0.5] * 3))
    image, label = dataset[0]
    assert image.shape == (3, 32, 32) and image.dtype == torch.float32 and label == 0
    assert -1.0 <= image.min() and image.max() <= 1.0
    assert dataset.targets == [label for _, label in data.splits["train"]]
