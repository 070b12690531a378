import {
  accessTokenDigest,
  REVOCATION_ASSERTION_MAX_AGE_MS,
  revocationAssertions,
} from "./revocation-assertions";

describe("revocation assertions", () => {
  const assertions = revocationAssertions("a-revocation-assertion-secret-0123456789");
  const digest = accessTokenDigest("header.payload.signature");
  const now = 1_800_000_000_000;

  it("should hold for the token and the time it was signed for", () => {
    const header = assertions.sign(digest, now);
    expect(assertions.holds(header, digest, now)).toBe(true);
    expect(assertions.holds(header, digest, now + REVOCATION_ASSERTION_MAX_AGE_MS)).toBe(true);
  });

  it("should not hold for another token, past its age, far ahead, or under another secret", () => {
    const header = assertions.sign(digest, now);
    expect(assertions.holds(header, accessTokenDigest("header.payload.other"), now)).toBe(false);
    expect(assertions.holds(header, digest, now + REVOCATION_ASSERTION_MAX_AGE_MS + 1)).toBe(false);
    expect(assertions.holds(header, digest, now - 60_000)).toBe(false);
    const forged = revocationAssertions("another-secret-that-is-long-enough-000000").sign(digest, now);
    expect(assertions.holds(forged, digest, now)).toBe(false);
  });

  it("should not hold when its stamp or signature was changed, or it is not one", () => {
    const header = assertions.sign(digest, now);
    const [version, stamp, signature] = header.split(".") as [string, string, string];
    expect(assertions.holds(`${version}.${Number(stamp) + 5_000}.${signature}`, digest, now)).toBe(false);
    expect(assertions.holds(`${version}.${stamp}.${signature.slice(0, -2)}AA`, digest, now)).toBe(false);
    for (const bad of [
      undefined,
      "",
      "r1",
      `r0.${stamp}.${signature}`,
      `${header}.x`,
      "r1.x.y",
      "r1.1.".padEnd(200, "a"),
    ])
      expect(assertions.holds(bad, digest, now)).toBe(false);
  });
});
