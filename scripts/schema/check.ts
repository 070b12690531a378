import { existsSync, readFileSync } from "node:fs";
import type { GraphQLSchema } from "graphql";
import { compositionProblems } from "./checks/composition";
import { classifyApiSchemaChanges, unacknowledgedBreakingChangeProblems } from "./checks/breaking-changes";
import { operationProblems } from "./checks/operations";
import { staleSupergraphProblems } from "./checks/stale-supergraph";
import {
  apiSchemaFromSupergraph,
  composeSupergraph,
  renderSupergraphFile,
  type ComposeResult,
} from "./compose-lib";
import { changedFilesSince, readFileAtRef, resolveBaseRef } from "./git";
import { readOperationFiles } from "./operation-files";
import { ACK_FILE, fromRoot, SUPERGRAPH_FILE } from "./paths";
import { loadSubgraphs } from "./subgraphs";

interface Outcome {
  name: string;
  problems: string[];
  notes: string[];
}

const outcome = (name: string, problems: string[], notes: string[] = []): Outcome => ({
  name,
  problems,
  notes,
});

const readIfExists = (file: string) =>
  existsSync(fromRoot(file)) ? readFileSync(fromRoot(file), "utf8") : undefined;

async function breakingChangesOutcome(api: GraphQLSchema): Promise<Outcome> {
  const name = "no unacknowledged breaking changes";
  const base = resolveBaseRef();
  if (base.kind === "invalid") return outcome(name, [base.problem]);
  if (base.kind === "none") return outcome(name, [], [`skipped: ${base.note}`]);

  const previous = readFileAtRef(base.ref, SUPERGRAPH_FILE);
  if (previous === undefined)
    return outcome(name, [], [`skipped: ${SUPERGRAPH_FILE} does not exist at ${base.ref}`]);
  let previousApi: GraphQLSchema;
  try {
    previousApi = apiSchemaFromSupergraph(previous);
  } catch (error) {
    return outcome(name, [], [`skipped: ${SUPERGRAPH_FILE} at ${base.ref} is ${String(error)}`]);
  }

  const { breaking, dangerous } = await classifyApiSchemaChanges(previousApi, api);
  const acknowledgements = { changedFiles: changedFilesSince(base.ref), ackContents: readIfExists(ACK_FILE) };
  const problems = unacknowledgedBreakingChangeProblems(breaking, acknowledgements, base.ref);
  return outcome(name, problems, [
    `base: ${base.ref} (${base.reason}); ${breaking.length} breaking, ${breaking.length - problems.length} acknowledged`,
    ...dangerous.map((c) => `dangerous, not failing: ${c.message}${c.path ? ` [${c.path}]` : ""}`),
  ]);
}

function composeFromFiles(): ComposeResult {
  try {
    return composeSupergraph(loadSubgraphs());
  } catch (error) {
    return { ok: false, errors: [error instanceof Error ? error.message : String(error)] };
  }
}

async function runChecks(): Promise<Outcome[]> {
  const composition = composeFromFiles();
  const compositionOutcome = outcome(
    "composition",
    compositionProblems(composition),
    composition.ok ? composition.hints.map((hint) => `hint: ${hint}`) : [],
  );
  if (!composition.ok) {
    const skipped = ["skipped: composition failed"];
    return [
      compositionOutcome,
      ...[
        "supergraph.graphql up to date",
        "no unacknowledged breaking changes",
        "client operations valid",
      ].map((name) => outcome(name, [], skipped)),
    ];
  }
  const api = apiSchemaFromSupergraph(composition.supergraphSdl);
  const operationFiles = readOperationFiles();
  return [
    compositionOutcome,
    outcome(
      "supergraph.graphql up to date",
      staleSupergraphProblems(readIfExists(SUPERGRAPH_FILE), renderSupergraphFile(composition.supergraphSdl)),
    ),
    await breakingChangesOutcome(api),
    outcome("client operations valid", operationProblems(operationFiles, api), [
      `${operationFiles.length} operation file(s)`,
    ]),
  ];
}

function report(outcomes: readonly Outcome[]): number {
  const indent = (text: string) => text.replace(/^/gm, "      ");
  for (const { name, problems, notes } of outcomes) {
    const skipped = problems.length === 0 && notes.some((note) => note.startsWith("skipped"));
    console.log(`${problems.length > 0 ? "FAIL" : skipped ? "SKIP" : "PASS"}  ${name}`);
    for (const note of notes) console.log(indent(note));
    for (const problem of problems) console.log(indent(`✘ ${problem}`));
  }
  const failed = outcomes.filter((o) => o.problems.length > 0);
  const count = failed.reduce((sum, o) => sum + o.problems.length, 0);
  if (failed.length === 0) {
    console.log("\nschema:check passed");
    return 0;
  }
  console.error(`\nschema:check failed: ${count} problem(s) in ${failed.map((o) => o.name).join(", ")}`);
  return 1;
}

runChecks().then(
  (outcomes) => {
    process.exitCode = report(outcomes);
  },
  (error: unknown) => {
    console.error(`schema:check could not run: ${error instanceof Error ? error.message : String(error)}`);
    process.exitCode = 1;
  },
);
