"""Property-based fuzzing of everything the API parses from a client: the only outcomes allowed are a result or
one of the documented 4xx errors (never a 5xx, never an exception escaping a parser).

Targets: request JSON (any shape, any depth), the query string, base64, content types, whole proxy events of both
payload formats through the real handler (against a local endpoint over HTTP), URL parsing and the SSRF policy.
Bounded and derandomized under `make test`; `make fuzz` runs the deep profile (tests/fuzz_support.py).
"""

from __future__ import annotations

import base64
import ipaddress
import json
import string
import sys
import time
from pathlib import Path

import pytest
from hypothesis import assume, example, given, settings
from hypothesis import strategies as st

from lambda_fake_endpoint import FakeEndpoint, FakeEndpointServer
from lambda_test_support import DATA, load_event

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # tests/fuzz_support.py, shared with the trainer
from fuzz_support import count, examples, write_counts  # noqa: E402

from inference_lambda.errors import ERROR_CODES, ApiError
from inference_lambda.images import decode_base64_image
from inference_lambda.predict_request import Limits, parse_predict_request, parse_top_k_text
from inference_lambda.url_fetch import UrlFetcher, UrlPolicy, is_public_address, parse_ip_literal

LIMITS = Limits(max_image_bytes=64 * 1024, max_batch_images=8, default_top_k=5, max_top_k=10)
# What a client may get back: a result or a documented client error.
CLIENT_STATUSES = {status for status in ERROR_CODES.values() if 400 <= status < 500}
TINY = {name: (DATA / f"tiny.{name}").read_bytes() for name in ("jpg", "png", "webp")}
_STARTED = time.time()


@pytest.fixture(scope="module", autouse=True)
def _summary():
    yield
    write_counts("lambda", _STARTED)


def _refuse_urls(url: str) -> bytes:
    raise ApiError("url_fetch_failed", "URL fetching is off in this test.")


def assert_client_error(error: ApiError) -> None:
    assert error.status in CLIENT_STATUSES, f"{error!r} is not a documented client error"
    assert error.code in ERROR_CODES
    assert "Traceback" not in error.message


# -- strategies ---------------------------------------------------------------------------------------

json_scalars = st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=20)
json_values = st.recursive(
    json_scalars,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4),
    max_leaves=12,
)


@st.composite
def deeply_nested(draw) -> str:
    """JSON nested up to a few thousand levels, in any field: the recursion limit is about 1000."""
    depth = draw(st.integers(1, 3000))
    opener, closer = draw(st.sampled_from([("[", "]"), ('{"a":', "}")]))
    inner = opener * depth + "1" + closer * depth
    field = draw(st.sampled_from(["", "image", "images", "url", "top_k"]))
    return inner if not field else json.dumps({field: 0}).replace("0", inner)


def mutated(data: bytes):
    """`data` with a few bytes flipped, cut short or with junk spliced in."""

    @st.composite
    def build(draw) -> bytes:
        out = bytearray(data)
        for _ in range(draw(st.integers(0, 4))):
            op = draw(st.sampled_from(["flip", "cut", "insert"]))
            if not out:
                break
            at = draw(st.integers(0, len(out) - 1))
            if op == "flip":
                out[at] = draw(st.integers(0, 255))
            elif op == "cut":
                del out[at:]
            else:
                out[at:at] = draw(st.binary(max_size=16))
        return bytes(out)

    return build()


images = st.sampled_from(list(TINY.values())).flatmap(mutated) | st.binary(max_size=64)
base64_text = (
    images.map(lambda b: base64.b64encode(b).decode())
    | images.map(lambda b: base64.urlsafe_b64encode(b).decode().rstrip("="))
    | images.map(lambda b: "data:image/jpeg;base64," + base64.b64encode(b).decode())
    | st.text(alphabet=string.ascii_letters + string.digits + "+/=-_ \n\t.:;,", max_size=80)
    | st.text(max_size=40)
)
query_texts = (
    st.text(max_size=12)
    | st.from_regex(r"[+-]{0,2}[0-9]{1,8}", fullmatch=True)
    | st.just("9" * 5000)
    | st.sampled_from(["²", "٣", "３", "1_0", " 3 ", "0x3", "3.0", "1e1", "", "nan", "-0", "+-5", "\x00"])
)
content_types = st.sampled_from(
    [
        "image/jpeg", "image/JPEG; q=1", "image/png", "image/webp", "application/octet-stream",
        "application/x-image", "application/json", "application/json; charset=utf-8", "text/plain", "",
        "image/gif", "multipart/form-data; boundary=x", ";", "application/json;;;",
    ]
) | st.text(max_size=30)


