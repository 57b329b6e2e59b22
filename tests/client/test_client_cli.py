"""The dogclient CLI through click's CliRunner, against a real local HTTP server: exit codes and exact text."""

from __future__ import annotations

import json
import os
import stat
from pathlib import Path

import click
import pytest
from click.testing import CliRunner
import dogclient.cli as cli_module
from dogclient.cli import ProgressBar, cli, probability_bar, render_prediction
from dogclient_fakes import make_image

TABLE_TOP3 = (
    "  Labrador retriever               91.2%  ██████████████████▎\n"
    "  Golden retriever                  5.1%  █\n"
    "  Chesapeake bay retriever          2.0%  ▍\n"
)


@pytest.fixture
def run(config_file, tmp_path, monkeypatch):
    """Invoke the CLI in tmp_path (so file names in output are short) with an isolated config."""
    monkeypatch.chdir(tmp_path)

    def invoke(*args: str, input: str | bytes | None = None, env: dict[str, str] | None = None):
        # Every run "takes" 2.5 s, so the summary line after several images can be asserted exactly.
        ticks = iter([100.0, 102.5])
        monkeypatch.setattr(cli_module, "_clock", lambda: next(ticks))
        return CliRunner().invoke(cli, list(args), input=input, env=env, catch_exceptions=False)

    return invoke


@pytest.fixture
def dog(tmp_path):
    make_image(tmp_path / "dog.jpg", size=(120, 90))
    return "dog.jpg"


def test_predict_one_image_prints_a_table(run, fake_api, dog):
    result = run("predict", dog, "--top-k", "3", "--api-url", fake_api.url)
    assert result.exit_code == 0
    assert result.stdout == "dog.jpg\n" + TABLE_TOP3
    assert result.stderr == ""
    assert fake_api.requests[0].json()["top_k"] == 3


def test_predict_several_images_in_input_order_with_blank_lines(run, fake_api, tmp_path):
    names = [f"dog{index}.png" for index in range(6)]
    for index, name in enumerate(names):
        make_image(tmp_path / name, size=(30 + index, 30), format="PNG")
    result = run("predict", *names, "--top-k", "1", "--concurrency", "3", "--api-url", fake_api.url)
    assert result.exit_code == 0
    expected = "\n".join(f"{name}\n  Labrador retriever               91.2%  ██████████████████▎\n" for name in names)
    assert result.stdout == expected
    assert result.stderr == "6 images: 6 classified, 0 failed in 2.5 s\n"
    assert len(fake_api.requests) == 6


def test_predict_folder_recurses(run, fake_api, tmp_path):
    (tmp_path / "photos" / "more").mkdir(parents=True)
    make_image(tmp_path / "photos" / "b.jpg")
    make_image(tmp_path / "photos" / "more" / "a.jpg")
    (tmp_path / "photos" / "readme.txt").write_text("not an image")
    result = run("predict", "photos", "--json", "--top-k", "1", "--api-url", fake_api.url)
    assert result.exit_code == 0
    lines = [json.loads(line) for line in result.stdout.splitlines()]
    assert [line["image"] for line in lines] == ["photos/b.jpg", "photos/more/a.jpg"]


def test_json_for_one_image_is_one_document(run, fake_api, dog):
    result = run("predict", dog, "--json", "--top-k", "2", "--api-url", fake_api.url)
    assert result.exit_code == 0
    assert json.loads(result.stdout) == {
        "image": "dog.jpg",
        "predictions": [
            {"breed": "Labrador retriever", "probability": 0.912, "class_id": 95},
            {"breed": "Golden retriever", "probability": 0.051, "class_id": 76},
        ],
        "is_dog": True,
        "dog_probability": 0.99,
        "model": {"name": "resnet50-dogimages", "version": "2026-11-21T12:00:00Z"},
        "request_id": "req-1",
    }
    assert result.stdout.startswith("{\n  ")  # pretty-printed


