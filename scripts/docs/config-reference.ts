import type { EnvVarSpec } from "@hv/kit";
import { cell } from "./error-reference";

type Env = Record<string, string | undefined>;

/** A process and the function its entry file hands `runMain` to read its configuration. */
export interface ProcessConfigReader {
  /** As in logs and `npm start`, e.g. `media-worker`. */
  name: string;
  /** Heading text, e.g. "Media worker". */
  title: string;
  /** Repository path of its entry file. */
  entry: string;
  /** The loader's name as the entry file calls it. */
  loader: string;
  load: (env: Env) => unknown;
  /**
   * The environments to load with; the variables read under any of them count. More than one
   * where the loader branches (e.g. the s3 storage driver reads its own variables).
   */
  probes: Env[];
}

/** What docs/configuration.md says of one variable. */
export interface VariableRow {
  name: string;
  defaultText: string;
  required: string;
  secret: boolean;
  description: string;
}

export interface VariableGroup {
  /** The processes that read every variable of the group, in the readers' order. */
  processes: string[];
  variables: VariableRow[];
}

/**
 * The variables a loader reads: every string key it looks up in the environment it is given,
 * under each probe. A loader that throws under a probe is a mistake in the probe, so it throws.
 */
export function variablesReadBy(reader: ProcessConfigReader): Set<string> {
  const seen = new Set<string>();
  for (const probe of reader.probes) {
    const recording = new Proxy(probe, {
      get(target, key) {
        if (typeof key === "string") seen.add(key);
        return typeof key === "string" ? target[key] : undefined;
      },
    });
    try {
      reader.load(recording);
    } catch (error) {
      throw new Error(
        `${reader.name}: ${reader.loader} refused the probe ${JSON.stringify(Object.keys(probe))}: ${error instanceof Error ? error.message : String(error)}`,
      );
    }
  }
  return seen;
}

/** ` (25 MiB)` after a whole number of KiB, MiB or GiB of a `…_BYTES` variable; else nothing. */
export function sizeHint(name: string, value: unknown): string {
  if (!name.endsWith("_BYTES") || typeof value !== "number") return "";
  const units = [
    ["GiB", 1024 ** 3],
    ["MiB", 1024 ** 2],
    ["KiB", 1024],
  ] as const;
  const unit = units.find(([, size]) => value >= size && value % size === 0);
  return unit ? ` (${value / unit[1]} ${unit[0]})` : "";
}

/** Column texts of one catalogued variable. `defaultValue` is the schema's fixed default, if any. */
export function variableRow(
  name: string,
  entry: Pick<EnvVarSpec, "description" | "secret" | "requiredWhen" | "defaultText"> & {
    schema: { safeParse(value: undefined): { success: boolean } };
  },
  defaultValue: string | number | boolean | undefined,
): VariableRow {
  const refusesUnset = !entry.schema.safeParse(undefined).success;
  return {
    name,
    defaultText:
      entry.defaultText ??
      (defaultValue === undefined ? "unset" : `\`${String(defaultValue)}\`${sizeHint(name, defaultValue)}`),
    required: refusesUnset ? "yes" : (entry.requiredWhen ?? "no"),
    secret: entry.secret === true,
    description: entry.description,
  };
}

/**
 * Groups the catalogue by the set of processes that read each variable: one group for what every
 * process reads, then one per combination, in the readers' order. Variables no process reads come
 * last with an empty `processes`. Throws when a process reads a variable the catalogue lacks.
 */
export function groupByProcess(
  rows: readonly VariableRow[],
  readsByProcess: ReadonlyMap<string, ReadonlySet<string>>,
): VariableGroup[] {
  const known = new Set(rows.map((row) => row.name));
  const uncatalogued = [...readsByProcess].flatMap(([process, reads]) =>
    [...reads]
      .filter((name) => /^[A-Z][A-Z0-9_]*$/.test(name) && !known.has(name))
      .map((name) => `${name} (${process})`),
  );
  if (uncatalogued.length > 0) {
    throw new Error(
      `read from the environment but in no catalogue (scripts/config-catalogue.ts): ${uncatalogued.join(", ")}`,
    );
  }
  const order = [...readsByProcess.keys()];
  const groups = new Map<string, VariableGroup>();
  for (const row of rows) {
    const processes = order.filter((process) => readsByProcess.get(process)?.has(row.name));
    const key = processes.join(",");
    const group = groups.get(key) ?? { processes, variables: [] };
    group.variables.push(row);
    groups.set(key, group);
  }
  const rank = (group: VariableGroup) =>
    group.processes.length === 0
      ? Number.MAX_SAFE_INTEGER
      : group.processes.length === order.length
        ? -1
        : order.indexOf(group.processes[0] as string) * order.length + group.processes.length;
  return [...groups.values()].sort(
    (a, b) => rank(a) - rank(b) || a.processes.join().localeCompare(b.processes.join()),
  );
}