@st.composite
def json_documents(draw) -> str:
    kind = draw(st.sampled_from(["shape", "nested", "text"]))
    if kind == "nested":
        return draw(deeply_nested())
    if kind == "text":
        return draw(st.text(max_size=60))
    document = draw(st.dictionaries(st.sampled_from(["image", "images", "url", "top_k", "imgae"]), json_values, max_size=3))
    if draw(st.booleans()):
        document["image"] = draw(base64_text)
    if draw(st.booleans()):
        document["images"] = draw(st.lists(base64_text, max_size=10))
    if draw(st.booleans()):
        document["top_k"] = draw(json_values | st.integers(-5, 15) | query_texts)
    return json.dumps(document) if draw(st.booleans()) else draw(st.sampled_from([json.dumps(document), "x"]))


# -- the parser -----------------------------------------------------------------------------------------


def parse(content_type, body, base64_body=False, query=None):
    """parse_predict_request, asserting that it answers a request or a documented client error."""
    if isinstance(body, bytes):  # a binary body, as API Gateway delivers it
        body, base64_body = base64.b64encode(body).decode(), True
    elif base64_body and body is not None:
        body = base64.b64encode(body.encode("utf-8", "surrogatepass")).decode()
    try:
        request = parse_predict_request(
            content_type=content_type,
            body=body,
            is_base64_encoded=base64_body,
            query_top_k=query,
            limits=LIMITS,
            fetch_url=_refuse_urls,
        )
    except ApiError as error:
        assert_client_error(error)
        return error
    assert 1 <= request.top_k <= LIMITS.max_top_k
    assert 1 <= len(request.images) <= LIMITS.max_batch_images
    return request


@settings(max_examples=examples(300))
@given(body=json_documents(), base64_body=st.booleans())
def test_json_body_parser_answers_a_result_or_a_client_error(body, base64_body):
    count("json_body")
    parse("application/json", body, base64_body)


@settings(max_examples=examples(300))
@given(image=images, query=st.lists(query_texts, max_size=3))
def test_query_string_parser_answers_a_result_or_a_client_error(image, query):
    count("query_string")
    parse("image/jpeg", image, query=query)


@settings(max_examples=examples(300))
@given(
    content_type=st.none() | content_types,
    body=st.none() | st.text(max_size=60) | images,
    base64_body=st.booleans(),
)
def test_content_types_and_bodies_answer_a_result_or_a_client_error(content_type, body, base64_body):
    count("content_type_body")
    parse(content_type, body, base64_body)


@settings(max_examples=examples(300))
@given(text=query_texts)
def test_top_k_query_parser_is_strict(text):
    count("top_k_query")
    try:
        value = parse_top_k_text(text, max_top_k=10)
    except ApiError as error:
        assert_client_error(error)
        assert error.code == "invalid_parameter"
        return
    # Accepted only when it is plainly an ASCII decimal integer in range.
    stripped = text.strip(" \t")
    assert stripped.lstrip("+").isascii() and stripped.lstrip("+").isdigit()
    assert value == int(stripped) and 1 <= value <= 10


@settings(max_examples=examples(300))
@given(text=base64_text | st.binary(max_size=30).map(lambda b: b.decode("latin-1")))
def test_base64_decoder_answers_bytes_or_a_client_error(text):
    count("base64")
    try:
        data = decode_base64_image(text, max_bytes=LIMITS.max_image_bytes, label="image")
    except ApiError as error:
        assert_client_error(error)
        return
    assert data[:3] == b"\xff\xd8\xff" or data[:4] in (b"\x89PNG", b"RIFF")


# -- whole events through the real handler ----------------------------------------------------------------


@st.composite
def proxy_events(draw) -> dict:
    """A REST (1.0) or HTTP API (2.0) proxy event with hostile headers, query string and body."""
    version = draw(st.sampled_from(["1.0", "2.0"]))
    content_type = draw(st.none() | content_types)
    raw = draw(st.booleans())
    if raw:
        body_bytes = draw(images)
        body, is_b64 = base64.b64encode(body_bytes).decode(), True
    else:
        body, is_b64 = draw(st.none() | json_documents()), False
    query = draw(st.dictionaries(st.sampled_from(["top_k", "k", "top_k[]", "", "TOP_K"]), st.lists(query_texts, min_size=1, max_size=2), max_size=2))
    method = draw(st.sampled_from(["POST", "POST", "GET", "PUT", "OPTIONS", "DELETE"]))
    path = draw(st.sampled_from(["/predict", "/predict", "/health", "/openapi.json", "/", "/dogs/predict", "/predict/", "/x"]))
    if version == "1.0":
        event = load_event("predict_raw_jpeg.json")
        event["httpMethod"] = event["requestContext"]["httpMethod"] = method
        event["path"] = path
        event["resource"] = path if path in ("/predict", "/health", "/openapi.json") else "/{proxy+}"
        headers = {"Content-Type": content_type} if content_type is not None else {}
        event["headers"] = headers
        event["multiValueHeaders"] = {k: [v] for k, v in headers.items()}
        event["queryStringParameters"] = {k: v[-1] for k, v in query.items()} or None
        event["multiValueQueryStringParameters"] = query or None
    else:
        event = load_event("v2_predict_raw_jpeg.json")
        event["requestContext"]["http"]["method"] = method
        event["rawPath"] = event["requestContext"]["http"]["path"] = path
        event["routeKey"] = "$default"
        event["headers"] = {"content-type": content_type} if content_type is not None else {}
        event["rawQueryString"] = "&".join(f"{k}={v}" for k, values in query.items() for v in values)
        event["queryStringParameters"] = {k: ",".join(v) for k, v in query.items()} or None
        event.pop("cookies", None)
    event["body"], event["isBase64Encoded"] = body, is_b64
    return event


