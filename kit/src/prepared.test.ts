import { prepared, type SqlStatement } from "./prisma";

/** A statement whose text says how often it was read (a Prisma.sql template builds it on each read). */
function counted(values: unknown[]): SqlStatement & { reads: number } {
  return {
    reads: 0,
    get text() {
      this.reads += 1;
      return "SELECT $1::int";
    },
    values,
  };
}

describe("prepared", () => {
  it("reads a name's text once and reuses that string, with each statement's own values", () => {
    const first = counted([1]);
    const second = counted([2]);
    const a = prepared("test_prepared_reads_once", first);
    const b = prepared("test_prepared_reads_once", second);
    expect(first.reads).toBe(1);
    expect(second.reads).toBe(0);
    expect(b.text).toBe(a.text);
    expect(a).toEqual({ name: "test_prepared_reads_once", text: "SELECT $1::int", values: [1] });
    expect(b).toEqual({ name: "test_prepared_reads_once", text: "SELECT $1::int", values: [2] });
  });

  it("reads each name's own text", () => {
    const other = counted([3]);
    expect(prepared("test_prepared_other_name", other).text).toBe("SELECT $1::int");
    expect(other.reads).toBe(1);
  });
});
