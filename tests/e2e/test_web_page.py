"""The web page at GET /, driven in a real headless Chromium against the local stack (Debian's chromium, via
Playwright; scripts/ensure_chromium.py installs it in tox's set-up). Real photos come from
../shared/data/dog-photos when present; the cases that need none run with generated images either way."""

from __future__ import annotations

import base64
import io
import json
import os
import shutil
import socket
import subprocess
import urllib.error
import urllib.request
from pathlib import Path

import pytest
from conftest import PHOTOS, REPO, free_port, service_bin

CHROMIUM = os.environ.get("CHROMIUM_BIN", "/usr/bin/chromium")
# The closed network would otherwise fill the logs with refused connections.
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync"]
DOCS_SCREENSHOT = REPO / "docs" / "web-page.png"
DOG = PHOTOS / "udacity-samples" / "Labrador_retriever_06455.jpg"
DOG_2 = PHOTOS / "udacity-samples" / "Brittany_02625.jpg"
CAT = PHOTOS / "mixed-pets" / "cat_01.jpg"
API_KEY = "local-test-key-5b1e"
WAIT_MS = 60_000  # generous: two shared cores; never a timing assertion, only how long to wait for a result

sync_api = pytest.importorskip("playwright.sync_api", reason="playwright is not installed (tox env `stack` has it)")


def need_photo(*paths: Path) -> None:
    missing = [p for p in paths if not p.is_file()]
    if missing:
        pytest.skip(f"real photo {missing[0]} not found (set DOG_PHOTOS_DIR); the generated-image cases still run")


@pytest.fixture(scope="session")
def browser():
    if not Path(CHROMIUM).exists():
        message = f"{CHROMIUM} not found: scripts/ensure_chromium.py could not install Debian's chromium here"
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail(message, pytrace=False)
        pytest.skip(message)
    with sync_api.sync_playwright() as playwright:
        # launch() gives every run a fresh temporary profile (its own --user-data-dir).
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield browser
        browser.close()


@pytest.fixture
def open_page(browser):
    """open_page(url, **context options) -> a loaded page; fails the test on console errors (CSP violations)."""
    contexts, errors = [], []

    def open_(url: str, **options):
        context = browser.new_context(**{"viewport": {"width": 900, "height": 900}, **options})
        contexts.append(context)
        page = context.new_page()
        page.set_default_timeout(WAIT_MS)
        page.on("console", lambda message: message.type == "error" and errors.append(message.text))
        page.on("pageerror", lambda error: errors.append(str(error)))
        response = page.goto(url)
        assert response is not None and response.status == 200
        assert response.headers["content-type"].startswith("text/html")
        page.wait_for_selector("html[data-ready=true]", state="attached")  # the inline script ran under the CSP
        return page

    yield open_
    for context in contexts:
        context.close()
    # Failed uploads log nothing; only a blocked script/style or a JS exception lands here.
    assert [e for e in errors if "Failed to load resource" not in e] == []


def predict_requests(page) -> list:
    sent = []
    page.on("request", lambda request: request.method == "POST" and request.url.endswith("/predict") and sent.append(request))
    return sent


def cards(page):
    return page.locator("#results .card")


def wait_done(page, count: int) -> None:
    page.wait_for_function(
        "n => { const c = document.querySelectorAll('#results .card'); return c.length === n && "
        "[...c].every(e => !e.classList.contains('busy')); }",
        arg=count,
    )


def breeds_of(card) -> list[str]:
    return [name.lower() for name in card.locator(".breed-name").all_inner_texts()]


def png_bytes(size=(320, 240), colour=(200, 120, 40)) -> bytes:
    from PIL import Image

    buffer = io.BytesIO()
    Image.new("RGB", size, colour).save(buffer, format="PNG")
    return buffer.getvalue()


def file_payload(name: str, data: bytes, mime: str) -> dict:
    return {"name": name, "mimeType": mime, "buffer": data}


