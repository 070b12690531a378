import { readFileSync, readdirSync, realpathSync } from "node:fs";
import path from "node:path";
import { parse } from "yaml";

/**
 * Versions in one place: pnpm-workspace.yaml's catalog holds the version of every package that more
 * than one workspace package uses, and of the ones below; workspace packages name them as "catalog:".
 */
const ROOT = path.join(__dirname, "..", "..");
const DEPENDENCY_FIELDS = [
  "dependencies",
  "devDependencies",
  "peerDependencies",
  "optionalDependencies",
] as const;
/** Must be in the catalog even while only one package uses them (docs/runtime.md says why). */
const ALWAYS_CATALOGUED = [
  "@apollo/composition",
  "@apollo/federation-internals",
  "@apollo/gateway",
  "@apollo/query-planner",
  "@apollo/subgraph",
  "@aws-sdk/client-s3",
  "@aws-sdk/s3-request-presigner",
  "@prisma/adapter-pg",
  "@prisma/client",
  "@types/node",
  "bullmq",
  "graphql",
  "graphql-ws",
  "ioredis",
  "prisma",
  "sharp",
  "tsx",
];
/** Development-only tools that a workspace package may list only under devDependencies. */
const isDevelopmentOnly = (name: string): boolean => name.startsWith("@types/") || name === "tsx";

interface WorkspacePackage {
  dir: string;
  manifest: Record<string, unknown>;
}

function readJson(file: string): Record<string, unknown> {
  return JSON.parse(readFileSync(file, "utf8")) as Record<string, unknown>;
}

function workspace(): { catalog: Record<string, string>; packages: WorkspacePackage[] } {
  const config = parse(readFileSync(path.join(ROOT, "pnpm-workspace.yaml"), "utf8")) as {
    packages: string[];
    catalog?: Record<string, string>;
  };
  const dirs = ["."];
  for (const pattern of config.packages) {
    if (pattern.endsWith("/*")) {
      const parent = pattern.slice(0, -2);
      for (const entry of readdirSync(path.join(ROOT, parent), { withFileTypes: true })) {
        if (entry.isDirectory()) dirs.push(path.join(parent, entry.name));
      }
    } else {
      expect(pattern).not.toMatch(/[*?{]/); // only "dir" and "dir/*" are understood here
      dirs.push(pattern);
    }
  }
  return {
    catalog: config.catalog ?? {},
    packages: dirs.map((dir) => ({ dir, manifest: readJson(path.join(ROOT, dir, "package.json")) })),
  };
}

function dependencies(
  manifest: Record<string, unknown>,
  field: (typeof DEPENDENCY_FIELDS)[number],
): Array<[string, string]> {
  return Object.entries((manifest[field] as Record<string, string> | undefined) ?? {});
}

describe("versions in one place (pnpm catalog)", () => {
  const { catalog, packages } = workspace();

  it("should find the root and all seven workspace packages", () => {
    expect(packages.map((p) => p.manifest.name).sort()).toEqual([
      "@hv/chat",
      "@hv/discovery",
      "@hv/gateway",
      "@hv/kit",
      "@hv/media",
      "@hv/prisma",
      "@hv/users",
      "haiyvee-backend",
    ]);
  });

  it("should have every always-catalogued package in the catalog, each at one exact version (type packages: one range)", () => {
    expect(ALWAYS_CATALOGUED.filter((name) => catalog[name] === undefined)).toEqual([]);
    const ranges = Object.entries(catalog).filter(
      ([name, version]) => !name.startsWith("@types/") && !/^\d+\.\d+\.\d+$/.test(version),
    );
    expect(ranges).toEqual([]);
  });

  it("should name a catalogued package as catalog: in every workspace package", () => {
    const outside: string[] = [];
    for (const { dir, manifest } of packages) {
      for (const field of DEPENDENCY_FIELDS) {
        for (const [name, specifier] of dependencies(manifest, field)) {
          if (catalog[name] !== undefined && specifier !== "catalog:")
            outside.push(`${dir}/package.json ${field} ${name}@${specifier}`);
        }
      }
    }
    expect(outside).toEqual([]);
  });

  it("should have in the catalog every package that two or more workspace packages declare", () => {
    const declaredBy = new Map<string, Set<string>>();
    for (const { dir, manifest } of packages) {
      for (const field of DEPENDENCY_FIELDS) {
        for (const [name, specifier] of dependencies(manifest, field)) {
          if (specifier.startsWith("workspace:")) continue;
          declaredBy.set(name, (declaredBy.get(name) ?? new Set()).add(dir));
        }
      }
    }
    const shared = [...declaredBy]
      .filter(([name, dirs]) => dirs.size > 1 && catalog[name] === undefined)
      .map(([name, dirs]) => `${name}: ${[...dirs].join(", ")}`);
    expect(shared).toEqual([]);
  });

  it("should list type packages and tsx only under devDependencies", () => {
    const misplaced: string[] = [];
    for (const { dir, manifest } of packages) {
      for (const field of DEPENDENCY_FIELDS.filter((f) => f !== "devDependencies")) {
        for (const [name] of dependencies(manifest, field)) {
          if (isDevelopmentOnly(name)) misplaced.push(`${dir}/package.json ${field} ${name}`);
        }
      }
    }
    expect(misplaced).toEqual([]);
  });

  it("should have installed, for each workspace package, the catalog's version of every catalogued package it declares", () => {
    const lock = parse(readFileSync(path.join(ROOT, "pnpm-lock.yaml"), "utf8")) as {
      catalogs?: { default?: Record<string, { specifier: string; version: string }> };
    };
    const locked = lock.catalogs?.default ?? {};
    const drift: string[] = [];
    for (const [name, specifier] of Object.entries(catalog)) {
      const entry = locked[name];
      if (entry?.specifier !== specifier)
        drift.push(`pnpm-lock.yaml has ${name}@${entry?.specifier ?? "nothing"}, the catalog ${specifier}`);
    }
    for (const { dir, manifest } of packages) {
      for (const field of DEPENDENCY_FIELDS) {
        for (const [name, specifier] of dependencies(manifest, field)) {
          if (specifier !== "catalog:") continue;
          const installed = readJson(
            realpathSync(path.join(ROOT, dir, "node_modules", name, "package.json")),
          ).version;
          if (installed !== locked[name]?.version)
            drift.push(
              `${dir} loads ${name}@${String(installed)}, the lockfile says ${locked[name]?.version ?? "nothing"}`,
            );
        }
      }
    }
    expect(drift).toEqual([]);
  });
});
