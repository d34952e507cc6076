// The demo page: one EventSource, a table of what arrives, a form to publish.
'use strict';

// Relative to the page, so the hub works under a path prefix too.
const base = location.pathname.endsWith('/') ? location.pathname : `${location.pathname}/`;
const MAX_ROWS = 200;

const statusBox = document.getElementById('status');
const statusText = document.getElementById('status-text');
const rows = document.getElementById('events');
const count = document.getElementById('event-count');
const empty = document.getElementById('empty');
let received = 0;
let source;

for (const el of document.querySelectorAll('.origin')) el.textContent = location.origin + base.replace(/\/$/, '');

const topicsInput = document.getElementById('topics');
const typesInput = document.getElementById('types');
const pageQuery = new URLSearchParams(location.search);
topicsInput.value = pageQuery.get('topics') ?? '';
typesInput.value = pageQuery.get('types') ?? '';

const list = (text) => text.split(',').map((item) => item.trim()).filter(Boolean);

function setStatus(state, text) {
  statusBox.className = `status ${state}`;
  statusText.textContent = text;
}

function addRow(type, id, data) {
  const row = document.createElement('tr');
  row.className = type === 'herald-resync' ? 'notice' : '';
  row.dataset.id = id;
  for (const value of [new Date().toLocaleTimeString(), id, type, data]) {
    const cell = document.createElement('td');
    cell.textContent = value;
    row.appendChild(cell);
  }
  rows.prepend(row);
  while (rows.children.length > MAX_ROWS) rows.lastChild.remove();
  received += 1;
  count.textContent = String(received);
  empty.hidden = true;
}

// EventSource dispatches a named event only to listeners of that name: the
// page listens for `message`, `herald-resync`, the types in the Types field
// and the types published from its own form.
const listened = new Set();
function listen(type) {
  if (listened.has(type)) return;
  listened.add(type);
  source.addEventListener(type, (event) => {
    // herald-resync carries no id: lastEventId would still show the previous event's.
    addRow(type, type === 'herald-resync' ? '' : event.lastEventId, event.data);
  });
}

function connect() {
  if (source) source.close();
  listened.clear();
  const topics = list(topicsInput.value);
  const query = new URLSearchParams(topics.map((topic) => ['topic', topic]));
  source = new EventSource(`${base}events${topics.length ? `?${query}` : ''}`);
  setStatus('connecting', 'connecting');
  source.onopen = () => setStatus('open', 'connected');
  source.onerror = () => {
    if (source.readyState === EventSource.CLOSED) setStatus('closed', 'closed (reload to retry)');
    else setStatus('connecting', 'reconnecting…');
  };
  for (const type of ['message', 'herald-resync', ...list(typesInput.value), ...publishedTypes]) listen(type);
}

// Types published from the form are listened for too.
const publishedTypes = new Set();

document.getElementById('subscribe-form').addEventListener('submit', (event) => {
  event.preventDefault();
  connect();
});

document.getElementById('publish-form').addEventListener('submit', async (event) => {
  event.preventDefault();
  const output = document.getElementById('publish-result');
  const type = document.getElementById('event-type').value.trim();
  const topic = document.getElementById('event-topic').value.trim();
  let data;
  try {
    data = JSON.parse(document.getElementById('event-data').value);
  } catch {
    output.textContent = 'Data must be JSON, e.g. {"hello": "world"} or "text".';
    output.className = 'error';
    return;
  }
  if (type && type !== 'message') {
    publishedTypes.add(type);
    listen(type);
  }
  const body = { data, ...(type ? { event: type } : {}), ...(topic ? { topic } : {}) };
  try {
    const response = await fetch(`${base}trigger`, {
      method: 'POST',
      headers: { 'Content-Type': 'application/json' },
      body: JSON.stringify(body),
    });
    const answer = await response.json();
    output.className = response.ok ? 'ok' : 'error';
    output.textContent = response.ok ? `published, id ${answer.id}` : `${answer.error.code}: ${answer.error.message}`;
  } catch (error) {
    output.className = 'error';
    output.textContent = `publish failed: ${error.message}`;
  }
});

connect();
