import { existsSync, readdirSync, readFileSync, statSync } from "node:fs";
import { envVarDefault } from "@hv/kit";
import { ALL_ENV } from "../config-catalogue";
import { fromRoot } from "../schema/paths";
import { shortLineDiff } from "../schema/line-diff";
import {
  groupByProcess,
  renderConfigurationReference,
  variableRow,
  variablesReadBy,
} from "./config-reference";
import { readErrorCatalogues, renderErrorReference } from "./error-reference";
import { checkLinks } from "./links";
import { processConfigReaders } from "./processes";

/** A file under docs/ made from the code, and how to make it. */
export interface GeneratedDoc {
  /** Repository path. */
  file: string;
  render: () => string;
}

export const ERRORS_SOURCE = "kit/src/errors.ts";

export const GENERATED_DOCS: readonly GeneratedDoc[] = [
  {
    file: "docs/errors.md",
    render: () => {
      const source = readFileSync(fromRoot(ERRORS_SOURCE), "utf8");
      return renderErrorReference(readErrorCatalogues(source, ERRORS_SOURCE), ERRORS_SOURCE);
    },
  },
  {
    file: "docs/configuration.md",
    render: () => {
      const readers = processConfigReaders();
      const reads = new Map(readers.map((reader) => [reader.name, variablesReadBy(reader)] as const));
      const rows = Object.entries(ALL_ENV).map(([name, entry]) =>
        variableRow(name, entry, envVarDefault(entry)),
      );
      return renderConfigurationReference(groupByProcess(rows, reads), readers);
    },
  },
];

/**
 * Compares a committed generated file with a fresh rendering. `committed` is undefined when the
 * file does not exist. Returns the problem to print, or null when it is fresh.
 */
export function staleDocProblem(file: string, committed: string | undefined, fresh: string): string | null {
  if (committed === undefined) return `${file} is missing: run pnpm run docs:generate and commit it`;
  const normalized = committed.replace(/\r\n/g, "\n");
  if (normalized === fresh) return null;
  return [
    `${file} is stale: run pnpm run docs:generate and commit it`,
    "  diff (- committed, + generated now):",
    ...shortLineDiff(normalized, fresh).map((line) => `    ${line}`),
  ].join("\n");
}

/**
 * Pages of docs/ that work in flight on other branches adds (the README and the index already link
 * them): until they exist a link to one is noted, not a failure. Empty this once they have landed.
 */
export const PAGES_EXPECTED_LATER: ReadonlySet<string> = new Set([]);

/** Relative links of README.md, CONTRIBUTING.md and docs/*.md that point at a missing file or heading. */
export function documentationLinkProblems(): { problems: string[]; notes: string[] } {
  const read = (file: string): string | undefined => {
    const absolute = fromRoot(file);
    if (!existsSync(absolute)) return undefined;
    return statSync(absolute).isDirectory() ? "" : readFileSync(absolute, "utf8");
  };
  const pages = [
    "README.md",
    "CONTRIBUTING.md",
    ...readdirSync(fromRoot("docs"))
      .filter((name) => name.endsWith(".md"))
      .map((name) => `docs/${name}`),
  ];
  const files = new Map(pages.map((file) => [file, read(file) ?? ""] as const));
  return checkLinks({ files, read, expectedLater: PAGES_EXPECTED_LATER });
}
