import { createPublicKey, randomUUID, type JsonWebKey } from "node:crypto";
import http from "node:http";
import type { AddressInfo } from "node:net";
import { GraphQLError } from "graphql";
import Redis from "ioredis";
import {
  base64url,
  decodeJwt,
  decodeProtectedHeader,
  SignJWT,
  importJWK,
  type CryptoKey,
  type JSONWebKeySet,
} from "jose";
import {
  bearerAuthenticator,
  createAccessTokenIssuer,
  createAccessTokenVerifier,
  VERIFIED_TOKEN_MEMORY_MS,
  type AccessTokenIssuer,
  type AccessTokenVerifier,
} from "../src/auth/access-tokens";
import { SessionRevocations } from "../src/auth/revocations";
import { generateSigningKeyJwk, publicSigningKeyJwk, type SigningKeyJwk } from "../src/auth/signing-keys";
import type { Viewer } from "../src/auth/viewer";

const ISSUER = "haiyvee";
const AUDIENCE = "haiyvee-api";

const keyA = generateSigningKeyJwk("key-a");
const keyB = generateSigningKeyJwk("key-b");
const stranger = generateSigningKeyJwk("key-stranger");

function issuerWith(
  keys: SigningKeyJwk[],
  overrides: { issuer?: string; audience?: string; clock?: () => Date } = {},
): AccessTokenIssuer {
  return createAccessTokenIssuer({ keys, issuer: ISSUER, audience: AUDIENCE, ttlSeconds: 900, ...overrides });
}

function aViewer(overrides: Partial<Viewer> = {}): Viewer {
  return { userId: randomUUID(), sessionId: randomUUID(), role: "USER", ...overrides };
}

/** The reason a verification was refused with, or "accepted". */
async function outcome(verifier: AccessTokenVerifier, token: string): Promise<string> {
  try {
    await verifier.verify(token);
    return "accepted";
  } catch (error) {
    if (!(error instanceof GraphQLError)) throw error;
    expect(error.extensions.code).toBe("UNAUTHENTICATED");
    return String(error.extensions.reason);
  }
}

/** Valid claims for hand-made tokens. */
function claims(viewer: Viewer = aViewer()) {
  const now = Math.floor(Date.now() / 1000);
  return {
    iss: ISSUER,
    aud: AUDIENCE,
    sub: viewer.userId,
    sid: viewer.sessionId,
    role: viewer.role,
    iat: now,
    exp: now + 600,
    jti: randomUUID(),
  };
}

async function signWith(
  key: SigningKeyJwk,
  header: Record<string, unknown>,
  payload: Record<string, unknown>,
): Promise<string> {
  return new SignJWT(payload)
    .setProtectedHeader({ alg: "ES256", kid: key.kid, ...header })
    .sign((await importJWK(key, "ES256")) as CryptoKey);
}

