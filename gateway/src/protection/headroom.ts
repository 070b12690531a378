/**
 * What this replica last learned of budgets' use, per budget key: the points left when the last
 * admission counted (less the requests it let in early since) and when that window ends. A key
 * unknown, past its window, or left with less than `margin` points is "not known to be far from
 * exhausted". At most `maxKeys` are kept (the first learned goes first).
 */
export class BudgetHeadroom {
  private readonly known = new Map<string, { left: number; until: number }>();

  constructor(private readonly maxKeys: number) {}

  /** The admission counted `used` of `points` on `key`, whose window ends in `ttlMs`. */
  learn(key: string, points: number, used: number, ttlMs: number, now: number): void {
    const entry = this.known.get(key);
    if (entry !== undefined) {
      entry.left = points - used;
      entry.until = now + ttlMs;
      return;
    }
    if (this.known.size >= this.maxKeys) this.known.delete(this.known.keys().next().value as string);
    this.known.set(key, { left: points - used, until: now + ttlMs });
  }

  forget(key: string): void {
    this.known.delete(key);
  }

  /** Whether every key has at least `margin` points left (known, in its window); if so, one point each is taken. */
  take(keys: ReadonlyArray<{ key: string; margin: number }>, now: number): boolean {
    for (const { key, margin } of keys) {
      const entry = this.known.get(key);
      if (entry === undefined || entry.until <= now || entry.left - 1 < margin) return false;
    }
    for (const { key } of keys) this.known.get(key)!.left -= 1;
    return true;
  }

  size(): number {
    return this.known.size;
  }
}
