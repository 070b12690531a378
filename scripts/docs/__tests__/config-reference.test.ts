import { readFileSync } from "node:fs";
import { envVarDefault, generateSigningKeyJwk, type EnvVarSpec } from "@hv/kit";
import { ALL_ENV } from "../../config-catalogue";
import { fromRoot } from "../../schema/paths";
import {
  anchor,
  groupByProcess,
  renderConfigurationReference,
  sizeHint,
  variableRow,
  variablesReadBy,
  type ProcessConfigReader,
  type VariableRow,
} from "../config-reference";
import { staleDocProblem } from "../generated-docs";
import { processConfigReaders } from "../processes";

type Env = Record<string, string | undefined>;

const reader = (name: string, load: (env: Env) => unknown, probes: Env[] = [{}]): ProcessConfigReader => ({
  name,
  title: name.charAt(0).toUpperCase() + name.slice(1),
  entry: `${name}/index.ts`,
  loader: `load${name}`,
  load,
  probes,
});

const row = (name: string): VariableRow => ({
  name,
  defaultText: "unset",
  required: "no",
  secret: false,
  description: `${name} text`,
});

describe("configuration reference: what a process reads", () => {
  it("should record every variable a loader looks up, under each of its probes", () => {
    const load = (env: Env) => {
      const driver = env.DRIVER ?? "local";
      return driver === "s3" ? [env.BUCKET, env.REGION] : [env.DIR];
    };
    expect([...variablesReadBy(reader("media", load, [{}, { DRIVER: "s3", BUCKET: "b" }]))].sort()).toEqual([
      "BUCKET",
      "DIR",
      "DRIVER",
      "REGION",
    ]);
  });

  it("should fail naming the process and its loader when a probe is refused", () => {
    const load = (env: Env) => {
      if (env.SECRET === undefined) throw new Error("SECRET is required");
    };
    expect(() => variablesReadBy(reader("users", load))).toThrow(
      /users: loadusers refused the probe \[\]: SECRET is required/,
    );
  });
});

describe("configuration reference: one variable", () => {
  /** A schema that accepts being unset or not, as zod's `safeParse(undefined)` would say. */
  const schema = (acceptsUnset: boolean) => ({ safeParse: () => ({ success: acceptsUnset }) });
  const entry = (name: string): EnvVarSpec => ALL_ENV[name] as EnvVarSpec;

  it("should take the schema's default as written, before any transform", () => {
    expect(envVarDefault(entry("TRUST_PROXY"))).toBe("loopback");
    expect(envVarDefault(entry("GATEWAY_RATE_LIMIT_IP"))).toBe("1200/1m");
    expect(envVarDefault(entry("MEDIA_S3_FORCE_PATH_STYLE"))).toBe("false");
    expect(envVarDefault(entry("GATEWAY_PORT"))).toBe(4000);
    expect(envVarDefault(entry("MEDIA_S3_BUCKET"))).toBeUndefined();
  });

  it("should show the default in words when given, else the schema's, else unset", () => {
    expect(variableRow("A", { schema: schema(true), description: "d" }, "loopback").defaultText).toBe(
      "`loopback`",
    );
    expect(
      variableRow("B", { schema: schema(true), description: "d", defaultText: "the primary" }, undefined)
        .defaultText,
    ).toBe("the primary");
    expect(variableRow("C", { schema: schema(true), description: "d" }, undefined).defaultText).toBe("unset");
  });

  it("should give a size in KiB, MiB or GiB beside a byte count that is a whole number of them", () => {
    expect(sizeHint("MEDIA_MAX_IMAGE_BYTES", 25 * 1024 * 1024)).toBe(" (25 MiB)");
    expect(sizeHint("MEDIA_MAX_PENDING_BYTES", 1024 ** 3)).toBe(" (1 GiB)");
    expect(sizeHint("GATEWAY_MAX_BODY_BYTES", 256 * 1024)).toBe(" (256 KiB)");
    expect(sizeHint("GATEWAY_MAX_BODY_BYTES", 1000)).toBe("");
    expect(sizeHint("MEDIA_MAX_PIXELS", 50_000_000)).toBe("");
    expect(
      variableRow("MEDIA_MAX_VIDEO_BYTES", { schema: schema(true), description: "d" }, 200 * 1024 * 1024)
        .defaultText,
    ).toBe("`209715200` (200 MiB)");
  });

  it("should say a variable is required when the schema refuses it unset, or when its condition says", () => {
    expect(variableRow("A", { schema: schema(false), description: "d" }, undefined).required).toBe("yes");
    expect(
      variableRow("B", { schema: schema(true), description: "d", requiredWhen: "in production" }, undefined)
        .required,
    ).toBe("in production");
    expect(variableRow("C", { schema: schema(true), description: "d" }, undefined).required).toBe("no");
    expect(variableRow("D", { schema: schema(true), description: "d", secret: true }, undefined).secret).toBe(
      true,
    );
  });
});

