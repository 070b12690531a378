import { execFile } from "node:child_process";
import { cpSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import { parseAllDocuments } from "yaml";
import { SUBGRAPHS } from "@hv/kit/src/subgraphs";
import { BUILT_PROCESSES } from "../../scripts/build/processes";
import { fillRegions } from "../../scripts/infra/regions";

/**
 * scripts/infra/generate.ts: what infra/ says per process and per subgraph, rendered from the
 * process list, the registry and the deployment settings; `--check` is the "== infra checks" step.
 */
const REPO = path.join(__dirname, "..", "..");
const GENERATOR = path.join(REPO, "scripts", "infra", "generate.ts");
const read = (file: string, root = REPO) => readFileSync(path.join(root, file), "utf8");

/** Runs the generator's check over `root` (a copy of the repository's infra/ and scripts, or the repository). */
function check(root: string): Promise<{ code: number; stdout: string }> {
  return new Promise((resolve, reject) => {
    execFile(
      process.execPath,
      ["--import", "tsx", GENERATOR, "--check", "--root", root],
      { cwd: REPO, timeout: 120_000 },
      (error, stdout, stderr) => {
        if (error && typeof error.code !== "number") return reject(error);
        resolve({ code: typeof error?.code === "number" ? error.code : 0, stdout: stdout + stderr });
      },
    );
  });
}

const copies: string[] = [];
afterAll(() => {
  for (const dir of copies) rmSync(dir, { recursive: true, force: true });
});

describe("infra generator (scripts/infra/generate.ts)", () => {
  it("should find the committed files as it renders them, and name a file edited by hand", async () => {
    const dir = mkdtempSync(path.join(os.tmpdir(), "hv-infra-gen-"));
    copies.push(dir);
    cpSync(path.join(REPO, "infra"), path.join(dir, "infra"), { recursive: true });
    cpSync(path.join(REPO, ".prettierrc.json"), path.join(dir, ".prettierrc.json"));
    const manifest = path.join(dir, "infra", "k8s", "chat.yaml");
    writeFileSync(manifest, read("infra/k8s/chat.yaml").replace("memory: 1Gi", "memory: 2Gi"));
    const [committed, edited] = await Promise.all([check(REPO), check(dir)]);
    expect(committed).toEqual({ code: 0, stdout: "infra: generated files up to date\n" });
    expect(edited.code).toBe(1);
    expect(edited.stdout).toContain("  - infra/k8s/chat.yaml\n");
    expect(edited.stdout).not.toContain("infra/k8s/users.yaml");
  }, 240_000);

  it("should have a manifest with a Deployment and a PodDisruptionBudget for every production process", () => {
    const listed = read("infra/k8s/kustomization.yaml");
    for (const proc of BUILT_PROCESSES) {
      expect(listed).toContain(`  - ${proc.name}.yaml\n`);
      const kinds = parseAllDocuments(read(`infra/k8s/${proc.name}.yaml`)).map(
        (doc) => (doc.toJS() as { kind: string }).kind,
      );
      expect(kinds).toEqual(expect.arrayContaining(["Deployment", "PodDisruptionBudget"]));
    }
  });

  it("should give every subgraph of the registry its database, URL, image target and scrape target", () => {
    for (const subgraph of SUBGRAPHS) {
      const database = `hv_${subgraph.name}`;
      expect(read("infra/pgbouncer/pgbouncer.ini")).toContain(`\n${database} = host=postgres `);
      expect(read("infra/k8s/migrate.yaml")).toContain(`key: ${subgraph.databaseUrlVar}_DIRECT`);
      expect(read("infra/k8s/config.yaml")).toContain(
        `${subgraph.name.toUpperCase()}_URL: http://${subgraph.name}.haiyvee.svc:${subgraph.port}/graphql`,
      );
      expect(read("infra/docker-compose.system.yml")).toContain(`@pgbouncer:6432/${database}\n`);
      expect(read("infra/observability/prometheus.yml")).toContain(`"${subgraph.name}:${subgraph.port}"`);
      expect(read("infra/docker/Dockerfile")).toContain(`FROM runtime AS ${subgraph.name}\n`);
    }
  });

  it("should fill a marked region with the marker's indentation, and refuse a missing or unclosed one", () => {
    const regions = { names: () => ["- a", "- b"] };
    expect(
      fillRegions("x.yaml", "top:\n  # >>> generated: names\n  - old\n  # <<< generated: names\n", regions),
    ).toBe("top:\n  # >>> generated: names\n  - a\n  - b\n  # <<< generated: names\n");
    expect(() => fillRegions("x.yaml", "top: 1\n", regions)).toThrow(
      'x.yaml: no "# >>> generated: names" marker',
    );
    expect(() => fillRegions("x.yaml", "# >>> generated: names\n- old\n", regions)).toThrow(
      'x.yaml: region "names" has no closing "# <<< generated: names"',
    );
  });
});
