"""``dogclient``: classify dog photos with the dog-breed API. A thin layer over ``DogClient``.

Results go to stdout, progress and errors to stderr. Exit codes: 0 every image classified, 1 some
image failed, 2 usage or configuration error, 3 API unreachable or authentication failed.
"""

from __future__ import annotations

import json
import sys
import threading
import time
from collections.abc import Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

import click

from ._contract import DEFAULT_TOP_K, MAX_TOP_K
from ._version import __version__
from .client import DogClient, normalise_api_url
from .config import (
    API_KEY_ENV,
    API_URL_ENV,
    config_path,
    load_config,
    read_terraform_output_file,
    resolve_settings,
    save_config,
    settings_from_terraform,
    terraform_output_json,
)
from .errors import ApiError, ApiTimeout, ApiUnreachable, AuthError, ConfigError, DogClientError, ImageError
from .images import DEFAULT_MAX_SIDE, find_images
from .models import Prediction

EXIT_OK = 0
EXIT_IMAGE_FAILED = 1
EXIT_USAGE = 2
EXIT_UNREACHABLE = 3

BAR_WIDTH = 20
# Breed names are padded to at least this width so the columns line up across images; 30 fits every
# ImageNet dog breed ("American Staffordshire terrier") and nearly all dogImages ones.
BREED_COLUMN_WIDTH = 30
_clock = time.monotonic  # the summary's timer (tests replace it to assert the exact line)
_PARTIAL_BLOCKS = " ▏▎▍▌▋▊▉"


class UsageOrConfigError(click.ClickException):
    """A configuration problem: exit code 2, like click's own usage errors."""

    exit_code = EXIT_USAGE


@dataclass(frozen=True)
class Target:
    """One thing to classify, named as the user will recognise it in output."""

    name: str
    path: Path | None = None
    url: str | None = None
    data: bytes | None = None
    error: DogClientError | None = None  # known bad before any request (an empty folder)


@dataclass(frozen=True)
class Outcome:
    target: Target
    prediction: Prediction | None = None
    error: DogClientError | None = None
    skipped: bool = False


def api_options(command: Any) -> Any:
    """--api-url/--api-key/--timeout/--retries, shared by the commands that call the API."""
    options = [
        click.option(
            "--api-url",
            metavar="URL",
            help=f"Base URL of the API. Default: ${API_URL_ENV}, else the config file.",
        ),
        click.option(
            "--api-key",
            metavar="KEY",
            help=f"API key, sent as x-api-key. Default: ${API_KEY_ENV}, else the config file's key "
            "(only when the URL is the config file's).",
        ),
        click.option(
            "--timeout",
            type=click.FloatRange(min=0, min_open=True),
            default=30.0,
            show_default=True,
            help="Seconds to wait for each response.",
        ),
        click.option(
            "--retries",
            type=click.IntRange(min=0),
            default=3,
            show_default=True,
            help="Retries after a connection error or HTTP 429/502/503/504, with backoff; Retry-After is honoured.",
        ),
    ]
    for option in reversed(options):
        command = option(command)
    return command


def make_client(
    api_url: str | None, api_key: str | None, timeout: float, retries: int, max_side: int | None = DEFAULT_MAX_SIDE
) -> DogClient:
    try:
        settings = resolve_settings(api_url, api_key)
    except ConfigError as exc:
        raise UsageOrConfigError(exc.message) from None
    return DogClient(settings.api_url, settings.api_key, timeout=timeout, retries=retries, max_side=max_side)


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="dogclient")
def cli() -> None:
    """Classify dog photos with the dog-breed API.

    \b
    Set the API up once:
        dogclient configure --from-terraform terraform/envs/aws
    then:
        dogclient predict dog.jpg photos/

    Exit codes: 0 all succeeded, 1 some image failed, 2 usage or configuration
    error, 3 API unreachable or authentication failed.
    """


