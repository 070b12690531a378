import { RestartBackoff } from "./restart-backoff";

describe("RestartBackoff", () => {
  const options = { initialDelayMs: 500, maxDelayMs: 4_000, stableAfterMs: 60_000 };

  it("should double the delay for each crash in a row, up to the maximum", () => {
    const backoff = new RestartBackoff(options);
    const delays: number[] = [];
    let now = 1_000;
    for (let i = 0; i < 6; i += 1) {
      backoff.started(now);
      now += 100; // crashes soon after each start
      delays.push(backoff.exited(now).delayMs);
    }
    expect(delays).toEqual([500, 1_000, 2_000, 4_000, 4_000, 4_000]);
  });

  it("should count the restarts in a row", () => {
    const backoff = new RestartBackoff(options);
    backoff.started(0);
    expect(backoff.exited(10).attempt).toBe(1);
    backoff.started(600);
    expect(backoff.exited(700).attempt).toBe(2);
  });

  it("should start again from the initial delay once the process stayed up long enough", () => {
    const backoff = new RestartBackoff(options);
    backoff.started(0);
    backoff.exited(10);
    backoff.started(600);
    expect(backoff.exited(700)).toEqual({ delayMs: 1_000, attempt: 2 });
    backoff.started(2_000);
    expect(backoff.exited(2_000 + 59_999)).toEqual({ delayMs: 2_000, attempt: 3 });
    backoff.started(70_000);
    expect(backoff.exited(70_000 + 60_000)).toEqual({ delayMs: 500, attempt: 1 });
  });
});
