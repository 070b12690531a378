import { checkMediaGrant, signMediaGrant } from "./media-grants";

const secret = "s".repeat(40);
const mediaId = "0b6f6a36-6a43-4a55-9f3c-1f2a8d1c0e11";
const viewerId = "5d1d4d9e-7c55-4f0e-8a4b-2b9a3f1e6c22";
const ownerId = "9a0c7e1b-3d2f-4c8e-b6a5-7f1e2d3c4b55";

describe("media grants", () => {
  const now = 1_800_000_000;
  const token = signMediaGrant({ mediaId, viewerId, ownerId, expiresAt: now + 60 }, secret);

  it("lets the named viewer read the named media until it expires", () => {
    expect(checkMediaGrant(token, { mediaId, viewerId, ownerId }, secret, now)).toEqual({ ok: true });
    expect(checkMediaGrant(token, { mediaId, viewerId, ownerId }, secret, now + 60)).toEqual({
      ok: false,
      reason: "expired",
    });
  });

  it("is useless to another viewer, for other media, or under another secret", () => {
    expect(checkMediaGrant(token, { mediaId, viewerId: mediaId, ownerId }, secret, now)).toEqual({
      ok: false,
      reason: "other-viewer",
    });
    expect(checkMediaGrant(token, { mediaId: viewerId, viewerId, ownerId }, secret, now)).toEqual({
      ok: false,
      reason: "other-media",
    });
    expect(checkMediaGrant(token, { mediaId, viewerId, ownerId: viewerId }, secret, now)).toEqual({
      ok: false,
      reason: "other-owner",
    });
    expect(checkMediaGrant(token, { mediaId, viewerId, ownerId }, "t".repeat(40), now)).toEqual({
      ok: false,
      reason: "signature",
    });
  });

  it("refuses a grant whose fields were changed", () => {
    const [version, m, v, o, , signature] = token.split(".");
    const extended = [version, m, v, o, String(now + 999_999), signature].join(".");
    expect(checkMediaGrant(extended, { mediaId, viewerId, ownerId }, secret, now)).toEqual({
      ok: false,
      reason: "signature",
    });
  });

  it.each([
    [undefined],
    [42],
    [""],
    ["g2.a.b"],
    ["x".repeat(600)],
    [`g2.${mediaId}.${viewerId}.${ownerId}.soon.sig`],
  ])("refuses a malformed grant (%p)", (bad) => {
    expect(checkMediaGrant(bad, { mediaId, viewerId, ownerId }, secret, now)).toEqual({
      ok: false,
      reason: "malformed",
    });
  });
});
