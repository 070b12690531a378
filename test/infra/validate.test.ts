import { execFile } from "node:child_process";
import { cpSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import os from "node:os";
import path from "node:path";

/**
 * scripts/infra/validate.mts, the "== infra checks" step of npm test, run as CI runs it: on a copy
 * of infra/ with one thing broken per test, it must fail and say what is wrong.
 */
const REPO = path.join(__dirname, "..", "..");
const VALIDATOR = path.join(REPO, "scripts", "infra", "validate.mts");

/** Runs the validator once over several infra/ copies; each copy's report, by directory. */
function runAll(dirs: string[]): Promise<Map<string, string>> {
  const args = ["--import", "tsx", VALIDATOR, ...dirs.flatMap((dir) => ["--infra", dir])];
  return new Promise((resolve, reject) => {
    execFile(
      process.execPath,
      args,
      { cwd: REPO, timeout: 300_000, maxBuffer: 16 * 1024 * 1024 },
      (error, stdout, stderr) => {
        if (error && typeof error.code !== "number") return reject(error);
        const reports = new Map<string, string>();
        for (const block of stdout.split(/^== /m).slice(1)) {
          const newline = block.indexOf("\n");
          reports.set(block.slice(0, newline), block.slice(newline + 1));
        }
        if (reports.size !== dirs.length)
          return reject(new Error(`expected ${dirs.length} reports:\n${stdout}${stderr}`));
        resolve(reports);
      },
    );
  });
}

const copies: string[] = [];
function copyOfInfra(): string {
  const dir = mkdtempSync(path.join(os.tmpdir(), "hv-infra-"));
  copies.push(dir);
  cpSync(path.join(REPO, "infra"), dir, { recursive: true });
  return dir;
}

/** A copy of infra/ with `edit` applied to one file (which must change). */
function broken(file: string, edit: (text: string) => string, dir = copyOfInfra()): string {
  const target = path.join(dir, file);
  const before = readFileSync(target, "utf8");
  const after = edit(before);
  if (after === before) throw new Error(`the edit of ${file} changed nothing`);
  writeFileSync(target, after);
  return dir;
}

/**
 * Every case's copy is made first and the validator runs once over all of them (it costs seconds
 * per start); each test then reads its copy's report. A report that passes starts with "infra checks:
 * Dockerfile", one that fails with "infra checks: N problem(s)".
 */
const cases = new Map<string, () => string>();
const reports = new Map<string, string>();
function variant(name: string, make: () => string): () => string {
  cases.set(name, make);
  return () => {
    const report = reports.get(name);
    if (report === undefined) throw new Error(`no report for ${name}`);
    return report;
  };
}
const failed = (report: string) => /^infra checks: \d+ problem/.test(report);

const committed = variant("committed", () => path.join(REPO, "infra"));
const typo = variant("typo", () =>
  broken("k8s/users.yaml", (t) => t.replace("readinessProbe:", "readinesProbe:")),
);
const wrongType = variant("wrongType", () =>
  broken("k8s/gateway.yaml", (t) => t.replace(/^( {2}replicas:) \d+$/m, "$1 three")),
);
const composeSchema = variant("composeSchema", () =>
  broken("docker-compose.system.yml", (t) => t.replace('restart: "no"', 'restrt: "no"')),
);
const composeUnknownVar = variant("composeUnknownVar", () =>
  broken("docker-compose.system.yml", (t) =>
    t.replace('USERS_PORT: "4001"', 'USERS_PORT: "4001"\n      USERS_DATABSE_URL: x'),
  ),
);
const k8sUnknownVar = variant("k8sUnknownVar", () =>
  broken("k8s/config.yaml", (t) => t.replace("LOG_LEVEL: info", "LOG_LEVEL: info\n  LOG_LEVLE: debug")),
);
const literalSecret = variant("literalSecret", () =>
  broken("k8s/chat.yaml", (t) =>
    t.replace(
      /- name: MEDIA_GRANT_SECRET\n(\s+)valueFrom:\n\s+secretKeyRef:\n\s+name: hv-media\n\s+key: MEDIA_GRANT_SECRET/,
      '- name: MEDIA_GRANT_SECRET\n$1value: "0123456789abcdef0123456789abcdef"',
    ),
  ),
);
const k8sMissingSecret = variant("k8sMissingSecret", () =>
  broken("k8s/users.yaml", (t) => t.replace(/ {12}- name: AUTH_SIGNING_KEYS\n(?: {14}.*\n){4}/, "")),
);
const composeMissingSecret = variant("composeMissingSecret", () =>
  broken("docker-compose.system.yml", (t) => t.replace(/ {6}AUTH_SIGNING_KEYS: .*\n/, "")),
);
const probePath = variant("probePath", () =>
  broken("k8s/discovery.yaml", (t) => t.replace("path: /readyz", "path: /ready")),
);
const probePort = variant("probePort", () =>
  broken("k8s/media.yaml", (t) => t.replace("containerPort: 4004", "containerPort: 4014")),
);
const missingProcess = variant("missingProcess", () => {
  const dir = broken("k8s/kustomization.yaml", (t) => t.replace("  - push-worker.yaml\n", ""));
  rmSync(path.join(dir, "k8s", "push-worker.yaml"));
  broken("docker/Dockerfile", (t) => t.replace("AS push-worker", "AS pusher"), dir);
  return broken("docker-compose.system.yml", (t) => t.replace("  push-worker:\n", "  pusher:\n"), dir);
});
const rootImage = variant("rootImage", () =>
  broken("docker/Dockerfile", (t) =>
    t
      .replace("FROM runtime AS chat\n", "FROM runtime AS chat\nUSER root\n")
      .replace(/(FROM runtime AS users\nCOPY[^\n]*\nEXPOSE 4001\n)HEALTHCHECK[^\n]*\\\n[^\n]*\n/, "$1"),
  ),
);
const sourceEntry = variant("sourceEntry", () =>
  broken("docker/Dockerfile", (t) =>
    t.replace('CMD ["dist/users/main.js"]', 'CMD ["subgraphs/users/src/index.ts"]'),
  ),
);
const oldNode = variant("oldNode", () =>
  broken("docker/Dockerfile", (t) =>
    t.replace(/^ARG NODE_IMAGE=.*$/m, "ARG NODE_IMAGE=node:20-bookworm-slim"),
  ),
);
const bypass = variant("bypass", () =>
  broken("docker-compose.system.yml", (t) => t.replace("@pgbouncer:6432/hv_chat", "@postgres:5432/hv_chat")),
);
const pooledListen = variant("pooledListen", () =>
  broken("docker-compose.system.yml", (t) =>
    t.replace(/(CHAT_LISTEN_DATABASE_URL: [^\n]*)@postgres:5432\//, "$1@pgbouncer:6432/"),
  ),
);
const drift = variant("drift", () =>
  broken("pgbouncer/pgbouncer.ini", (t) => t.replace("default_pool_size = 20", "default_pool_size = 25")),
);
const planner = variant("planner", () =>
  broken("pgbouncer/pgbouncer.ini", (t) =>
    t.replace(" connect_query='SET enable_bitmapscan = off; SET max_parallel_workers_per_gather = 0'", ""),
  ),
);

beforeAll(async () => {
  const dirs = new Map([...cases].map(([name, make]) => [name, make()]));
  const byDir = await runAll([...dirs.values()]);
  for (const [name, dir] of dirs) reports.set(name, byDir.get(dir) ?? "");
}, 300_000);
afterAll(() => {
  for (const dir of copies) rmSync(dir, { recursive: true, force: true });
});

describe("infra validator (scripts/infra/validate.mts)", () => {
  it("should pass on the committed infra/", () => {
    expect(committed()).toMatch(/^infra checks: Dockerfile, compose files and Kubernetes manifests valid/);
  });

  it("should refuse a Kubernetes manifest with a misspelt field, naming it", () => {
    expect(failed(typo())).toBe(true);
    expect(typo()).toContain(
      "Deployment users: Object literal may only specify known properties, and 'readinesProbe' does not exist in type 'IContainer'",
    );
  });

  it("should refuse a Kubernetes manifest with a value of the wrong type", () => {
    expect(failed(wrongType())).toBe(true);
    expect(wrongType()).toMatch(/Deployment gateway: .*replicas must be integer/);
  });

  it("should refuse a compose file that breaks the Compose schema", () => {
    expect(failed(composeSchema())).toBe(true);
    expect(composeSchema()).toContain(
      'compose schema: /services/migrate must NOT have additional properties "restrt"',
    );
  });

  it("should refuse a variable that is not in the configuration catalogue, in compose and in Kubernetes", () => {
    expect(composeUnknownVar()).toContain(
      "service users: USERS_DATABSE_URL is not in kit/src/config.ts ENV_CATALOGUE",
    );
    expect(k8sUnknownVar()).toContain(
      "ConfigMap hv-config: LOG_LEVLE is not in kit/src/config.ts ENV_CATALOGUE",
    );
    expect(failed(composeUnknownVar()) && failed(k8sUnknownVar())).toBe(true);
  });

  it("should refuse a secret written as a literal value", () => {
    expect(failed(literalSecret())).toBe(true);
    expect(literalSecret()).toContain(
      "Deployment chat: MEDIA_GRANT_SECRET is a secret: use valueFrom.secretKeyRef, never value",
    );
  });

  it("should refuse a process without a secret it needs in production", () => {
    expect(k8sMissingSecret()).toContain(
      "Deployment users: needs AUTH_SIGNING_KEYS in production from a Secret",
    );
    expect(composeMissingSecret()).toContain("service users: needs AUTH_SIGNING_KEYS in production");
    expect(failed(k8sMissingSecret()) && failed(composeMissingSecret())).toBe(true);
  });

  it("should refuse probes on the wrong path or port", () => {
    expect(probePath()).toContain(
      "Deployment discovery: readinessProbe must GET /readyz on DISCOVERY_PORT (4002), is /ready on http",
    );
    expect(probePort()).toContain("Deployment media: readinessProbe must GET /readyz on MEDIA_PORT (4004)");
  });

  it("should refuse a process of npm start without a Deployment, a compose service or an image target", () => {
    expect(missingProcess()).toContain(
      'infra/k8s: no Deployment for the process "push-worker" of scripts/run-all.ts',
    );
    expect(missingProcess()).toContain(
      'no target "push-worker" for the process of scripts/build/processes.ts',
    );
    expect(missingProcess()).toContain('no service for the process "push-worker" of scripts/run-all.ts');
  });

  it("should refuse an image that runs as root or has no health check", () => {
    expect(rootImage()).toContain("target chat: runs as root");
    expect(rootImage()).toContain("target users: HEALTHCHECK must probe /readyz on USERS_PORT");
  });

  it("should refuse an image whose CMD is not its process's built entry (the file the production-mode test runs)", () => {
    expect(failed(sourceEntry())).toBe(true);
    expect(sourceEntry()).toContain(
      'target users: CMD must be the exec form ["dist/users/main.js"], is ["subgraphs/users/src/index.ts"]',
    );
  });

  it("should refuse a base image on another Node than .node-version's", () => {
    expect(failed(oldNode())).toBe(true);
    expect(oldNode()).toMatch(
      /NODE_IMAGE must be node:[\d.]+-… \(\.node-version\), is node:20-bookworm-slim/,
    );
  });

  it("should refuse application databases that bypass PgBouncer, and PgBouncer configs that disagree", () => {
    expect(bypass()).toContain("service chat: CHAT_DATABASE_URL must go through pgbouncer");
    expect(pooledListen()).toContain(
      "service chat: CHAT_LISTEN_DATABASE_URL must reach PostgreSQL directly (LISTEN needs a session of its own)",
    );
    expect(drift()).toContain("pgbouncer.ini differs from infra/pgbouncer/pgbouncer.ini");
    expect(planner()).toContain("needs an entry whose connect_query sets the search planner options");
  });
});
