"""``s3://`` data and output locations for the trainer (an EC2 host, or a laptop with credentials).

``download_prefix`` mirrors an S3 prefix into a local folder and skips objects already there with
the same size and ETag. A local file has no ETag, so the ETag of each downloaded object is kept in
a small manifest (``.s3-manifest.json``) in the destination folder; a file that is missing from the
manifest, or has a different size, is downloaded again. Every file is written to a temporary name
and renamed, so an interrupted download never leaves a truncated image behind.

The client is a plain ``boto3.client("s3")``: credentials, region and endpoint come from the usual
AWS configuration (``AWS_PROFILE``, instance role, ``AWS_ENDPOINT_URL_S3`` for S3-compatible stores).
"""

from __future__ import annotations

import json
import logging
import os
import sys
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Any

logger = logging.getLogger(__name__)

MANIFEST_NAME = ".s3-manifest.json"


class S3LocationError(ValueError):
    """A malformed ``s3://`` URI or a prefix with nothing under it."""


@dataclass
class SyncResult:
    local_dir: Path
    downloaded: int = 0
    skipped: int = 0
    bytes_downloaded: int = 0


def is_s3_uri(value: Any) -> bool:
    # Only strings: pathlib would collapse "s3://" to "s3:/".
    return isinstance(value, str) and value.startswith("s3://")


def split_s3_uri(uri: str) -> tuple[str, str]:
    """``s3://bucket/some/key`` -> ``("bucket", "some/key")``."""
    if not is_s3_uri(uri):
        raise S3LocationError(f"not an s3:// URI: {uri!r}")
    bucket, _, key = uri[len("s3://") :].partition("/")
    if not bucket:
        raise S3LocationError(f"no bucket in {uri!r}; expected s3://BUCKET/PREFIX")
    return bucket, key


def make_client(client: Any = None) -> Any:
    if client is not None:
        return client
    import boto3

    return boto3.client("s3")


def _progress_bar(total: int, enabled: bool, desc: str):
    """A tqdm byte counter on stderr when it is a terminal, else a no-op."""
    if enabled and sys.stderr.isatty():
        from tqdm import tqdm

        return tqdm(total=total, unit="B", unit_scale=True, unit_divisor=1024, desc=desc, file=sys.stderr)
    return None


def _load_manifest(dest: Path) -> dict[str, dict]:
    try:
        data = json.loads((dest / MANIFEST_NAME).read_text())
        return data if isinstance(data, dict) else {}
    except (OSError, ValueError):
        return {}


def _save_manifest(dest: Path, manifest: dict[str, dict]) -> None:
    tmp = dest / (MANIFEST_NAME + ".tmp")
    tmp.write_text(json.dumps(manifest, indent=0, sort_keys=True))
    os.replace(tmp, dest / MANIFEST_NAME)


def _list_objects(client: Any, bucket: str, prefix: str) -> list[dict]:
    objects = []
    for page in client.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix):
        objects.extend(page.get("Contents", []))
    return objects


def _relative_path(key: str, prefix: str) -> PurePosixPath | None:
    """The object's path below the prefix, or None for folder markers and unsafe keys."""
    relative = key[len(prefix) :]
    if not relative or relative.endswith("/"):
        return None
    path = PurePosixPath(relative)
    if path.is_absolute() or ".." in path.parts:
        logger.warning("skipping s3 key with an unsafe path: %s", key)
        return None
    return path


