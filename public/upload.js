// Ascent's browser upload of a checkpoint: chunked and resumable, following the
// upload API of domain/src/protocol.rs. Plain JavaScript, so the submit page works
// before (and without) the WebAssembly bundle.
//
//   POST  /api/uploads                       {phase, files, fingerprint} → status
//   PATCH /api/uploads/{id}/files/{name}     Upload-Offset: N, the bytes from N on
//   GET   /api/uploads/{id}                  how much of each file the server holds
//   POST  /api/uploads/{id}/finish           → {id, url} of the queued submission
//
// The fingerprint (names, sizes and modification times) lets the server find an
// unfinished upload again, so choosing the same files after a reload or a lost
// connection continues where the server stopped.

const CHUNK_BYTES = 8 * 1024 * 1024;
const MAX_FAILURES = 8;
const PICKLE = ['.bin', '.pt', '.pth', '.pkl', '.pickle', '.ckpt'];
const SPEED_WINDOW_MS = 5000;

// The same rule as `check_file_name` on the server.
function nameProblem(name) {
  const lower = name.toLowerCase();
  if (PICKLE.some((ext) => lower.endsWith(ext))) {
    return 'a pickle file: pickles run code when loaded, so only safetensors weights are accepted';
  }
  const plain = name.length > 0 && name.length <= 128 && !name.startsWith('.') && /^[A-Za-z0-9._-]+$/.test(name);
  const known = name === 'config.json' || name === 'model.safetensors.index.json' || name.endsWith('.safetensors');
  if (!plain || !known) {
    return 'not a checkpoint file: send config.json, model.safetensors or model.safetensors.index.json with its shards';
  }
  return null;
}

function formatBytes(n) {
  const units = ['KiB', 'MiB', 'GiB', 'TiB'];
  if (n < 1024) return `${n} B`;
  let value = n / 1024;
  let unit = 0;
  while (value >= 1024 && unit + 1 < units.length) {
    value /= 1024;
    unit += 1;
  }
  const text = value >= 100 ? value.toFixed(0) : value.toFixed(1);
  return `${text.replace(/\.0$/, '')} ${units[unit]}`;
}

function formatSeconds(s) {
  if (!Number.isFinite(s)) return '';
  s = Math.max(1, Math.round(s));
  if (s < 60) return `${s} s`;
  if (s < 3600) return `${Math.floor(s / 60)} min ${s % 60} s`;
  return `${Math.floor(s / 3600)} h ${Math.round((s % 3600) / 60)} min`;
}

const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

class ServerRefusal extends Error {}

// The files picked in a form, checked against the phase's rules before any byte is sent.
function inspect(form) {
  const input = form.querySelector('#upload-files');
  const files = Array.from(input?.files ?? []);
  const maxBytes = Number(form.dataset.maxBytes);
  const problems = [];
  const rows = files.map((file) => ({ file, problem: nameProblem(file.name) ?? (file.size === 0 ? 'empty' : null) }));
  const names = files.map((f) => f.name);
  for (const row of rows) if (row.problem) problems.push(`${row.file.name} is ${row.problem}.`);
  if (new Set(names).size !== names.length) problems.push('A file is chosen twice.');
  if (files.length > 0 && !names.includes('config.json')) problems.push('config.json is missing: choose it together with the weights.');
  if (files.length > 0 && !names.some((n) => n.endsWith('.safetensors'))) problems.push('No .safetensors weights are chosen.');
  const total = files.reduce((sum, f) => sum + f.size, 0);
  if (total > maxBytes) {
    problems.push(`These files are ${formatBytes(total)}; this phase accepts at most ${formatBytes(maxBytes)}.`);
  }
  return { files, rows, total, problems };
}

function show(form, text, kind) {
  const message = form.querySelector('#upload-message');
  if (!message) return;
  message.textContent = text;
  message.className = `upload-message${kind ? ` ${kind}` : ''}`;
}

function renderPicked(form) {
  const { rows, total, problems } = inspect(form);
  const list = form.querySelector('#upload-files-list');
  list.replaceChildren();
  if (rows.length > 0) {
    const table = document.createElement('table');
    table.className = 'picked';
    for (const { file, problem } of rows) {
      const tr = table.insertRow();
      tr.className = problem ? 'bad' : 'ok';
      tr.insertCell().textContent = file.name;
      const size = tr.insertCell();
      size.className = 'num';
      size.textContent = formatBytes(file.size);
      tr.insertCell().textContent = problem ? '✗ refused' : '✓';
    }
    const foot = table.createTFoot().insertRow();
    foot.insertCell().textContent = `${rows.length} file${rows.length === 1 ? '' : 's'}`;
    const sum = foot.insertCell();
    sum.className = 'num';
    sum.textContent = formatBytes(total);
    foot.insertCell();
    list.append(table);
  }
  const button = form.querySelector('#upload-start');
  button.disabled = rows.length === 0 || problems.length > 0 || form.dataset.busy === '1';
  if (problems.length > 0) show(form, problems.join(' '), 'error');
  else if (rows.length > 0) show(form, 'Ready to upload.', '');
  else show(form, '', '');
}

