import { createLogger } from "@hv/kit";
import { SubscriptionHub, type SharedRun } from "./hub";
import { UpstreamPool } from "./upstream";

const logger = createLogger({ service: "test", level: "silent" });

function hub(fetchShareMs: number): SubscriptionHub {
  return new SubscriptionHub({
    dataSources: {},
    upstream: new UpstreamPool({ urls: {}, connectionsPerSubgraph: 1, keepAliveMs: 12_000, logger }),
    fetchShareMs,
    userCacheMs: 0,
    maxCachedFetches: 100,
    maxQueuedPerSubscription: 10,
    maxInFlightPerFeed: 10,
    logger,
  });
}

const answered = (): Promise<SharedRun> => Promise.resolve({ result: { data: {} }, unsureOwners: new Set() });

describe("SubscriptionHub's shared event results", () => {
  beforeEach(() => jest.useFakeTimers());
  afterEach(() => jest.useRealTimers());

  it("should keep a settled result for fetchShareMs with one timer for all events, then run again", async () => {
    const events = hub(1_000);
    const runs = new Map<string, number>();
    const run = (key: string) => () => {
      runs.set(key, (runs.get(key) ?? 0) + 1);
      return answered();
    };
    const keys = Array.from({ length: 50 }, (_, i) => `event-${i}`);
    for (const key of keys) await events.runOnce(key, run(key));
    expect(jest.getTimerCount()).toBe(1); // not one per event

    jest.advanceTimersByTime(999);
    for (const key of keys) await events.runOnce(key, run(key));
    expect([...runs.values()]).toEqual(Array(50).fill(1)); // shared within the window

    jest.advanceTimersByTime(1_001); // 2 s after: dropped
    for (const key of keys) await events.runOnce(key, run(key));
    expect([...runs.values()]).toEqual(Array(50).fill(2));

    jest.advanceTimersByTime(4_000); // nothing kept: the sweep stops
    expect(jest.getTimerCount()).toBe(0);
    await events.stop();
  });

  it("should not keep a result with errors", async () => {
    const events = hub(1_000);
    let runs = 0;
    const withErrors = () => {
      runs += 1;
      return Promise.resolve({
        result: { errors: [{ message: "down" }] } as unknown as SharedRun["result"],
        unsureOwners: new Set<string>(),
      });
    };
    await events.runOnce("a", withErrors);
    await events.runOnce("a", withErrors);
    expect(runs).toBe(2);
    expect(jest.getTimerCount()).toBe(0);
    await events.stop();
  });
});
