import { SpreadTimer } from "./spread-timer";

describe("SpreadTimer", () => {
  beforeEach(() => jest.useFakeTimers());
  afterEach(() => jest.useRealTimers());

  it("should visit every member once per period, a burst of joins spread evenly over the ticks", () => {
    const visits: string[][] = [];
    const timer = new SpreadTimer<string>({ periodMs: 1_000, tickMs: 100, run: (due) => visits.push(due) });
    const members = Array.from({ length: 100 }, (_, i) => `m${i}`);
    for (const member of members) timer.add(member); // all at once
    jest.advanceTimersByTime(1_000);
    expect(visits).toHaveLength(10);
    expect(visits.map((due) => due.length)).toEqual(Array(10).fill(10));
    expect(visits.flat().sort()).toEqual([...members].sort());
    jest.advanceTimersByTime(1_000);
    expect(visits.slice(10).flat().sort()).toEqual([...members].sort());
    timer.clear();
  });

  it("should not pass a removed member, and should stop ticking with no members", () => {
    const run = jest.fn();
    const timer = new SpreadTimer<number>({ periodMs: 1_000, tickMs: 250, run });
    timer.add(1);
    timer.add(2);
    timer.delete(1);
    jest.advanceTimersByTime(1_000);
    expect(run.mock.calls.flat().flat()).toEqual([2]);
    timer.delete(2);
    expect(timer.size).toBe(0);
    expect(jest.getTimerCount()).toBe(0);
    run.mockClear();
    jest.advanceTimersByTime(5_000);
    expect(run).not.toHaveBeenCalled();
  });

  it("should count a member added twice once", () => {
    const run = jest.fn();
    const timer = new SpreadTimer<string>({ periodMs: 500, tickMs: 500, run });
    timer.add("a");
    timer.add("a");
    expect(timer.size).toBe(1);
    jest.advanceTimersByTime(500);
    expect(run).toHaveBeenCalledWith(["a"]);
    timer.clear();
  });

  it("should wake only for the slots that hold members", () => {
    const visits: number[] = [];
    const timer = new SpreadTimer<string>({
      periodMs: 1_000,
      tickMs: 100,
      run: () => visits.push(Date.now()),
    });
    const start = Date.now();
    timer.add("a");
    timer.add("b");
    for (let wakeUp = 0; wakeUp < 10; wakeUp += 1) jest.advanceTimersToNextTimer();
    // Ten wake-ups are five periods of two visits (a tick per slot would have been one period).
    expect(visits).toHaveLength(10);
    expect(Date.now() - start).toBe(4_200);
    timer.clear();
  });

  it("should visit a member that joins within one period, and every period after", () => {
    const visits: Array<[string, number]> = [];
    const start = Date.now();
    const timer = new SpreadTimer<string>({
      periodMs: 1_000,
      tickMs: 100,
      run: (due) => due.forEach((member) => visits.push([member, Date.now() - start])),
    });
    timer.add("a"); // slot 0, due at 100 ms
    jest.advanceTimersByTime(550);
    timer.add("b"); // an empty slot, its turn this period already past
    jest.advanceTimersByTime(1_450); // to 2 000 ms
    timer.add("c"); // its slot comes before the pending turn
    jest.advanceTimersByTime(2_000);
    const times = (member: string) => visits.filter(([m]) => m === member).map(([, at]) => at);
    expect(times("a")).toEqual([100, 1_100, 2_100, 3_100]);
    const b = times("b");
    expect(b[0]! - 550).toBeLessThanOrEqual(1_000);
    expect(b.slice(1).map((at, i) => at - b[i]!)).toEqual(Array(b.length - 1).fill(1_000));
    const c = times("c");
    expect(c[0]! - 2_000).toBeLessThanOrEqual(1_000);
    expect(c[1]! - c[0]!).toBe(1_000);
    timer.clear();
  });
});