@pytest.fixture(scope="module")
def fake_endpoint():
    with FakeEndpointServer(FakeEndpoint()) as server:
        yield server


@pytest.fixture
def handler_on_fake_endpoint(reload_app, fake_endpoint):
    return reload_app(AWS_ENDPOINT_URL_SAGEMAKER_RUNTIME=fake_endpoint.url)


@pytest.mark.filterwarnings("ignore")
def test_handler_answers_every_event_with_a_result_or_a_client_error(handler_on_fake_endpoint, invoke):
    @settings(max_examples=examples(200))
    @given(event=proxy_events())
    def check(event):
        count("handler_event")
        status, headers, body = invoke(event)
        assert status == 200 or status in CLIENT_STATUSES, (status, body)
        if status != 200:
            assert set(body) == {"error", "request_id"} and body["error"]["code"] in ERROR_CODES
        assert "Traceback" not in json.dumps(body)

    check()


# -- URLs and the SSRF policy ------------------------------------------------------------------------------

addresses = (
    st.ip_addresses(v=4).map(str)
    | st.ip_addresses(v=6).map(str)
    | st.sampled_from(["127.0.0.1", "10.0.0.1", "169.254.169.254", "::ffff:127.0.0.1", "fd00::1", "100.64.0.1"])
)
hosts = (
    st.sampled_from(["images.example.test", "xn--80ak6aa92e.test", "a" * 70 + ".test", "", "[::1]", "0x7f.1",
                     "2130706433", "127.1", "localhost", "exa mple.test", "ex%41mple.test", "[fe80::1%25eth0]"])
    | st.from_regex(r"[a-z0-9.-]{1,20}", fullmatch=True)
    | addresses.map(lambda a: f"[{a}]" if ":" in a else a)
    | st.text(max_size=15)
)
urls = st.builds(
    lambda scheme, userinfo, host, port, path: f"{scheme}://{userinfo}{host}{port}{path}",
    st.sampled_from(["https", "http", "HTTPS", "ftp", "file", "gopher", ""]),
    st.sampled_from(["", "user@", "user:pass@", "@"]),
    hosts,
    st.sampled_from(["", ":443", ":80", ":8080", ":0", ":99999", ":-1", ":abc"]),
    st.sampled_from(["/dog.jpg", "", "/a b", "/?q=1", "/\r\nX: y", "#frag", "/%00"]),
) | st.text(max_size=40)


# One fetcher for every example: building its TLS context (the CA bundle) costs ~40 ms. Its resolver answers
# what the example drew.
_RESOLVED: list[str] = []
_FETCHER = UrlFetcher(UrlPolicy(max_bytes=10_000), resolver=lambda host, port: list(_RESOLVED))


@settings(max_examples=examples(400))
@given(url=urls, resolved=st.lists(addresses, max_size=3))
def test_url_policy_admits_only_public_targets(url, resolved):
    count("url_policy")
    _RESOLVED[:] = resolved
    fetcher = _FETCHER
    try:
        target = fetcher._check_url(url)
    except ApiError as error:
        assert_client_error(error)
        return
    assert target.scheme == "https" and target.port in (443, 80)
    assert target.addresses and all(is_public_address(a) for a in target.addresses)


@settings(max_examples=examples(300))
@given(host=hosts.map(lambda h: h.strip("[]")) | st.ip_addresses().map(str))
def test_ip_literal_parsing_never_crashes_and_agrees_with_ipaddress(host):
    count("ip_literal")
    parsed = parse_ip_literal(host)
    try:
        canonical = ipaddress.ip_address(host)
    except ValueError:
        return
    assume("%" not in host)
    assert parsed == canonical