def api_error(url: str, data: bytes) -> dict:
    """What the API itself answers for one image in JSON, to compare with what the page shows."""
    body = json.dumps({"image": base64.b64encode(data).decode()}).encode()
    request = urllib.request.Request(url, data=body, headers={"Content-Type": "application/json"}, method="POST")
    with pytest.raises(urllib.error.HTTPError) as caught:
        urllib.request.urlopen(request, timeout=60)
    return json.loads(caught.value.read())["error"]


def start_front(endpoint_url: str, *extra: str, env: dict | None = None) -> tuple[subprocess.Popen, str]:
    """Another dogapi-local from the lambda env; returns the process and its page URL once it serves."""
    port = free_port()
    process = subprocess.Popen([str(service_bin("lambda", "dogapi-local")), "--port", str(port), "--workers", "1",
                                "--endpoint-url", endpoint_url, *extra], stderr=subprocess.PIPE, text=True,
                               env={**os.environ, **(env or {})})
    for line in process.stderr:
        if "dogapi-local: serving" in line:
            break
    else:
        raise AssertionError(f"dogapi-local exited with {process.wait()} before serving")
    return process, f"http://127.0.0.1:{port}"


def stop_front(process: subprocess.Popen) -> None:
    process.terminate()
    process.wait(timeout=30)
    process.stderr.close()


# -- classification -------------------------------------------------------------------------------------


def test_a_dog_photo_shows_its_breed_with_bars_and_the_model(stack, open_page, tmp_path):
    need_photo(DOG)
    page = open_page(stack["api_url"] + "/")
    page.get_by_label("Choose photos").set_input_files(str(DOG))
    wait_done(page, 1)

    card = cards(page).first
    assert card.locator(".status").inner_text() == "Classified."
    assert "labrador retriever" in breeds_of(card)
    assert card.locator(".verdict").inner_text().startswith("A dog")
    width = card.locator(".fill").first.evaluate("e => e.getBoundingClientRect().width")
    assert width > 0
    assert card.locator(".model").inner_text().startswith("Model: efficientnet_lite0")
    assert card.get_by_role("button", name="Retry").is_hidden()  # nothing to retry after a success
    assert page.get_by_role("button", name="Forget API key").is_hidden()  # no key was needed or saved
    page.screenshot(path=tmp_path / "dog.png", full_page=True)


def test_a_cat_gets_the_not_a_dog_answer(stack, open_page, tmp_path):
    need_photo(CAT)
    page = open_page(stack["api_url"] + "/")
    page.get_by_label("Choose photos").set_input_files(str(CAT))
    wait_done(page, 1)

    verdict = cards(page).first.locator(".verdict")
    assert verdict.is_visible() and "not-dog" in verdict.get_attribute("class")
    assert verdict.inner_text().startswith("This does not look like a dog (dog probability ")
    page.screenshot(path=tmp_path / "cat.png", full_page=True)


def test_generated_images_by_drop_and_paste(stack, open_page, tmp_path):
    page = open_page(stack["api_url"] + "/")
    sent = predict_requests(page)
    data = base64.b64encode(png_bytes()).decode()
    # Real drop and paste events carrying a File, as the browser fires them for a user.
    page.evaluate(
        """data => {
            const file = (name) => new File([Uint8Array.from(atob(data), c => c.charCodeAt(0))], name, {type: 'image/png'});
            const dropped = new DataTransfer(); dropped.items.add(file('dropped.png'));
            document.getElementById('drop').dispatchEvent(new DragEvent('drop', {dataTransfer: dropped, bubbles: true, cancelable: true}));
            const pasted = new DataTransfer(); pasted.items.add(file('pasted.png'));
            document.dispatchEvent(new ClipboardEvent('paste', {clipboardData: pasted, bubbles: true, cancelable: true}));
        }""",
        data,
    )
    wait_done(page, 2)

    for card in cards(page).all():
        assert card.locator(".status").inner_text() == "Classified."
        assert card.locator(".breed").count() == 5 and card.locator(".bar").count() == 5
    assert sorted(cards(page).locator(".name").all_inner_texts()) == ["dropped.png", "pasted.png"]
    assert len(sent) == 2
    page.screenshot(path=tmp_path / "generated.png", full_page=True)


