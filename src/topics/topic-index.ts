/**
 * Finds the members (subscribers) whose selectors match a published topic
 * without testing every selector.
 *
 * Each kind has the structure that makes its look-up cheap:
 * - `any`: a set, visited whole;
 * - `exact`: a map by topic, one hash look-up;
 * - `herald`: a trie over segments, the topic split once;
 * - `uri-template`: a radix trie keyed by the literal text before the first
 *   `{`; only templates whose prefix starts the topic are tested;
 * - `url-pattern`: per base URL, a radix trie keyed by the literal start of
 *   the pattern's protocol, hostname, port and pathname, looked up with the
 *   same components of the parsed topic (parsed once per base).
 *
 * Look-up cost thus grows with the topic's length and with the patterns that
 * share its prefix, never with patterns that cannot match. Equal selectors
 * (same kind, base and source) share one bucket, so a pattern is tested once
 * per publish however many members hold it.
 */

import { HeraldTrie } from './herald.js';
import { PrefixTrie } from './prefix-trie.js';
import {
  MAX_MATCHED_TOPIC_LENGTH,
  patternMatcherOf,
  templateMatcherOf,
  type TopicSelector,
  type UriTemplateSelector,
} from './selectors.js';
import { normalizeEscapes, templatePrefix, type CompiledTemplate } from './uri-template.js';
import { topicKey, type CompiledPattern } from './url-pattern.js';

interface TemplateEntry<T> {
  readonly source: string;
  /** `undefined`: the source did not compile, so it matches only itself. */
  readonly compiled: CompiledTemplate | undefined;
  readonly members: Set<T>;
}

interface PatternEntry<T> {
  readonly compiled: CompiledPattern;
  readonly members: Set<T>;
}

/** Entries sharing one prefix, by source. */
type Bucket<E> = Map<string, E>;

/** What the index holds, structure by structure (for tests: deleting everything leaves the empty footprint). */
export interface IndexFootprint {
  readonly any: number;
  readonly exactTopics: number;
  readonly heraldNodes: number;
  readonly templatePrefixes: number;
  readonly templateNodes: number;
  readonly patternBases: number;
  readonly patternNodes: number;
}

export class TopicIndex<T> {
  private readonly any = new Set<T>();
  private readonly exact = new Map<string, Set<T>>();
  private readonly herald = new HeraldTrie<T>();
  private readonly templates = new PrefixTrie<Bucket<TemplateEntry<T>>>();
  /** Per base URL: relative topics resolve differently against each. */
  private readonly patterns = new Map<string, PrefixTrie<Bucket<PatternEntry<T>>>>();
  private pairs = 0;

  /** (selector, member) pairs held; adding a pair twice holds it once. */
  get size(): number {
    return this.pairs;
  }

  /**
   * Adds a member under a selector.
   * @throws HeraldError for a hand-made `url-pattern` selector whose source is not admissible (the constructors never make one).
   */
  add(selector: TopicSelector, member: T): void {
    switch (selector.kind) {
      case 'any':
        this.count(this.any, member);
        return;
      case 'exact': {
        let members = this.exact.get(selector.source);
        if (members === undefined) {
          members = new Set();
          this.exact.set(selector.source, members);
        }
        this.count(members, member);
        return;
      }
      case 'herald': {
        const before = this.herald.size;
        this.herald.add(selector.segments, member);
        this.pairs += this.herald.size - before;
        return;
      }
      case 'uri-template': {
        const prefix = templateKeyOf(selector);
        let bucket = this.templates.get(prefix);
        if (bucket === undefined) {
          bucket = new Map();
          this.templates.set(prefix, bucket);
        }
        let entry = bucket.get(selector.source);
        if (entry === undefined) {
          entry = { source: selector.source, compiled: templateMatcherOf(selector), members: new Set() };
          bucket.set(selector.source, entry);
        }
        this.count(entry.members, member);
        return;
      }
      case 'url-pattern': {
        const compiled = patternMatcherOf(selector);
        let trie = this.patterns.get(selector.base);
        if (trie === undefined) {
          trie = new PrefixTrie();
          this.patterns.set(selector.base, trie);
        }
        let bucket = trie.get(compiled.keyPrefix);
        if (bucket === undefined) {
          bucket = new Map();
          trie.set(compiled.keyPrefix, bucket);
        }
        let entry = bucket.get(selector.source);
        if (entry === undefined) {
          entry = { compiled, members: new Set() };
          bucket.set(selector.source, entry);
        }
        this.count(entry.members, member);
        return;
      }
    }
  }

