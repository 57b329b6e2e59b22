"""Breed names from folders and files, and matching them to a model's classes (dogbreed.breeds)."""

from __future__ import annotations

import pytest

from dogbreed.breeds import breed_from_file_name, breed_from_folder, breed_key, class_lookup, match_breed, same_breed


@pytest.mark.parametrize(
    "stem, breed",
    [
        ("Labrador_retriever_06449", "Labrador retriever"),
        ("Curly-coated_retriever_03896", "Curly-coated retriever"),
        ("cat_00012", "Cat"),
        ("Brittany_02625", "Brittany"),
        ("Dalmatian", "Dalmatian"),  # no number: the whole stem
    ],
)
def test_a_photo_file_name_gives_its_label(stem, breed):
    assert breed_from_file_name(stem) == breed


def test_every_spelling_of_a_breed_has_one_key():
    spellings = ["Siberian_husky", "siberian-husky", "Siberian husky", "  SIBERIAN   husky ", "n02110185-Siberian_husky"]
    keys = {breed_key(breed_from_folder(name)) for name in spellings}
    assert keys == {"siberian husky"}
    assert same_breed("Curly-coated retriever", "curly coated_retriever")
    assert not same_breed("Toy poodle", "Standard poodle")


def test_classes_match_by_key_and_by_alias_and_exact_names_win():
    classes = ["Basset hound", "Basset", "Beagle"]
    lookup = class_lookup(classes, aliases={"Basset hound": ("basset",), "Beagle": ("english beagle",)})
    assert match_breed("015.Basset_hound".split(".", 1)[1], lookup) == 0
    assert match_breed("basset", lookup) == 1  # "Basset" is a class of its own: the alias does not take it
    assert match_breed("English_Beagle", lookup) == 2
    assert match_breed("Bulldog", lookup) is None


def test_default_aliases_are_the_starter_models_imagenet_names():
    lookup = class_lookup(["Basset hound", "Boston terrier"])
    assert match_breed("n02088238-basset".split("-", 1)[1], lookup) == 0
    assert match_breed("Boston_bull", lookup) == 1
