import assert from 'node:assert/strict';
import { test } from 'node:test';
import { SseTap, startHub, trigger } from './support/helpers.js';

test('a subscriber receives a published event', async () => {
  const hub = await startHub();
  try {
    const tap = await SseTap.open(hub.url);
    const published = await trigger(hub.url, { event: 'greeting', data: { hello: 'world' } });
    assert.equal(published.status, 202);
    await tap.waitForEvents(1);
    assert.deepEqual(tap.events[0], { id: published.body.id, event: 'greeting', data: '{"hello":"world"}' });
    tap.close();
  } finally {
    await hub.close();
  }
});