def test_a_batch_of_three_is_one_request(stack, open_page, tmp_path):
    page = open_page(stack["api_url"] + "/")
    sent = predict_requests(page)
    real = DOG.is_file() and DOG_2.is_file() and CAT.is_file()
    if real:
        files = [str(DOG), str(DOG_2), str(CAT)]
    else:
        files = [file_payload(f"generated_{i}.png", png_bytes(colour=c), "image/png")
                 for i, c in enumerate([(200, 120, 40), (30, 30, 30), (240, 240, 230)])]
    page.get_by_label("Choose photos").set_input_files(files)
    wait_done(page, 3)

    assert len(sent) == 1
    assert len(json.loads(sent[0].post_data)["images"]) == 3
    statuses = cards(page).locator(".status").all_inner_texts()
    assert statuses == ["Classified."] * 3
    if real:
        assert "labrador retriever" in breeds_of(cards(page).nth(0))
        assert "brittany" in breeds_of(cards(page).nth(1))
        assert "not-dog" in cards(page).nth(2).locator(".verdict").get_attribute("class")
        page.wait_for_function("[...document.images].every(i => i.complete)")
        page.screenshot(path=tmp_path / "batch.png", full_page=True)
        # The README's screenshot, made here rather than by hand (only from the real photos).
        shutil.copyfile(tmp_path / "batch.png", DOCS_SCREENSHOT)


# -- errors and limits ----------------------------------------------------------------------------------


def test_a_text_file_shows_the_apis_message(stack, open_page, tmp_path):
    text = b"This is not a photo of a dog.\n"
    expected = api_error(stack["api_url"] + "/predict", text)
    page = open_page(stack["api_url"] + "/")
    page.get_by_label("Choose photos").set_input_files(file_payload("notes.txt", text, "text/plain"))
    wait_done(page, 1)

    card = cards(page).first
    assert expected["code"] == "invalid_image"
    assert card.locator(".status").inner_text() == expected["message"]
    assert "error" in card.get_attribute("class")
    assert card.get_by_role("button", name="Retry").is_hidden()  # the same file would fail again
    page.screenshot(path=tmp_path / "text-file.png", full_page=True)


def test_a_7_mb_file_the_browser_cannot_read_is_refused_with_a_message(stack, open_page, tmp_path):
    page = open_page(stack["api_url"] + "/")
    sent = predict_requests(page)
    junk = b"\xff\xd8\xff" + os.urandom(7 * 1000 * 1000)  # a JPEG's magic bytes, then noise: undecodable
    page.get_by_label("Choose photos").set_input_files(file_payload("huge.jpg", junk, "image/jpeg"))
    wait_done(page, 1)

    status = cards(page).first.locator(".status").inner_text()
    assert status.startswith("This file is 6.7 MiB and the browser cannot read it as an image to shrink it")
    assert "up to 4.0 MiB" in status
    assert sent == []  # refused before upload: the gateway would only say the request is too large
    page.screenshot(path=tmp_path / "7mb.png", full_page=True)


def test_a_large_photo_is_shrunk_in_the_browser_before_upload(stack, open_page, tmp_path):
    from PIL import Image

    # A 12-megapixel JPEG over 7 MB, like a phone's: a real dog with sensor-like noise (which JPEG cannot
    # compress away), or noise alone without the photos.
    noise = Image.frombytes("RGB", (4000, 3000), os.urandom(4000 * 3000 * 3))
    big = Image.blend(Image.open(DOG).convert("RGB").resize(noise.size), noise, 0.25) if DOG.is_file() else noise
    path = tmp_path / "big.jpg"
    big.save(path, quality=95)
    assert path.stat().st_size > 7 * 1000 * 1000
    page = open_page(stack["api_url"] + "/")
    sent = predict_requests(page)
    page.get_by_label("Choose photos").set_input_files(str(path))
    wait_done(page, 1)

    assert cards(page).first.locator(".status").inner_text() == "Classified."
    uploaded = base64.b64decode(json.loads(sent[0].post_data)["image"])
    assert uploaded[:3] == b"\xff\xd8\xff" and len(uploaded) < 4 * 1024 * 1024
    assert max(Image.open(io.BytesIO(uploaded)).size) == 1024
    if DOG.is_file():
        assert "labrador retriever" in breeds_of(cards(page).first)


