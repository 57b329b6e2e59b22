"""``dogbreed verify ARTIFACT``: load an artifact the way the SageMaker container does, and classify one image.

The real container answers ``GET /ping`` 200 as soon as TorchServe binds, before ``model_fn`` has
finished, and keeps answering 200 when ``model_fn`` fails, so SageMaker's health check does not catch a
broken artifact. This check does, before it is deployed: a fresh interpreter (``python -I``: no
``PYTHON*`` variables, no user site, no current folder), ``code/`` first on ``sys.path``, the project's
own ``dogbreed`` package made unimportable, every socket connection refused, ``code/requirements.txt``
installed offline into a scratch folder as the container installs it, then ``model_fn`` on the
extracted folder and ``input_fn`` -> ``predict_fn`` -> ``output_fn`` on a real or generated image,
as raw bytes and as JSON (which the toolkit hands ``input_fn`` already decoded to ``str``).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tarfile
import tempfile
from pathlib import Path

DEFAULT_TIMEOUT_S = 600

# Runs in the child interpreter: standard library only until the artifact's own code is imported.
CHILD = r'''
import base64, importlib.abc, io, json, os, socket, sys

model_dir, image_path, packages = sys.argv[1], sys.argv[2], sys.argv[3]
stage = "setup"


def fail(message):
    print(f"{stage}: {' '.join(str(message).split())[:400]}", file=sys.stderr, flush=True)
    sys.exit(1)


class NoProject(importlib.abc.MetaPathFinder):
    # The artifact must not lean on the trainer being installed (the container has no dogbreed).
    def find_spec(self, name, path=None, target=None):
        if name == "dogbreed" or name.startswith("dogbreed."):
            raise ModuleNotFoundError(f"No module named {name!r} (the serving container has no dogbreed package)")
        return None


def no_network(event, args):
    # Nothing in model.tar.gz may need the internet; local sockets (AF_UNIX) stay allowed.
    if event in ("socket.connect", "socket.sendto", "socket.sendmsg") and args and getattr(args[0], "family", None) != socket.AF_UNIX:
        raise ConnectionRefusedError(f"network access during verification: {event} {args[1:]!r}")
    if event == "socket.getaddrinfo":
        raise ConnectionRefusedError(f"network access during verification: name lookup of {args[0]!r}")


sys.meta_path.insert(0, NoProject())
sys.addaudithook(no_network)
code_dir = os.path.join(model_dir, "code")
sys.path.insert(0, code_dir)
if packages:  # code/requirements.txt, installed offline from code/wheels as the container installs it
    sys.path.insert(1, packages)
try:
    stage = "import code/inference.py"
    if not os.path.isfile(os.path.join(code_dir, "inference.py")):
        fail("the artifact has no code/inference.py")
    import inference

    stage = "model_fn"
    model = inference.model_fn(model_dir)
    if image_path:
        stage = f"reading {image_path}"
        with open(image_path, "rb") as f:
            image, content_type = f.read(), "application/x-image"  # any format the artifact decodes
    else:
        stage = "generating a test image"
        from PIL import Image

        picture = Image.new("RGB", (320, 240))
        picture.putdata([(x % 256, y % 256, (x * y) % 256) for y in range(240) for x in range(320)])
        buffer = io.BytesIO()
        picture.save(buffer, "JPEG", quality=90)
        image, content_type = buffer.getvalue(), "image/jpeg"
    answers = []
    for body, kind in ((image, content_type), (json.dumps({"image": base64.b64encode(image).decode()}), "application/json")):
        stage = f"input_fn ({kind})"
        data = inference.input_fn(body, kind)
        stage = f"predict_fn ({kind})"
        prediction = inference.predict_fn(data, model)
        stage = f"output_fn ({kind})"
        output = inference.output_fn(prediction, "application/json")
        text, accept = output if isinstance(output, tuple) else (output, None)
        answer = json.loads(text)
        if not answer.get("predictions") or not isinstance(answer.get("model"), dict):
            fail(f"the answer is not the endpoint's contract: {text[:200]}")
        answers.append(answer)
    if answers[0]["predictions"] != answers[1]["predictions"]:
        fail("raw and JSON requests for the same image answer differently")
    top = answers[0]["predictions"][0]
    print(json.dumps({"model": answers[0]["model"], "top": top, "python": sys.version.split()[0],
                      "runtime": getattr(model, "runtime_name", None),
                      "self_check": getattr(model, "self_check", None)}), flush=True)
except SystemExit:
    raise
except BaseException as exc:
    fail(f"{type(exc).__name__}: {exc}")
'''


class VerificationError(ValueError):
    """The artifact does not load or answer the way the serving container would run it; one line."""


def _extract(artifact: Path, into: Path) -> Path:
    try:
        with tarfile.open(artifact) as tar:
            tar.extractall(into, filter="data")  # as SageMaker does into /opt/ml/model
    except (tarfile.TarError, OSError) as exc:
        raise VerificationError(f"{artifact}: not a readable model.tar.gz ({exc})") from None
    return into


def _install_requirements(model_dir: Path, python: str, into: Path, env: dict) -> tuple[str, str]:
    """``pip install -r code/requirements.txt`` as the container runs it (offline: the file says
    ``--no-index``), into a scratch folder; returns (folder or "", what happened)."""
    requirements = model_dir / "code" / "requirements.txt"
    if not requirements.is_file():
        return "", "no requirements"
    done = subprocess.run([python, "-m", "pip", "install", "--quiet", "--disable-pip-version-check", "--no-input",
                           "--target", str(into), "-r", str(requirements)],
                          env={**env, "PIP_CONFIG_FILE": os.devnull}, capture_output=True, text=True)
    if done.returncode == 0:
        return str(into), "requirements installed offline from code/wheels"
    # Wheels for another Python or CPU (e.g. the image's 3.12 from a 3.11 trainer): check with what this
    # interpreter has, and say so.
    lines = [line for line in done.stderr.splitlines() if line.startswith("ERROR")] or done.stderr.splitlines() or ["?"]
    return "", f"code/wheels not installable here ({lines[0].removeprefix('ERROR: ')[:160]}): used this interpreter's packages"


def verify_artifact(
    artifact: str | os.PathLike,
    image: str | os.PathLike | None = None,
    python: str | os.PathLike | None = None,
    timeout: float = DEFAULT_TIMEOUT_S,
) -> dict:
    """Check ``artifact`` (model.tar.gz or its folder) in a fresh ``python -I``; returns what it answered.

    ``python``: the interpreter to check with (default: this one), e.g. one with the serving image's
    torch. Raises :class:`VerificationError` with a one-line reason.
    """
    artifact = Path(artifact)
    if not artifact.exists():
        raise VerificationError(f"{artifact}: no such file or directory")
    if image is not None and not Path(image).is_file():
        raise VerificationError(f"--image {image}: no such file")
    with tempfile.TemporaryDirectory(prefix="dogbreed-verify-") as tmp:
        model_dir = artifact if artifact.is_dir() else _extract(artifact, Path(tmp) / "model")
        # Only what an interpreter needs to start; no PYTHONPATH, no proxy settings, no AWS credentials.
        env = {key: os.environ[key] for key in ("PATH", "LANG", "LC_ALL", "TMPDIR", "HOME") if key in os.environ}
        env["OMP_NUM_THREADS"] = os.environ.get("OMP_NUM_THREADS", "2")
        interpreter = str(python or sys.executable)
        packages, installed = _install_requirements(model_dir, interpreter, Path(tmp) / "packages", env)
        command = [interpreter, "-I", "-c", CHILD, str(model_dir.resolve()),
                   str(Path(image).resolve()) if image else "", packages]
        try:
            done = subprocess.run(command, cwd=tmp, env=env, capture_output=True, text=True, timeout=timeout)
        except subprocess.TimeoutExpired:
            raise VerificationError(f"{artifact}: no answer within {timeout:.0f} s") from None
        except OSError as exc:
            raise VerificationError(f"cannot start {command[0]}: {exc}") from None
    if done.returncode != 0:
        lines = [line for line in done.stderr.splitlines() if line.strip()]
        reason = lines[-1] if lines else f"the checking interpreter exited with status {done.returncode}"
        raise VerificationError(f"{artifact}: {reason}")
    try:
        return {**json.loads(done.stdout.strip().splitlines()[-1]), "requirements": installed}
    except (ValueError, IndexError):
        raise VerificationError(f"{artifact}: the check printed no result ({done.stdout[-200:]!r})") from None


def summary(artifact: str | os.PathLike, result: dict) -> str:
    top = result["top"]
    model = result["model"]
    note = "" if result.get("requirements", "no requirements") == "no requirements" else f"; {result['requirements']}"
    line = (f"{artifact}: OK ({model.get('name')} {model.get('version')}, Python {result['python']}{note}): "
            f"top-1 {top['breed']} {top['probability']:.3f}")
    check = result.get("self_check")
    if check:  # onnx-int8: what its self-check measured on this machine's CPU
        agreement = "n/a" if check.get("top1_agreement") is None else f"{check['top1_agreement']:.1%}"
        line += (f"\nINT8 self-check on this CPU ({' '.join(check.get('cpu_features') or []) or 'flags unknown'}): "
                 f"top-1 agreement with fp32 {agreement} on {check.get('images')} images, threshold "
                 f"{check.get('threshold', 0):.1%}: {'passed' if check.get('passed') else 'FAILED'}; "
                 f"serving {check.get('serving')}")
        if check.get("reason"):
            line += f" ({check['reason']})"
    return line
