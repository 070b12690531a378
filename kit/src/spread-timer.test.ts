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
});