def test_json_for_a_folder_is_json_lines_even_with_one_image(run, fake_api, tmp_path):
    (tmp_path / "photos").mkdir()
    make_image(tmp_path / "photos" / "only.jpg")
    result = run("predict", "photos", "--json", "--top-k", "1", "--api-url", fake_api.url)
    assert result.exit_code == 0
    [line] = result.stdout.splitlines()
    assert json.loads(line)["image"] == "photos/only.jpg"


def test_json_lines_include_failures(run, fake_api, dog):
    result = run("predict", dog, "missing.jpg", "--json", "--top-k", "1", "--api-url", fake_api.url)
    assert result.exit_code == 1
    first, second = (json.loads(line) for line in result.stdout.splitlines())
    assert first["image"] == "dog.jpg" and first["predictions"][0]["breed"] == "Labrador retriever"
    assert second == {"image": "missing.jpg", "error": {"code": "file_not_found", "message": "no such file"}}
    assert result.stderr == "Error: missing.jpg: no such file\n2 images: 1 classified, 1 failed in 2.5 s\n"


def test_one_bad_file_does_not_stop_the_others(run, fake_api, dog, tmp_path):
    (tmp_path / "notes.txt").write_text("hello")
    result = run("predict", "missing.jpg", "notes.txt", dog, "--top-k", "3", "--api-url", fake_api.url)
    assert result.exit_code == 1
    assert result.stdout == "dog.jpg\n" + TABLE_TOP3
    assert result.stderr == (
        "Error: missing.jpg: no such file\nError: notes.txt: not an image\n3 images: 1 classified, 2 failed in 2.5 s\n"
    )
    assert len(fake_api.requests) == 1


def test_too_large_with_no_resize_is_refused_before_any_request(run, fake_api, tmp_path):
    (tmp_path / "huge.bmp").write_bytes(b"BM" + b"\0" * (4 * 1024 * 1024 + 10))
    result = run("predict", "huge.bmp", "--no-resize", "--api-url", fake_api.url)
    assert result.exit_code == 1
    assert result.stderr == "Error: huge.bmp: 4.0 MiB, over the API's 4.0 MiB limit (resizing is off)\n"
    assert fake_api.requests == []


def test_large_image_is_resized_before_sending(run, fake_api, tmp_path):
    make_image(tmp_path / "big.png", size=(3000, 1500), format="PNG")
    result = run("predict", "big.png", "--max-side", "512", "--api-url", fake_api.url)
    assert result.exit_code == 0
    sent = fake_api.requests[0].image()
    assert (sent.format, sent.size) == ("JPEG", (512, 256))


def test_empty_folder_is_an_error_for_that_argument(run, fake_api, dog, tmp_path):
    (tmp_path / "empty").mkdir()
    result = run("predict", "empty", dog, "--top-k", "3", "--api-url", fake_api.url)
    assert result.exit_code == 1
    assert result.stderr == "Error: empty: no image files in this folder\n2 images: 1 classified, 1 failed in 2.5 s\n"
    assert result.stdout == "dog.jpg\n" + TABLE_TOP3


def test_not_a_dog_warning(run, fake_api, dog):
    fake_api.is_dog, fake_api.dog_probability = False, 0.03
    result = run("predict", dog, "--top-k", "3", "--api-url", fake_api.url)
    assert result.exit_code == 0
    assert result.stdout == (
        "dog.jpg\n  warning: the service says this may not be a dog (dog probability 3.0%)\n" + TABLE_TOP3
    )


def test_unknown_is_dog_gives_no_warning(run, fake_api, dog):
    fake_api.is_dog, fake_api.dog_probability = None, None
    result = run("predict", dog, "--top-k", "3", "--api-url", fake_api.url)
    assert result.stdout == "dog.jpg\n" + TABLE_TOP3


def test_url_mode(run, fake_api):
    result = run("predict", "--url", "https://example.com/dog.jpg", "--top-k", "3", "--api-url", fake_api.url)
    assert result.exit_code == 0
    assert result.stdout == "https://example.com/dog.jpg\n" + TABLE_TOP3
    assert fake_api.requests[0].json() == {"url": "https://example.com/dog.jpg", "top_k": 3}


