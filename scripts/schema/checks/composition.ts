import type { ComposeResult } from "../compose-lib";

/** Problems: one per composition error, already in `[CODE] message` form. */
export function compositionProblems(result: ComposeResult): string[] {
  return result.ok ? [] : result.errors;
}