describe("configuration reference: grouping and rendering", () => {
  const reads = new Map<string, ReadonlySet<string>>([
    ["gateway", new Set(["NODE_ENV", "GATEWAY_PORT"])],
    ["users", new Set(["NODE_ENV", "USERS_DB"])],
    ["worker", new Set(["NODE_ENV", "USERS_DB", "WORKER_PORT"])],
  ]);
  const rows = ["GATEWAY_PORT", "USERS_DB", "NODE_ENV", "WORKER_PORT", "UNUSED"].map(row);

  it("should put what every process reads first, then one group per set of processes, unread variables last", () => {
    const groups = groupByProcess(rows, reads);
    expect(
      groups.map((group) => [group.processes, group.variables.map((variable) => variable.name)]),
    ).toEqual([
      [["gateway", "users", "worker"], ["NODE_ENV"]],
      [["gateway"], ["GATEWAY_PORT"]],
      [["users", "worker"], ["USERS_DB"]],
      [["worker"], ["WORKER_PORT"]],
      [[], ["UNUSED"]],
    ]);
  });

  it("should refuse a variable a process reads that the catalogue does not describe", () => {
    const withStray = new Map(reads).set("users", new Set(["NODE_ENV", "STRAY_VARIABLE"]));
    expect(() => groupByProcess(rows, withStray)).toThrow(/STRAY_VARIABLE \(users\)/);
  });

  it("should link each process to sections that exist, and print every variable once", () => {
    const readers = ["gateway", "users", "worker"].map((name) => reader(name, () => undefined));
    const markdown = renderConfigurationReference(groupByProcess(rows, reads), readers);
    const headings = markdown
      .split("\n")
      .filter((line) => line.startsWith("## "))
      .map((line) => line.slice(3));
    expect(headings).toEqual([
      "Every process",
      "Gateway",
      "Users and worker",
      "Worker",
      "Read by no process's loader",
      "Tools and internal variables",
    ]);
    const links = [...markdown.matchAll(/\]\(#([a-z0-9-]+)\)/g)].map((match) => match[1]);
    expect(new Set(links)).toEqual(new Set(headings.slice(0, 4).map(anchor)));
    for (const name of ["GATEWAY_PORT", "USERS_DB", "NODE_ENV", "WORKER_PORT", "UNUSED"]) {
      expect(markdown.split("\n").filter((line) => line.startsWith(`| \`${name}\``))).toHaveLength(1);
    }
  });
});

describe("configuration reference: the real processes", () => {
  const readers = processConfigReaders();

  it.each(readers.map((each) => [each.entry, each.loader]))(
    "should probe %s through %s, the loader it hands runMain",
    (entry, loader) => {
      expect(readFileSync(fromRoot(entry), "utf8")).toMatch(new RegExp(`runMain\\([^;]*\\b${loader}\\b`));
    },
  );

  it("should find every catalogued variable read by some process", () => {
    const read = new Set(readers.flatMap((each) => [...variablesReadBy(each)]));
    expect(Object.keys(ALL_ENV).filter((name) => !read.has(name))).toEqual([]);
  });

  it("should refuse to start in production without each variable it marks required in production", () => {
    const production: Env = {
      NODE_ENV: "production",
      AUTH_SIGNING_KEYS: JSON.stringify([generateSigningKeyJwk("prod-test")]),
      MEDIA_GRANT_SECRET: "g".repeat(32),
      MEDIA_URL_SECRET: "u".repeat(32),
    };
    const inProduction = Object.entries(ALL_ENV).filter(([, entry]) =>
      entry.requiredWhen?.startsWith("in production"),
    );
    expect(inProduction.map(([name]) => name).sort()).toEqual(
      Object.keys(production)
        .filter((name) => name !== "NODE_ENV")
        .sort(),
    );
    for (const [name] of inProduction) {
      const readersOfIt = readers.filter((each) => variablesReadBy(each).has(name));
      expect(readersOfIt.length).toBeGreaterThan(0);
      for (const each of readersOfIt) {
        expect(() => each.load(production)).not.toThrow();
        expect(() => each.load({ ...production, [name]: undefined })).toThrow(new RegExp(name));
      }
    }
  });
});

describe("generated docs: freshness", () => {
  it("should pass a fresh file, and name a missing or stale one with the command that fixes it and a diff", () => {
    expect(staleDocProblem("docs/x.md", "a\nb\n", "a\nb\n")).toBeNull();
    expect(staleDocProblem("docs/x.md", "a\r\nb\r\n", "a\nb\n")).toBeNull();
    expect(staleDocProblem("docs/x.md", undefined, "a\n")).toBe(
      "docs/x.md is missing: run pnpm run docs:generate and commit it",
    );
    const stale = staleDocProblem("docs/x.md", "a\nold\n", "a\nnew\n") ?? "";
    expect(stale).toContain("docs/x.md is stale: run pnpm run docs:generate and commit it");
    expect(stale).toContain("-old");
    expect(stale).toContain("+new");
  });
});
