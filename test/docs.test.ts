import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { test } from 'node:test';
import { ERROR_CATALOGUE, OPTION_SPECS } from '../src/index.js';

const readme = readFileSync(new URL('../../README.md', import.meta.url), 'utf8');

test('README documents every option with its flag and env vars', () => {
  for (const spec of OPTION_SPECS) {
    assert.match(readme, new RegExp(`\`--${spec.flag} `), `README lacks --${spec.flag}`);
    for (const name of spec.env) assert.ok(readme.includes(`\`${name}\``), `README lacks ${name}`);
  }
});

test('README documents every error code with its status', () => {
  for (const [code, { status }] of Object.entries(ERROR_CATALOGUE)) {
    if (code === 'HERALD_ERR_INVALID_OPTION') continue; // thrown at start-up, never an HTTP answer
    assert.match(readme, new RegExp(`\\| ${status} \\| \`${code}\``), `README lacks the row for ${code}`);
  }
});
