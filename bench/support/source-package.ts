/**
 * The package a profile's call frame belongs to, from its script URL: an npm package's name,
 * `node:*` for Node's own, `ours:<area>` for this repository's (kit, gateway, a subgraph, bench,
 * prisma), `(native / V8)` for a frame without a URL.
 */
export function packageOf(url: string): string {
  if (!url) return "(native / V8)";
  const pnpm = /node_modules\/\.pnpm\/[^/]+\/node_modules\/((?:@[^/]+\/)?[^/]+)/.exec(url);
  if (pnpm) return pnpm[1]!;
  const plain = /node_modules\/((?:@[^/]+\/)?[^/]+)/.exec(url);
  if (plain) return plain[1]!;
  if (url.startsWith("node:")) return "node:*";
  const ours = /\/(kit|gateway|subgraphs\/[^/]+|bench|prisma)\//.exec(url);
  return ours ? `ours:${ours[1]}` : url;
}