  private count(members: Set<T>, member: T): void {
    if (members.has(member)) return;
    members.add(member);
    this.pairs++;
  }

  /** Removes a member from under a selector (a no-op if it is not there); empty structures are pruned. */
  delete(selector: TopicSelector, member: T): void {
    switch (selector.kind) {
      case 'any':
        if (this.any.delete(member)) this.pairs--;
        return;
      case 'exact': {
        const members = this.exact.get(selector.source);
        if (members === undefined || !members.delete(member)) return;
        this.pairs--;
        if (members.size === 0) this.exact.delete(selector.source);
        return;
      }
      case 'herald': {
        const before = this.herald.size;
        this.herald.delete(selector.segments, member);
        this.pairs -= before - this.herald.size;
        return;
      }
      case 'uri-template': {
        const prefix = templateKeyOf(selector);
        const bucket = this.templates.get(prefix);
        const entry = bucket?.get(selector.source);
        if (bucket === undefined || entry === undefined || !entry.members.delete(member)) return;
        this.pairs--;
        if (entry.members.size > 0) return;
        bucket.delete(selector.source);
        if (bucket.size === 0) this.templates.delete(prefix);
        return;
      }
      case 'url-pattern': {
        const trie = this.patterns.get(selector.base);
        if (trie === undefined) return;
        let compiled: CompiledPattern;
        try {
          compiled = patternMatcherOf(selector);
        } catch {
          return; // Never admitted, so never added.
        }
        const bucket = trie.get(compiled.keyPrefix);
        const entry = bucket?.get(selector.source);
        if (bucket === undefined || entry === undefined || !entry.members.delete(member)) return;
        this.pairs--;
        if (entry.members.size > 0) return;
        bucket.delete(selector.source);
        if (bucket.size > 0) return;
        trie.delete(compiled.keyPrefix);
        if (trie.size === 0) this.patterns.delete(selector.base);
        return;
      }
    }
  }

  /**
   * Calls `visit` for each member whose selectors match the topic, once per
   * matching selector (a member under two matching selectors is visited
   * twice, as with `SelectorIndex`). `visit` may delete members (a slow
   * subscriber dropped mid-dispatch): the tries are walked to the end before
   * the first visit, so their reshaping cannot cut a walk short.
   */
  forEachMatch(topic: string, visit: (member: T) => void): void {
    for (const member of this.any) visit(member);
    const exact = this.exact.get(topic);
    if (exact !== undefined) for (const member of exact) visit(member);
    if (this.herald.size > 0) this.herald.forEachMatch(topic.split('/'), visit);
    // Sources are at most MAX_SELECTOR_BYTES long, so a longer topic is not even one template's own source.
    if (topic.length > MAX_MATCHED_TOPIC_LENGTH) return;
    if (this.templates.size > 0) {
      const normalized = normalizeEscapes(topic);
      const buckets: Bucket<TemplateEntry<T>>[] = [];
      this.templates.forEachPrefixOf(normalized, (bucket) => buckets.push(bucket));
      for (const bucket of buckets) {
        for (const entry of bucket.values()) {
          if (topic === entry.source || entry.compiled?.testNormalized(normalized) === true) {
            for (const member of entry.members) visit(member);
          }
        }
      }
    }
    if (this.patterns.size > 0) {
      const buckets: Bucket<PatternEntry<T>>[] = [];
      for (const [base, trie] of this.patterns) {
        const key = topicKey(topic, base);
        if (key !== undefined) trie.forEachPrefixOf(key, (bucket) => buckets.push(bucket));
      }
      for (const bucket of buckets) {
        for (const entry of bucket.values()) {
          if (entry.compiled.test(topic)) for (const member of entry.members) visit(member);
        }
      }
    }
  }

  /** What each structure holds (for tests and metrics). */
  footprint(): IndexFootprint {
    let patternNodes = 0;
    for (const trie of this.patterns.values()) patternNodes += trie.nodeCount();
    return {
      any: this.any.size,
      exactTopics: this.exact.size,
      heraldNodes: this.herald.nodeCount(),
      templatePrefixes: this.templates.size,
      templateNodes: this.templates.nodeCount(),
      patternBases: this.patterns.size,
      patternNodes,
    };
  }
}

/** The trie key of a template: its literal prefix, escapes upper-cased as the topics looked up are. */
function templateKeyOf(selector: UriTemplateSelector): string {
  return templatePrefix(normalizeEscapes(selector.source));
}
