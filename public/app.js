// The demo page: one stream read with herald/client, a table of what arrives, a form to publish.
import { connect } from '../client.js';

// Relative to the page, so the hub works under a path prefix too.
const base = location.pathname.endsWith('/') ? location.pathname : `${location.pathname}/`;
const MAX_ROWS = 200;

const statusBox = document.getElementById('status');
const statusText = document.getElementById('status-text');
const rows = document.getElementById('events');
const count = document.getElementById('event-count');
const empty = document.getElementById('empty');
let received = 0;

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

// Every event, whatever its type: herald/client hands each to one listener
// (EventSource would hand a named event only to listeners of that name). The
// Types field, when filled, keeps only the types it lists.
let client;
const STATES = { connecting: 'connecting', open: 'connected', reconnecting: 'reconnecting…', closed: 'closed' };

function subscribe() {
  if (client) client.close();
  const topics = list(topicsInput.value);
  const types = new Set(list(typesInput.value));
  client = connect(`${base}events`, { topics });
  client.onState((state) => setStatus(state === 'reconnecting' ? 'connecting' : state, STATES[state]));
  client.onAny((event) => {
    if (types.size === 0 || types.has(event.type)) addRow(event.type, event.id, event.data);
  });
  // herald-resync carries no id of its own: the row shows none.
  client.onResync((_reason, _data, event) => addRow('herald-resync', '', event.data));
  client.onError((error) => {
    if (error.fatal) setStatus('closed', `stopped: ${error.code}`);
  });
}

document.getElementById('subscribe-form').addEventListener('submit', (event) => {
  event.preventDefault();
  subscribe();
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

subscribe();
