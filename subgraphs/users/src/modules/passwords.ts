import { hash, verify } from "@node-rs/argon2";

// OWASP's argon2id baseline: 19 MiB, 2 iterations, 1 lane.
const OPTIONS = {
  algorithm: 2 /* Algorithm.Argon2id (a const enum) */,
  memoryCost: 19_456,
  timeCost: 2,
  parallelism: 1,
};

/** The same password typed on any keyboard (composed or decomposed accents) is the same password. */
const normalized = (password: string) => password.normalize("NFC");

export function hashPassword(password: string): Promise<string> {
  return hash(normalized(password), OPTIONS);
}

// Verified against when the email is unknown, so a wrong email costs the same time as a wrong
// password and timing does not reveal which addresses have accounts.
let decoy: Promise<string> | undefined;

export async function verifyPassword(passwordHash: string | undefined, password: string): Promise<boolean> {
  if (passwordHash === undefined || !passwordHash.startsWith("$argon2")) {
    decoy ??= hashPassword("decoy password that matches nothing");
    await verify(await decoy, normalized(password)).catch(() => false);
    return false;
  }
  return verify(passwordHash, normalized(password)).catch(() => false);
}
