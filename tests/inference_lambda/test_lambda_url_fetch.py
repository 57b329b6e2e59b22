"""SSRF protection of `{"url": ...}` and the fetch itself.

Rejections are checked before any connection: the autouse guard in conftest records every connect attempt and
fails any that is not 127.0.0.1, and names are resolved by injected resolvers, never by DNS. The only server is
on 127.0.0.1, reachable only because those tests explicitly allow 127.0.0.1/32 in the policy.
"""

from __future__ import annotations

import ipaddress
import json
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from inference_lambda.errors import ApiError
from inference_lambda.url_fetch import UrlFetcher, UrlPolicy, is_public_address, parse_ip_literal

from lambda_test_support import endpoint_response, load_event

LOOPBACK_ONLY = (ipaddress.ip_network("127.0.0.1/32"),)


def resolver_for(table: dict[str, list[str]]):
    calls: list[str] = []

    def resolve(host: str, port: int) -> list[str]:
        calls.append(host)
        if host not in table:
            raise OSError("Name or service not known")
        return table[host]

    resolve.calls = calls  # type: ignore[attr-defined]
    return resolve


def fetch_error(fetcher: UrlFetcher, url: str) -> ApiError:
    with pytest.raises(ApiError) as raised:
        fetcher.fetch(url)
    return raised.value


# -- rejected before connecting ------------------------------------------------------------------------


@pytest.mark.parametrize(
    "url",
    [
        "https://127.0.0.1/dog.jpg",
        "https://127.0.0.2/dog.jpg",
        "https://10.0.0.5/dog.jpg",
        "https://172.16.3.4/dog.jpg",
        "https://192.168.1.1/dog.jpg",
        "https://169.254.169.254/latest/meta-data/iam/security-credentials/",
        "https://100.64.0.1/dog.jpg",  # carrier-grade NAT
        "https://0.0.0.0/dog.jpg",
        "https://224.0.0.251/dog.jpg",  # multicast
        "https://240.0.0.1/dog.jpg",  # reserved
        "https://255.255.255.255/dog.jpg",
        "https://[::1]/dog.jpg",
        "https://[::]/dog.jpg",
        "https://[fe80::1]/dog.jpg",
        "https://[fc00::1]/dog.jpg",
        "https://[fd12:3456::1]/dog.jpg",
        "https://[ff02::1]/dog.jpg",
        "https://[::ffff:127.0.0.1]/dog.jpg",  # IPv4-mapped
        "https://[::ffff:169.254.169.254]/dog.jpg",
        "https://[64:ff9b::a00:1]/dog.jpg",  # NAT64 of 10.0.0.1
        "https://[2002:a00:1::]/dog.jpg",  # 6to4 of 10.0.0.1
        "https://[fd00:ec2::254]/latest/meta-data/",  # EC2's IPv6 metadata address
        "https://2130706433/dog.jpg",  # 127.0.0.1 as one number
        "https://0x7f.0.0.1/dog.jpg",
        "https://127.1/dog.jpg",
        "https://017700000001/dog.jpg",  # octal
    ],
)
def test_non_public_addresses_are_rejected_without_connecting(url, only_loopback_network):
    resolver = resolver_for({})
    fetcher = UrlFetcher(UrlPolicy(max_bytes=10_000), resolver=resolver)

    error = fetch_error(fetcher, url)

    assert (error.status, error.code) == (400, "url_not_allowed")
    assert "non-public address" in error.message
    assert resolver.calls == []  # literal addresses never reach DNS
    assert only_loopback_network == []


