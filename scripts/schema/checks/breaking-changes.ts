import { CriticalityLevel, diff, type Change } from "@graphql-inspector/core";
import type { GraphQLSchema } from "graphql";
import { ACK_FILE } from "../paths";

export interface SchemaChange {
  message: string;
  /** Schema coordinate such as `User.displayName` or `Query.user.id`, when there is one. */
  path?: string;
}

export interface ClassifiedChanges {
  breaking: SchemaChange[];
  dangerous: SchemaChange[];
}

/** Diffs two API schemas (never raw supergraphs) and keeps the changes clients can feel. */
export async function classifyApiSchemaChanges(
  before: GraphQLSchema,
  after: GraphQLSchema,
): Promise<ClassifiedChanges> {
  const changes = await diff(before, after);
  const pick = (level: CriticalityLevel) =>
    changes.filter((c) => c.criticality.level === level).map(toSchemaChange);
  return { breaking: pick(CriticalityLevel.Breaking), dangerous: pick(CriticalityLevel.Dangerous) };
}

function toSchemaChange(change: Change): SchemaChange {
  return change.path === undefined
    ? { message: change.message }
    : { message: change.message, path: change.path };
}

export interface Acknowledgements {
  /** Files changed since the base ref, committed or not, repository-relative. */
  changedFiles: readonly string[];
  /** Current contents of the acknowledgement file, or undefined when it does not exist. */
  ackContents: string | undefined;
}

/**
 * One problem per breaking change that is not acknowledged. A change is acknowledged when the
 * acknowledgement file was changed since the base ref and names the change's path on some line
 * (as a whole coordinate: `Query.user` does not acknowledge `Query.users` or `Query.user.id`).
 */
export function unacknowledgedBreakingChangeProblems(
  breaking: readonly SchemaChange[],
  { changedFiles, ackContents }: Acknowledgements,
  baseRef: string,
): string[] {
  const ackChanged = changedFiles.includes(ACK_FILE) && ackContents !== undefined;
  const lines = ackChanged ? ackContents.split("\n") : [];
  const unacknowledged = breaking.filter(
    (change) => change.path === undefined || !lines.some((line) => namesCoordinate(line, change.path ?? "")),
  );
  if (unacknowledged.length === 0) return [];
  const how =
    `  To ship it on purpose, add a line naming the path to ${ACK_FILE} in this change ` +
    `(the file must differ from ${baseRef}), e.g. "- <path>: <why clients are safe>".`;
  return unacknowledged.map((change) =>
    [`breaking change since ${baseRef}: ${change.message}`, `  path: ${change.path ?? "(none)"}`, how].join(
      "\n",
    ),
  );
}

function namesCoordinate(line: string, coordinate: string): boolean {
  const escaped = coordinate.replace(/[.*+?^${}()|[\]\\]/g, "\\$&");
  return new RegExp(`(^|[^\\w.])${escaped}($|[^\\w.])`).test(line);
}