describe("access tokens", () => {
  let redis: Redis;
  let revocations: SessionRevocations;
  let verifier: AccessTokenVerifier;
  const issuer = issuerWith([keyA]);

  beforeAll(() => {
    // A database of its own: a test elsewhere that flushes Redis cannot erase these revocations.
    redis = new Redis(process.env.REDIS_URL ?? "redis://127.0.0.1:6379", { db: 7, maxRetriesPerRequest: 1 });
    revocations = new SessionRevocations(redis);
    verifier = createAccessTokenVerifier({
      jwks: issuer.publicJwks(),
      issuer: ISSUER,
      audience: AUDIENCE,
      revocations,
    });
  });
  afterAll(async () => {
    await redis.quit();
  });

  it("should issue an ES256 at+jwt that verifies back to the same viewer", async () => {
    const viewer = aViewer({ role: "MODERATOR" });
    const before = Date.now();
    const { token, expiresAt } = await issuer.issue(viewer);

    expect(decodeProtectedHeader(token)).toEqual({ alg: "ES256", kid: "key-a", typ: "at+jwt" });
    const payload = decodeJwt(token);
    expect(payload).toEqual({
      iss: ISSUER,
      aud: AUDIENCE,
      sub: viewer.userId,
      sid: viewer.sessionId,
      role: "MODERATOR",
      iat: expect.any(Number),
      exp: expect.any(Number),
      jti: expect.any(String),
    });
    expect(payload.exp! - payload.iat!).toBe(900);
    expect(expiresAt.getTime()).toBe(payload.exp! * 1000);
    expect(expiresAt.getTime()).toBeGreaterThan(before + 899_000);
    await expect(verifier.verify(token)).resolves.toEqual(viewer);
  });

  it("should refuse to issue tokens that live longer than 15 minutes", () => {
    expect(() =>
      createAccessTokenIssuer({ keys: [keyA], issuer: ISSUER, audience: AUDIENCE, ttlSeconds: 901 }),
    ).toThrow(/900/);
  });

  it("should publish only public keys", () => {
    const jwks = issuerWith([keyA, keyB]).publicJwks();
    expect(jwks.keys.map((key) => key.kid)).toEqual(["key-a", "key-b"]);
    for (const key of jwks.keys) {
      expect(key).not.toHaveProperty("d");
      expect(key).toMatchObject({ kty: "EC", crv: "P-256", alg: "ES256", use: "sig" });
    }
  });

  it("should refuse an expired token with reason expired and tell the client to refresh", async () => {
    const past = issuerWith([keyA], { clock: () => new Date(Date.now() - 1000 * 1000) });
    const { token } = await past.issue(aViewer());
    await expect(verifier.verify(token)).rejects.toMatchObject({
      message: expect.stringMatching(/refresh/),
      extensions: { code: "UNAUTHENTICATED", reason: "expired" },
    });
  });

  it("should refuse a remembered token once it has expired (with the clock tolerance), and revoke it at once", async () => {
    let now = Date.now();
    const clocked = createAccessTokenVerifier({
      jwks: issuer.publicJwks(),
      issuer: ISSUER,
      audience: AUDIENCE,
      revocations,
      clock: () => new Date(now),
    });
    const viewer = aViewer();
    const { token, expiresAt } = await createAccessTokenIssuer({
      keys: [keyA],
      issuer: ISSUER,
      audience: AUDIENCE,
      ttlSeconds: 30,
    }).issue(viewer);
    expect(await outcome(clocked, token)).toBe("accepted");
    now = expiresAt.getTime() + 4_000; // within the 5 s tolerance
    expect(await outcome(clocked, token)).toBe("accepted");
    now = expiresAt.getTime() + 6_000;
    expect(await outcome(clocked, token)).toBe("expired");

    const fresh = await issuer.issue(viewer);
    now = Date.now();
    expect(await outcome(clocked, fresh.token)).toBe("accepted");
    await revocations.revokeSession(viewer.sessionId);
    expect(await outcome(clocked, fresh.token)).toBe("revoked");
  });

  it("should refuse an unsigned (alg none) token", async () => {
    const header = base64url.encode(JSON.stringify({ alg: "none", typ: "at+jwt", kid: "key-a" }));
    const body = base64url.encode(JSON.stringify(claims()));
    expect(await outcome(verifier, `${header}.${body}.`)).toBe("invalid");
  });

  it("should refuse an HS256 token whose HMAC secret is the public key", async () => {
    const publicPem = createPublicKey({
      key: { ...publicSigningKeyJwk(keyA) } as JsonWebKey,
      format: "jwk",
    }).export({ type: "spki", format: "pem" });
    const secrets = [Buffer.from(publicPem), Buffer.from(JSON.stringify(publicSigningKeyJwk(keyA)))];
    for (const secret of secrets) {
      const token = await new SignJWT(claims())
        .setProtectedHeader({ alg: "HS256", kid: "key-a", typ: "at+jwt" })
        .sign(secret);
      expect(await outcome(verifier, token)).toBe("invalid");
    }
  });

  it("should refuse a token for another audience or from another issuer", async () => {
    const otherAudience = await issuerWith([keyA], { audience: "someone-else" }).issue(aViewer());
    const otherIssuer = await issuerWith([keyA], { issuer: "not-haiyvee" }).issue(aViewer());
    expect(await outcome(verifier, otherAudience.token)).toBe("invalid");
    expect(await outcome(verifier, otherIssuer.token)).toBe("invalid");
  });

  it("should refuse a correctly signed token whose typ is not at+jwt", async () => {
    expect(await outcome(verifier, await signWith(keyA, { typ: "JWT" }, claims()))).toBe("invalid");
    expect(await outcome(verifier, await signWith(keyA, {}, claims()))).toBe("invalid");
    // The same claims with the right typ pass: only typ made the difference.
    expect(await outcome(verifier, await signWith(keyA, { typ: "at+jwt" }, claims()))).toBe("accepted");
  });

  it("should refuse a correctly signed token that lacks a claim or has an unknown role", async () => {
    const { sid: _sid, ...withoutSession } = claims();
    expect(await outcome(verifier, await signWith(keyA, { typ: "at+jwt" }, withoutSession))).toBe("invalid");
    expect(
      await outcome(verifier, await signWith(keyA, { typ: "at+jwt" }, { ...claims(), role: "ADMIN" })),
    ).toBe("invalid");
  });

  it("should carry the account's creation time (claim `created`) and refuse a malformed one", async () => {
    const viewer = aViewer({ accountCreatedAt: 1_790_000_000 });
    const { token } = await issuer.issue(viewer);
    expect(decodeJwt(token).created).toBe(1_790_000_000);
    await expect(verifier.verify(token)).resolves.toEqual(viewer);
    for (const created of ["1790000000", 1.5, -1]) {
      expect(await outcome(verifier, await signWith(keyA, { typ: "at+jwt" }, { ...claims(), created }))).toBe(
        "invalid",
      );
    }
    expect(
      await outcome(
        verifier,
        await signWith(keyA, { typ: "at+jwt" }, { ...claims(), created: 1_790_000_000 }),
      ),
    ).toBe("accepted");
  });

  it("should refuse garbage and refresh tokens", async () => {
    for (const garbage of [
      "",
      "garbage",
      "a.b.c",
      `rt_${base64url.encode(randomUUID())}`,
      "x".repeat(5000),
    ]) {
      expect({ garbage, outcome: await outcome(verifier, garbage) }).toEqual({ garbage, outcome: "invalid" });
    }
  });

  it("should refuse a token signed by a key not in the set, even under a known kid", async () => {
    const unknown = await issuerWith([stranger]).issue(aViewer());
    const impostor = await issuerWith([{ ...stranger, kid: "key-a" }]).issue(aViewer());
    expect(await outcome(verifier, unknown.token)).toBe("invalid");
    expect(await outcome(verifier, impostor.token)).toBe("invalid");
  });

  it("should verify a token signed by key B while B is second in the set, and after B becomes first", async () => {
    const signedByA = await issuerWith([keyA, keyB]).issue(aViewer());
    const signedByB = await issuerWith([keyB, keyA]).issue(aViewer());
    expect(decodeProtectedHeader(signedByB.token).kid).toBe("key-b");

    const rolling = createAccessTokenVerifier({
      jwks: issuerWith([keyA, keyB]).publicJwks(),
      issuer: ISSUER,
      audience: AUDIENCE,
      revocations,
    });
    const rolled = createAccessTokenVerifier({
      jwks: issuerWith([keyB, keyA]).publicJwks(),
      issuer: ISSUER,
      audience: AUDIENCE,
      revocations,
    });
    for (const v of [rolling, rolled]) {
      expect(await outcome(v, signedByA.token)).toBe("accepted");
      expect(await outcome(v, signedByB.token)).toBe("accepted");
    }
  });

  describe("with the keys fetched from a JWKS URL", () => {
    let server: http.Server;
    let published: JSONWebKeySet;
    let fetches = 0;
    let jwksUrl: URL;

    beforeAll(async () => {
      server = http.createServer((_req, res) => {
        fetches += 1;
        res.writeHead(200, { "content-type": "application/json" }).end(JSON.stringify(published));
      });
      await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
      jwksUrl = new URL(`http://127.0.0.1:${(server.address() as AddressInfo).port}/.well-known/jwks.json`);
    });
    afterAll(() => new Promise<void>((resolve) => server.close(() => resolve())));

    it("should fetch the set once, and again when a token names a kid it has not seen (rotation)", async () => {
      published = issuerWith([keyA]).publicJwks();
      fetches = 0;
      const remote = createAccessTokenVerifier({
        jwks: jwksUrl,
        issuer: ISSUER,
        audience: AUDIENCE,
        revocations,
        remoteJwks: { cooldownMs: 0 },
      });
      const signedByA = await issuerWith([keyA]).issue(aViewer());
      expect(await outcome(remote, signedByA.token)).toBe("accepted");
      expect(await outcome(remote, signedByA.token)).toBe("accepted");
      expect(fetches).toBe(1);

      // Step 1: B is published second; step 2: B signs. Both kinds of tokens keep verifying.
      published = issuerWith([keyA, keyB]).publicJwks();
      const signedByB = await issuerWith([keyB, keyA]).issue(aViewer());
      expect(await outcome(remote, signedByB.token)).toBe("accepted");
      expect(fetches).toBe(2);
      published = issuerWith([keyB, keyA]).publicJwks();
      expect(await outcome(remote, signedByA.token)).toBe("accepted");
      expect(await outcome(remote, signedByB.token)).toBe("accepted");

      // A key that is published nowhere stays refused after the refetch.
      expect(await outcome(remote, (await issuerWith([stranger]).issue(aViewer())).token)).toBe("invalid");
    });

    it("should remember a verified token for a while, then check its signature again (a removed key stops working)", async () => {
      published = issuerWith([keyA]).publicJwks();
      fetches = 0;
      let now = Date.now();
      const remote = createAccessTokenVerifier({
        jwks: jwksUrl,
        issuer: ISSUER,
        audience: AUDIENCE,
        revocations,
        // Every signature check fetches the set: the fetch count shows when one happened.
        remoteJwks: { cooldownMs: 0, cacheMaxAgeMs: 0 },
        clock: () => new Date(now),
      });
      const signedByA = await issuerWith([keyA]).issue(aViewer());
      expect(await outcome(remote, signedByA.token)).toBe("accepted");
      expect(fetches).toBe(1);

      // Key A is withdrawn: within the memory the token is still known good, with no signature check.
      published = issuerWith([keyB]).publicJwks();
      now += VERIFIED_TOKEN_MEMORY_MS - 1_000;
      expect(await outcome(remote, signedByA.token)).toBe("accepted");
      expect(fetches).toBe(1);

      // Past it, the signature is checked again against the published set, which no longer has A.
      now += 2_000;
      expect(await outcome(remote, signedByA.token)).toBe("invalid");
      expect(fetches).toBeGreaterThan(1);
    });

    it("should renew a remembered token without checking its signature again while its key is still published", async () => {
      published = issuerWith([keyA]).publicJwks();
      let now = Date.now();
      const remote = createAccessTokenVerifier({
        jwks: jwksUrl,
        issuer: ISSUER,
        audience: AUDIENCE,
        revocations,
        clock: () => new Date(now),
      });
      const signedByA = await issuerWith([keyA]).issue(aViewer());
      const signatureChecks = jest.spyOn(globalThis.crypto.subtle, "verify");
      try {
        expect(await outcome(remote, signedByA.token)).toBe("accepted");
        expect(signatureChecks).toHaveBeenCalledTimes(1);
        // Past the memory, twice over: the key set still holds A, so the memory is renewed.
        now += VERIFIED_TOKEN_MEMORY_MS + 1_000;
        expect(await outcome(remote, signedByA.token)).toBe("accepted");
        now += VERIFIED_TOKEN_MEMORY_MS + 1_000;
        expect(await outcome(remote, signedByA.token)).toBe("accepted");
        expect(signatureChecks).toHaveBeenCalledTimes(1);
      } finally {
        signatureChecks.mockRestore();
      }
    });

    it("should fail as a server error, not as a bad token, when the JWKS cannot be fetched", async () => {
      const unreachable = createAccessTokenVerifier({
        jwks: new URL("http://127.0.0.1:1/.well-known/jwks.json"),
        issuer: ISSUER,
        audience: AUDIENCE,
        revocations,
      });
      const { token } = await issuer.issue(aViewer());
      const error = await unreachable.verify(token).catch((caught: unknown) => caught);
      expect(error).toBeInstanceOf(Error);
      expect(error).not.toBeInstanceOf(GraphQLError);
      expect((error as Error).message).toMatch(/signing keys/);
    });
  });

  describe("revocation", () => {
    it("should refuse every token of a revoked session with reason revoked, and no other session's", async () => {
      const viewer = aViewer();
      const sameUserOtherSession = { ...viewer, sessionId: randomUUID() };
      const { token } = await issuer.issue(viewer);
      const other = await issuer.issue(sameUserOtherSession);
      expect(await outcome(verifier, token)).toBe("accepted");

      await revocations.revokeSession(viewer.sessionId);

      await expect(verifier.verify(token)).rejects.toMatchObject({
        message: expect.stringMatching(/refresh/),
        extensions: { code: "UNAUTHENTICATED", reason: "revoked" },
      });
      expect(await outcome(verifier, (await issuer.issue(viewer)).token)).toBe("revoked");
      expect(await outcome(verifier, other.token)).toBe("accepted");
    });

    it("should refuse a revoked user's tokens issued before the revocation and accept ones issued after", async () => {
      const viewer = aViewer();
      const revokedAt = new Date(Math.floor(Date.now() / 1000) * 1000 - 30_000);
      const at = (ms: number) => issuerWith([keyA], { clock: () => new Date(revokedAt.getTime() + ms) });
      const earlier = await at(-60_000).issue(viewer);
      const otherSession = await at(-1_000).issue({ ...viewer, sessionId: randomUUID() });
      const sameSecond = await at(999).issue(viewer);
      const someoneElse = await at(-60_000).issue(aViewer());

      await new SessionRevocations(redis, () => revokedAt).revokeUser(viewer.userId);

      await expect(verifier.verify(earlier.token)).rejects.toMatchObject({
        extensions: { code: "UNAUTHENTICATED", reason: "revoked" },
      });
      expect(await outcome(verifier, otherSession.token)).toBe("revoked");
      expect(await outcome(verifier, sameSecond.token)).toBe("revoked");
      expect(await outcome(verifier, someoneElse.token)).toBe("accepted");
      expect(await outcome(verifier, (await at(1_000).issue(viewer)).token)).toBe("accepted");
      expect(await outcome(verifier, (await issuer.issue(viewer)).token)).toBe("accepted");
    });

    it("should never move a user's revocation back in time", async () => {
      const viewer = aViewer();
      const now = Date.now();
      await new SessionRevocations(redis, () => new Date(now)).revokeUser(viewer.userId);
      await new SessionRevocations(redis, () => new Date(now - 120_000)).revokeUser(viewer.userId);
      const issuedMinuteAgo = await issuerWith([keyA], { clock: () => new Date(now - 60_000) }).issue(viewer);
      expect(await outcome(verifier, issuedMinuteAgo.token)).toBe("revoked");
    });

    it("should answer the checks of one event-loop turn with one MGET, each with its own verdict", async () => {
      const monitor = await redis.monitor();
      const mgets: string[][] = [];
      monitor.on("monitor", (_time: string, args: string[]) => {
        if (String(args[0]).toLowerCase() === "mget") mgets.push(args.slice(1));
      });
      try {
        const revokedSession = aViewer();
        const revokedUser = aViewer();
        const fine = Array.from({ length: 20 }, () => aViewer());
        await revocations.revokeSession(revokedSession.sessionId);
        await new SessionRevocations(redis, () => new Date(Date.now() + 2_000)).revokeUser(
          revokedUser.userId,
        );
        const now = Math.floor(Date.now() / 1000);
        const all = [revokedSession, ...fine, revokedUser];
        const verdicts = await Promise.all(all.map((viewer) => revocations.isRevoked(viewer, now)));
        expect(verdicts).toEqual([true, ...fine.map(() => false), true]);
        // MONITOR reports commands as they run: a last round trip makes sure ours have been seen.
        await redis.ping();
        await new Promise((resolve) => setTimeout(resolve, 50));
        const ours = mgets.filter((keys) => keys.some((key) => key.endsWith(revokedSession.sessionId)));
        expect(ours).toHaveLength(1);
        expect(ours[0]).toHaveLength(2 * all.length);
      } finally {
        monitor.disconnect();
      }
    });

    it("should fail every check of a turn when Redis cannot answer", async () => {
      const away = new Redis("redis://127.0.0.1:1", {
        lazyConnect: true,
        maxRetriesPerRequest: 0,
        retryStrategy: () => null,
      });
      away.on("error", () => undefined);
      try {
        const checks = new SessionRevocations(away);
        const now = Math.floor(Date.now() / 1000);
        const results = await Promise.allSettled([
          checks.isRevoked(aViewer(), now),
          checks.isRevoked(aViewer(), now),
        ]);
        expect(results.map((result) => result.status)).toEqual(["rejected", "rejected"]);
      } finally {
        away.disconnect();
      }
    });

    it("should keep revocations only as long as a token can live", async () => {
      const viewer = aViewer();
      await revocations.revokeSession(viewer.sessionId);
      await revocations.revokeUser(viewer.userId);
      for (const key of [
        `hv:auth:revoked:session:${viewer.sessionId}`,
        `hv:auth:revoked:user:${viewer.userId}`,
      ]) {
        const ttl = await redis.ttl(key);
        expect(ttl).toBeGreaterThan(900);
        expect(ttl).toBeLessThanOrEqual(1000);
      }
    });
  });

  describe("the Authorization header", () => {
    it("should be anonymous without a header, a viewer with a Bearer token, and refused otherwise", async () => {
      const authenticate = bearerAuthenticator(verifier);
      const viewer = aViewer();
      const { token } = await issuer.issue(viewer);

      await expect(authenticate(undefined)).resolves.toBeNull();
      await expect(authenticate(`Bearer ${token}`)).resolves.toEqual(viewer);
      await expect(authenticate(`bearer ${token}`)).resolves.toEqual(viewer);
      for (const header of ["", token, `Basic ${token}`, "Bearer", `Bearer ${token} extra`]) {
        await expect(authenticate(header)).rejects.toMatchObject({
          extensions: { code: "UNAUTHENTICATED", reason: "invalid" },
        });
      }
    });
  });
});
