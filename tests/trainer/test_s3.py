"""s3:// download/upload round trips against moto's in-process S3."""

from __future__ import annotations

import io
import json

import boto3
import pytest
from moto import mock_aws

from dogbreed import s3

BUCKET = "dogbreed-data"


@pytest.fixture()
def client(monkeypatch):
    for name, value in {
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_SESSION_TOKEN": "testing",
        "AWS_DEFAULT_REGION": "us-east-1",
    }.items():
        monkeypatch.setenv(name, value)
    monkeypatch.delenv("AWS_PROFILE", raising=False)
    monkeypatch.delenv("AWS_ENDPOINT_URL", raising=False)
    monkeypatch.delenv("AWS_ENDPOINT_URL_S3", raising=False)
    with mock_aws():
        c = boto3.client("s3", region_name="us-east-1")
        c.create_bucket(Bucket=BUCKET)
        yield c


def put(client, key: str, body: bytes) -> None:
    client.put_object(Bucket=BUCKET, Key=key, Body=body)


@pytest.fixture()
def dataset(client):
    files = {
        "dogs/train/001.Affenpinscher/a.jpg": b"a" * 10,
        "dogs/train/002.Afghan_hound/b.jpg": b"bb" * 10,
        "dogs/valid/001.Affenpinscher/c.jpg": b"c" * 7,
        "dogs/train/": b"",  # a "folder" marker as the console creates it
        "other/x.jpg": b"x",
    }
    for key, body in files.items():
        put(client, key, body)
    return files


def test_is_s3_uri():
    assert s3.is_s3_uri("s3://bucket/prefix")
    assert not s3.is_s3_uri("/data/s3://x")
    assert not s3.is_s3_uri("data")
    assert not s3.is_s3_uri(None)


@pytest.mark.parametrize(
    ("uri", "expected"),
    [("s3://b/k/x.jpg", ("b", "k/x.jpg")), ("s3://b", ("b", "")), ("s3://b/", ("b", ""))],
)
def test_split_s3_uri(uri, expected):
    assert s3.split_s3_uri(uri) == expected


@pytest.mark.parametrize("uri", ["s3:///key", "http://b/k"])
def test_split_s3_uri_rejects_malformed(uri):
    with pytest.raises(s3.S3LocationError):
        s3.split_s3_uri(uri)


def test_download_prefix_mirrors_the_tree(client, dataset, tmp_path):
    dest = s3.download_prefix(f"s3://{BUCKET}/dogs", tmp_path / "data", progress=False)
    assert dest == tmp_path / "data"
    files = sorted(p.relative_to(dest).as_posix() for p in dest.rglob("*") if p.is_file() and p.name != s3.MANIFEST_NAME)
    assert files == ["train/001.Affenpinscher/a.jpg", "train/002.Afghan_hound/b.jpg", "valid/001.Affenpinscher/c.jpg"]
    assert (dest / "train/002.Afghan_hound/b.jpg").read_bytes() == b"bb" * 10
    assert not list(dest.rglob("*.part"))
    manifest = json.loads((dest / s3.MANIFEST_NAME).read_text())
    assert manifest["valid/001.Affenpinscher/c.jpg"]["size"] == 7


def test_second_download_skips_unchanged_and_refetches_changed(client, dataset, tmp_path):
    first = s3.sync_prefix(f"s3://{BUCKET}/dogs/", tmp_path, progress=False)
    assert (first.downloaded, first.skipped, first.bytes_downloaded) == (3, 0, 37)

    again = s3.sync_prefix(f"s3://{BUCKET}/dogs/", tmp_path, progress=False)
    assert (again.downloaded, again.skipped) == (0, 3)

    # Same size, new content: only the ETag tells them apart.
    put(client, "dogs/train/001.Affenpinscher/a.jpg", b"A" * 10)
    # A local file truncated by hand has the wrong size.
    (tmp_path / "valid/001.Affenpinscher/c.jpg").write_bytes(b"c")
    third = s3.sync_prefix(f"s3://{BUCKET}/dogs/", tmp_path, progress=False)
    assert (third.downloaded, third.skipped) == (2, 1)
    assert (tmp_path / "train/001.Affenpinscher/a.jpg").read_bytes() == b"A" * 10
    assert (tmp_path / "valid/001.Affenpinscher/c.jpg").read_bytes() == b"c" * 7


