/**
 * A radix trie of strings: finds every stored key that is a prefix of a text.
 *
 * Pattern selectors are bucketed by their literal prefix; a publish must
 * find the buckets whose prefix starts its topic without looking at the
 * others. Walking this trie costs at most one step per character of the text
 * (each step a `Map` look-up and a `startsWith`), however many keys are held.
 * Edges carry whole runs of characters, so a thousand selectors that share
 * `https://example.com/` share its nodes, and a node exists only where keys
 * branch or end: at most two nodes per key.
 */

import { countNodes } from './herald.js';

interface TrieNode<V> {
  /** The characters on the edge from the parent to this node. */
  label: string;
  /** Children by the first UTF-16 unit of their label. */
  readonly children: Map<string, TrieNode<V>>;
  /** The value of the key that ends here, if any. */
  value: V | undefined;
}

function newNode<V>(label: string): TrieNode<V> {
  return { label, children: new Map(), value: undefined };
}

/** How many UTF-16 units `label` shares with `text` from `offset` on. */
function commonLength(label: string, text: string, offset: number): number {
  const max = Math.min(label.length, text.length - offset);
  let n = 0;
  while (n < max && label.charCodeAt(n) === text.charCodeAt(offset + n)) n++;
  return n;
}

export class PrefixTrie<V> {
  private readonly root: TrieNode<V> = newNode('');
  private count = 0;

  /** Keys held. */
  get size(): number {
    return this.count;
  }

  get(key: string): V | undefined {
    let node = this.root;
    let offset = 0;
    while (offset < key.length) {
      const child = node.children.get(key[offset]!);
      if (child === undefined || !key.startsWith(child.label, offset)) return undefined;
      offset += child.label.length;
      node = child;
    }
    return node.value;
  }

  set(key: string, value: V): void {
    let node = this.root;
    let offset = 0;
    for (;;) {
      if (offset === key.length) {
        if (node.value === undefined) this.count++;
        node.value = value;
        return;
      }
      const first = key[offset]!;
      const child = node.children.get(first);
      if (child === undefined) {
        const leaf = newNode<V>(key.slice(offset));
        leaf.value = value;
        node.children.set(first, leaf);
        this.count++;
        return;
      }
      const shared = commonLength(child.label, key, offset);
      if (shared < child.label.length) {
        // The key leaves the edge part-way: a node where they part.
        const fork = newNode<V>(child.label.slice(0, shared));
        child.label = child.label.slice(shared);
        fork.children.set(child.label[0]!, child);
        node.children.set(first, fork);
        node = fork;
      } else {
        node = child;
      }
      offset += shared;
    }
  }

  /** Removes `key`; returns whether it was held. Nodes no key needs are removed or merged. */
  delete(key: string): boolean {
    const path: TrieNode<V>[] = [this.root];
    let node = this.root;
    let offset = 0;
    while (offset < key.length) {
      const child = node.children.get(key[offset]!);
      if (child === undefined || !key.startsWith(child.label, offset)) return false;
      offset += child.label.length;
      node = child;
      path.push(node);
    }
    if (node.value === undefined) return false;
    node.value = undefined;
    this.count--;
    if (node === this.root) return true;
    const parent = path[path.length - 2]!;
    if (node.children.size === 0) {
      parent.children.delete(node.label[0]!);
      // The parent may now be a pass-through node: fold it into its last child.
      if (parent !== this.root && parent.value === undefined && parent.children.size === 1) {
        this.fold(path[path.length - 3]!, parent);
      }
    } else if (node.children.size === 1) {
      this.fold(parent, node);
    }
    return true;
  }

  /** Replaces `node` (valueless, one child) by its child, whose label grows by `node`'s. */
  private fold(parent: TrieNode<V>, node: TrieNode<V>): void {
    const only = node.children.values().next().value!;
    only.label = node.label + only.label;
    parent.children.set(only.label[0]!, only);
  }

  /** Calls `visit` with the value of every held key that is a prefix of `text` (the empty key included), shortest first. */
  forEachPrefixOf(text: string, visit: (value: V) => void): void {
    let node = this.root;
    if (node.value !== undefined) visit(node.value);
    let offset = 0;
    while (offset < text.length) {
      const child = node.children.get(text[offset]!);
      if (child === undefined || !text.startsWith(child.label, offset)) return;
      offset += child.label.length;
      node = child;
      if (node.value !== undefined) visit(node.value);
    }
  }

  /** Nodes in the trie, the root included (for tests: pruning leaves no garbage). */
  nodeCount(): number {
    return countNodes(this.root);
  }
}
