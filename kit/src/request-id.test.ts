import { randomUUID } from "node:crypto";
import { setFlagsFromString } from "node:v8";
import { requestIdFrom } from "./request-id";

setFlagsFromString("--allow-natives-syntax");
const isFlat = new Function("text", "return %StringIsFlat(text)") as (text: string) => boolean;

describe("requestIdFrom", () => {
  it("keeps a well-formed caller's id and replaces a malformed one", () => {
    expect(requestIdFrom("abc-123_4.5:6")).toBe("abc-123_4.5:6");
    expect(requestIdFrom(["first-id-1", "second-id-2"])).toBe("first-id-1");
    expect(requestIdFrom("bad id\n")).toMatch(
      /^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/,
    );
  });

  it("makes a new id as one flat string, not a rope", () => {
    // The check itself: randomUUID's own text is a rope.
    expect(isFlat(randomUUID())).toBe(false);
    const id = requestIdFrom(undefined);
    // Read before anything else reads the text: a regular expression flattens a rope in place.
    expect(isFlat(id)).toBe(true);
    expect(id).toMatch(/^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/);
    expect(requestIdFrom(undefined)).not.toBe(id);
  });
});