def test_files_present_without_manifest_are_downloaded(client, dataset, tmp_path):
    # A same-sized local file with no recorded ETag cannot be trusted.
    (tmp_path / "train/001.Affenpinscher").mkdir(parents=True)
    (tmp_path / "train/001.Affenpinscher/a.jpg").write_bytes(b"z" * 10)
    result = s3.sync_prefix(f"s3://{BUCKET}/dogs", tmp_path, progress=False)
    assert result.downloaded == 3
    assert (tmp_path / "train/001.Affenpinscher/a.jpg").read_bytes() == b"a" * 10


def test_single_object_uri(client, dataset, tmp_path):
    result = s3.sync_prefix(f"s3://{BUCKET}/other/x.jpg", tmp_path, progress=False)
    assert result.downloaded == 1
    assert (tmp_path / "x.jpg").read_bytes() == b"x"


def test_empty_prefix_is_a_clear_error(client, dataset, tmp_path):
    with pytest.raises(s3.S3LocationError, match=f"nothing to download under s3://{BUCKET}/missing"):
        s3.download_prefix(f"s3://{BUCKET}/missing", tmp_path / "out", progress=False)
    assert not (tmp_path / "out").exists()


def test_unsafe_keys_are_skipped(client, tmp_path):
    put(client, "data/../../escape.jpg", b"evil")
    put(client, "data/ok.jpg", b"ok")
    result = s3.sync_prefix(f"s3://{BUCKET}/data", tmp_path / "d", progress=False)
    assert result.downloaded == 1
    assert not (tmp_path / "escape.jpg").exists()


def test_progress_bar_on_a_terminal(client, dataset, tmp_path, monkeypatch):
    fake_tty = io.StringIO()
    fake_tty.isatty = lambda: True
    monkeypatch.setattr("sys.stderr", fake_tty)
    s3.download_prefix(f"s3://{BUCKET}/dogs", tmp_path, progress=True)
    assert "37.0/37.0" in fake_tty.getvalue()


def test_upload_file_round_trip(client, tmp_path):
    artifact = tmp_path / "model.tar.gz"
    artifact.write_bytes(b"weights" * 100)
    assert s3.upload_file(artifact, f"s3://{BUCKET}/models/run1/", progress=False) == f"s3://{BUCKET}/models/run1/model.tar.gz"
    assert s3.upload_file(artifact, f"s3://{BUCKET}/models/exact.tar.gz", progress=False) == f"s3://{BUCKET}/models/exact.tar.gz"
    back = s3.download_prefix(f"s3://{BUCKET}/models/run1", tmp_path / "back", progress=False)
    assert (back / "model.tar.gz").read_bytes() == artifact.read_bytes()
    assert client.get_object(Bucket=BUCKET, Key="models/exact.tar.gz")["Body"].read() == artifact.read_bytes()


def test_upload_missing_file_is_a_clear_error(client, tmp_path):
    with pytest.raises(FileNotFoundError, match="no such file to upload"):
        s3.upload_file(tmp_path / "nope.tar.gz", f"s3://{BUCKET}/x/")


def test_upload_directory(client, tmp_path):
    out = tmp_path / "out"
    (out / "report").mkdir(parents=True)
    (out / "model.tar.gz").write_bytes(b"m")
    (out / "report" / "index.html").write_text("<html>")
    uploaded = s3.upload_directory(out, f"s3://{BUCKET}/runs/1")
    assert uploaded == [f"s3://{BUCKET}/runs/1/model.tar.gz", f"s3://{BUCKET}/runs/1/report/index.html"]
    keys = sorted(o["Key"] for o in client.list_objects_v2(Bucket=BUCKET, Prefix="runs/")["Contents"])
    assert keys == ["runs/1/model.tar.gz", "runs/1/report/index.html"]
