import { shortLineDiff } from "../line-diff";

describe("shortLineDiff", () => {
  it("should show a changed line with its context and line numbers", () => {
    const before = ["a", "b", "c", "d", "e", "f", "g"].join("\n");
    const after = ["a", "b", "c", "D", "e", "f", "g"].join("\n");

    expect(shortLineDiff(before, after)).toEqual(["@@ -2 +2 @@", " b", " c", "-d", "+D", " e", " f"]);
  });

  it("should cap long diffs", () => {
    const before = Array.from({ length: 100 }, (_, i) => `line ${i}`).join("\n");

    const diff = shortLineDiff(before, "", 2, 10);

    expect(diff).toHaveLength(11);
    expect(diff[10]).toMatch(/more diff lines$/);
  });
});
