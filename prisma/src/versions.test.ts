import { readFileSync, realpathSync } from "node:fs";
import path from "node:path";
import { SUBGRAPH_NAMES } from "@hv/kit/src/subgraphs";

/**
 * Prisma's versions do not drift apart unnoticed: what is installed for every package that uses
 * Prisma is what prisma/README.md states, the client is the CLI's version, and each generated
 * client was made by that CLI.
 */
const ROOT = path.join(__dirname, "..", "..");
const SUBGRAPHS = SUBGRAPH_NAMES;

function installedVersion(packageDir: string, name: string): string {
  const manifest = realpathSync(path.join(ROOT, packageDir, "node_modules", name, "package.json"));
  return (JSON.parse(readFileSync(manifest, "utf8")) as { version: string }).version;
}

function statedVersions(): { cli: string; adapter: string } {
  const readme = readFileSync(path.join(ROOT, "prisma", "README.md"), "utf8");
  const match = /`prisma` and `@prisma\/client` (\d+\.\d+\.\d+), `@prisma\/adapter-pg` (\d+\.\d+\.\d+)/.exec(
    readme,
  );
  if (!match) throw new Error("prisma/README.md no longer states the versions in the form this test reads");
  return { cli: match[1]!, adapter: match[2]! };
}

describe("Prisma versions", () => {
  const stated = statedVersions();

  it("should have installed the CLI and client that prisma/README.md states, both on one version", () => {
    const installed = [
      ["prisma", "prisma"],
      ["prisma", "@prisma/client"],
      ...SUBGRAPHS.map((name) => [`subgraphs/${name}`, "@prisma/client"]),
    ].map(([dir, name]) => `${dir} ${name}@${installedVersion(dir!, name!)}`);
    expect(installed).toEqual(
      [
        ["prisma", "prisma"],
        ["prisma", "@prisma/client"],
        ...SUBGRAPHS.map((name) => [`subgraphs/${name}`, "@prisma/client"]),
      ].map(([dir, name]) => `${dir} ${name}@${stated.cli}`),
    );
  });

  it("should have installed the driver adapter that prisma/README.md states, everywhere", () => {
    const dirs = ["prisma", "kit", ...SUBGRAPHS.map((name) => `subgraphs/${name}`)];
    expect(dirs.map((dir) => `${dir} ${installedVersion(dir, "@prisma/adapter-pg")}`)).toEqual(
      dirs.map((dir) => `${dir} ${stated.adapter}`),
    );
  });

  it("should have generated every subgraph's client with the installed CLI (else: pnpm run db:generate)", () => {
    const generatedBy = SUBGRAPHS.map((name) => {
      const source = readFileSync(
        path.join(ROOT, "subgraphs", name, "src", "generated", "prisma", "internal", "class.ts"),
        "utf8",
      );
      return `${name} ${/"clientVersion": "([^"]+)"/.exec(source)?.[1] ?? "unknown"}`;
    });
    expect(generatedBy).toEqual(SUBGRAPHS.map((name) => `${name} ${installedVersion("prisma", "prisma")}`));
  });
});
