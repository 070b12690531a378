/**
 * `pnpm run docs:generate` writes the generated docs (docs/errors.md, docs/configuration.md);
 * `pnpm run docs:check` (in `npm test`) renders them in memory and fails on any difference, and
 * fails on a relative link of README.md or docs/ whose file or heading does not exist.
 */
import { existsSync, readFileSync, writeFileSync } from "node:fs";
import { fromRoot } from "../schema/paths";
import { documentationLinkProblems, GENERATED_DOCS, staleDocProblem } from "./generated-docs";

function main(check: boolean): number {
  const problems: string[] = [];
  for (const doc of GENERATED_DOCS) {
    let fresh: string;
    try {
      fresh = doc.render();
    } catch (error) {
      problems.push(
        `${doc.file} cannot be generated: ${error instanceof Error ? error.message : String(error)}`,
      );
      continue;
    }
    const path = fromRoot(doc.file);
    const committed = existsSync(path) ? readFileSync(path, "utf8") : undefined;
    if (check) {
      const problem = staleDocProblem(doc.file, committed, fresh);
      console.log(`${problem ? "FAIL" : "PASS"}  ${doc.file} up to date`);
      if (problem) problems.push(problem);
    } else if (committed !== fresh) {
      writeFileSync(path, fresh);
      console.log(`wrote ${doc.file}`);
    } else {
      console.log(`${doc.file} unchanged`);
    }
  }
  if (check) {
    const links = documentationLinkProblems();
    console.log(`${links.problems.length > 0 ? "FAIL" : "PASS"}  links in README.md and docs/ resolve`);
    for (const note of links.notes) console.log(`      note: ${note}`);
    problems.push(...links.problems);
  }
  for (const problem of problems) console.error(`✘ ${problem}`);
  return problems.length > 0 ? 1 : 0;
}

process.exitCode = main(process.argv.includes("--check"));
