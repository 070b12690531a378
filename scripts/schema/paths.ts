import path from "node:path";

/** The workspace root; every path the schema tooling prints is relative to it. */
export const REPO_ROOT = path.resolve(__dirname, "..", "..");

/** Repository-relative paths (forward slashes, as git names them). */
export const SUPERGRAPH_FILE = "gateway/supergraph.graphql";
export const ACK_FILE = "gateway/schema-changes.acknowledged.md";
export const OPERATIONS_DIR = "operations";

export function fromRoot(relativePath: string): string {
  return path.join(REPO_ROOT, relativePath);
}