def sync_prefix(uri: str, dest_dir: str | os.PathLike, *, progress: bool = True, client: Any = None) -> SyncResult:
    """Mirror every object under ``uri`` into ``dest_dir`` (see the module docstring)."""
    bucket, key = split_s3_uri(uri)
    client = make_client(client)
    prefix = key if (key == "" or key.endswith("/")) else key + "/"
    objects = _list_objects(client, bucket, prefix)
    if not objects and key and not key.endswith("/"):
        # s3://bucket/path/file.ext names a single object.
        single = _list_objects(client, bucket, key)
        objects = [o for o in single if o["Key"] == key]
        prefix = key.rsplit("/", 1)[0] + "/" if "/" in key else ""
    objects = [(o, rel) for o in objects if (rel := _relative_path(o["Key"], prefix)) is not None]
    if not objects:
        raise S3LocationError(f"nothing to download under {uri}")

    dest = Path(dest_dir)
    dest.mkdir(parents=True, exist_ok=True)
    manifest = _load_manifest(dest)
    result = SyncResult(local_dir=dest)
    to_fetch = []
    for obj, rel in objects:
        local = dest.joinpath(*rel.parts)
        entry = manifest.get(rel.as_posix())
        etag = obj.get("ETag", "")
        if local.is_file() and local.stat().st_size == obj["Size"] and entry and entry.get("etag") == etag:
            result.skipped += 1
        else:
            to_fetch.append((obj, rel, local, etag))

    bar = _progress_bar(sum(o["Size"] for o, *_ in to_fetch), progress, f"s3://{bucket}/{prefix}")
    try:
        for n, (obj, rel, local, etag) in enumerate(to_fetch, 1):
            local.parent.mkdir(parents=True, exist_ok=True)
            tmp = local.with_name(local.name + ".part")
            client.download_file(bucket, obj["Key"], str(tmp), Callback=bar.update if bar else None)
            os.replace(tmp, local)
            manifest[rel.as_posix()] = {"etag": etag, "size": obj["Size"]}
            result.downloaded += 1
            result.bytes_downloaded += obj["Size"]
            if n % 200 == 0:  # keep progress across an interruption without rewriting it per file
                _save_manifest(dest, manifest)
    finally:
        if bar is not None:
            bar.close()
        _save_manifest(dest, manifest)
    return result


def download_prefix(uri: str, dest_dir: str | os.PathLike, progress: bool = True, *, client: Any = None) -> Path:
    """Download everything under ``uri`` into ``dest_dir``; return ``dest_dir`` as a Path."""
    result = sync_prefix(uri, dest_dir, progress=progress, client=client)
    logger.info(
        "%s -> %s: downloaded %d files (%.1f MB), %d already present",
        uri,
        result.local_dir,
        result.downloaded,
        result.bytes_downloaded / 1e6,
        result.skipped,
    )
    return result.local_dir


def _destination_key(path: Path, uri: str) -> tuple[str, str]:
    bucket, key = split_s3_uri(uri)
    if key == "" or key.endswith("/"):
        key += path.name
    return bucket, key


def upload_file(path: str | os.PathLike, uri: str, *, progress: bool = True, client: Any = None) -> str:
    """Upload one file. A ``uri`` ending in ``/`` is a folder: the file keeps its name. Returns the object's URI."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"no such file to upload: {path}")
    bucket, key = _destination_key(path, uri)
    client = make_client(client)
    bar = _progress_bar(path.stat().st_size, progress, f"-> s3://{bucket}/{key}")
    try:
        client.upload_file(str(path), bucket, key, Callback=bar.update if bar else None)
    finally:
        if bar is not None:
            bar.close()
    return f"s3://{bucket}/{key}"


def upload_directory(local_dir: str | os.PathLike, uri: str, *, client: Any = None) -> list[str]:
    """Upload every file under ``local_dir`` below the prefix ``uri`` (e.g. an output folder with its report)."""
    local_dir = Path(local_dir)
    bucket, key = split_s3_uri(uri)
    prefix = key if (key == "" or key.endswith("/")) else key + "/"
    client = make_client(client)
    uploaded = []
    for path in sorted(p for p in local_dir.rglob("*") if p.is_file()):
        target = f"s3://{bucket}/{prefix}{path.relative_to(local_dir).as_posix()}"
        uploaded.append(upload_file(path, target, progress=False, client=client))
    return uploaded
