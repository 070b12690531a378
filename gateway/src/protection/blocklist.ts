import { BlockList, isIP } from "node:net";
import type { Logger, Redis } from "@hv/kit";

/** One blocked network: its canonical CIDR, why, and when it was added. */
export interface BlockEntry {
  cidr: string;
  reason: string;
  addedAt: string;
}

export interface ParsedCidr {
  /** Canonical text: `203.0.113.0/24`, `2001:db8::/32`; a bare address becomes /32 or /128. */
  cidr: string;
  address: string;
  prefix: number;
  family: "ipv4" | "ipv6";
}

/** Parses `a.b.c.d[/n]` or an IPv6 address with an optional `/n`; throws with what is wrong. */
export function parseCidr(text: string): ParsedCidr {
  const trimmed = text.trim();
  const [rawAddress = "", rawPrefix, ...rest] = trimmed.split("/");
  const version = isIP(rawAddress);
  if (version === 0 || rest.length > 0)
    throw new Error(`"${text}" is not an IPv4 or IPv6 address or CIDR block`);
  const family = version === 4 ? "ipv4" : "ipv6";
  const max = version === 4 ? 32 : 128;
  if (rawPrefix !== undefined && !/^\d{1,3}$/.test(rawPrefix))
    throw new Error(`"${text}": the prefix length must be a number 0–${max}`);
  const prefix = rawPrefix === undefined ? max : Number(rawPrefix);
  if (prefix > max) throw new Error(`"${text}": the prefix length must be at most ${max}`);
  // The WHATWG URL parser writes IPv6 addresses in their canonical compressed form.
  const address = family === "ipv6" ? new URL(`http://[${rawAddress}]/`).hostname.slice(1, -1) : rawAddress;
  return { cidr: `${address}/${prefix}`, address, prefix, family };
}

/** Where one deployment keeps its blocklist: a Redis hash (CIDR → entry) and a change channel. */
export function blocklistKeys(prefix: string) {
  return { hash: `${prefix}:blocklist`, channel: `${prefix}:blocklist:changed` };
}

/** Reads and changes the blocklist in Redis (the CLI, and every gateway replica reading it). */
export class BlocklistStore {
  private readonly keys: ReturnType<typeof blocklistKeys>;

  constructor(
    private readonly redis: Redis,
    prefix: string,
  ) {
    this.keys = blocklistKeys(prefix);
  }

  get channel(): string {
    return this.keys.channel;
  }

  async add(cidr: string, reason: string, now = new Date()): Promise<BlockEntry> {
    const parsed = parseCidr(cidr);
    const entry: BlockEntry = { cidr: parsed.cidr, reason: reason.slice(0, 500), addedAt: now.toISOString() };
    await this.redis.hset(this.keys.hash, parsed.cidr, JSON.stringify(entry));
    await this.redis.publish(this.keys.channel, "add");
    return entry;
  }

  /** True when the block was there. */
  async remove(cidr: string): Promise<boolean> {
    const parsed = parseCidr(cidr);
    const removed = await this.redis.hdel(this.keys.hash, parsed.cidr);
    await this.redis.publish(this.keys.channel, "remove");
    return removed > 0;
  }

  async list(): Promise<BlockEntry[]> {
    const raw = await this.redis.hgetall(this.keys.hash);
    const entries: BlockEntry[] = [];
    for (const [cidr, value] of Object.entries(raw)) {
      try {
        const parsed = JSON.parse(value) as Partial<BlockEntry>;
        entries.push({ cidr, reason: String(parsed.reason ?? ""), addedAt: String(parsed.addedAt ?? "") });
      } catch {
        entries.push({ cidr, reason: "", addedAt: "" });
      }
    }
    return entries.sort((a, b) => a.cidr.localeCompare(b.cidr));
  }
}

/** The blocklist as one replica holds it in memory: matched on every request without a Redis call. */
export class LiveBlocklist {
  private blocks = new BlockList();
  private size = 0;
  private subscriber: Redis | undefined;
  private timer: NodeJS.Timeout | undefined;
  private readonly listeners = new Set<() => void>();
  private refreshing: Promise<void> | undefined;

  constructor(
    private readonly store: BlocklistStore,
    private readonly redis: Redis,
    private readonly refreshSeconds: number,
    private readonly logger: Logger,
  ) {}

  /** Loads the list, then follows changes: at once over pub/sub, and by a poll in case a notice was missed. */
  async start(): Promise<void> {
    await this.refresh();
    const subscriber = this.redis.duplicate();
    this.subscriber = subscriber;
    subscriber.on("error", (error: Error) =>
      this.logger.warn({ err: error }, "blocklist: subscriber connection error"),
    );
    subscriber.on("message", () => void this.refresh());
    // After a reconnect the subscription is restored by ioredis; read again what changed meanwhile.
    subscriber.on("ready", () => void this.refresh());
    await subscriber.subscribe(this.store.channel);
    this.timer = setInterval(() => void this.refresh(), this.refreshSeconds * 1000);
    this.timer.unref();
  }

  /** Runs after each reload (e.g. to close WebSockets of addresses blocked since). */
  onChange(listener: () => void): void {
    this.listeners.add(listener);
  }

  refresh(): Promise<void> {
    // Reloads that arrive while one runs share its result and one more run after it.
    const run = async () => {
      try {
        const entries = await this.store.list();
        const next = new BlockList();
        for (const entry of entries) {
          try {
            const parsed = parseCidr(entry.cidr);
            next.addSubnet(parsed.address, parsed.prefix, parsed.family);
          } catch (error) {
            this.logger.warn(
              { err: error, cidr: entry.cidr },
              "blocklist: ignoring an entry that is not a CIDR block",
            );
          }
        }
        this.blocks = next;
        this.size = entries.length;
      } catch (error) {
        // Keep enforcing the last list we read.
        this.logger.warn({ err: error }, "blocklist: could not reload from Redis; keeping the last list");
        return;
      }
      for (const listener of this.listeners) listener();
    };
    const previous = this.refreshing ?? Promise.resolve();
    const next = previous.then(run);
    this.refreshing = next;
    void next.finally(() => {
      if (this.refreshing === next) this.refreshing = undefined;
    });
    return next;
  }

  isBlocked(ip: string): boolean {
    if (this.size === 0) return false;
    const version = isIP(ip);
    if (version === 0) return false;
    return this.blocks.check(ip, version === 4 ? "ipv4" : "ipv6");
  }

  async stop(): Promise<void> {
    if (this.timer) clearInterval(this.timer);
    const subscriber = this.subscriber;
    this.subscriber = undefined;
    if (subscriber) {
      await subscriber.quit().catch(() => subscriber.disconnect());
    }
    await this.refreshing?.catch(() => undefined);
  }
}