def test_image_from_stdin(run, fake_api):
    result = run("predict", "-", "--top-k", "3", "--api-url", fake_api.url, input=make_image(size=(77, 33)))
    assert result.exit_code == 0
    assert result.stdout == "<stdin>\n" + TABLE_TOP3
    assert fake_api.requests[0].image().size == (77, 33)


def test_api_unreachable_exits_3_with_one_line(run, closed_port_url, dog):
    result = run("predict", dog, "--retries", "0", "--api-url", closed_port_url)
    assert result.exit_code == 3
    assert result.stdout == ""
    assert result.stderr == f"Error: dog.jpg: API unreachable at {closed_port_url}: connection refused (1 attempt)\n"


def test_api_unreachable_stops_the_remaining_images(run, closed_port_url, tmp_path):
    names = [f"d{index}.jpg" for index in range(5)]
    for name in names:
        make_image(tmp_path / name)
    result = run("predict", *names, "--concurrency", "1", "--retries", "0", "--api-url", closed_port_url)
    assert result.exit_code == 3
    assert result.stderr == (
        f"Error: d0.jpg: API unreachable at {closed_port_url}: connection refused (1 attempt)\n"
        "Error: 4 more images not classified: stopped after the error above\n"
        "5 images: 0 classified, 5 failed in 2.5 s\n"
    )


def test_authentication_failure_exits_3(run, fake_api, dog):
    fake_api.required_key = "right-key"
    result = run("predict", dog, "--api-url", fake_api.url, "--api-key", "wrong-key")
    assert result.exit_code == 3
    assert result.stderr == (
        "Error: dog.jpg: authentication failed (HTTP 403): Forbidden; check the API key "
        "(--api-key, $DOGCLIENT_API_KEY or `dogclient configure`)\n"
    )
    assert "wrong-key" not in result.output


def test_server_error_after_retries_prints_the_apis_message(run, fake_api, dog):
    for _ in range(2):
        fake_api.queue(
            502,
            {"error": {"code": "endpoint_error", "message": "The model endpoint failed."}, "request_id": "r"},
            headers={"Retry-After": "0"},
        )
    result = run("predict", dog, "--retries", "1", "--api-url", fake_api.url)
    assert result.exit_code == 1
    assert result.stderr == "Error: dog.jpg: server error (HTTP 502 endpoint_error): The model endpoint failed.\n"
    assert len(fake_api.requests) == 2


def test_retry_after_zero_then_success(run, fake_api, dog):
    fake_api.queue(429, {"error": {"code": "throttled", "message": "Slow down."}}, headers={"Retry-After": "0"})
    result = run("predict", dog, "--top-k", "3", "--api-url", fake_api.url)
    assert result.exit_code == 0
    assert result.stdout == "dog.jpg\n" + TABLE_TOP3


def test_client_fault_from_the_api(run, fake_api, dog):
    # 7: within the contract's API limit (so the client sends it), above the fake API's 6 breeds.
    result = run("predict", dog, "--top-k", "7", "--api-url", fake_api.url)
    assert result.exit_code == 1
    assert (
        result.stderr
        == "Error: dog.jpg: request refused (HTTP 422 invalid_parameter): top_k must be from 1 to 6, got 7.\n"
    )


def test_top_k_above_the_api_limit_is_a_usage_error_before_any_request(run, fake_api, dog):
    from dogclient._contract import MAX_TOP_K

    result = run("predict", dog, "--top-k", str(MAX_TOP_K + 1), "--api-url", fake_api.url)
    assert result.exit_code == 2
    assert result.stderr.endswith(
        f"Error: Invalid value for '--top-k': {MAX_TOP_K + 1} is not in the range 1<=x<={MAX_TOP_K}.\n"
    )
    assert fake_api.requests == []
    assert run("predict", dog, "--top-k", str(MAX_TOP_K), "--api-url", fake_api.url).exit_code == 1  # sent; fake has 6