@cli.command(short_help="Classify images (files, folders, URLs) and print their breeds.")
@click.argument("images", nargs=-1, type=click.Path(path_type=Path))
@click.option(
    "--url",
    "urls",
    multiple=True,
    metavar="URL",
    help="Classify the image at this http(s) URL; the API downloads it. Repeatable. Default: none.",
)
@click.option(
    "--top-k",
    type=click.IntRange(1, MAX_TOP_K),
    default=DEFAULT_TOP_K,
    show_default=True,
    help=f"Breeds to show per image (the API accepts 1 to {MAX_TOP_K}).",
)
@click.option(
    "--json",
    "as_json",
    is_flag=True,
    help="Print JSON: one document for one image, JSON Lines (one per image, failures included) for several. "
    "Default: a table.",
)
@click.option(
    "--concurrency",
    type=click.IntRange(1, 64),
    default=4,
    show_default=True,
    help="Images sent at the same time.",
)
@click.option(
    "--max-side",
    type=click.IntRange(min=16),
    default=DEFAULT_MAX_SIDE,
    show_default=True,
    help="Shrink images whose longest side is larger to this many pixels (re-encoded as JPEG).",
)
@click.option(
    "--no-resize",
    is_flag=True,
    help="Send the files' bytes as they are: no EXIF rotation, no shrinking. Default: off.",
)
@click.option(
    "--progress/--no-progress",
    default=None,
    help="Progress bar on stderr. Default: on when stderr is a terminal and there are several images.",
)
@api_options
def predict(
    images: tuple[Path, ...],
    urls: tuple[str, ...],
    top_k: int,
    as_json: bool,
    concurrency: int,
    max_side: int,
    no_resize: bool,
    progress: bool | None,
    api_url: str | None,
    api_key: str | None,
    timeout: float,
    retries: int,
) -> None:
    """Classify IMAGES: files, folders (searched recursively for image files) or - for stdin.

    Before sending, each image is turned upright per its EXIF orientation and shrunk to
    --max-side; anything still over the API's 4 MiB limit is refused without a request.
    With several images, one failure does not stop the others.

    \b
    Examples:
        dogclient predict dog.jpg
        dogclient predict photos/ --json > breeds.jsonl
        dogclient predict --url https://example.com/dog.jpg
    """
    if not images and not urls:
        raise click.UsageError("give at least one IMAGE or --url")
    client = make_client(api_url, api_key, timeout, retries, None if no_resize else max_side)
    targets = collect_targets(images, urls)
    # A folder means "any number of images": JSON Lines even when it holds just one, so scripts can rely on it.
    single_document = len(images) + len(urls) == 1 and not (images and images[0].is_dir())
    if progress is None:
        progress = len(targets) > 1 and _is_terminal(sys.stderr)
    bar = ProgressBar(len(targets), sys.stderr) if progress else None

    report = Report(as_json, single_document, unicode_bars=_can_encode(sys.stdout, "█▉"))
    started = _clock()
    with client:
        for outcome in classify_all(client, targets, top_k, concurrency):
            if bar:
                bar.clear()
            report.add(outcome)
            if bar:
                bar.advance()
    if bar:
        bar.finish()
    exit_code = report.finish()
    if len(targets) > 1:
        click.echo(report.summary(_clock() - started), err=True)
    sys.exit(exit_code)


@cli.command()
@click.option("--json", "as_json", is_flag=True, help="Print the API's JSON as it is. Default: key: value lines.")
@api_options
def health(as_json: bool, api_url: str | None, api_key: str | None, timeout: float, retries: int) -> None:
    """Check the API: calls GET /health and prints its answer.

    Exit codes: 0 healthy, 1 the API answered with an error, 2 configuration
    error, 3 API unreachable or authentication failed.
    """
    client = make_client(api_url, api_key, timeout, retries)
    with client:
        try:
            document = client.health()
        except (ApiUnreachable, AuthError) as exc:
            click.echo(f"Error: {describe_error(exc)}", err=True)
            sys.exit(EXIT_UNREACHABLE)
        except DogClientError as exc:
            click.echo(f"Error: health check failed: {describe_error(exc)}", err=True)
            sys.exit(EXIT_IMAGE_FAILED)
    if as_json:
        click.echo(json.dumps(document, indent=2))
        return
    click.echo(f"api_url: {client.api_url}")
    if isinstance(document, dict):
        for key, value in document.items():
            click.echo(f"{key}: {value if isinstance(value, (str, int, float)) else json.dumps(value)}")
    else:
        click.echo(json.dumps(document))