@pytest.mark.parametrize(
    "addresses",
    [["10.1.2.3"], ["127.0.0.1"], ["169.254.169.254"], ["::1"], ["fe80::1%eth0"], ["93.184.216.34", "10.0.0.9"]],
    ids=["private", "loopback", "metadata", "ipv6-loopback", "link-local-scoped", "one-public-one-private"],
)
def test_names_resolving_to_non_public_addresses_are_rejected(addresses, only_loopback_network):
    fetcher = UrlFetcher(UrlPolicy(max_bytes=10_000), resolver=resolver_for({"images.example.test": addresses}))

    error = fetch_error(fetcher, "https://images.example.test/dog.jpg")

    assert error.code == "url_not_allowed"
    assert "10.1.2.3" not in error.message  # resolved addresses are not echoed back
    assert only_loopback_network == []


@pytest.mark.parametrize(
    "url,message",
    [
        ("http://images.example.test/dog.jpg", "Only https URLs are accepted."),
        ("ftp://images.example.test/dog.jpg", "Only https URLs are accepted."),
        ("file:///etc/passwd", "Only https URLs are accepted."),
        ("gopher://127.0.0.1:6379/_INFO", "Only https URLs are accepted."),
        ("//images.example.test/dog.jpg", "Only https URLs are accepted."),
        ("https://user:pass@images.example.test/dog.jpg", "URLs with credentials are not accepted."),
        ("https://images.example.test:22/dog.jpg", "Port 22 is not allowed for image URLs."),
        ("https://images.example.test:99999/dog.jpg", "The URL is not a valid absolute URL."),
        ("https:///dog.jpg", "The URL has no host."),
        ("https://" + "a" * 2100 + ".test/", "The URL is longer than 2048 characters."),
    ],
)
def test_scheme_credentials_and_ports_are_checked(url, message, only_loopback_network):
    fetcher = UrlFetcher(UrlPolicy(max_bytes=10_000), resolver=resolver_for({"images.example.test": ["93.184.216.34"]}))

    error = fetch_error(fetcher, url)

    assert error.code == "url_not_allowed"
    assert error.message == message
    assert only_loopback_network == []


def test_unresolvable_name_is_url_fetch_failed():
    fetcher = UrlFetcher(UrlPolicy(max_bytes=10_000), resolver=resolver_for({}))

    error = fetch_error(fetcher, "https://no-such-host.example.test/dog.jpg")

    assert (error.status, error.code) == (400, "url_fetch_failed")


@pytest.mark.parametrize(
    "address,public",
    [
        ("93.184.216.34", True),
        ("2606:4700:4700::1111", True),
        ("8.8.8.8", True),
        ("10.0.0.1", False),
        ("::ffff:8.8.8.8", True),
        ("::ffff:10.0.0.1", False),
        ("198.18.0.1", False),
        ("192.0.2.1", False),
    ],
)
def test_is_public_address(address, public):
    assert is_public_address(ipaddress.ip_address(address)) is public


def test_legacy_ipv4_spellings_are_parsed_like_libc_does():
    assert str(parse_ip_literal("127.1")) == "127.0.0.1"
    assert str(parse_ip_literal("0x7f000001")) == "127.0.0.1"
    assert parse_ip_literal("images.example.test") is None
    assert parse_ip_literal("cafe.test") is None


# -- a real server on 127.0.0.1 (allowed by the policy for these tests only) ----------------------------