function joinTitles(titles: readonly string[]): string {
  if (titles.length <= 1) return titles.join("");
  return `${titles.slice(0, -1).join(", ")} and ${titles[titles.length - 1]}`;
}

function groupTitle(group: VariableGroup, readers: readonly ProcessConfigReader[]): string {
  if (group.processes.length === 0) return "Read by no process's loader";
  if (group.processes.length === readers.length) return "Every process";
  const titles = group.processes.map((name) => readers.find((reader) => reader.name === name)?.title ?? name);
  const [first = "", ...rest] = titles;
  return joinTitles([first, ...rest.map((title) => title.charAt(0).toLowerCase() + title.slice(1))]);
}

/** A GitHub-style heading anchor. */
export function anchor(heading: string): string {
  return heading
    .toLowerCase()
    .replace(/[^a-z0-9 -]/g, "")
    .replace(/ /g, "-");
}

/** docs/configuration.md. */
export function renderConfigurationReference(
  groups: readonly VariableGroup[],
  readers: readonly ProcessConfigReader[],
): string {
  const lines = [
    "<!-- Generated by `pnpm run docs:generate` from the zod catalogues (scripts/config-catalogue.ts). Do not edit: change the descriptions there. -->",
    "",
    "# Configuration",
    "",
    "Every process reads its settings from environment variables, once, at start-up, through zod catalogues:",
    "`ENV_CATALOGUE` in `kit/src/config.ts` for what every process shares, and `CHAT_ENV`",
    "(`subgraphs/chat/src/env.ts`), `MEDIA_ENV` (`subgraphs/media/src/env.ts`) and `PUSH_ENV`",
    "(`subgraphs/users/src/push/env.ts`); each config's type is inferred from the schemas. A bad value stops the process with a message that names",
    "the variable (a secret's value is never repeated, a URL's password is masked). An empty value counts as",
    "unset. The defaults suit one development machine (`npm start`); production needs at least the variables",
    'marked "in production".',
    "",
    "Which process reads which variable is found by running each process's own config loader (the function",
    "its entry file gives `runMain`) and recording what it looks up, so the groups below follow the code.",
    "",
    "| process | entry file | loader | sections |",
    "|---|---|---|---|",
  ];
  for (const reader of readers) {
    const sections = groups
      .filter((group) => group.processes.includes(reader.name))
      .map((group) => {
        const title = groupTitle(group, readers);
        return `[${title}](#${anchor(title)})`;
      });
    lines.push(`| ${reader.title} | \`${reader.entry}\` | \`${reader.loader}\` | ${sections.join(", ")} |`);
  }
  for (const group of groups) {
    lines.push(
      "",
      `## ${groupTitle(group, readers)}`,
      "",
      "| variable | default | required | secret | description |",
      "|---|---|---|---|---|",
    );
    for (const row of group.variables) {
      lines.push(
        `| \`${row.name}\` | ${cell(row.defaultText)} | ${cell(row.required)} | ${row.secret ? "yes" : "no"} | ${cell(row.description)} |`,
      );
    }
  }
  lines.push(
    "",
    "## Tools and internal variables",
    "",
    "`pnpm run blocklist` reads `REDIS_URL`, the `REDIS_SENTINEL*` variables and `EVENTS_PREFIX`; `pnpm run",
    "db:migrate` the four `*_DATABASE_URL`s; `pnpm run db:cluster-locations` what the discovery subgraph reads.",
    "`SCHEMA_BASE_REF` (not in the catalogue: tooling only) is the git ref `pnpm run schema:check` compares the",
    "supergraph with. `HV_MEDIA_PROCESSOR_CONFIG` is set by the media worker for its sandboxed child processes",
    "(their whole configuration, as JSON): never set it yourself.",
  );
  return `${lines.join("\n")}\n`;
}
