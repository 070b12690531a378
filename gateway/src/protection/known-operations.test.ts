import { KnownOperations } from "./known-operations";
import type { SensitivePoints } from "./rate-limits";

const SEND = "mutation Send($t: String) { sendMessage(text: $t) }";
const POINTS: SensitivePoints = [["sendMessage", 1]];

describe("KnownOperations", () => {
  it("should know a learned operation by its text or persisted hash, and by its operation name", () => {
    const known = new KnownOperations(10);
    known.learn(
      {
        query: SEND,
        operationName: "Send",
        extensions: { persistedQuery: { version: 1, sha256Hash: "abc" } },
      },
      SEND,
      POINTS,
    );
    expect([
      known.pointsOfBody({ query: SEND, operationName: "Send" }),
      known.pointsOfBody({
        operationName: "Send",
        extensions: { persistedQuery: { version: 1, sha256Hash: "abc" } },
      }),
      known.pointsOfBody({ query: SEND }),
      known.pointsOfBody({ query: SEND, operationName: "Other" }),
      known.pointsOfBody({ query: `${SEND} `, operationName: "Send" }),
      known.pointsOfBody([{ query: SEND, operationName: "Send" }]),
      known.pointsOfBody(undefined),
    ]).toEqual([POINTS, POINTS, undefined, undefined, undefined, undefined, undefined]);
  });

  it("should not mistake one name and text for another split differently", () => {
    const known = new KnownOperations(10);
    known.learn({ operationName: "x" }, "y:z", POINTS);
    expect(known.pointsOfBody({ operationName: "x:y", query: "z" })).toBeUndefined();
    expect(known.pointsOfBody({ operationName: "x", query: "y:z" })).toEqual(POINTS);
  });

  it("should keep only operations with sensitive points, at most maxEntries, the first learned going first", () => {
    const known = new KnownOperations(2);
    known.learn({}, "mutation { pass }", []);
    for (const text of ["a", "b", "c"]) known.learn({}, text, POINTS);
    expect(["mutation { pass }", "a", "b", "c"].map((query) => known.pointsOfBody({ query }))).toEqual([
      undefined,
      undefined,
      POINTS,
      POINTS,
    ]);
  });
});