class ImageSite:
    def __init__(self, jpeg: bytes):
        self.jpeg = jpeg
        self.hits: list[str] = []
        site = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"
            disable_nagle_algorithm = True

            def log_message(self, *args):
                pass

            def do_GET(self):
                site.hits.append(self.path)
                route = self.path.split("?")[0]
                if route == "/dog.jpg":
                    return self._send(200, {"Content-Type": "image/jpeg"}, site.jpeg)
                if route == "/redirect-to-dog":
                    return self._send(302, {"Location": "/dog.jpg"}, b"")
                if route == "/redirect-to-metadata":
                    return self._send(302, {"Location": "http://169.254.169.254/latest/meta-data/"}, b"")
                if route == "/redirect-to-internal-name":
                    return self._send(301, {"Location": "http://internal.corp.test/secret.jpg"}, b"")
                if route == "/redirect-to-file":
                    return self._send(302, {"Location": "file:///etc/passwd"}, b"")
                if route == "/loop":
                    return self._send(302, {"Location": "/loop"}, b"")
                if route == "/page.html":
                    return self._send(200, {"Content-Type": "text/html"}, b"<html></html>")
                if route == "/missing.jpg":
                    return self._send(404, {"Content-Type": "text/plain"}, b"nope")
                if route == "/declared-big.jpg":
                    return self._send(
                        200, {"Content-Type": "image/jpeg", "Content-Length": "999999"}, b"", length=False
                    )
                if route == "/chunked-big.jpg":
                    self.send_response(200)
                    self.send_header("Content-Type", "image/jpeg")
                    self.send_header("Transfer-Encoding", "chunked")
                    self.end_headers()
                    for _ in range(40):
                        chunk = b"\xff" * 1000
                        try:
                            self.wfile.write(b"%x\r\n%s\r\n" % (len(chunk), chunk))
                        except OSError:
                            return
                    self.wfile.write(b"0\r\n\r\n")
                    return
                if route == "/slow.jpg":
                    self.send_response(200)
                    self.send_header("Content-Type", "image/jpeg")
                    self.send_header("Content-Length", str(len(site.jpeg)))
                    self.end_headers()
                    self.wfile.write(site.jpeg[:10])
                    self.wfile.flush()
                    time.sleep(3.0)
                    try:
                        self.wfile.write(site.jpeg[10:])
                    except OSError:
                        pass
                    return
                return self._send(404, {}, b"")

            def _send(self, status, headers, body, length=True):
                self.send_response(status)
                for name, value in headers.items():
                    self.send_header(name, value)
                if length:
                    self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.thread = threading.Thread(target=self.server.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True)

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}"

    def __enter__(self):
        self.thread.start()
        return self

    def __exit__(self, *exc):
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def site(tiny_images):
    with ImageSite(tiny_images["jpg"]) as running:
        yield running


def loopback_fetcher(max_bytes: int = 10_000, timeout: float = 3.0, resolver=None) -> UrlFetcher:
    policy = UrlPolicy(
        max_bytes=max_bytes,
        allow_http=True,
        allowed_ports=None,
        timeout_seconds=timeout,
        allowed_private_networks=LOOPBACK_ONLY,
    )
    return UrlFetcher(policy, resolver=resolver or resolver_for({"internal.corp.test": ["10.0.0.7"]}))


def test_fetches_an_image(site, tiny_images):
    fetched = loopback_fetcher().fetch(site.base + "/dog.jpg?sig=abc")

    assert fetched.data == tiny_images["jpg"]
    assert fetched.content_type == "image/jpeg"
    assert site.hits == ["/dog.jpg?sig=abc"]


def test_follows_a_redirect_and_rechecks_it(site, tiny_images):
    fetched = loopback_fetcher().fetch(site.base + "/redirect-to-dog")

    assert fetched.data == tiny_images["jpg"]
    assert fetched.hops == 1


@pytest.mark.parametrize("path", ["/redirect-to-metadata", "/redirect-to-internal-name"])
def test_redirect_to_a_non_public_address_is_rejected(site, path, only_loopback_network):
    error = fetch_error(loopback_fetcher(), site.base + path)

    assert error.code == "url_not_allowed"
    # Only the first hop (the allowed test server) was ever connected to.
    assert [address[0] for address in only_loopback_network] == ["127.0.0.1"]


def test_redirect_to_another_scheme_is_rejected(site):
    error = fetch_error(loopback_fetcher(), site.base + "/redirect-to-file")

    assert error.code == "url_not_allowed"


def test_redirects_are_bounded(site):
    error = fetch_error(loopback_fetcher(), site.base + "/loop")

    assert error.code == "url_fetch_failed"
    assert error.message == "The URL redirected more than 3 times."
    assert len(site.hits) == 4


