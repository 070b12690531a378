import { writeFileSync } from "node:fs";
import path from "node:path";
import { buildManifest, MANIFEST_PATH, renderManifest } from "./persisted";

/**
 * `pnpm run operations:manifest`: writes operations/persisted-query-manifest.json from the
 * operations/ folder (the safelist of GATEWAY_OPERATIONS=safelist). A test fails when it is stale.
 */
const manifest = buildManifest();
writeFileSync(MANIFEST_PATH, renderManifest(manifest));
console.log(`${path.relative(process.cwd(), MANIFEST_PATH)}: ${manifest.operations.length} operations`);
