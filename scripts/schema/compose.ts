import { writeFileSync } from "node:fs";
import { composeSupergraph, renderSupergraphFile } from "./compose-lib";
import { fromRoot, SUPERGRAPH_FILE } from "./paths";
import { loadSubgraphs } from "./subgraphs";

function main(): number {
  const result = composeSupergraph(loadSubgraphs());
  if (!result.ok) {
    console.error(`Composition failed with ${result.errors.length} error(s):`);
    for (const error of result.errors) console.error(`  ${error}`);
    return 1;
  }
  for (const hint of result.hints) console.warn(`hint: ${hint}`);
  writeFileSync(fromRoot(SUPERGRAPH_FILE), renderSupergraphFile(result.supergraphSdl));
  console.log(`Wrote ${SUPERGRAPH_FILE}`);
  return 0;
}

try {
  process.exitCode = main();
} catch (error) {
  console.error(`compose: ${error instanceof Error ? error.message : String(error)}`);
  process.exitCode = 1;
}