@pytest.mark.parametrize(
    "path,code,message_part",
    [
        ("/page.html", "url_fetch_failed", "did not return an image (content type text/html)"),
        ("/missing.jpg", "url_fetch_failed", "answered HTTP 404"),
        ("/declared-big.jpg", "payload_too_large", "over the limit of 10000 bytes"),
        ("/chunked-big.jpg", "payload_too_large", "over the limit of 10000 bytes"),
    ],
)
def test_bad_answers(site, path, code, message_part):
    error = fetch_error(loopback_fetcher(), site.base + path)

    assert error.code == code
    assert message_part in error.message


def test_the_whole_fetch_has_a_deadline(site):
    started = time.monotonic()
    error = fetch_error(loopback_fetcher(timeout=0.5), site.base + "/slow.jpg")

    assert error.code == "url_fetch_failed"
    assert "did not answer within 0.5 s" in error.message
    assert time.monotonic() - started < 2.5  # gave up long before the server's 3 s stall ended


def test_a_name_is_connected_to_at_the_address_that_was_checked(site, tiny_images, only_loopback_network):
    # The resolver is asked once; the connection goes to that answer with the name in the Host header.
    resolver = resolver_for({"images.example.test": ["127.0.0.1"]})
    url = f"http://images.example.test:{site.server.server_address[1]}/dog.jpg"

    fetched = loopback_fetcher(resolver=resolver).fetch(url)

    assert fetched.data == tiny_images["jpg"]
    assert resolver.calls == ["images.example.test"]
    assert [address[0] for address in only_loopback_network] == ["127.0.0.1"]


def test_loopback_is_rejected_unless_the_policy_allows_it(site):
    strict = UrlFetcher(UrlPolicy(max_bytes=10_000, allow_http=True, allowed_ports=None))

    error = fetch_error(strict, site.base + "/dog.jpg")

    assert error.code == "url_not_allowed"
    assert site.hits == []


# -- through the handler ----------------------------------------------------------------------------


def test_handler_rejects_the_fixture_url_that_resolves_to_a_private_address(invoke, event, monkeypatch, lambda_logs):
    app_module = sys.modules["inference_lambda.app"]
    policy = app_module.url_fetcher.policy
    monkeypatch.setattr(
        app_module, "url_fetcher", UrlFetcher(policy, resolver=resolver_for({"images.example.test": ["10.0.0.8"]}))
    )

    status, _, body = invoke(event("predict_url.json"))

    assert status == 400
    assert body["error"]["code"] == "url_not_allowed"
    assert "sig=secret" not in json.dumps(lambda_logs())


def test_handler_rejects_http_urls_by_default(invoke):
    from lambda_test_support import json_event

    status, _, body = invoke(json_event({"url": "http://images.example.test/dog.jpg"}))

    assert status == 400
    assert body["error"] == {"code": "url_not_allowed", "message": "Only https URLs are accepted."}


def test_handler_classifies_an_image_fetched_from_a_url(invoke, stub, site, tiny_images, monkeypatch, lambda_logs):
    import base64

    from lambda_test_support import json_event

    app_module = sys.modules["inference_lambda.app"]
    monkeypatch.setattr(app_module, "url_fetcher", loopback_fetcher())
    answer = {
        "predictions": [{"breed": "Beagle", "probability": 0.7, "class_id": 15}],
        "is_dog": None,
        "dog_probability": None,
        "model": {"name": "m", "version": "v"},
    }
    expected_body = json.dumps(
        {"image": base64.b64encode(tiny_images["jpg"]).decode(), "top_k": 1}, separators=(",", ":")
    )
    stub.add_response(
        "invoke_endpoint",
        endpoint_response(answer),
        {
            "EndpointName": "test-dogbreed",
            "Body": expected_body.encode(),
            "ContentType": "application/json",
            "Accept": "application/json",
        },
    )

    status, _, body = invoke(json_event({"url": site.base + "/redirect-to-dog?token=hush", "top_k": 1}))

    assert status == 200
    assert body["predictions"] == answer["predictions"]
    fetched_logs = [line for line in lambda_logs() if line["message"] == "Fetched image URL"]
    assert fetched_logs[0]["url_host"] == "127.0.0.1" and fetched_logs[0]["redirects"] == 1
    assert "hush" not in json.dumps(lambda_logs())


