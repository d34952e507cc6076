/**
 * Herald's own `/`-path selectors over opaque topics.
 *
 * The semantics are those of `selectorMatches` in `src/hub/topics.ts`: a
 * segment matches itself, `*` matches exactly one segment, a final `**` one
 * or more. What changed is the topic: it is any string, split on `/` once per
 * look-up, so a Mercure URL topic such as `https://example.com/x` is just the
 * segments `https:`, ``, `example.com`, `x`. A `*` therefore also matches an
 * empty segment (Herald's own topics have none: `parseTopic` forbids them).
 */

/** Whether a selector (its segments) matches a topic (its segments). */
export function segmentsMatch(pattern: readonly string[], topic: readonly string[]): boolean {
  for (let i = 0; i < pattern.length; i++) {
    const part = pattern[i];
    if (part === '**') return topic.length > i;
    if (i >= topic.length) return false;
    if (part !== '*' && part !== topic[i]) return false;
  }
  return pattern.length === topic.length;
}

interface TrieNode<T> {
  readonly children: Map<string, TrieNode<T>>;
  /** Members whose selector ends exactly at this node. */
  readonly here: Set<T>;
  /** Members whose selector ends with `**` after this node. */
  readonly below: Set<T>;
}

function newNode<T>(): TrieNode<T> {
  return { children: new Map(), here: new Set(), below: new Set() };
}

/**
 * A trie over selector segments, where `*` is one more child key: a look-up
 * costs the topic's depth times the wildcards on its path, not the number of
 * members.
 */
export class HeraldTrie<T> {
  private readonly root: TrieNode<T> = newNode();
  private entries = 0;

  /** (selector, member) pairs held. */
  get size(): number {
    return this.entries;
  }

  add(segments: readonly string[], member: T): void {
    let node = this.root;
    for (const segment of segments) {
      if (segment === '**') {
        this.count(node.below, member);
        return;
      }
      let child = node.children.get(segment);
      if (child === undefined) {
        child = newNode();
        node.children.set(segment, child);
      }
      node = child;
    }
    this.count(node.here, member);
  }

  private count(set: Set<T>, member: T): void {
    if (set.has(member)) return;
    set.add(member);
    this.entries++;
  }

  delete(segments: readonly string[], member: T): void {
    const path: TrieNode<T>[] = [this.root];
    let node = this.root;
    let set: Set<T> | undefined;
    for (const segment of segments) {
      if (segment === '**') {
        set = node.below;
        break;
      }
      const child = node.children.get(segment);
      if (child === undefined) return;
      node = child;
      path.push(node);
    }
    set ??= node.here;
    if (!set.delete(member)) return;
    this.entries--;
    // Prune empty branches, so churn of unique selectors does not leak nodes.
    for (let i = path.length - 1; i > 0; i--) {
      const current = path[i]!;
      if (current.children.size > 0 || current.here.size > 0 || current.below.size > 0) break;
      path[i - 1]!.children.delete(segments[i - 1]!);
    }
  }

  /** Calls `visit` for each member whose selector matches the topic's segments, once per selector. */
  forEachMatch(topic: readonly string[], visit: (member: T) => void): void {
    this.walk(this.root, topic, 0, visit);
  }

  private walk(node: TrieNode<T>, topic: readonly string[], depth: number, visit: (member: T) => void): void {
    if (depth < topic.length) {
      for (const member of node.below) visit(member);
      const exact = node.children.get(topic[depth]!);
      if (exact !== undefined) this.walk(exact, topic, depth + 1, visit);
      // A topic segment that is literally `*` must not take the wildcard branch twice.
      const star = topic[depth] === '*' ? undefined : node.children.get('*');
      if (star !== undefined) this.walk(star, topic, depth + 1, visit);
    } else {
      for (const member of node.here) visit(member);
    }
  }

  /** Nodes in the trie, the root included (for tests: pruning leaves no garbage). */
  nodeCount(): number {
    return countNodes(this.root);
  }
}

/** Nodes of a trie whose nodes keep their children in a map, the root included (for tests: pruning leaves no garbage). */
export function countNodes(root: { readonly children: ReadonlyMap<unknown, unknown> }): number {
  let n = 0;
  const stack = [root];
  while (stack.length > 0) {
    const node = stack.pop()!;
    n++;
    for (const child of node.children.values()) stack.push(child as typeof root);
  }
  return n;
}