def test_the_python_client_refuses_top_k_above_the_api_limit(fake_api):
    from dogclient import DogClient
    from dogclient._contract import MAX_TOP_K

    with pytest.raises(ValueError, match=f"top_k must be at most {MAX_TOP_K} \\(the API's limit\\), not {MAX_TOP_K + 1}"):
        DogClient(fake_api.url).predict(b"never read", top_k=MAX_TOP_K + 1)
    assert fake_api.requests == []


def test_client_limits_are_the_contracts():
    """The generated module is what scripts/gen_contracts.py makes from contracts/api.json (no drift)."""
    import subprocess
    import sys

    from dogclient import MAX_IMAGE_BYTES, _contract

    root = Path(__file__).resolve().parents[2]
    checked = subprocess.run(
        [sys.executable, str(root / "scripts/gen_contracts.py"), "--check", "--only", "client"],
        capture_output=True,
        text=True,
    )
    assert checked.returncode == 0, checked.stderr
    contract = json.loads((root / "contracts/api.json").read_text())
    assert _contract.MAX_TOP_K == contract["top_k"]["api_max"] and MAX_IMAGE_BYTES == contract["bytes"]["max_image"]


def test_timeout(run, fake_api, dog):
    fake_api.queue(200, {}, delay=5)
    result = run("predict", dog, "--timeout", "0.2", "--api-url", fake_api.url)
    assert result.exit_code == 1
    assert result.stderr == f"Error: dog.jpg: timed out: no response from {fake_api.url}/predict within 0.2s\n"


def test_no_api_url_is_a_configuration_error(run, dog):
    result = run("predict", dog)
    assert result.exit_code == 2
    assert result.stderr == "Error: no API URL: pass --api-url, set DOGCLIENT_API_URL or run `dogclient configure`\n"


def test_bad_api_url_is_a_configuration_error(run, dog):
    result = run("predict", dog, "--api-url", "localhost:3000")
    assert result.exit_code == 2
    assert result.stderr == "Error: API URL 'localhost:3000' is not an http:// or https:// URL\n"


def test_no_images_is_a_usage_error(run):
    result = run("predict", "--api-url", "http://127.0.0.1:9")
    assert result.exit_code == 2
    assert result.stderr.endswith("Error: give at least one IMAGE or --url\n")


@pytest.mark.parametrize("args", [["--top-k", "0"], ["--concurrency", "0"], ["--timeout", "0"], ["--bogus"]])
def test_bad_options_are_usage_errors(run, dog, args):
    result = run("predict", dog, "--api-url", "http://127.0.0.1:9", *args)
    assert result.exit_code == 2
    assert "Error:" in result.stderr


def test_url_and_key_from_environment(run, fake_api, dog):
    env = {"DOGCLIENT_API_URL": fake_api.url, "DOGCLIENT_API_KEY": "env-key"}
    result = run("predict", dog, env=env)
    assert result.exit_code == 0
    assert fake_api.requests[0].headers["x-api-key"] == "env-key"


def test_flags_beat_environment(run, fake_api, dog):
    env = {"DOGCLIENT_API_URL": "http://127.0.0.1:9", "DOGCLIENT_API_KEY": "env-key"}
    result = run("predict", dog, "--api-url", fake_api.url, "--api-key", "flag-key", env=env)
    assert result.exit_code == 0
    assert fake_api.requests[0].headers["x-api-key"] == "flag-key"


def test_config_file_is_used_and_its_key_only_goes_to_its_url(run, fake_api, dog, config_file):
    assert run("configure", "--api-url", fake_api.url, "--api-key", "saved-key").exit_code == 0
    assert run("predict", dog).exit_code == 0
    assert fake_api.requests[-1].headers["x-api-key"] == "saved-key"
    assert run("predict", dog, "--api-url", fake_api.url + "/").exit_code == 0
    assert fake_api.requests[-1].headers["x-api-key"] == "saved-key"  # same URL, trailing slash aside
    # The same server under another name is another API as far as the saved key is concerned.
    assert run("predict", dog, "--api-url", fake_api.url.replace("127.0.0.1", "localhost")).exit_code == 0
    assert "x-api-key" not in fake_api.requests[-1].headers


