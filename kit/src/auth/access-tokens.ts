import { randomUUID } from "node:crypto";
import type { IncomingMessage } from "node:http";
import {
  createLocalJWKSet,
  createRemoteJWKSet,
  errors as joseErrors,
  importJWK,
  jwtVerify,
  SignJWT,
  type CryptoKey,
  type JSONWebKeySet,
  type JWTPayload,
  type JWTHeaderParameters,
} from "jose";
import { appError, ErrorCode } from "../errors";
import { CLOCK_TOLERANCE_SECONDS, MAX_ACCESS_TOKEN_TTL_SECONDS, type RevocationCheck } from "./revocations";
import {
  accessTokenDigest,
  REVOCATION_ASSERTION_HEADER,
  type RevocationAssertions,
} from "./revocation-assertions";
import { publicSigningKeyJwk, type PublicSigningKeyJwk, type SigningKeyJwk } from "./signing-keys";
import type { Viewer, ViewerRole } from "./viewer";

/** RFC 9068's media type for JWT access tokens; a token with any other `typ` is refused. */
export const ACCESS_TOKEN_TYPE = "at+jwt";
export const ACCESS_TOKEN_ALGORITHM = "ES256";
/** Where the issuer (the users subgraph) publishes its public keys. */
export const JWKS_PATH = "/.well-known/jwks.json";

const ROLES: readonly ViewerRole[] = ["USER", "MODERATOR"];
const REQUIRED_CLAIMS = ["iss", "aud", "sub", "sid", "role", "iat", "exp", "jti"];
/** Far above a real token (~500 characters); longer input is refused before parsing. */
const MAX_TOKEN_LENGTH = 4096;

export interface IssuedAccessToken {
  token: string;
  expiresAt: Date;
}

export interface AccessTokenIssuer {
  issue(claims: Viewer): Promise<IssuedAccessToken>;
  /** Every configured key's public half: what `GET /.well-known/jwks.json` serves. */
  publicJwks(): { keys: PublicSigningKeyJwk[] };
}

export interface AccessTokenIssuerOptions {
  /** The first signs; all are published, so a second one can be rolled in before it signs. */
  keys: readonly SigningKeyJwk[];
  issuer: string;
  audience: string;
  ttlSeconds: number;
  /** Tests only: when "now" is. */
  clock?: () => Date;
}

export function createAccessTokenIssuer(options: AccessTokenIssuerOptions): AccessTokenIssuer {
  const [signing] = options.keys;
  if (!signing) throw new Error("createAccessTokenIssuer needs at least one signing key");
  if (
    !Number.isInteger(options.ttlSeconds) ||
    options.ttlSeconds < 1 ||
    options.ttlSeconds > MAX_ACCESS_TOKEN_TTL_SECONDS
  ) {
    throw new Error(
      `Access tokens live 1 to ${MAX_ACCESS_TOKEN_TTL_SECONDS} seconds (got ${options.ttlSeconds})`,
    );
  }
  const clock = options.clock ?? (() => new Date());
  const privateKey = importJWK(signing, ACCESS_TOKEN_ALGORITHM) as Promise<CryptoKey>;
  const jwks = { keys: options.keys.map(publicSigningKeyJwk) };
  return {
    async issue({ userId, sessionId, role, accountCreatedAt }) {
      const issuedAt = Math.floor(clock().getTime() / 1000);
      const expiresAt = issuedAt + options.ttlSeconds;
      const claims =
        accountCreatedAt === undefined
          ? { sid: sessionId, role }
          : { sid: sessionId, role, created: accountCreatedAt };
      const token = await new SignJWT(claims)
        .setProtectedHeader({ alg: ACCESS_TOKEN_ALGORITHM, kid: signing.kid, typ: ACCESS_TOKEN_TYPE })
        .setIssuer(options.issuer)
        .setAudience(options.audience)
        .setSubject(userId)
        .setIssuedAt(issuedAt)
        .setExpirationTime(expiresAt)
        .setJti(randomUUID())
        .sign(await privateKey);
      return { token, expiresAt: new Date(expiresAt * 1000) };
    },
    publicJwks: () => ({ keys: jwks.keys.map((key) => ({ ...key })) }),
  };
}

export type AccessTokenRefusal = "expired" | "invalid" | "revoked";

const REFUSAL_MESSAGES: Record<AccessTokenRefusal, string> = {
  expired: "The access token has expired: refresh it and retry",
  revoked: "The access token was revoked: refresh it (or sign in again) and retry",
  invalid:
    "The access token is not valid: send `Authorization: Bearer <access token>` with a token from logIn or refresh",
};

/** UNAUTHENTICATED with `extensions.reason`; the HTTP layer turns it into a 401. */
export function accessTokenRefused(reason: AccessTokenRefusal, message: string = REFUSAL_MESSAGES[reason]) {
  return appError(ErrorCode.UNAUTHENTICATED, message, { details: { reason } });
}

