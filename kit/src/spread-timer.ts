/**
 * Periodic work for many members (sockets, subscriptions, tokens), spread evenly over the period:
 * ONE timer per set ticks every `tickMs` and hands `run` the members of that tick's slot, so every
 * member is visited once per `periodMs`. A member joins the least-filled slot, so a burst of joins
 * (10,000 phones reconnecting after a deploy) does not come back as a burst of work every period.
 * A member's first visit comes within one period of joining. No members, no timer; the timer
 * wakes only for slots that hold members (a few members cost a few wake-ups per period, not a tick each).
 */
export interface SpreadTimerOptions<T> {
  periodMs: number;
  /** Default: a twentieth of the period, at least 50 ms. */
  tickMs?: number;
  /** Called with the members due (never empty); a member removed meanwhile is not passed. */
  run(due: T[]): void;
}

export class SpreadTimer<T> {
  private readonly slots: Array<Set<T>>;
  private readonly slotOf = new Map<T, number>();
  private readonly tickMs: number;
  /** The slot the pending timer runs, and when (Date.now() ms). */
  private cursor = 0;
  private dueAt = 0;
  private timer: NodeJS.Timeout | undefined;

  constructor(private readonly options: SpreadTimerOptions<T>) {
    this.tickMs = Math.min(
      options.periodMs,
      options.tickMs ?? Math.max(50, Math.floor(options.periodMs / 20)),
    );
    const count = Math.max(1, Math.round(options.periodMs / this.tickMs));
    this.slots = Array.from({ length: count }, () => new Set<T>());
  }

  get size(): number {
    return this.slotOf.size;
  }

  add(member: T): void {
    if (this.slotOf.has(member)) return;
    let best = 0;
    for (let index = 1; index < this.slots.length; index += 1) {
      if (this.slots[index]!.size < this.slots[best]!.size) best = index;
    }
    this.slots[best]!.add(member);
    this.slotOf.set(member, best);
    if (!this.timer) {
      this.dueAt = Date.now() + this.tickMs;
      this.schedule(this.stepsToMember(this.cursor));
      return;
    }
    // A slot before the pending one whose turn is still ahead: wake for it instead.
    const before = (this.cursor - best + this.slots.length) % this.slots.length;
    if (before > 0 && this.dueAt - before * this.tickMs > Date.now()) {
      this.cursor = best;
      this.dueAt -= before * this.tickMs;
      this.schedule(0);
    }
  }

  delete(member: T): void {
    const slot = this.slotOf.get(member);
    if (slot === undefined) return;
    this.slotOf.delete(member);
    this.slots[slot]!.delete(member);
    if (this.slotOf.size === 0) this.stop();
  }

  /** Stops the timer and forgets every member. */
  clear(): void {
    for (const slot of this.slots) slot.clear();
    this.slotOf.clear();
    this.stop();
  }

  private stop(): void {
    clearTimeout(this.timer);
    this.timer = undefined;
  }

  /** Ticks from slot `from` (0 = `from` itself) to the first slot that holds a member. */
  private stepsToMember(from: number): number {
    for (let steps = 0; steps < this.slots.length; steps += 1) {
      if (this.slots[(from + steps) % this.slots.length]!.size > 0) return steps;
    }
    return 0;
  }

  /** Moves the pending turn `steps` slots on and arms the timer for it (never in the past). */
  private schedule(steps: number): void {
    clearTimeout(this.timer);
    this.cursor = (this.cursor + steps) % this.slots.length;
    this.dueAt += steps * this.tickMs;
    const now = Date.now();
    if (this.dueAt < now) this.dueAt = now;
    this.timer = setTimeout(() => this.tick(), this.dueAt - now);
    this.timer.unref();
  }

  private tick(): void {
    const slot = this.slots[this.cursor]!;
    if (slot.size > 0) this.options.run([...slot]);
    if (this.slotOf.size === 0) return;
    this.schedule(1 + this.stepsToMember((this.cursor + 1) % this.slots.length));
  }
}