def test_config_key_is_not_sent_to_another_api(run, fake_api, dog, config_file):
    assert run("configure", "--api-url", "https://api.example.com/v1", "--api-key", "saved-key").exit_code == 0
    assert run("predict", dog, "--api-url", fake_api.url).exit_code == 0
    assert "x-api-key" not in fake_api.requests[0].headers


def test_progress_bar_on_request(run, fake_api, tmp_path):
    for name in ("a.jpg", "b.jpg"):
        make_image(tmp_path / name)
    result = run("predict", "a.jpg", "b.jpg", "--progress", "--top-k", "1", "--api-url", fake_api.url)
    assert result.exit_code == 0
    assert "] 2/2" in result.stderr
    # The bar leaves no trace on the terminal: cleared, then only the summary line.
    assert result.stderr.endswith("\r\x1b[K2 images: 2 classified, 0 failed in 2.5 s\n")
    assert "a.jpg\n" in result.stdout and "\r" not in result.stdout


def test_no_progress_bar_when_not_a_terminal(run, fake_api, tmp_path):
    for name in ("a.jpg", "b.jpg"):
        make_image(tmp_path / name)
    result = run("predict", "a.jpg", "b.jpg", "--api-url", fake_api.url)
    assert result.stderr == "2 images: 2 classified, 0 failed in 2.5 s\n"


def test_progress_bar_rendering():
    class Stream(list):
        def write(self, text):
            self.append(text)

        def flush(self):
            pass

    stream = Stream()
    bar = ProgressBar(4, stream, width=8)
    bar.advance()
    bar.clear()
    bar.finish()
    assert stream == ["\r[        ] 0/4", "\r[##      ] 1/4", "\r\x1b[K", "\r\x1b[K"]


@pytest.mark.parametrize(
    ("probability", "unicode_bars", "bar"),
    [
        (1.0, True, "█" * 20),
        (0.5, True, "█" * 10),
        (0.0, True, ""),
        (0.03, True, "▋"),
        (0.5, False, "#" * 10),
        (1.7, True, "█" * 20),
    ],
)
def test_probability_bar(probability, unicode_bars, bar):
    assert probability_bar(probability, unicode_bars) == bar


def test_health(run, fake_api):
    result = run("health", "--api-url", fake_api.url)
    assert result.exit_code == 0
    assert (
        result.stdout
        == f"api_url: {fake_api.url}\nstatus: ok\nendpoint_name: local-dogbreed\nversion: 0.1.0\nrequest_id: req-1\n"
    )


def test_health_json(run, fake_api):
    result = run("health", "--json", "--api-url", fake_api.url)
    assert json.loads(result.stdout) == {
        "status": "ok",
        "endpoint_name": "local-dogbreed",
        "version": "0.1.0",
        "request_id": "req-1",
    }


def test_health_unhealthy_exits_1(run, fake_api):
    fake_api.queue(500, {"error": {"code": "endpoint_unavailable", "message": "The endpoint is Updating."}})
    result = run("health", "--api-url", fake_api.url)
    assert result.exit_code == 1
    assert result.stderr == (
        "Error: health check failed: server error (HTTP 500 endpoint_unavailable): The endpoint is Updating.\n"
    )


def test_health_unreachable_exits_3(run, closed_port_url):
    result = run("health", "--retries", "0", "--api-url", closed_port_url)
    assert result.exit_code == 3
    assert result.stderr == f"Error: API unreachable at {closed_port_url}: connection refused (1 attempt)\n"


def test_configure_with_flags_writes_a_private_file_and_never_prints_the_key(run, config_file):
    result = run("configure", "--api-url", "https://api.example.com/v1/", "--api-key", "s3cret")
    assert result.exit_code == 0
    assert result.stdout == f"Saved API URL https://api.example.com/v1 and an API key to {config_file}\n"
    assert json.loads(config_file.read_text()) == {"api_url": "https://api.example.com/v1", "api_key": "s3cret"}
    assert stat.S_IMODE(os.stat(config_file).st_mode) == 0o600
    shown = run("configure", "--show")
    assert shown.stdout == f"config file: {config_file}\napi_url: https://api.example.com/v1\napi_key: set\n"
    assert "s3cret" not in result.output + shown.output


