"""The deployment zip: reproducible, complete, and without what the Lambda runtime already has."""

from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import sys
import zipfile
from pathlib import Path

from lambda_fake_endpoint import FakeControlPlane, FakeControlPlaneServer
from lambda_test_support import EVENTS, SERVICE_DIR

spec = importlib.util.spec_from_file_location("inference_lambda_build_zip", SERVICE_DIR / "build_zip.py")
build_zip = importlib.util.module_from_spec(spec)
spec.loader.exec_module(build_zip)

# What the python3.12 Lambda runtime provides besides the standard library.
RUNTIME_PROVIDED = ["boto3", "botocore", "s3transfer", "dateutil", "six.py", "urllib3", "jmespath"]


def test_write_zip_is_byte_identical_whatever_the_mtimes_and_order(tmp_path):
    tree = tmp_path / "tree"
    (tree / "pkg").mkdir(parents=True)
    (tree / "pkg" / "b.py").write_text("b = 2\n")
    (tree / "pkg" / "a.py").write_text("a = 1\n")
    (tree / "pkg" / "__pycache__").mkdir()
    (tree / "pkg" / "__pycache__" / "a.cpython-311.pyc").write_bytes(b"junk")
    first, second = tmp_path / "1.zip", tmp_path / "2.zip"

    build_zip.write_zip(build_zip.collect(tree), first)
    os.utime(tree / "pkg" / "a.py", (1_900_000_000, 1_900_000_000))
    (tree / "pkg" / "b.py").chmod(0o600)
    build_zip.write_zip(dict(reversed(list(build_zip.collect(tree).items()))), second)

    assert first.read_bytes() == second.read_bytes()
    with zipfile.ZipFile(first) as archive:
        assert archive.namelist() == ["pkg/a.py", "pkg/b.py"]
        assert {info.date_time for info in archive.infolist()} == {(1980, 1, 1, 0, 0, 0)}
        assert {info.external_attr >> 16 for info in archive.infolist()} == {0o100644}


def run_handler_from_zip(zip_path: Path, extra_path: list[Path], tmp_path: Path, control_plane_url: str) -> dict:
    """Import the handler in a fresh interpreter whose path is the zip, then `extra_path`, then the stdlib only.

    GET /health's DescribeEndpoint goes to `control_plane_url`.
    """
    script = f"""
import json, sys
sys.path[:0] = {[str(zip_path)] + [str(p) for p in extra_path]!r}
import inference_lambda.app as app
assert app.__file__.startswith({str(zip_path)!r}), app.__file__
class Context:
    aws_request_id = "zip-test"; function_name = "f"; memory_limit_in_mb = 512
    invoked_function_arn = "arn:aws:lambda:us-east-1:000000000000:function:f"
    def get_remaining_time_in_millis(self): return 20000
event = json.load(open({str(EVENTS / "health.json")!r}))
health = app.handler(event, Context())
event.update(path="/openapi.json", resource="/openapi.json")
document = app.handler(event, Context())
print(json.dumps({{"health": health, "openapi_status": document["statusCode"], "openapi_title": json.loads(document["body"])["info"]["title"],
                   "modules": sorted(m for m in sys.modules if m.split(".")[0] in ("starlette", "uvicorn", "PIL", "torch", "requests"))}}))
"""
    env = {
        "PATH": os.environ.get("PATH", ""),
        "ENDPOINT_NAME": "zip-endpoint",
        "AWS_REGION": "us-east-1",
        "AWS_DEFAULT_REGION": "us-east-1",
        "AWS_ACCESS_KEY_ID": "x",
        "AWS_SECRET_ACCESS_KEY": "x",
        "AWS_EC2_METADATA_DISABLED": "true",
        "AWS_ENDPOINT_URL_SAGEMAKER": control_plane_url,
    }
    # -S: no site-packages (and no editable install) unless listed in extra_path.
    result = subprocess.run(
        [sys.executable, "-S", "-c", script], capture_output=True, text=True, env=env, cwd=tmp_path, timeout=60
    )
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout.strip().splitlines()[-1])


def runtime_site(tmp_path: Path) -> Path:
    """A site directory holding only what the Lambda runtime provides, linked from this environment."""
    import botocore

    site_packages = Path(botocore.__file__).resolve().parents[1]
    runtime = tmp_path / "runtime"
    runtime.mkdir()
    for name in RUNTIME_PROVIDED:
        (runtime / name).symlink_to(site_packages / name)
    return runtime


def test_code_only_zip_has_the_package_and_nothing_else(tmp_path):
    output = build_zip.build(tmp_path / "code.zip", requirements=None)

    with zipfile.ZipFile(output) as archive:
        names = archive.namelist()
    assert "inference_lambda/app.py" in names and "inference_lambda/openapi.json" in names
    # The contract's generated copies: the zip runs without the repository's contracts/api.json.
    assert {"inference_lambda/_contract.py", "inference_lambda/media_types.json"} <= set(names)
    assert {f"inference_lambda/web/{name}" for name in ("index.html", "page.css", "page.js")} <= set(names)  # GET /
    assert "inference_lambda/local_front.py" not in names
    assert "inference_lambda/local_control_plane.py" not in names
    assert all(name.startswith("inference_lambda/") for name in names)
    assert not any("__pycache__" in name or name.endswith(".pyc") for name in names)


def test_full_zip_is_reproducible_excludes_boto3_and_runs_on_the_runtime_alone(tmp_path):
    first = build_zip.build(tmp_path / "1.zip")
    second = build_zip.build(tmp_path / "2.zip")

    assert first.read_bytes() == second.read_bytes()
    with zipfile.ZipFile(first) as archive:
        top_level = {name.split("/")[0] for name in archive.namelist()}
    assert {"inference_lambda", "aws_lambda_powertools", "typing_extensions.py"} <= top_level
    assert not top_level & {"boto3", "botocore", "s3transfer", "urllib3", "starlette", "uvicorn", "bin"}
    assert first.stat().st_size < 3 * 1024 * 1024

    with FakeControlPlaneServer(FakeControlPlane()) as control_plane:
        ran = run_handler_from_zip(first, [runtime_site(tmp_path)], tmp_path, control_plane.url)
        described = [request["body"] for request in control_plane.control_plane.requests]

    assert ran["health"]["statusCode"] == 200
    assert json.loads(ran["health"]["body"])["endpoint_name"] == "zip-endpoint"
    assert json.loads(ran["health"]["body"])["endpoint"] == {"name": "zip-endpoint", "status": "InService"}
    assert described == [{"EndpointName": "zip-endpoint"}]  # the runtime's botocore has the sagemaker client
    assert ran["openapi_status"] == 200 and ran["openapi_title"] == "Dog-breed classifier API"
    assert ran["modules"] == []


def test_wheels_are_built_for_the_functions_runtime():
    # One source for both: Terraform's api module runs the function on runtime.json's runtime.
    runtime = json.loads((build_zip.REPO_ROOT / "terraform" / "modules" / "api" / "runtime.json").read_text())["runtime"]
    assert runtime == f"python{build_zip.DEFAULT_PYTHON_VERSION}"
    assert build_zip.get_args_parser().parse_args([]).python_version == build_zip.DEFAULT_PYTHON_VERSION