// A stable identity of the chosen files, at most 200 characters as the server asks.
async function fingerprint(phase, files) {
  const text = [`phase ${phase}`, ...files.map((f) => `${f.name}:${f.size}:${f.lastModified}`).sort()].join('\n');
  if (globalThis.crypto?.subtle) {
    const digest = await crypto.subtle.digest('SHA-256', new TextEncoder().encode(text));
    return Array.from(new Uint8Array(digest), (b) => b.toString(16).padStart(2, '0')).join('');
  }
  // Not a secure context: any stable hash will do, it only finds the upload again.
  let h1 = 0xdeadbeef;
  let h2 = 0x41c6ce57;
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    h1 = Math.imul(h1 ^ c, 2654435761);
    h2 = Math.imul(h2 ^ c, 1597334677);
  }
  return `f${(h1 >>> 0).toString(16)}${(h2 >>> 0).toString(16)}${text.length}`;
}

async function errorText(response) {
  const text = await response.text().catch(() => '');
  try {
    const body = JSON.parse(text);
    if (body && typeof body.error === 'string') return body.error;
  } catch {
    // not JSON: the security layer answers in plain text
  }
  return text.trim() || `The server answered ${response.status}.`;
}

async function api(form, method, url, body) {
  const response = await fetch(url, {
    method,
    credentials: 'same-origin',
    headers: { 'content-type': 'application/json', 'x-csrf-token': form.dataset.csrf, accept: 'application/json' },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  if (!response.ok) {
    const message = await errorText(response);
    if (response.status >= 500) throw new Error(message);
    throw new ServerRefusal(message);
  }
  return response.json();
}

// One PATCH; resolves with its status (0: the connection failed) and the server's offset.
function sendChunk(form, url, blob, offset, onProgress) {
  return new Promise((resolve) => {
    const xhr = new XMLHttpRequest();
    xhr.open('PATCH', url);
    xhr.setRequestHeader('Upload-Offset', String(offset));
    xhr.setRequestHeader('x-csrf-token', form.dataset.csrf);
    xhr.setRequestHeader('content-type', 'application/offset+octet-stream');
    xhr.upload.onprogress = (e) => onProgress(e.loaded);
    xhr.onload = () => {
      const header = xhr.getResponseHeader('Upload-Offset');
      resolve({ status: xhr.status, offset: header === null ? null : Number(header), text: xhr.responseText });
    };
    xhr.onerror = () => resolve({ status: 0 });
    xhr.ontimeout = () => resolve({ status: 0 });
    xhr.onabort = () => resolve({ status: 0 });
    xhr.send(blob);
  });
}

function refusalOf(result) {
  try {
    const body = JSON.parse(result.text);
    if (body && typeof body.error === 'string') return body.error;
  } catch {
    // plain text
  }
  return (result.text || '').trim() || `The server answered ${result.status}.`;
}

// The progress bar, percentage, speed (over the last few seconds) and time left.
function progressMeter(form, total) {
  const box = form.querySelector('#upload-progress');
  const bar = form.querySelector('#upload-bar');
  const percent = form.querySelector('#upload-percent');
  const rate = form.querySelector('#upload-rate');
  box.hidden = false;
  const samples = [];
  return (done) => {
    const now = performance.now();
    samples.push([now, done]);
    while (samples.length > 2 && now - samples[0][0] > SPEED_WINDOW_MS) samples.shift();
    const share = total === 0 ? 1 : done / total;
    bar.value = Math.min(100, share * 100);
    percent.textContent = `${Math.floor(share * 100)}% · ${formatBytes(done)} of ${formatBytes(total)}`;
    const [t0, d0] = samples[0];
    const seconds = (now - t0) / 1000;
    if (done >= total) {
      rate.textContent = 'all bytes sent';
    } else if (seconds > 0.3 && done > d0) {
      const speed = (done - d0) / seconds;
      rate.textContent = `${formatBytes(Math.round(speed))}/s · ${formatSeconds((total - done) / speed)} left`;
    }
  };
}

function remember(phase, files) {
  try {
    localStorage.setItem(
      `ascent-upload-${phase}`,
      JSON.stringify({ names: files.map((f) => f.name), bytes: files.reduce((s, f) => s + f.size, 0) }),
    );
  } catch {
    // private mode: resuming still works by choosing the same files
  }
}

function forget(phase) {
  try {
    localStorage.removeItem(`ascent-upload-${phase}`);
  } catch {
    // nothing to forget
  }
}

async function upload(form) {
  const { files, problems } = inspect(form);
  if (files.length === 0 || problems.length > 0) return renderPicked(form);
  const phase = Number(form.dataset.phase);
  const chunkBytes = Number(form.dataset.chunkBytes) || CHUNK_BYTES;
  const button = form.querySelector('#upload-start');
  const input = form.querySelector('#upload-files');
  form.dataset.busy = '1';
  button.disabled = true;
  input.disabled = true;
  try {
    show(form, 'Checking the rules of the phase…', '');
    const byName = new Map(files.map((f) => [f.name, f]));
    const start = {
      phase,
      files: files.map((f) => ({ name: f.name, bytes: f.size })),
      fingerprint: await fingerprint(phase, files),
    };
    let status = await api(form, 'POST', '/api/uploads', start);
    remember(phase, files);
    const total = status.files.reduce((s, f) => s + f.bytes, 0);
    const held = status.files.reduce((s, f) => s + f.received, 0);
    const meter = progressMeter(form, total);
    meter(held);
    show(form, held > 0 ? `Resuming: the server already holds ${formatBytes(held)} of ${formatBytes(total)}.` : 'Uploading…', '');
    for (const entry of status.files) {
      const file = byName.get(entry.name);
      const url = `/api/uploads/${status.id}/files/${encodeURIComponent(entry.name)}`;
      let offset = entry.received;
      let failures = 0;
      const before = () => status.files.filter((f) => f.name !== entry.name).reduce((s, f) => s + f.received, 0);
      while (offset < entry.bytes) {
        const end = Math.min(entry.bytes, offset + chunkBytes);
        const base = before() + offset;
        const result = await sendChunk(form, url, file.slice(offset, end), offset, (loaded) => meter(base + loaded));
        if (result.status === 204 || result.status === 409) {
          // 409: the server holds a different amount; continue from there.
          offset = result.offset ?? (result.status === 204 ? end : offset);
          entry.received = offset;
          if (result.status === 204) failures = 0;
          meter(before() + offset);
          continue;
        }
        if (result.status !== 0 && result.status < 500) throw new ServerRefusal(refusalOf(result));
        failures += 1;
        if (failures > MAX_FAILURES) {
          throw new Error('The connection keeps failing. What arrived is kept: press the button again (or reload and choose the same files) to continue.');
        }
        const wait = Math.min(30, 2 ** (failures - 1));
        show(form, `The connection was interrupted; retrying in ${wait} s (attempt ${failures} of ${MAX_FAILURES})…`, 'warn');
        await sleep(wait * 1000);
        try {
          status = await api(form, 'GET', `/api/uploads/${status.id}`);
          offset = status.files.find((f) => f.name === entry.name)?.received ?? offset;
          entry.received = offset;
          status.files = status.files.map((f) => (f.name === entry.name ? entry : f));
          show(form, 'Uploading…', '');
        } catch (e) {
          if (e instanceof ServerRefusal) throw e;
          // still unreachable: the next attempt will tell
        }
      }
    }
    show(form, 'All files received. Queuing your submission…', '');
    const created = await api(form, 'POST', `/api/uploads/${status.id}/finish`);
    forget(phase);
    show(form, 'Submitted. Opening your submission…', 'good');
    window.location.assign(created.url);
  } catch (e) {
    const message = e instanceof ServerRefusal ? `Refused by the server: ${e.message}` : e.message || String(e);
    show(form, message, 'error');
    form.dataset.busy = '';
    input.disabled = false;
    button.disabled = false;
    button.textContent = 'Try again';
  }
}

// Delegated listeners: they keep working when the page is re-rendered or reached by a
// client-side navigation after this module ran once.
document.addEventListener('change', (event) => {
  const form = event.target?.closest?.('#upload-form');
  if (form && event.target.id === 'upload-files') renderPicked(form);
});
document.addEventListener(
  'submit',
  (event) => {
    const form = event.target;
    if (!(form instanceof HTMLFormElement) || form.id !== 'upload-form') return;
    event.preventDefault();
    event.stopPropagation();
    if (form.dataset.busy !== '1') upload(form);
  },
  true,
);

// After a reload mid-upload: say how to continue.
function offerResume() {
  const form = document.getElementById('upload-form');
  if (!form || form.dataset.offered) return;
  form.dataset.offered = '1';
  let saved = null;
  try {
    saved = JSON.parse(localStorage.getItem(`ascent-upload-${form.dataset.phase}`) ?? 'null');
  } catch {
    saved = null;
  }
  if (saved && Array.isArray(saved.names)) {
    show(
      form,
      `An upload of ${saved.names.join(', ')} (${formatBytes(saved.bytes)}) did not finish. Choose the same files to continue where it stopped.`,
      'warn',
    );
  }
}
offerResume();
// For people and tests alike: the upload form is live.
document.documentElement.dataset.uploadReady = '';
