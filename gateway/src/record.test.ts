import v8 from "node:v8";
import { emptyRecord } from "./record";

v8.setFlagsFromString("--allow-natives-syntax");
const hasFastProperties = new Function("object", "return %HasFastProperties(object)") as (
  object: object,
) => boolean;

describe("emptyRecord", () => {
  it("should inherit no property, as Object.create(null)", () => {
    const record = emptyRecord();
    for (const name of ["constructor", "toString", "hasOwnProperty", "valueOf", "__proto__"]) {
      expect({ name, value: record[name] }).toEqual({ name, value: undefined });
      expect(name in record).toBe(false);
    }
  });

  it("should keep an own property for every name written, __proto__ too, in insertion order", () => {
    const record = emptyRecord();
    record.b = 1;
    const inherited: string = "constructor";
    record[inherited] = 2;
    record.__proto__ = { x: 3 };
    record.a = null;
    expect(Object.keys(record)).toEqual(["b", "constructor", "__proto__", "a"]);
    expect(JSON.stringify(record)).toBe('{"b":1,"constructor":2,"__proto__":{"x":3},"a":null}');
    expect(emptyRecord()).not.toHaveProperty("b");
  });

  it("should stay in V8's fast mode where Object.create(null) makes a dictionary", () => {
    const record = emptyRecord();
    record.id = "1";
    record.displayName = "A";
    expect(hasFastProperties(record)).toBe(true);
    expect(hasFastProperties(Object.create(null) as object)).toBe(false);
  });
});