def test_handler_rejects_a_fetched_body_that_is_not_an_image(invoke, site, monkeypatch):
    from lambda_test_support import json_event

    app_module = sys.modules["inference_lambda.app"]
    monkeypatch.setattr(app_module, "url_fetcher", loopback_fetcher())
    site.jpeg = b"GIF89a" + b"\0" * 50

    status, _, body = invoke(json_event({"url": site.base + "/dog.jpg"}))

    assert status == 400
    assert body["error"] == {
        "code": "invalid_image",
        "message": "The image at the URL is not a JPEG, PNG or WebP image.",
    }


def test_fixture_event_is_untouched(event):
    assert json.loads(load_event("predict_url.json")["body"])["url"].startswith("https://images.example.test/")


# -- https: the checked address is dialled, the certificate is verified against the name --------------------


def make_tls_material(tmp_path, server_name: str):
    import datetime

    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    now = datetime.datetime.now(datetime.UTC)
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "test CA")])
    ca = (
        x509.CertificateBuilder()
        .subject_name(ca_name)
        .issuer_name(ca_name)
        .public_key(ca_key.public_key())
        .serial_number(1)
        .not_valid_before(now - datetime.timedelta(days=1))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(ca_key, hashes.SHA256())
    )
    key = ec.generate_private_key(ec.SECP256R1())
    leaf = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, server_name)]))
        .issuer_name(ca_name)
        .public_key(key.public_key())
        .serial_number(2)
        .not_valid_before(now - datetime.timedelta(days=1))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(x509.SubjectAlternativeName([x509.DNSName(server_name)]), critical=False)
        .sign(ca_key, hashes.SHA256())
    )
    cert_file, key_file, ca_file = tmp_path / "leaf.pem", tmp_path / "leaf.key", tmp_path / "ca.pem"
    cert_file.write_bytes(leaf.public_bytes(serialization.Encoding.PEM))
    key_file.write_bytes(
        key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    )
    ca_file.write_bytes(ca.public_bytes(serialization.Encoding.PEM))
    return cert_file, key_file, ca_file


@pytest.mark.parametrize("certificate_name,ok", [("images.example.test", True), ("other.example.test", False)])
def test_https_fetch_dials_the_checked_address_and_verifies_the_name(
    tmp_path, tiny_images, certificate_name, ok, only_loopback_network
):
    import ssl

    cert_file, key_file, ca_file = make_tls_material(tmp_path, certificate_name)
    server_names: list[str] = []
    server_context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    server_context.load_cert_chain(cert_file, key_file)
    server_context.sni_callback = lambda sock, name, ctx: server_names.append(name)
    with ImageSite(tiny_images["jpg"]) as site:
        site.server.socket = server_context.wrap_socket(site.server.socket, server_side=True)
        fetcher = UrlFetcher(
            UrlPolicy(max_bytes=10_000, allowed_ports=None, allowed_private_networks=LOOPBACK_ONLY),
            resolver=resolver_for({"images.example.test": ["127.0.0.1"]}),
            ssl_context=ssl.create_default_context(cafile=str(ca_file)),
        )
        url = f"https://images.example.test:{site.server.server_address[1]}/dog.jpg"
        if ok:
            assert fetcher.fetch(url).data == tiny_images["jpg"]
        else:
            error = fetch_error(fetcher, url)
            assert error.code == "url_fetch_failed"
            assert error.message == "The URL's TLS certificate could not be verified."
    assert server_names == ["images.example.test"]
    assert [address[0] for address in only_loopback_network] == ["127.0.0.1"]
