import { spawnSync } from "node:child_process";
import { BUILT_PROCESSES, nodeCommand } from "../processes";

/** Each process's node flags (scripts/build/processes.ts) as its image, start:prod and the benches pass them. */
describe("the built processes' node flags", () => {
  it.each(BUILT_PROCESSES.map((proc) => [proc.name, proc.nodeArgs] as const))(
    "should be accepted by this Node for %s",
    (_name, nodeArgs) => {
      const run = spawnSync(process.execPath, [...nodeArgs, "-e", "0"], { encoding: "utf8" });
      expect(run.stderr).toBe("");
      expect(run.status).toBe(0);
    },
  );

  it("should come before the entry on the command line", () => {
    for (const proc of BUILT_PROCESSES) expect(nodeCommand(proc)).toEqual([...proc.nodeArgs, proc.entry]);
  });
});