/** jose errors that mean "this token is bad" (anything else — an unreachable JWKS, say — is our fault). */
const INVALID_TOKEN_CODES = new Set([
  joseErrors.JWSInvalid.code,
  joseErrors.JWTInvalid.code,
  joseErrors.JWTClaimValidationFailed.code,
  joseErrors.JOSEAlgNotAllowed.code,
  joseErrors.JOSENotSupported.code,
  joseErrors.JWSSignatureVerificationFailed.code,
  joseErrors.JWKSNoMatchingKey.code,
  joseErrors.JWKSMultipleMatchingKeys.code,
]);

export interface AccessTokenVerifier {
  /**
   * The token's viewer, or throws UNAUTHENTICATED with `extensions.reason` expired | invalid | revoked.
   * Revocation is asked unless `revocationAssertion` (the gateway's header) holds for this token.
   */
  verify(token: string, revocationAssertion?: string): Promise<Viewer>;
  /**
   * Signature, claims and expiry only: the caller asks about revocation itself (the gateway does
   * it in the same Redis round trip as its budgets). Throws like `verify`, never "revoked".
   */
  inspect(token: string): Promise<{ viewer: Viewer; issuedAt: number }>;
}

export interface AccessTokenVerifierOptions {
  /** The issuer's JWKS URL (fetched, cached, refetched on an unknown kid), or the key set itself. */
  jwks: URL | JSONWebKeySet;
  issuer: string;
  audience: string;
  /** Consulted on every verification (one Redis round trip) but those a holding assertion vouches for. */
  revocations: RevocationCheck;
  /** Subgraphs with AUTH_REVOCATION_ASSERTION_SECRET: the gateway's assertions they believe. */
  revocationAssertions?: RevocationAssertions;
  /** Tuning of the remote key set (jose's defaults: 30 s cooldown between refetches, 10 min max age, 5 s timeout). */
  remoteJwks?: { cooldownMs?: number; cacheMaxAgeMs?: number; timeoutMs?: number };
  /** Tests only: when "now" is (expiry and the verified-token memory). */
  clock?: () => Date;
}

/**
 * A verified signature is remembered for this long (never past the token's expiry), so a phone's
 * requests do not each pay an ES256 verification (~0.3 ms of CPU) in the gateway and again in
 * every subgraph. Revocation is still asked on every request (or vouched for by the gateway); a
 * key removed from the JWKS stops being trusted through this memory within this time: past it, the
 * memory is renewed only if the key set (as jose holds it now) still hands out the very key that
 * checked the signature, else the signature is verified again.
 */
export const VERIFIED_TOKEN_MEMORY_MS = 60_000;
/** Tokens remembered at most (the oldest is forgotten first): ~0.5 KB each. */
const VERIFIED_TOKEN_MEMORY_SIZE = 10_000;

interface VerifiedToken {
  viewer: Viewer;
  issuedAt: number;
  /** Epoch seconds (`exp`). */
  expiresAt: number;
  /** Epoch ms: past this, the key is looked up again (and the signature checked if it changed). */
  trustedUntil: number;
  /** Epoch ms: never trusted past this (`exp`, the maximum token age, with the tolerance). */
  trustedAtMost: number;
  /** The token's header and the key that verified it. */
  header: JWTHeaderParameters;
  key: unknown;
}

