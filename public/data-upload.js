// The console's held-out data upload: one PUT of the chosen token shard to
// /api/phases/{n}/data with a progress bar, then a reload that shows what the server
// attached (or the server's refusal, in place). Plain JavaScript, like upload.js.

const form = document.getElementById('data-form');
if (form) {
  const input = form.querySelector('#data-file');
  const bar = form.querySelector('#data-bar');
  const message = form.querySelector('#data-message');
  const start = form.querySelector('#data-start');

  const say = (text, failed) => {
    message.textContent = text;
    message.classList.toggle('form-error', Boolean(failed));
  };

  form.addEventListener('submit', (event) => {
    event.preventDefault();
    const file = input.files && input.files[0];
    if (!file) {
      say('Choose a token shard first.', true);
      return;
    }
    start.disabled = true;
    bar.hidden = false;
    bar.value = 0;
    say(`Uploading ${file.name}…`, false);
    const xhr = new XMLHttpRequest();
    xhr.open('PUT', `/api/phases/${form.dataset.phase}/data?name=${encodeURIComponent(file.name)}`);
    xhr.setRequestHeader('x-csrf-token', form.dataset.csrf);
    xhr.setRequestHeader('content-type', 'application/octet-stream');
    xhr.setRequestHeader('accept', 'application/json');
    xhr.upload.onprogress = (e) => {
      if (e.lengthComputable) bar.value = Math.floor((100 * e.loaded) / e.total);
    };
    xhr.onload = () => {
      if (xhr.status >= 200 && xhr.status < 300) {
        const data = JSON.parse(xhr.responseText);
        say(`Attached ${data.name}: ${data.tokens} tokens, sha256 ${data.sha256}.`, false);
        window.location.reload();
        return;
      }
      let text = xhr.responseText;
      try {
        text = JSON.parse(text).error || text;
      } catch (_) {
        // a plain-text answer
      }
      say(text.trim() || `The server answered ${xhr.status}.`, true);
      bar.hidden = true;
      start.disabled = false;
    };
    xhr.onerror = () => {
      say('The connection failed; nothing was attached. Try again.', true);
      bar.hidden = true;
      start.disabled = false;
    };
    xhr.send(file);
  });
}
