"""Find a local filesystem mirror of the hashicorp/aws provider and write a Terraform CLI config for it.

Machines without registry access (CI sandboxes, air-gapped hosts) keep provider plugins in a filesystem
mirror (the "unpacked" layout: HOST/NAMESPACE/TYPE/VERSION/OS_ARCH/terraform-provider-TYPE_*). This script
looks in the usual places, writes a CLI config that installs from the mirror only (and links the plugin
instead of copying its 700 MB into every .terraform folder), and prints how to use it:

    eval "$(python terraform/scripts/provider_mirror.py --write-config /tmp/tf-cli)"
    terraform -chdir=terraform/envs/local init

Where it looks, in order: $TF_PROVIDER_MIRROR, $TF_PLUGIN_DIR, ~/.terraform.d/plugins,
~/.local/share/terraform/plugins, $XDG_DATA_DIRS/terraform/plugins, /opt/tf-plugins,
/opt/terraform/plugins, /usr/local/share/terraform/plugins, /usr/share/terraform/plugins; then a bounded
search (depth 4) below /opt, /usr/local and /usr/share for a folder named registry.terraform.io.
"""

from __future__ import annotations

import argparse
import os
import platform
import sys
from collections.abc import Iterable, Iterator
from pathlib import Path

PROVIDER_HOST = "registry.terraform.io"
PROVIDER_NAMESPACE = "hashicorp"
PROVIDER_TYPE = "aws"
# The versions.tf files ask for ~> 5.100.
REQUIRED_MAJOR = 5
REQUIRED_MIN_MINOR = 100
SEARCH_ROOTS = ("/opt", "/usr/local", "/usr/share")
SEARCH_DEPTH = 4


def platform_dir() -> str:
    """Terraform's OS_ARCH folder name for this machine, e.g. linux_amd64."""
    machine = platform.machine().lower()
    arch = {"x86_64": "amd64", "amd64": "amd64", "aarch64": "arm64", "arm64": "arm64"}.get(machine, machine)
    os_name = {"linux": "linux", "darwin": "darwin", "win32": "windows"}.get(sys.platform, sys.platform)
    return f"{os_name}_{arch}"


def _version_key(text: str) -> tuple[int, ...] | None:
    try:
        return tuple(int(part) for part in text.split("."))
    except ValueError:
        return None


def provider_versions(mirror: Path) -> list[str]:
    """Versions of hashicorp/aws the mirror holds for this platform and the versions.tf constraint."""
    provider_dir = mirror / PROVIDER_HOST / PROVIDER_NAMESPACE / PROVIDER_TYPE
    if not provider_dir.is_dir():
        return []
    found = []
    for version_dir in provider_dir.iterdir():
        key = _version_key(version_dir.name)
        if key is None or len(key) < 2 or key[0] != REQUIRED_MAJOR or key[1] < REQUIRED_MIN_MINOR:
            continue
        if any((version_dir / platform_dir()).glob(f"terraform-provider-{PROVIDER_TYPE}_*")):
            found.append(version_dir.name)
    return sorted(found, key=lambda v: _version_key(v) or ())


def candidate_dirs(environ: os._Environ[str] | dict[str, str] | None = None) -> Iterator[Path]:
    env = os.environ if environ is None else environ
    for variable in ("TF_PROVIDER_MIRROR", "TF_PLUGIN_DIR"):
        if env.get(variable):
            yield Path(env[variable]).expanduser()
    home = Path.home()
    yield home / ".terraform.d" / "plugins"
    yield home / ".local" / "share" / "terraform" / "plugins"
    for data_dir in env.get("XDG_DATA_DIRS", "").split(os.pathsep):
        if data_dir:
            yield Path(data_dir) / "terraform" / "plugins"
    for fixed in (
        "/opt/tf-plugins",
        "/opt/terraform/plugins",
        "/usr/local/share/terraform/plugins",
        "/usr/share/terraform/plugins",
    ):
        yield Path(fixed)


def _bounded_search(roots: Iterable[str], depth: int) -> Iterator[Path]:
    """Folders that contain a registry.terraform.io folder, at most `depth` levels below the roots."""
    for root in roots:
        root_path = Path(root)
        if not root_path.is_dir():
            continue
        level = [root_path]
        for _ in range(depth):
            next_level = []
            for folder in level:
                try:
                    children = [child for child in folder.iterdir() if child.is_dir() and not child.is_symlink()]
                except OSError:
                    continue
                for child in children:
                    if child.name == PROVIDER_HOST:
                        yield folder
                    else:
                        next_level.append(child)
            level = next_level


def find_mirror(environ: dict[str, str] | None = None, search: bool = True) -> Path | None:
    """The first mirror folder holding a suitable hashicorp/aws provider, or None."""
    seen: set[Path] = set()
    for folder in candidate_dirs(environ):
        if folder in seen:
            continue
        seen.add(folder)
        if provider_versions(folder):
            return folder
    if search:
        for folder in _bounded_search(SEARCH_ROOTS, SEARCH_DEPTH):
            if folder not in seen and provider_versions(folder):
                return folder
    return None


def cli_config_text(mirror: Path, cache_dir: Path | None = None) -> str:
    """A CLI config that installs hashicorp providers from `mirror` only.

    The plugin cache points at the mirror itself, so `terraform init` links the plugin instead of copying it.
    """
    cache = cache_dir or mirror
    return (
        f'plugin_cache_dir = "{cache.as_posix()}"\n'
        "plugin_cache_may_break_dependency_lock_file = true\n\n"
        "provider_installation {\n"
        "  filesystem_mirror {\n"
        f'    path    = "{mirror.as_posix()}"\n'
        f'    include = ["{PROVIDER_HOST}/{PROVIDER_NAMESPACE}/*"]\n'
        "  }\n"
        "  direct {\n"
        f'    exclude = ["{PROVIDER_HOST}/{PROVIDER_NAMESPACE}/*"]\n'
        "  }\n"
        "}\n"
    )


def write_cli_config(directory: Path, mirror: Path) -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / "terraform-cli.tfrc"
    # A read-only mirror cannot serve as the plugin cache if a plugin is ever missing from it;
    # then Terraform reports the missing plugin, which is the right error anyway.
    path.write_text(cli_config_text(mirror))
    return path


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--write-config",
        metavar="DIR",
        type=Path,
        help="write DIR/terraform-cli.tfrc and print an export line for it (default: only print the mirror path)",
    )
    parser.add_argument("--no-search", action="store_true", help="check the usual places only (default: also search)")
    args = parser.parse_args(argv)

    mirror = find_mirror(search=not args.no_search)
    if mirror is None:
        print(
            f"No filesystem mirror with {PROVIDER_NAMESPACE}/{PROVIDER_TYPE} {REQUIRED_MAJOR}.x "
            f"(>= {REQUIRED_MAJOR}.{REQUIRED_MIN_MINOR}) for {platform_dir()} found; set TF_PROVIDER_MIRROR.",
            file=sys.stderr,
        )
        return 1
    if args.write_config:
        path = write_cli_config(args.write_config, mirror)
        print(f"export TF_CLI_CONFIG_FILE={path}")
    else:
        print(mirror)
    return 0


if __name__ == "__main__":
    sys.exit(main())
