import { execFile } from "node:child_process";
import { readFileSync } from "node:fs";
import path from "node:path";
import { promisify } from "node:util";

/** The supported Node line runs the tests, and is also the `node` that scripts and children find on PATH. */
const ROOT = path.join(__dirname, "..", "..");
const run = promisify(execFile);

describe("the Node that runs the project", () => {
  const pinned = readFileSync(path.join(ROOT, ".node-version"), "utf8").trim();
  const floor = (
    JSON.parse(readFileSync(path.join(ROOT, "package.json"), "utf8")) as { engines: { node: string } }
  ).engines.node;

  it("should pin in .node-version an exact release that package.json's engines field allows", () => {
    expect(pinned).toMatch(/^\d+\.\d+\.\d+$/);
    expect(floor).toMatch(/^>=\d+\.\d+$/);
    const [major, minor] = pinned.split(".").map(Number);
    const [floorMajor, floorMinor] = floor.slice(2).split(".").map(Number);
    expect(major! > floorMajor! || (major === floorMajor && minor! >= floorMinor!)).toBe(true);
  });

  it("should run this jest worker on a Node the engines field allows", async () => {
    await expect(
      run(process.execPath, [path.join(ROOT, "scripts", "node-meets-engines.cjs")]),
    ).resolves.toBeDefined();
  });

  it("should find on PATH the same node as the one running this worker", async () => {
    const { stdout } = await run("node", ["--version"]);
    expect(stdout.trim()).toBe(process.version);
  });

  it("should have @types/node of the pinned Node's major version", () => {
    const types = JSON.parse(
      readFileSync(path.join(ROOT, "node_modules", "@types", "node", "package.json"), "utf8"),
    ) as { version: string };
    expect(types.version.split(".")[0]).toBe(pinned.split(".")[0]);
  });
});
