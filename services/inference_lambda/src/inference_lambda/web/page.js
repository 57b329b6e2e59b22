'use strict';
(() => {
  // The API's limits (services/inference_lambda/README.md) and dogclient's resizing.
  const MAX_SIDE = 1024;
  const JPEG_QUALITY = 0.9;
  const MAX_IMAGE_BYTES = 4 * 1024 * 1024;
  const MAX_BATCH_IMAGES = 8;
  // Keeps a batch's JSON well under Lambda's 6 MB event and SageMaker's 6 MB request limits.
  const MAX_BATCH_BASE64 = 4.5 * 1024 * 1024;
  // API Gateway gives up after 29 s; wait a little longer so its own answer arrives first.
  const TIMEOUT_MS = 35000;
  const TOP_K = 5;
  const KEY_STORAGE = 'dogbreed-api-key';

  // The page is the stage root: "/" locally, "/prod" or "/prod/" on API Gateway. Resolve predict
  // against a base that ends in "/", so the stage prefix is kept either way.
  const base = new URL(location.href);
  base.search = '';
  base.hash = '';
  if (!base.pathname.endsWith('/')) base.pathname += '/';
  const PREDICT_URL = new URL('predict', base).href;

  const $ = (id) => document.getElementById(id);
  const results = $('results');
  const keyForm = $('key-form');
  const waitingForKey = [];

  class Problem extends Error {
    constructor(message, { retry = false, needsKey = false } = {}) {
      super(message);
      this.retry = retry;
      this.needsKey = needsKey;
    }
  }

  // localStorage throws in some private modes: the key then lives only as long as the page.
  let memoryKey = '';
  function loadKey() {
    try { return localStorage.getItem(KEY_STORAGE) || memoryKey; } catch { return memoryKey; }
  }
  function saveKey(key) {
    memoryKey = key;
    try { key ? localStorage.setItem(KEY_STORAGE, key) : localStorage.removeItem(KEY_STORAGE); } catch { /* memory only */ }
    $('forget-key').hidden = !key;
  }

  function formatBytes(n) { return `${(n / (1024 * 1024)).toFixed(1)} MiB`; } // as dogclient and the API docs
  function percent(p) { return `${(p * 100).toFixed(1)}%`; }

  function toBase64(blob) {
    return new Promise((resolve, reject) => {
      const reader = new FileReader();
      reader.onload = () => resolve(String(reader.result).slice(String(reader.result).indexOf(',') + 1));
      reader.onerror = () => reject(new Problem('The browser could not read this file.'));
      reader.readAsDataURL(blob);
    });
  }

  function canvasToJpeg(canvas) {
    return new Promise((resolve) => canvas.toBlob(resolve, 'image/jpeg', JPEG_QUALITY));
  }

  // Like dogclient: every image the browser can decode is turned upright (EXIF), shrunk to MAX_SIDE and
  // re-encoded as JPEG, so a 12-megapixel phone photo becomes a few hundred KB. A file the browser cannot
  // decode is sent as it is when it fits, so the API says what is wrong with it; one too large to send is
  // refused here, since the gateway would only answer that the request is too large.
  async function prepare(file) {
    let bitmap = null;
    try { bitmap = await createImageBitmap(file, { imageOrientation: 'from-image' }); } catch { bitmap = null; }
    if (bitmap) {
      const scale = Math.min(1, MAX_SIDE / Math.max(bitmap.width, bitmap.height));
      const canvas = document.createElement('canvas');
      canvas.width = Math.max(1, Math.round(bitmap.width * scale));
      canvas.height = Math.max(1, Math.round(bitmap.height * scale));
      const context = canvas.getContext('2d');
      context.fillStyle = '#fff'; // JPEG has no alpha: transparent pixels become white, as viewers show them
      context.fillRect(0, 0, canvas.width, canvas.height);
      context.drawImage(bitmap, 0, 0, canvas.width, canvas.height);
      bitmap.close();
      const jpeg = await canvasToJpeg(canvas);
      if (jpeg && jpeg.size <= MAX_IMAGE_BYTES) return jpeg;
    }
    if (file.size === 0) throw new Problem('This file is empty.');
    if (file.size > MAX_IMAGE_BYTES) {
      throw new Problem(`This file is ${formatBytes(file.size)} and the browser cannot read it as an image to shrink it; ` +
        `the API accepts images up to ${formatBytes(MAX_IMAGE_BYTES)}. Choose a JPEG, PNG or WebP photo.`);
    }
    return file;
  }

  function messageForStatus(status) {
    if (status === 403) return 'The API refused access (HTTP 403).';
    if (status === 413) return 'The request is too large for the API (HTTP 413).';
    if (status === 429) return 'The API is busy: too many requests. Wait a moment and retry (HTTP 429).';
    if (status >= 500) return `The API is not available right now. Retry in a moment (HTTP ${status}).`;
    return `The API could not handle this request (HTTP ${status}).`;
  }

  async function callApi(body) {
    const headers = { 'Content-Type': 'application/json', Accept: 'application/json' };
    const key = loadKey();
    if (key) headers['x-api-key'] = key;
    const controller = new AbortController();
    const timer = setTimeout(() => controller.abort(), TIMEOUT_MS);
    let response;
    let data = null;
    try {
      response = await fetch(PREDICT_URL, {
        method: 'POST', headers, body: JSON.stringify(body), signal: controller.signal,
        credentials: 'omit', cache: 'no-store',
      });
      try { data = await response.json(); } catch { data = null; }
    } catch {
      throw new Problem(controller.signal.aborted
        ? `The API did not answer within ${TIMEOUT_MS / 1000} s. Retry, or try again later.`
        : 'Could not reach the API: check your connection and retry.', { retry: true });
    } finally {
      clearTimeout(timer);
    }
    if (response.ok && data && typeof data === 'object') return data;
    const error = data && data.error;
    const message = error && typeof error.message === 'string' ? error.message : messageForStatus(response.status);
    const retry = response.status === 429 || response.status >= 500;
    throw new Problem(message, { retry, needsKey: response.status === 403 && (!error || error.code === 'forbidden') });
  }

  function setStatus(card, text, state) {
    card.el.classList.remove('busy', 'error', 'done');
    if (state) card.el.classList.add(state);
    card.status.textContent = text;
  }

  function newCard(file) {
    const el = $('card-template').content.firstElementChild.cloneNode(true);
    const card = { el, file, status: el.querySelector('.status') };
    el.querySelector('.name').textContent = file.name || 'Pasted image';
    const img = el.querySelector('.preview');
    card.previewUrl = URL.createObjectURL(file);
    img.alt = `Preview of ${file.name || 'the pasted image'}`;
    img.addEventListener('error', () => { img.hidden = true; });
    img.src = card.previewUrl;
    el.querySelector('.retry').addEventListener('click', () => {
      if (card.job) run(card.job);
    });
    results.append(el);
    $('empty').hidden = true;
    $('clear').hidden = false;
    return card;
  }

  function showResult(card, result, model) {
    setStatus(card, 'Classified.', 'done');
    const verdict = card.el.querySelector('.verdict');
    verdict.classList.remove('not-dog');
    if (result.is_dog === false) {
      verdict.textContent = `This does not look like a dog (dog probability ${percent(result.dog_probability ?? 0)}). ` +
        'The breeds below are only the closest guesses.';
      verdict.classList.add('not-dog');
      verdict.hidden = false;
    } else if (result.is_dog === true) {
      verdict.textContent = `A dog (dog probability ${percent(result.dog_probability ?? 1)}).`;
      verdict.hidden = false;
    } else {
      verdict.hidden = true; // a model trained only on breeds cannot tell
    }
    const list = card.el.querySelector('.breeds');
    list.replaceChildren();
    for (const prediction of result.predictions || []) {
      const item = document.createElement('li');
      item.className = 'breed';
      const name = document.createElement('span');
      name.className = 'breed-name';
      name.textContent = prediction.breed;
      const pct = document.createElement('span');
      pct.className = 'pct';
      pct.textContent = percent(prediction.probability);
      const bar = document.createElement('div');
      bar.className = 'bar';
      bar.setAttribute('aria-hidden', 'true'); // the percentage beside it says the same
      const fill = document.createElement('div');
      fill.className = 'fill';
      fill.style.width = `${Math.max(0, Math.min(1, prediction.probability)) * 100}%`; // CSSOM: allowed by the CSP
      bar.append(fill);
      item.append(name, pct, bar);
      list.append(item);
    }
    list.hidden = false;
    const modelLine = card.el.querySelector('.model');
    if (model) {
      modelLine.textContent = `Model: ${model.name}, version ${model.version}`;
      modelLine.hidden = false;
    }
  }

  function showProblem(card, problem) {
    setStatus(card, problem.message, 'error');
    card.el.querySelector('.retry').hidden = !problem.retry;
  }

  function askForKey(problem) {
    $('key-message').textContent = loadKey()
      ? `${problem.message} The saved key was not accepted: enter the right one.`
      : `${problem.message} Enter the API key you were given.`;
    keyForm.hidden = false;
    $('api-key').focus();
  }

  async function run(job) {
    for (const card of job.cards) {
      card.el.querySelector('.retry').hidden = true;
      setStatus(card, 'Classifying…', 'busy');
    }
    const body = job.images.length === 1
      ? { image: job.images[0], top_k: TOP_K }
      : { images: job.images, top_k: TOP_K };
    try {
      const data = await callApi(body);
      if (job.images.length === 1) {
        showResult(job.cards[0], data, data.model);
      } else {
        job.cards.forEach((card, i) => {
          const result = (data.results || [])[i] || {};
          // Should a batch ever answer per-image errors, show each one's message on its own card.
          if (result.error) showProblem(card, new Problem(result.error.message || 'The API could not classify this photo.'));
          else showResult(card, result, data.model);
        });
      }
    } catch (problem) {
      const known = problem instanceof Problem ? problem : new Problem('Something went wrong in the page.', { retry: true });
      if (known.needsKey) {
        waitingForKey.push(job);
        for (const card of job.cards) setStatus(card, `${known.message} Waiting for an API key.`, 'error');
        askForKey(known);
      } else {
        for (const card of job.cards) showProblem(card, known);
      }
    }
  }

  async function handleFiles(fileList) {
    const files = Array.from(fileList || []);
    if (!files.length) return;
    const ready = [];
    for (const file of files) {
      const card = newCard(file);
      setStatus(card, 'Preparing…', 'busy');
      try {
        const prepared = await prepare(file);
        ready.push({ card, image: await toBase64(prepared) });
      } catch (problem) {
        showProblem(card, problem instanceof Problem ? problem : new Problem('The browser could not read this file.'));
      }
    }
    // Several photos share one batch request, split where the API's limits need it.
    const jobs = [];
    let job = null;
    let size = 0;
    for (const item of ready) {
      if (!job || job.images.length >= MAX_BATCH_IMAGES || size + item.image.length > MAX_BATCH_BASE64) {
        job = { cards: [], images: [] };
        jobs.push(job);
        size = 0;
      }
      job.cards.push(item.card);
      job.images.push(item.image);
      item.card.job = job;
      size += item.image.length;
    }
    await Promise.all(jobs.map(run));
  }

  // -- inputs: file choosers, drag and drop, paste ------------------------------------------------------
  for (const id of ['files', 'camera']) {
    $(id).addEventListener('change', (event) => {
      handleFiles(event.target.files);
      event.target.value = ''; // choosing the same photo again fires change again
    });
  }
  const drop = $('drop');
  drop.addEventListener('dragover', (event) => { event.preventDefault(); drop.classList.add('dragging'); });
  drop.addEventListener('dragleave', () => drop.classList.remove('dragging'));
  drop.addEventListener('drop', (event) => {
    event.preventDefault();
    drop.classList.remove('dragging');
    handleFiles(event.dataTransfer && event.dataTransfer.files);
  });
  // A photo dropped beside the zone would otherwise replace the page with the photo.
  window.addEventListener('dragover', (event) => event.preventDefault());
  window.addEventListener('drop', (event) => event.preventDefault());
  document.addEventListener('paste', (event) => {
    if (event.target === $('api-key')) return;
    const files = Array.from((event.clipboardData && event.clipboardData.files) || []);
    if (files.length) { event.preventDefault(); handleFiles(files); }
  });

  keyForm.addEventListener('submit', (event) => {
    event.preventDefault();
    const key = $('api-key').value.trim();
    if (!key) return;
    saveKey(key);
    $('api-key').value = '';
    keyForm.hidden = true;
    waitingForKey.splice(0).forEach(run);
  });
  $('forget-key').addEventListener('click', () => saveKey(''));
  $('clear').addEventListener('click', () => {
    for (const el of results.querySelectorAll('.preview')) if (el.src.startsWith('blob:')) URL.revokeObjectURL(el.src);
    results.replaceChildren();
    $('empty').hidden = false;
    $('clear').hidden = true;
  });
  $('forget-key').hidden = !loadKey();
  document.documentElement.dataset.ready = 'true'; // tests wait for this before using the page
})();
