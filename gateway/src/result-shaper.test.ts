import { buildSchema, isValidLeafValue, type NamedType } from "@apollo/federation-internals";
import { leafValidity } from "./result-shaper";

const schema = buildSchema(`
  scalar DateTime
  enum Role { ADMIN MEMBER }
  type Query { a: String b: ID c: Int d: Float e: Boolean f: Role g: DateTime }
`);

const values: unknown[] = [
  true,
  false,
  0,
  1,
  -3,
  1.5,
  -0.25,
  1e20,
  1e21,
  Number.NaN,
  Number.POSITIVE_INFINITY,
  "",
  "x",
  "1",
  "ADMIN",
  "admin",
  "GUEST",
  {},
  [],
  [1],
];

describe("leafValidity", () => {
  it.each(["String", "ID", "Int", "Float", "Boolean", "Role", "DateTime"])(
    "should judge every kind of value for %s as isValidLeafValue does",
    (name) => {
      const type = schema.type(name) as NamedType;
      const isValid = leafValidity(schema, type);
      for (const value of values) {
        const expected = isValidLeafValue(schema, value, type as Parameters<typeof isValidLeafValue>[2]);
        expect({ value, valid: isValid(value) }).toEqual({ value, valid: expected });
      }
    },
  );
});
