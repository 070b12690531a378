import {
  createPrivateKey,
  createPublicKey,
  generateKeyPairSync,
  randomUUID,
  type JsonWebKey,
} from "node:crypto";
import { linkSync, mkdirSync, readFileSync, unlinkSync, writeFileSync } from "node:fs";
import path from "node:path";
import type { JWK } from "jose";
import { ConfigError } from "../config-error";

/** A private EC P-256 key as a JWK, named by its `kid`. */
export interface SigningKeyJwk extends JWK {
  kty: "EC";
  crv: "P-256";
  x: string;
  y: string;
  d: string;
  kid: string;
}

/** The public half, as published in the JWKS. */
export interface PublicSigningKeyJwk extends JWK {
  kty: "EC";
  crv: "P-256";
  x: string;
  y: string;
  kid: string;
  alg: "ES256";
  use: "sig";
}

export const SIGNING_KEYS_VARIABLE = "AUTH_SIGNING_KEYS";

/** Where development keeps its generated key when AUTH_SIGNING_KEYS is unset (gitignored). */
export const DEV_SIGNING_KEYS_FILE = path.join(__dirname, "..", "..", "..", ".data", "dev-signing-keys.json");

const KID = /^[A-Za-z0-9._:-]{1,64}$/;

/** A fresh ES256 signing key; `kid` names it in token headers and the JWKS. */
export function generateSigningKeyJwk(
  kid: string = `k-${new Date().toISOString().slice(0, 10)}-${randomUUID().slice(0, 8)}`,
): SigningKeyJwk {
  if (!KID.test(kid)) throw new Error(`kid must be 1-64 of A-Z a-z 0-9 . _ : - (got ${JSON.stringify(kid)})`);
  const { privateKey } = generateKeyPairSync("ec", { namedCurve: "P-256" });
  const jwk = privateKey.export({ format: "jwk" });
  return { kty: "EC", crv: "P-256", x: String(jwk.x), y: String(jwk.y), d: String(jwk.d), kid };
}

export function publicSigningKeyJwk(key: SigningKeyJwk): PublicSigningKeyJwk {
  return { kty: "EC", crv: "P-256", x: key.x, y: key.y, kid: key.kid, alg: "ES256", use: "sig" };
}

/**
 * Parses and checks a JSON array of private P-256 JWKs. `source` names where it came from in
 * errors; the key material itself never appears in a message.
 */
export function parseSigningKeys(text: string, source: string): SigningKeyJwk[] {
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch {
    throw new ConfigError(`${source} is not valid JSON: expected an array of private EC P-256 JWKs`);
  }
  if (!Array.isArray(parsed) || parsed.length === 0) {
    throw new ConfigError(
      `${source} must be a non-empty JSON array of private EC P-256 JWKs (the first one signs)`,
    );
  }
  const kids = new Set<string>();
  return parsed.map((entry: unknown, index) => {
    const where = `${source}[${index}]`;
    if (typeof entry !== "object" || entry === null) throw new ConfigError(`${where} is not a JWK object`);
    const jwk = entry as Record<string, unknown>;
    if (jwk.kty !== "EC" || jwk.crv !== "P-256")
      throw new ConfigError(`${where} must be an EC key on P-256 (kty "EC", crv "P-256")`);
    if (typeof jwk.kid !== "string" || !KID.test(jwk.kid)) {
      throw new ConfigError(`${where} needs a "kid" of 1-64 characters A-Z a-z 0-9 . _ : -`);
    }
    if (kids.has(jwk.kid))
      throw new ConfigError(`${where} repeats the kid "${jwk.kid}": every key needs its own`);
    kids.add(jwk.kid);
    if (typeof jwk.d !== "string" || typeof jwk.x !== "string" || typeof jwk.y !== "string") {
      throw new ConfigError(`${where} (kid "${jwk.kid}") must be a private key with "x", "y" and "d"`);
    }
    let derived: JsonWebKey;
    try {
      derived = createPublicKey(
        createPrivateKey({ key: { kty: "EC", crv: "P-256", x: jwk.x, y: jwk.y, d: jwk.d }, format: "jwk" }),
      ).export({
        format: "jwk",
      });
    } catch {
      throw new ConfigError(`${where} (kid "${jwk.kid}") is not a usable P-256 private key`);
    }
    if (derived.x !== jwk.x || derived.y !== jwk.y) {
      throw new ConfigError(`${where} (kid "${jwk.kid}"): "x"/"y" do not belong to "d"`);
    }
    return { kty: "EC", crv: "P-256", x: jwk.x, y: jwk.y, d: jwk.d, kid: jwk.kid };
  });
}

/** Reads the development key file, creating it with a fresh key the first time (safe against a concurrent first use). */
export function devSigningKeys(file: string = DEV_SIGNING_KEYS_FILE): SigningKeyJwk[] {
  try {
    return parseSigningKeys(readFileSync(file, "utf8"), file);
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== "ENOENT") throw error;
  }
  mkdirSync(path.dirname(file), { recursive: true });
  const temporary = `${file}.${process.pid}.${randomUUID()}.tmp`;
  writeFileSync(temporary, `${JSON.stringify([generateSigningKeyJwk("dev-1")], null, 2)}\n`, { mode: 0o600 });
  try {
    linkSync(temporary, file); // atomic; fails if someone else created it first, and then theirs wins
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== "EEXIST") throw error;
  } finally {
    unlinkSync(temporary);
  }
  return parseSigningKeys(readFileSync(file, "utf8"), file);
}

/**
 * The issuer's keys: AUTH_SIGNING_KEYS when set; otherwise, outside production, the development
 * key file; in production unset is an error.
 */
export function loadSigningKeys(options: {
  value: string | undefined;
  isProduction: boolean;
  devKeyFile?: string;
}): SigningKeyJwk[] {
  if (options.value !== undefined && options.value !== "")
    return parseSigningKeys(options.value, SIGNING_KEYS_VARIABLE);
  if (options.isProduction) {
    throw new ConfigError(
      `${SIGNING_KEYS_VARIABLE} must be set in production: a JSON array of private EC P-256 JWKs with a "kid" each (generate one with \`pnpm exec tsx scripts/generate-signing-key.ts\`)`,
    );
  }
  return devSigningKeys(options.devKeyFile);
}
