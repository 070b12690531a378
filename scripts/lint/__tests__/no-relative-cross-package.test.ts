import path from "node:path";
import { Linter } from "eslint";
import rule from "../no-relative-cross-package.cjs";

/** hv/no-relative-cross-package on one source text, as if it were the file at `file` (repository-relative). */
const ROOT = "/repo";
function problems(file: string, source: string): string[] {
  const linter = new Linter({ configType: "flat", cwd: ROOT });
  const messages = linter.verify(
    source,
    [
      {
        files: ["**/*.ts"],
        plugins: { hv: { rules: { "no-relative-cross-package": rule } } },
        rules: {
          "hv/no-relative-cross-package": [
            "error",
            { root: ROOT, packages: ["kit", "gateway", "prisma", "subgraphs/chat", "subgraphs/discovery"] },
          ],
        },
      },
    ],
    path.posix.join(ROOT, file),
  );
  return messages.map((message) => message.message);
}

describe("lint: hv/no-relative-cross-package", () => {
  it("should refuse a subgraph reaching into kit or another subgraph by a relative path", () => {
    expect(problems("subgraphs/chat/src/a.ts", 'import { x } from "../../../kit/src/errors";')).toEqual([
      "'../../../kit/src/errors' leaves subgraphs/chat for kit: import it by package name (@hv/…), never by a relative path.",
    ]);
    expect(problems("subgraphs/chat/src/a.ts", 'export * from "../../discovery/src/db";')).toHaveLength(1);
    expect(problems("subgraphs/chat/src/a.ts", 'const db = require("../../discovery/src/db");')).toHaveLength(
      1,
    );
    expect(problems("subgraphs/chat/src/a.ts", 'void import("../../discovery/src/db");')).toHaveLength(1);
  });

  it("should refuse the root package's files reaching into a package, and a package reaching into the root", () => {
    expect(problems("test/e2e/a.test.ts", 'import { y } from "../../gateway/src/y";')).toHaveLength(1);
    expect(problems("kit/src/a.ts", 'import { z } from "../../scripts/z";')).toEqual([
      "'../../scripts/z' leaves kit for the root package: import it by package name (@hv/…), never by a relative path.",
    ]);
  });

  it("should allow relative paths inside one package, package names, and test support from tests", () => {
    expect(problems("subgraphs/chat/src/modules/a.ts", 'import { r } from "../rows";')).toEqual([]);
    expect(problems("subgraphs/chat/src/a.ts", 'import { k } from "@hv/kit";')).toEqual([]);
    expect(problems("kit/test/a.test.ts", 'import { p } from "../../test/support/ports";')).toEqual([]);
    expect(problems("test/e2e/a.test.ts", 'import { s } from "../support/system";')).toEqual([]);
    expect(problems("kit/src/a.ts", 'import { p } from "../../test/support/ports";')).toHaveLength(1);
  });
});
