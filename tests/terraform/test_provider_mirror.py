"""terraform/scripts/provider_mirror.py finds a usable hashicorp/aws mirror and writes a CLI config for it."""

from __future__ import annotations

from pathlib import Path

import pytest
from tf_support import provider_mirror


def make_mirror(root: Path, version: str, platform: str | None = None) -> Path:
    plugin_dir = (
        root / "registry.terraform.io" / "hashicorp" / "aws" / version / (platform or provider_mirror.platform_dir())
    )
    plugin_dir.mkdir(parents=True)
    (plugin_dir / f"terraform-provider-aws_v{version}_x5").write_bytes(b"")
    return root


def test_explicit_mirror_variable_wins(tmp_path: Path) -> None:
    mirror = make_mirror(tmp_path / "mine", "5.100.0")
    assert provider_mirror.find_mirror({"TF_PROVIDER_MIRROR": str(mirror)}, search=False) == mirror


def test_versions_outside_the_constraint_are_ignored(tmp_path: Path) -> None:
    make_mirror(tmp_path / "old", "5.99.1")
    make_mirror(tmp_path / "next-major", "6.0.0")
    assert provider_mirror.provider_versions(tmp_path / "old") == []
    assert provider_mirror.provider_versions(tmp_path / "next-major") == []
    assert provider_mirror.provider_versions(make_mirror(tmp_path / "good", "5.101.2")) == ["5.101.2"]


def test_other_platforms_do_not_count(tmp_path: Path) -> None:
    mirror = make_mirror(tmp_path / "foreign", "5.100.0", platform="plan9_mips")
    assert provider_mirror.provider_versions(mirror) == []


def test_bounded_search_finds_a_nested_mirror(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    mirror = make_mirror(tmp_path / "opt" / "tools" / "tf-mirror", "5.100.0")
    monkeypatch.setattr(provider_mirror, "SEARCH_ROOTS", (str(tmp_path / "opt"),))
    monkeypatch.setattr(provider_mirror, "candidate_dirs", lambda environ=None: iter(()))
    assert provider_mirror.find_mirror({}, search=True) == mirror
    assert provider_mirror.find_mirror({}, search=False) is None


def test_cli_config_installs_hashicorp_providers_from_the_mirror_only(tmp_path: Path) -> None:
    mirror = make_mirror(tmp_path / "mirror", "5.100.0")
    config = provider_mirror.write_cli_config(tmp_path / "cli", mirror).read_text()
    assert f'path    = "{mirror.as_posix()}"' in config
    assert 'include = ["registry.terraform.io/hashicorp/*"]' in config
    assert 'exclude = ["registry.terraform.io/hashicorp/*"]' in config
    # The cache points at the mirror so init links the 700 MB plugin instead of copying it.
    assert f'plugin_cache_dir = "{mirror.as_posix()}"' in config


def test_cli_reports_a_missing_mirror(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setattr(provider_mirror, "find_mirror", lambda search=True: None)
    assert provider_mirror.main(["--write-config", str(tmp_path)]) == 1
    assert "TF_PROVIDER_MIRROR" in capsys.readouterr().err
    assert not (tmp_path / "terraform-cli.tfrc").exists()
