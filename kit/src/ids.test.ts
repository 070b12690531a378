import { isUuid, timeOrderedUuid } from "./ids";

describe("timeOrderedUuid", () => {
  it("should make version-7 UUIDs that sort in the order they were made, even within a millisecond", () => {
    const ids = Array.from({ length: 1000 }, () => timeOrderedUuid());
    for (const id of ids) {
      expect(isUuid(id)).toBe(true);
      expect(id[14]).toBe("7");
    }
    expect(new Set(ids).size).toBe(ids.length);
    expect([...ids].sort()).toEqual(ids);
  });
});
