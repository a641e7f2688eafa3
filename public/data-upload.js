// The console's held-out data upload: one PUT of the chosen token shard to
// /api/phases/{n}/data with a progress bar, then a reload that shows what the server
// attached (or the server's refusal, in place). Plain JavaScript, like upload.js.

function say(form, text, failed) {
  const message = form.querySelector('#data-message');
  message.textContent = text;
  message.classList.toggle('form-error', Boolean(failed));
}

function errorText(xhr) {
  try {
    const error = JSON.parse(xhr.responseText).error;
    if (error) return error;
  } catch (_) {
    // not JSON: the text itself
  }
  return xhr.responseText.trim() || `The server answered ${xhr.status}.`;
}

function send(form) {
  const input = form.querySelector('#data-file');
  const bar = form.querySelector('#data-bar');
  const start = form.querySelector('#data-start');
  const file = input.files && input.files[0];
  if (!file) {
    say(form, 'Choose a token shard first.', true);
    return;
  }
  const done = (text) => {
    say(form, text, true);
    form.dataset.busy = '';
    bar.hidden = true;
    start.disabled = false;
  };
  form.dataset.busy = '1';
  start.disabled = true;
  bar.hidden = false;
  bar.value = 0;
  say(form, `Uploading ${file.name}…`, false);
  const xhr = new XMLHttpRequest();
  xhr.open('PUT', `/api/phases/${form.dataset.phase}/data?name=${encodeURIComponent(file.name)}`);
  xhr.setRequestHeader('x-csrf-token', form.dataset.csrf);
  xhr.setRequestHeader('content-type', 'application/octet-stream');
  xhr.setRequestHeader('accept', 'application/json');
  xhr.upload.onprogress = (e) => {
    if (e.lengthComputable) bar.value = Math.floor((100 * e.loaded) / e.total);
  };
  xhr.onload = () => {
    if (xhr.status < 200 || xhr.status >= 300) {
      done(errorText(xhr));
      return;
    }
    say(form, `${file.name} is attached; reloading…`, false);
    window.location.reload();
  };
  xhr.onerror = () => done('The connection failed; nothing was attached. Try again.');
  xhr.send(file);
}

// Delegated: keeps working when the console re-renders the form after an action, or
// when a client-side navigation reaches another phase after this module ran once.
document.addEventListener(
  'submit',
  (event) => {
    const form = event.target;
    if (!(form instanceof HTMLFormElement) || form.id !== 'data-form') return;
    event.preventDefault();
    event.stopPropagation();
    if (form.dataset.busy !== '1') send(form);
  },
  true,
);
