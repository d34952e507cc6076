/**
 * The origins of `--cors-origin`.
 */

/** Parses `--cors-origin`: a comma-separated list of origins (`https://app.example.com`) or `*`. `undefined` when malformed. */
export function parseOrigins(text: string): string[] | undefined {
  if (text.trim() === '') return [];
  const origins: string[] = [];
  for (const item of text.split(',').map((part) => part.trim())) {
    if (item === '*') {
      origins.push(item);
      continue;
    }
    let url: URL;
    try {
      url = new URL(item);
    } catch {
      return undefined;
    }
    // An origin is scheme, host and port only: a path, query or credentials mean a typo.
    if ((url.protocol !== 'http:' && url.protocol !== 'https:') || url.origin !== item.replace(/\/$/, '')) return undefined;
    origins.push(url.origin);
  }
  return origins;
}