def test_configure_existing_world_readable_file_becomes_private(run, config_file):
    config_file.parent.mkdir(parents=True)
    config_file.write_text("{}")
    config_file.chmod(0o644)
    assert run("configure", "--api-url", "https://api.example.com", "--api-key", "k").exit_code == 0
    assert stat.S_IMODE(os.stat(config_file).st_mode) == 0o600


def test_configure_keeps_the_key_for_the_same_url_and_drops_it_for_another(run, config_file):
    run("configure", "--api-url", "https://one.example.com", "--api-key", "k1")
    assert run("configure", "--api-url", "https://one.example.com/").stdout.startswith(
        "Saved API URL https://one.example.com and an API key"
    )
    result = run("configure", "--api-url", "https://two.example.com")
    assert result.stdout == f"Saved API URL https://two.example.com and no API key to {config_file}\n"
    assert json.loads(config_file.read_text())["api_key"] is None


def test_configure_empty_key_removes_it(run, config_file):
    run("configure", "--api-url", "https://one.example.com", "--api-key", "k1")
    result = run("configure", "--api-key", "")
    assert result.stdout == f"Saved API URL https://one.example.com and no API key to {config_file}\n"


def test_configure_prompts_when_given_nothing(run, config_file):
    result = run("configure", input="http://127.0.0.1:3000\nprompted-key\n")
    assert result.exit_code == 0
    assert json.loads(config_file.read_text()) == {"api_url": "http://127.0.0.1:3000", "api_key": "prompted-key"}
    assert "prompted-key" not in result.output


def test_configure_bad_url_exits_2(run, config_file):
    result = run("configure", "--api-url", "example.com")
    assert result.exit_code == 2
    assert result.stderr == "Error: API URL 'example.com' is not an http:// or https:// URL\n"
    assert not config_file.exists()


def test_configure_key_without_any_url_exits_2(run, config_file):
    result = run("configure", "--api-key", "k")
    assert result.exit_code == 2
    assert result.stderr == "Error: no API URL to save: pass --api-url or --from-terraform\n"


def test_corrupt_config_file_exits_2(run, config_file, dog):
    config_file.parent.mkdir(parents=True)
    config_file.write_text("{not json")
    result = run("predict", dog)
    assert result.exit_code == 2
    assert result.stderr.startswith(f"Error: config file {config_file} is not valid JSON (")


@pytest.mark.parametrize("command", ["predict", "health", "configure"])
def test_every_option_of_every_command_is_documented_with_its_default(command):
    group_help = CliRunner().invoke(cli, ["--help"]).stdout
    assert command in group_help
    sub = cli.commands[command]
    result = CliRunner().invoke(cli, [command, "--help"])
    assert result.exit_code == 0
    assert " ".join(sub.help.split()[:4]) in " ".join(result.stdout.split())
    for param in sub.params:
        if not isinstance(param, click.Option) or param.name == "help":
            continue
        assert param.help, f"{command} {param.opts} has no help"
        for opt in param.opts:
            assert opt in result.stdout
        documented = param.show_default or "Default" in param.help or (param.is_flag and "Default" in param.help)
        assert documented or param.name == "show", f"{command} {param.opts} does not state its default"


def test_version():
    result = CliRunner().invoke(cli, ["--version"])
    assert result.exit_code == 0
    assert result.stdout.startswith("dogclient, version ")


def test_table_columns_line_up_across_images():
    from dogclient.models import BreedScore, Prediction

    short = render_prediction("a.jpg", Prediction([BreedScore("Pug", 0.5)]))
    long = render_prediction("b.jpg", Prediction([BreedScore("American Staffordshire terrier", 0.25)]))
    assert short[1].index("%") == long[1].index("%")  # the percentage column starts in the same place
    assert long[1] == "  American Staffordshire terrier   25.0%  █████"