@cli.command()
@click.option("--api-url", metavar="URL", help="Base URL of the API to save. Default: unchanged.")
@click.option(
    "--api-key",
    metavar="KEY",
    help="API key to save; '' removes it. Default: unchanged while the URL is unchanged, else none.",
)
@click.option(
    "--from-terraform",
    "terraform_dir",
    type=click.Path(file_okay=False, path_type=Path),
    metavar="DIR",
    help="Read api_url and api_key from `terraform -chdir=DIR output -json` (the AWS environment, "
    "terraform/envs/aws). Default: not used.",
)
@click.option(
    "--terraform-output-file",
    type=click.Path(dir_okay=False, path_type=Path),
    metavar="FILE",
    help="Like --from-terraform, from a saved `terraform output -json` document (for machines "
    "without Terraform). Default: not used.",
)
@click.option(
    "--terraform-bin",
    default="terraform",
    show_default=True,
    metavar="PATH",
    help="Terraform executable for --from-terraform.",
)
@click.option("--show", is_flag=True, help="Print the saved settings (never the key) and change nothing.")
def configure(
    api_url: str | None,
    api_key: str | None,
    terraform_dir: Path | None,
    terraform_output_file: Path | None,
    terraform_bin: str,
    show: bool,
) -> None:
    """Save the API URL and key to the user config file.

    The file is $DOGCLIENT_CONFIG, else $XDG_CONFIG_HOME/dogclient/config.json,
    else ~/.config/dogclient/config.json, written with mode 0600. With no option,
    asks for the URL and key.

    \b
    Examples:
        dogclient configure --from-terraform terraform/envs/aws
        dogclient configure --api-url http://127.0.0.1:3000 --api-key ''
    """
    path = config_path()
    try:
        saved = load_config(path)
        if show:
            click.echo(f"config file: {path}")
            click.echo(f"api_url: {saved.get('api_url') or '(not set)'}")
            click.echo(f"api_key: {'set' if saved.get('api_key') else '(not set)'}")
            return
        if terraform_dir and terraform_output_file:
            raise click.UsageError("give --from-terraform or --terraform-output-file, not both")

        new_url: str | None = None
        new_key: str | None = None
        key_given = api_key is not None
        if terraform_dir or terraform_output_file:
            if terraform_dir:
                outputs, origin = terraform_output_json(terraform_dir, terraform_bin), f"terraform in {terraform_dir}"
            else:
                outputs, origin = read_terraform_output_file(terraform_output_file), str(terraform_output_file)
            new_url, new_key = settings_from_terraform(outputs, origin)
            key_given = True
        if api_url:
            new_url = api_url
        if api_key is not None:
            new_key = api_key
        if new_url is None and not key_given:
            new_url = click.prompt("API URL", default=saved.get("api_url"))
            hint = "empty keeps the saved key" if saved.get("api_key") else "empty for none"
            entered = click.prompt(f"API key ({hint})", default="", hide_input=True, show_default=False)
            if entered or not saved.get("api_key"):
                new_key, key_given = entered, True

        url = _normalise(new_url or saved.get("api_url"))
        if not url:
            raise UsageOrConfigError("no API URL to save: pass --api-url or --from-terraform")
        if key_given:
            key = new_key or None
        elif saved.get("api_key") and _normalise(saved.get("api_url")) == url:
            key = saved["api_key"]
        else:
            key = None  # a key saved for another URL must not follow the user to a new one
        save_config({**saved, "api_url": url, "api_key": key}, path)
    except ConfigError as exc:
        raise UsageOrConfigError(exc.message) from None
    key_text = "an API key" if key else "no API key"
    click.echo(f"Saved API URL {url} and {key_text} to {path}")


