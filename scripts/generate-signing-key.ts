/**
 * Prints a fresh ES256 access-token signing key (a private EC P-256 JWK) for AUTH_SIGNING_KEYS.
 *
 *   pnpm exec tsx scripts/generate-signing-key.ts [kid]
 *
 * Rotation: put the new key SECOND in AUTH_SIGNING_KEYS (published, not yet signing), deploy,
 * wait at least 10 minutes (verifiers' JWKS cache), then move it FIRST; drop the old key 15
 * minutes (the access-token lifetime) after that. Keep the output secret.
 */
import { generateSigningKeyJwk } from "@hv/kit";

const kid = process.argv[2];
const key = kid === undefined ? generateSigningKeyJwk() : generateSigningKeyJwk(kid);
console.log(JSON.stringify(key));
console.error(`\nAUTH_SIGNING_KEYS='${JSON.stringify([key])}'   # or add it to the existing array`);