def test_an_unavailable_api_shows_a_clear_state_and_a_retry(stack, open_page, tmp_path):
    closed = f"http://127.0.0.1:{free_port()}"  # nothing listens there: the endpoint is down
    process, url = start_front(closed)
    try:
        page = open_page(url + "/")
        sent = predict_requests(page)
        page.get_by_label("Choose photos").set_input_files(file_payload("dog.png", png_bytes(), "image/png"))
        wait_done(page, 1)
        card = cards(page).first
        expected = api_error(url + "/predict", png_bytes())
        assert expected["code"] == "endpoint_unavailable"
        assert card.locator(".status").inner_text() == expected["message"]
        retry = card.get_by_role("button", name="Retry")
        assert retry.is_visible()

        stop_front(process)  # now the API itself is gone
        retry.click()
        page.wait_for_function("() => document.querySelector('#results .status').textContent.startsWith('Could not')")
        assert card.locator(".status").inner_text() == "Could not reach the API: check your connection and retry."
        assert retry.is_visible() and len(sent) == 2
        page.screenshot(path=tmp_path / "unavailable.png", full_page=True)
    finally:
        if process.poll() is None:
            stop_front(process)


def test_a_slow_endpoint_shows_progress_then_its_timeout_with_a_retry(stack, open_page, tmp_path):
    # An endpoint that accepts connections and never answers; the function gives up after its read timeout.
    with socket.socket() as silent:
        silent.bind(("127.0.0.1", 0))
        silent.listen(8)
        process, url = start_front(f"http://127.0.0.1:{silent.getsockname()[1]}", env={"ENDPOINT_TIMEOUT_SECONDS": "3"})
        try:
            page = open_page(url + "/")
            page.get_by_label("Choose photos").set_input_files(file_payload("dog.png", png_bytes(), "image/png"))
            card = cards(page).first
            # While waiting the card says so (the status is set before the request leaves the browser).
            page.wait_for_function("() => document.querySelector('#results .status').textContent === 'Classifying…'")
            assert "busy" in card.get_attribute("class")
            wait_done(page, 1)
            expected = api_error(url + "/predict", png_bytes())
            assert expected["code"] == "endpoint_timeout"
            assert card.locator(".status").inner_text() == expected["message"]
            assert card.get_by_role("button", name="Retry").is_visible()
            page.screenshot(path=tmp_path / "slow.png", full_page=True)
        finally:
            stop_front(process)


# -- the API key and the stage path ---------------------------------------------------------------------


def test_the_page_asks_for_the_api_key_once_and_keeps_it(stack, open_page, tmp_path):
    process, url = start_front(stack["endpoint_url"], "--api-key", API_KEY, "--base-path", "/prod")
    try:
        stage_root = url + "/prod"  # as API Gateway's invoke URL: the stage, no trailing slash
        page = open_page(stage_root)
        assert API_KEY not in page.content()
        sent = predict_requests(page)
        photo = file_payload("dog.png", png_bytes(), "image/png")
        page.get_by_label("Choose photos").set_input_files(photo)
        form = page.locator("#key-form")
        form.wait_for(state="visible")
        assert "The x-api-key header is missing or not a valid key for this API." in form.inner_text()
        assert sent[0].url == stage_root + "/predict"
        page.screenshot(path=tmp_path / "key-prompt.png", full_page=True)

        page.get_by_label("API key").fill("not-the-key")
        page.get_by_role("button", name="Save key and retry").click()
        page.wait_for_function("() => document.getElementById('key-message').textContent.includes('not accepted')")
        assert form.is_visible()

        page.get_by_label("API key").fill(API_KEY)
        page.get_by_role("button", name="Save key and retry").click()
        wait_done(page, 1)
        page.wait_for_function("() => document.querySelector('#results .status').textContent === 'Classified.'")
        assert form.is_hidden()
        assert sent[-1].headers["x-api-key"] == API_KEY
        assert page.evaluate("localStorage.getItem('dogbreed-api-key')") == API_KEY

        page.reload()  # the key is remembered: no prompt the second time
        page.wait_for_selector("html[data-ready=true]", state="attached")
        page.get_by_label("Choose photos").set_input_files(photo)
        wait_done(page, 1)
        assert cards(page).first.locator(".status").inner_text() == "Classified."
        assert form.is_hidden()
        page.get_by_role("button", name="Forget API key").click()
        assert page.evaluate("localStorage.getItem('dogbreed-api-key')") is None
    finally:
        stop_front(process)


