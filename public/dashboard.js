// The dashboard: figures and a live tail from the hub's own SSE stream.
(() => {
  'use strict';

  const HISTORY_POINTS = 300;
  const TAIL_ROWS = 200;
  const $ = (id) => document.getElementById(id);
  const series = { connections: [], events: [], bytes: [] };
  let previous;
  let tailCount = 0;

  const number = new Intl.NumberFormat('en-US', { maximumFractionDigits: 1 });
  function bytes(value) {
    const units = ['B', 'KiB', 'MiB', 'GiB'];
    let unit = 0;
    while (value >= 1024 && unit < units.length - 1) {
      value /= 1024;
      unit++;
    }
    return `${number.format(value)} ${units[unit]}`;
  }

  function setStatus(state, text) {
    $('status').className = `status ${state}`;
    $('status-text').textContent = text;
  }

  function cell(row, text) {
    const td = document.createElement('td');
    td.textContent = text;
    row.append(td);
    return td;
  }

  function replaceRows(body, rows) {
    body.replaceChildren(...rows);
  }

  // A line chart as SVG: no library, five minutes of points.
  function draw(name, points, format) {
    const svg = $(`chart-${name}`);
    const peak = Math.max(1, ...points);
    const step = 300 / (HISTORY_POINTS - 1);
    const offset = HISTORY_POINTS - points.length;
    const coords = points.map((value, i) => `${((offset + i) * step).toFixed(1)},${(78 - (value / peak) * 74).toFixed(1)}`);
    const ns = 'http://www.w3.org/2000/svg';
    const line = document.createElementNS(ns, 'polyline');
    line.setAttribute('points', coords.join(' '));
    const area = document.createElementNS(ns, 'polygon');
    if (coords.length > 0) area.setAttribute('points', `${(offset * step).toFixed(1)},80 ${coords.join(' ')} 300,80`);
    svg.replaceChildren(area, line);
    $(`peak-${name}`).textContent = `peak ${format(peak)}`;
  }

  function push(list, value) {
    list.push(value);
    if (list.length > HISTORY_POINTS) list.shift();
  }

  function onStats(stats) {
    const seconds = previous === undefined ? 0 : (stats.time - previous.time) / 1000;
    const rate = (key) => (seconds > 0 ? Math.max(0, (stats[key] - previous[key]) / seconds) : 0);
    const eventsPerSecond = rate('published');
    const deliveriesPerSecond = rate('delivered');
    const bytesPerSecond = rate('bytesWritten');
    previous = stats;

    $('c-connections').textContent = number.format(stats.connections);
    $('c-events').textContent = number.format(eventsPerSecond);
    $('c-deliveries').textContent = number.format(deliveriesPerSecond);
    $('c-bytes').textContent = bytes(bytesPerSecond);
    $('c-published').textContent = number.format(stats.published);
    $('c-delivered').textContent = number.format(stats.delivered);
    $('c-dropped').textContent = number.format(stats.dropped);
    $('c-history').textContent = number.format(stats.history);
    const health = $('c-health');
    health.textContent = stats.health.ok ? 'ok' : 'unavailable';
    health.className = `value ${stats.health.ok ? 'ok' : 'bad'}`;
    health.title = stats.health.reason || '';

    push(series.connections, stats.connections);
    push(series.events, eventsPerSecond);
    push(series.bytes, bytesPerSecond);
    draw('connections', series.connections, (v) => number.format(v));
    draw('events', series.events, (v) => `${number.format(v)}/s`);
    draw('bytes', series.bytes, (v) => `${bytes(v)}/s`);

    $('topic-count').textContent = String(stats.topics.length);
    replaceRows($('topics'), stats.topics.map((topic) => {
      const row = document.createElement('tr');
      cell(row, topic.selector);
      cell(row, String(topic.subscribers));
      return row;
    }));
    $('subscriber-count').textContent = String(stats.connections);
    // Streams per API: Herald's /events, Mercure draft-08, Mercure classic.
    const apiNames = { herald: '/events', mercure: 'Mercure', 'mercure-classic': 'Mercure (classic)' };
    $('protocols').textContent = Object.entries(stats.protocols ?? {})
      .map(([protocol, count]) => `${apiNames[protocol] ?? protocol}: ${number.format(count)}`)
      .join(' · ');
    replaceRows($('subscribers'), stats.subscribers.map((subscriber) => {
      const row = document.createElement('tr');
      cell(row, subscriber.address + (subscriber.token ? ' (token)' : ''));
      cell(row, apiNames[subscriber.protocol] ?? subscriber.protocol ?? '/events');
      cell(row, subscriber.topics.length === 0 ? '(everything)' : subscriber.topics.join(', '));
      cell(row, new Date(subscriber.since).toLocaleTimeString());
      cell(row, bytes(subscriber.queuedBytes));
      cell(row, subscriber.requestId);
      return row;
    }));
    $('tail-skipped').textContent = stats.tailSkipped > 0 ? `${stats.tailSkipped} events not shown in the last second (the tail shows 200 a second at most)` : '';
  }

  // Topic selectors as the hub reads them: `*` one segment, a final `**` one or more.
  function matches(selector, topic) {
    if (selector === '') return true;
    if (topic === null) return false;
    const want = selector.split('/');
    const have = topic.split('/');
    for (let i = 0; i < want.length; i++) {
      if (want[i] === '**') return have.length > i;
      if (i >= have.length || (want[i] !== '*' && want[i] !== have[i])) return false;
    }
    return want.length === have.length;
  }

  function onTail(event) {
    const topicFilter = $('filter-topic').value.trim();
    const typeFilter = $('filter-type').value.trim();
    if (!matches(topicFilter, event.topic) || (typeFilter !== '' && typeFilter !== event.type)) return;
    const row = document.createElement('tr');
    if (event.private) row.className = 'private';
    cell(row, event.id);
    cell(row, event.topic === null ? '(none)' : event.topic);
    cell(row, event.type);
    cell(row, event.data);
    const body = $('tail');
    body.prepend(row);
    while (body.rows.length > TAIL_ROWS) body.deleteRow(-1);
    $('tail-count').textContent = String(++tailCount);
  }

  const source = new EventSource('dashboard/stream');
  source.onopen = () => setStatus('open', 'connected');
  source.onerror = () => setStatus(source.readyState === EventSource.CLOSED ? 'closed' : 'connecting', source.readyState === EventSource.CLOSED ? 'refused' : 'reconnecting');
  source.addEventListener('stats', (e) => onStats(JSON.parse(e.data)));
  source.addEventListener('tail', (e) => onTail(JSON.parse(e.data)));

  $('tail-filter').addEventListener('submit', (e) => e.preventDefault());

  $('publish-form').addEventListener('submit', async (e) => {
    e.preventDefault();
    const result = $('publish-result');
    result.className = '';
    let data;
    try {
      data = JSON.parse($('publish-data').value);
    } catch (error) {
      result.className = 'error';
      result.textContent = `the data is not JSON: ${error.message}`;
      return;
    }
    const message = { data };
    const topic = $('publish-topic').value.trim();
    const type = $('publish-type').value.trim();
    if (topic !== '') message.topic = topic;
    if (type !== '') message.event = type;
    if ($('publish-private').checked) message.private = true;
    try {
      const response = await fetch('trigger', { method: 'POST', headers: { 'Content-Type': 'application/json' }, body: JSON.stringify(message) });
      const answer = await response.json();
      result.className = response.ok ? 'ok' : 'error';
      result.textContent = response.ok ? `published, id ${answer.id}` : `${answer.error.code}: ${answer.error.message}`;
    } catch (error) {
      result.className = 'error';
      result.textContent = `the hub cannot be reached: ${error.message}`;
    }
  });
})();
