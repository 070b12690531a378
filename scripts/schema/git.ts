import { execFileSync } from "node:child_process";
import { REPO_ROOT } from "./paths";

/** Runs git in the repository; undefined when it exits non-zero (or git is unavailable). */
function git(args: readonly string[]): string | undefined {
  try {
    return execFileSync("git", args, {
      cwd: REPO_ROOT,
      encoding: "utf8",
      stdio: ["ignore", "pipe", "ignore"],
      maxBuffer: 64 * 1024 * 1024,
    });
  } catch {
    return undefined;
  }
}

const commitOf = (ref: string) => git(["rev-parse", "--verify", "--quiet", `${ref}^{commit}`])?.trim();

export type BaseRef =
  | { kind: "ref"; ref: string; reason: string }
  | { kind: "none"; note: string }
  | { kind: "invalid"; problem: string };

/**
 * The commit to compare the schema against: $SCHEMA_BASE_REF; else the merge base with
 * origin/main when it is not HEAD itself; else HEAD~1.
 */
export function resolveBaseRef(env: NodeJS.ProcessEnv = process.env): BaseRef {
  const explicit = env.SCHEMA_BASE_REF?.trim();
  if (explicit) {
    return commitOf(explicit) === undefined
      ? {
          kind: "invalid",
          problem: `SCHEMA_BASE_REF="${explicit}" is not a commit in this repository (shallow clone?)`,
        }
      : { kind: "ref", ref: explicit, reason: "from SCHEMA_BASE_REF" };
  }
  const head = commitOf("HEAD");
  if (head === undefined)
    return { kind: "none", note: "the repository has no commits yet, so there is no base" };
  const mergeBase = git(["merge-base", "HEAD", "origin/main"])?.trim();
  if (mergeBase && mergeBase !== head) {
    return { kind: "ref", ref: mergeBase.slice(0, 12), reason: "merge base of HEAD and origin/main" };
  }
  if (commitOf("HEAD~1") !== undefined) return { kind: "ref", ref: "HEAD~1", reason: "previous commit" };
  return { kind: "none", note: "HEAD has no parent and no origin/main to compare with" };
}

/** A file's contents at a ref, or undefined when it does not exist there. */
export function readFileAtRef(ref: string, path: string): string | undefined {
  if (git(["cat-file", "-e", `${ref}:${path}`]) === undefined) return undefined;
  return git(["show", `${ref}:${path}`]);
}

/** Files that differ between `ref` and the working tree, plus untracked files. */
export function changedFilesSince(ref: string): string[] {
  const lines = (output: string | undefined) => (output ?? "").split("\n").filter((line) => line !== "");
  return [
    ...lines(git(["diff", "--name-only", ref])),
    ...lines(git(["ls-files", "--others", "--exclude-standard"])),
  ];
}
