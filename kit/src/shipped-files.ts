import path from "node:path";

/** `true` in bundles made by `npm run build` (esbuild `define`); not declared at run time from source. */
declare const HV_BUNDLED: boolean | undefined;

/**
 * Where a data file read at run time lives, given by its path from the repository root (e.g.
 * `gateway/supergraph.graphql`): in the repository when running from source (tsx, jest); under
 * the bundle's own directory, at the same relative path, in a build (`dist/<process>/…`).
 */
export function shippedFile(fromRepositoryRoot: string): string {
  const root = typeof HV_BUNDLED === "undefined" ? path.join(__dirname, "..", "..") : __dirname;
  return path.join(root, fromRepositoryRoot);
}