export function createAccessTokenVerifier(options: AccessTokenVerifierOptions): AccessTokenVerifier {
  const keySet =
    options.jwks instanceof URL
      ? createRemoteJWKSet(options.jwks, {
          ...(options.remoteJwks?.cooldownMs === undefined
            ? {}
            : { cooldownDuration: options.remoteJwks.cooldownMs }),
          ...(options.remoteJwks?.cacheMaxAgeMs === undefined
            ? {}
            : { cacheMaxAge: options.remoteJwks.cacheMaxAgeMs }),
          ...(options.remoteJwks?.timeoutMs === undefined
            ? {}
            : { timeoutDuration: options.remoteJwks.timeoutMs }),
        })
      : createLocalJWKSet(options.jwks);
  const source = options.jwks instanceof URL ? options.jwks.href : "the local key set";
  const clock = options.clock ?? (() => new Date());

  async function verifySignature(
    token: string,
  ): Promise<{ payload: JWTPayload; header: JWTHeaderParameters; key: unknown }> {
    try {
      const { payload, protectedHeader, key } = await jwtVerify(token, keySet, {
        currentDate: clock(),
        algorithms: [ACCESS_TOKEN_ALGORITHM],
        typ: ACCESS_TOKEN_TYPE,
        issuer: options.issuer,
        audience: options.audience,
        requiredClaims: REQUIRED_CLAIMS,
        maxTokenAge: MAX_ACCESS_TOKEN_TTL_SECONDS,
        clockTolerance: CLOCK_TOLERANCE_SECONDS,
      });
      return { payload, header: protectedHeader, key };
    } catch (error) {
      if (error instanceof joseErrors.JWTExpired) throw accessTokenRefused("expired");
      if (error instanceof joseErrors.JOSEError && INVALID_TOKEN_CODES.has(error.code))
        throw accessTokenRefused("invalid");
      throw new Error(
        `Could not verify an access token: the signing keys (${source}) are unavailable or unusable`,
        { cause: error },
      );
    }
  }

  /**
   * What a verified token said, by the token's SHA-256 (Map order: oldest first): the memory does not
   * keep the token itself (~500 characters, held for as long as a subscription runs).
   */
  const verified = new Map<string, VerifiedToken>();

  async function verifyToken(token: string, digest: string, now: number): Promise<VerifiedToken> {
    const { payload, header, key } = await verifySignature(token);
    const { sub, sid, role, iat, exp, created } = payload as JWTPayload & {
      sid?: unknown;
      role?: unknown;
      created?: unknown;
    };
    if (
      typeof sub !== "string" ||
      sub === "" ||
      typeof sid !== "string" ||
      sid === "" ||
      typeof iat !== "number" ||
      typeof exp !== "number" ||
      !ROLES.includes(role as ViewerRole) ||
      (created !== undefined && !(typeof created === "number" && Number.isInteger(created) && created >= 0))
    ) {
      throw accessTokenRefused("invalid");
    }
    // Never past what jose accepts: `exp` and the maximum token age, each with the tolerance.
    const trustedAtMost = Math.min(
      (exp + CLOCK_TOLERANCE_SECONDS) * 1000,
      (iat + MAX_ACCESS_TOKEN_TTL_SECONDS + CLOCK_TOLERANCE_SECONDS) * 1000,
    );
    const entry: VerifiedToken = {
      viewer: {
        userId: sub,
        sessionId: sid,
        role: role as ViewerRole,
        ...(typeof created === "number" ? { accountCreatedAt: created } : {}),
      },
      issuedAt: iat,
      expiresAt: exp,
      trustedUntil: Math.min(now + VERIFIED_TOKEN_MEMORY_MS, trustedAtMost),
      trustedAtMost,
      header,
      key,
    };
    if (verified.size >= VERIFIED_TOKEN_MEMORY_SIZE) {
      const oldest = verified.keys().next().value;
      if (oldest !== undefined) verified.delete(oldest);
    }
    verified.set(digest, entry);
    return entry;
  }

  /**
   * Renews a remembered signature whose memory ran out if the key set still hands out the key that
   * verified it (jose keeps one imported key per JWK until the set is fetched anew).
   */
  async function stillTrusted(entry: VerifiedToken, now: number): Promise<boolean> {
    if (now >= entry.trustedAtMost) return false;
    const key = await keySet(entry.header, { payload: "", signature: "" }).catch(() => undefined);
    if (key === undefined || key !== entry.key) return false;
    entry.trustedUntil = Math.min(now + VERIFIED_TOKEN_MEMORY_MS, entry.trustedAtMost);
    return true;
  }

  /**
   * The token's verified claims (from the memory while it trusts them) with its digest and the time
   * they were asked at, or throws like `verify`.
   */
  async function remembered(token: string): Promise<{ entry: VerifiedToken; digest: string; now: number }> {
    if (token.length === 0 || token.length > MAX_TOKEN_LENGTH) throw accessTokenRefused("invalid");
    const now = clock().getTime();
    const digest = accessTokenDigest(token);
    let entry = verified.get(digest);
    if (entry !== undefined && entry.trustedUntil <= now) {
      verified.delete(digest);
      entry = (await stillTrusted(entry, now)) ? entry : undefined;
      if (entry) verified.set(digest, entry);
    }
    // Past its trusted time the token goes through jose again, which refuses it as expired.
    return { entry: entry ?? (await verifyToken(token, digest, now)), digest, now };
  }

  const { revocationAssertions } = options;
  return {
    async inspect(token) {
      const { entry } = await remembered(token);
      return { viewer: { ...entry.viewer }, issuedAt: entry.issuedAt };
    },
    async verify(token, revocationAssertion) {
      const { entry, digest, now } = await remembered(token);
      const viewer = { ...entry.viewer };
      if (revocationAssertion !== undefined && revocationAssertions?.holds(revocationAssertion, digest, now))
        return viewer;
      if (await options.revocations.isRevoked(viewer, entry.issuedAt)) throw accessTokenRefused("revoked");
      return viewer;
    },
  };
}

const BEARER = /^Bearer +([A-Za-z0-9\-._~+/]+=*) *$/i;

/** The token of an `Authorization: Bearer <token>` header; undefined when the header has another form. */
export function bearerToken(authorizationHeader: string): string | undefined {
  return BEARER.exec(authorizationHeader)?.[1];
}

/**
 * The service layer's `authenticate`: no Authorization header is anonymous (null); anything else
 * must be `Bearer <valid access token>`. A request's REVOCATION_ASSERTION_HEADER goes to `verify`.
 */
export function bearerAuthenticator(
  verifier: AccessTokenVerifier,
): (authorizationHeader: string | undefined, req?: IncomingMessage) => Promise<Viewer | null> {
  return async (authorizationHeader, req) => {
    if (authorizationHeader === undefined) return null;
    const token = BEARER.exec(authorizationHeader)?.[1];
    if (token === undefined) {
      throw accessTokenRefused("invalid", "The Authorization header must be `Bearer <access token>`");
    }
    const assertion = req?.headers[REVOCATION_ASSERTION_HEADER];
    return verifier.verify(token, typeof assertion === "string" ? assertion : undefined);
  };
}