def _normalise(url: str | None) -> str | None:
    return normalise_api_url(url) if url else None


def collect_targets(images: Sequence[Path], urls: Sequence[str]) -> list[Target]:
    """Expand folders into their image files; read ``-`` from stdin. Missing files fail later, per file."""
    targets: list[Target] = []
    for image in images:
        if str(image) == "-":
            targets.append(Target("<stdin>", data=sys.stdin.buffer.read()))
        elif image.is_dir():
            found = find_images(image)
            if not found:
                targets.append(Target(str(image), error=ImageError("no image files in this folder", "file_not_found")))
            targets.extend(Target(str(path), path=path) for path in found)
        else:
            targets.append(Target(str(image), path=image))
    targets.extend(Target(url, url=url) for url in urls)
    return targets


def classify_all(client: DogClient, targets: Sequence[Target], top_k: int, concurrency: int) -> Iterator[Outcome]:
    """Classify every target with ``concurrency`` threads; outcomes come back in input order.

    After the API proves unreachable or refuses the key, images not yet started are skipped: every one
    of them would fail the same way, each after its own retries.
    """
    stop = threading.Event()

    def classify(target: Target) -> Outcome:
        if target.error is not None:
            return Outcome(target, error=target.error)
        if stop.is_set():
            return Outcome(target, skipped=True)
        try:
            if target.url is not None:
                prediction = client.predict_url(target.url, top_k)
            else:
                prediction = client.predict(target.data if target.data is not None else target.path, top_k)
        except (ApiUnreachable, AuthError) as exc:
            stop.set()
            return Outcome(target, error=exc)
        except DogClientError as exc:
            return Outcome(target, error=exc)
        return Outcome(target, prediction=prediction)

    with ThreadPoolExecutor(max_workers=concurrency, thread_name_prefix="dogclient") as pool:
        futures = [pool.submit(classify, target) for target in targets]
        try:
            for future in futures:
                yield future.result()
        finally:
            for future in futures:
                future.cancel()


def describe_error(error: DogClientError | None) -> str:
    """One line: what went wrong and, where it helps, what to do."""
    if isinstance(error, AuthError):
        return (
            f"authentication failed (HTTP {error.status}): {error.message}; check the API key "
            f"(--api-key, ${API_KEY_ENV} or `dogclient configure`)"
        )
    if isinstance(error, ApiError):
        kind = "server error" if error.status >= 500 else "request refused"
        return f"{kind} (HTTP {error.status} {error.code}): {error.message}"
    if isinstance(error, ApiTimeout):
        return f"timed out: {error.message}"
    if error is None:
        return "unknown error"
    return error.message


def _error_fields(outcome: Outcome) -> tuple[str, str]:
    if outcome.skipped or outcome.error is None:
        return "not_sent", "not sent: stopped after the API became unreachable or refused the key"
    return outcome.error.code, describe_error(outcome.error)


def render_prediction(name: str, prediction: Prediction, unicode_bars: bool = True) -> list[str]:
    """The human table: the image's name, then breed, percentage and a bar per line."""
    lines = [name]
    if prediction.is_dog is False:
        if prediction.dog_probability is None:
            lines.append("  warning: the service says this may not be a dog")
        else:
            lines.append(
                f"  warning: the service says this may not be a dog "
                f"(dog probability {prediction.dog_probability * 100:.1f}%)"
            )
    width = max([BREED_COLUMN_WIDTH, *(len(score.breed) for score in prediction.breeds)])
    for score in prediction.breeds:
        bar = probability_bar(score.probability, unicode_bars)
        lines.append(f"  {score.breed:<{width}}  {score.probability * 100:5.1f}%  {bar}".rstrip())
    if not prediction.breeds:
        lines.append("  (no breeds returned)")
    return lines


