import { shortLineDiff } from "../line-diff";
import { SUPERGRAPH_FILE } from "../paths";

/**
 * Compares the committed supergraph file with what `pnpm run compose` would write now.
 * `committed` is undefined when the file does not exist.
 */
export function staleSupergraphProblems(committed: string | undefined, expected: string): string[] {
  if (committed === undefined) {
    return [`${SUPERGRAPH_FILE} is missing: run pnpm run compose and commit it`];
  }
  const normalized = committed.replace(/\r\n/g, "\n");
  if (normalized === expected) return [];
  const diff = shortLineDiff(normalized, expected).map((line) => `    ${line}`);
  return [
    [
      `${SUPERGRAPH_FILE} is stale: run pnpm run compose and commit it`,
      `  diff (- committed, + fresh composition):`,
      ...diff,
    ].join("\n"),
  ];
}