# -- phone, keyboard, headers ---------------------------------------------------------------------------


def test_readable_on_a_phone_and_usable_by_keyboard(stack, open_page, tmp_path):
    page = open_page(stack["api_url"] + "/", viewport={"width": 390, "height": 844}, is_mobile=True, has_touch=True)
    page.get_by_label("Choose photos").set_input_files(file_payload("dog.png", png_bytes(), "image/png"))
    wait_done(page, 1)

    assert page.evaluate("document.documentElement.scrollWidth") <= 390  # no sideways scrolling
    assert page.evaluate("parseFloat(getComputedStyle(document.body).fontSize)") >= 16
    camera = page.get_by_label("Take a photo")
    assert camera.get_attribute("capture") == "environment" and camera.get_attribute("accept") == "image/*"
    page.keyboard.press("Tab")  # the first stop is the (visually hidden) file chooser, shown on its label
    assert page.evaluate("document.activeElement.id") == "files"
    outline = page.evaluate("getComputedStyle(document.querySelector('label[for=files]')).outlineStyle")
    assert outline == "solid"
    page.screenshot(path=tmp_path / "phone.png", full_page=True)


CONTRAST_JS = """selectors => selectors.map(selector => {
    const rgb = s => s.match(/[\\d.]+/g).map(Number);
    const luminance = ([r, g, b]) => [r, g, b].map(v => v / 255)
        .map(v => v <= 0.03928 ? v / 12.92 : ((v + 0.055) / 1.055) ** 2.4)
        .reduce((sum, v, i) => sum + v * [0.2126, 0.7152, 0.0722][i], 0);
    const element = document.querySelector(selector);
    let background = element;
    while (background && rgb(getComputedStyle(background).backgroundColor)[3] === 0) background = background.parentElement;
    const [fg, bg] = [getComputedStyle(element).color, background ? getComputedStyle(background).backgroundColor : 'rgb(255, 255, 255)'];
    const [a, b] = [luminance(rgb(fg)), luminance(rgb(bg))].sort((x, y) => y - x);
    return [selector, (a + 0.05) / (b + 0.05)];
})"""


def test_text_and_controls_have_enough_contrast(stack, open_page):
    page = open_page(stack["api_url"] + "/")
    page.get_by_label("Choose photos").set_input_files(file_payload("notes.txt", b"not a photo", "text/plain"))
    wait_done(page, 1)
    selectors = ["h1", ".lead", ".hint", "label[for=files]", "label[for=camera]", "#clear", ".card .name",
                 ".card.error .status", "footer"]
    ratios = dict(page.evaluate(CONTRAST_JS, selectors))
    assert all(ratio >= 4.5 for ratio in ratios.values()), ratios  # WCAG AA for normal text


def test_the_page_is_served_with_its_security_headers(stack):
    with urllib.request.urlopen(stack["api_url"] + "/", timeout=30) as response:
        headers = response.headers
    csp = headers["Content-Security-Policy"]
    assert "default-src 'none'" in csp and "connect-src 'self'" in csp and "unsafe-inline" not in csp
    assert headers["X-Content-Type-Options"] == "nosniff" and headers["X-Frame-Options"] == "DENY"
    assert headers["Referrer-Policy"] == "no-referrer"