def probability_bar(probability: float, unicode_bars: bool = True, width: int = BAR_WIDTH) -> str:
    probability = min(1.0, max(0.0, probability))
    if not unicode_bars:
        return "#" * round(probability * width)
    full, eighths = divmod(round(probability * width * 8), 8)
    return "█" * full + (_PARTIAL_BLOCKS[eighths] if eighths else "")


class Report:
    """Prints each outcome as it arrives (results to stdout, errors to stderr) and picks the exit code."""

    def __init__(self, as_json: bool, single_document: bool, unicode_bars: bool):
        self.as_json = as_json
        self.indent = 2 if single_document else None
        self.unicode_bars = unicode_bars
        self.tables = self.classified = self.failed = self.fatal = self.unreported = 0

    def add(self, outcome: Outcome) -> None:
        name = outcome.target.name
        if outcome.prediction is not None:
            self.classified += 1
            if self.as_json:
                click.echo(json.dumps({"image": name, **outcome.prediction.to_dict()}, indent=self.indent))
            else:
                if self.tables:
                    click.echo()
                click.echo("\n".join(render_prediction(name, outcome.prediction, self.unicode_bars)))
                self.tables += 1
            return
        self.failed += 1
        if outcome.skipped:
            self.unreported += 1
        elif isinstance(outcome.error, (ApiUnreachable, AuthError)):
            self.fatal += 1
            if self.fatal == 1:
                click.echo(f"Error: {name}: {describe_error(outcome.error)}", err=True)
            else:  # the same cause again, from a request already in flight: said once is enough
                self.unreported += 1
        else:
            click.echo(f"Error: {name}: {describe_error(outcome.error)}", err=True)
        if self.as_json:
            code, message = _error_fields(outcome)
            click.echo(json.dumps({"image": name, "error": {"code": code, "message": message}}, indent=self.indent))

    def finish(self) -> int:
        if self.unreported:
            noun = "image" if self.unreported == 1 else "images"
            click.echo(f"Error: {self.unreported} more {noun} not classified: stopped after the error above", err=True)
        if self.fatal:
            return EXIT_UNREACHABLE
        return EXIT_IMAGE_FAILED if self.failed else EXIT_OK

    def summary(self, seconds: float) -> str:
        """The closing line on stderr after several images: how many classified, failed, how long."""
        total = self.classified + self.failed
        noun = "image" if total == 1 else "images"
        return f"{total} {noun}: {self.classified} classified, {self.failed} failed in {seconds:.1f} s"


class ProgressBar:
    """``[#####     ] 12/40`` on one terminal line, cleared before each result so the two never mix."""

    def __init__(self, total: int, stream: IO[str], width: int = 30):
        self.total = total
        self.done = 0
        self.stream = stream
        self.width = width
        self.draw()

    def draw(self) -> None:
        filled = round(self.width * self.done / self.total) if self.total else self.width
        self.stream.write(f"\r[{'#' * filled}{' ' * (self.width - filled)}] {self.done}/{self.total}")
        self.stream.flush()

    def clear(self) -> None:
        self.stream.write("\r\x1b[K")
        self.stream.flush()

    def advance(self) -> None:
        self.done += 1
        self.draw()

    def finish(self) -> None:
        self.clear()


def _is_terminal(stream: IO[str]) -> bool:
    try:
        return stream.isatty()
    except (AttributeError, ValueError):
        return False


def _can_encode(stream: IO[str], text: str) -> bool:
    try:
        text.encode(getattr(stream, "encoding", None) or "ascii")
    except (LookupError, UnicodeEncodeError):
        return False
    return True


def main() -> None:  # pragma: no cover - entry point for python -m dogclient
    cli(prog_name="dogclient")
