import { LRUCache } from "lru-cache";

/**
 * What each key's cached text last parsed to, kept for at most `max` keys: the same text is not
 * parsed again (the text, e.g. in Redis, stays the only truth; a changed text is parsed anew). The
 * values are shared by every caller and must never be changed.
 */
export class ParsedTexts<T extends object> {
  private readonly last: LRUCache<string, { text: string; value: T }>;

  constructor(
    max: number,
    private readonly parseText: (text: string) => T,
  ) {
    this.last = new LRUCache({ max });
  }

  /** `text` (the cached text of `key`) parsed: from the last parse when the text is the same. */
  parse(key: string, text: string): T {
    const last = this.last.get(key);
    if (last?.text === text) return last.value;
    const value = this.parseText(text);
    this.last.set(key, { text, value });
    return value;
  }
}
