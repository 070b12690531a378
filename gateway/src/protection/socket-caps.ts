import { addressBudgetKey } from "@hv/kit";

/** Open sockets per key, on this replica: a slot is taken before a socket opens and given back once. */
export class OpenSocketCounter {
  private readonly open = new Map<string, number>();

  constructor(readonly max: number) {}

  /** Takes a slot for `key`; the returned function gives it back (once, however often called). Null when full. */
  take(key: string): (() => void) | null {
    const count = this.open.get(key) ?? 0;
    if (count >= this.max) return null;
    this.open.set(key, count + 1);
    let given = false;
    return () => {
      if (given) return;
      given = true;
      const left = (this.open.get(key) ?? 1) - 1;
      if (left <= 0) this.open.delete(key);
      else this.open.set(key, left);
    };
  }

  count(key: string): number {
    return this.open.get(key) ?? 0;
  }
}

/** The gateway's caps on open graphql-ws connections: per client address (IPv6 by /64) and per user. */
export class SocketCaps {
  private readonly byAddress: OpenSocketCounter;
  private readonly byUser: OpenSocketCounter;

  constructor(caps: { perAddress: number; perUser: number }) {
    this.byAddress = new OpenSocketCounter(caps.perAddress);
    this.byUser = new OpenSocketCounter(caps.perUser);
  }

  get perAddress(): number {
    return this.byAddress.max;
  }

  get perUser(): number {
    return this.byUser.max;
  }

  takeAddress(ip: string): (() => void) | null {
    return this.byAddress.take(addressBudgetKey(ip));
  }

  takeUser(userId: string): (() => void) | null {
    return this.byUser.take(userId);
  }
}
