import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import ts from "typescript";

const ROOT = path.resolve(__dirname, "..", "..", "..");
const USERS = path.join(ROOT, "subgraphs", "users", "src");

/** Type-checks fixture files that import the users subgraph's real resolvers and generated types. */
function diagnosticsOf(fixtures: Record<string, string>): Record<string, string[]> {
  const dir = mkdtempSync(path.join(tmpdir(), "hv-resolver-types-"));
  try {
    const files = Object.entries(fixtures).map(([name, body]) => {
      const file = path.join(dir, `${name}.ts`);
      writeFileSync(file, body);
      return [name, file] as const;
    });
    const { config } = ts.readConfigFile(path.join(ROOT, "tsconfig.json"), ts.sys.readFile);
    const { options } = ts.parseJsonConfigFileContent(config, ts.sys, ROOT);
    const program = ts.createProgram(
      files.map(([, file]) => file),
      { ...options, noEmit: true, incremental: false },
    );
    return Object.fromEntries(
      files.map(([name, file]) => [
        name,
        ts
          .getPreEmitDiagnostics(program, program.getSourceFile(file))
          .map((diagnostic) => ts.flattenDiagnosticMessageText(diagnostic.messageText, "\n")),
      ]),
    );
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

const imports = `
import type { CompleteResolvers } from ${JSON.stringify(path.join(USERS, "generated", "resolvers-types"))};
import { resolvers } from ${JSON.stringify(path.join(USERS, "resolvers"))};
`;

describe("generated resolver types", () => {
  const diagnostics = diagnosticsOf({
    // The real map, re-declared: the fixture set-up itself compiles.
    intact: `${imports}
export const intact: CompleteResolvers = { ...resolvers };
`,
    // A root field declared in the SDL with no resolver.
    missingRootField: `${imports}
const { me: _me, ...query } = resolvers.Query;
export const broken: CompleteResolvers = { ...resolvers, Query: query };
`,
    // A User field the row (UserRow) does not carry, left unresolved.
    missingEntityField: `${imports}
const { age: _age, ...user } = resolvers.User;
export const broken: CompleteResolvers = { ...resolvers, User: user };
`,
    // A field resolved with the wrong type (age is Int).
    wrongType: `${imports}
export const broken: CompleteResolvers = { ...resolvers, User: { ...resolvers.User, age: () => "old" } };
`,
  });

  it("accepts the users subgraph's resolver map", () => {
    expect(diagnostics.intact).toEqual([]);
  });

  it("rejects a map without a resolver for a root field", () => {
    expect(diagnostics.missingRootField!.join("\n")).toMatch(/Property 'me' is missing/);
  });

  it("rejects a map without a resolver for a field the row lacks", () => {
    expect(diagnostics.missingEntityField!.join("\n")).toMatch(/Property 'age' is missing/);
  });

  it("rejects a resolver of the wrong type", () => {
    expect(diagnostics.wrongType!.join("\n")).toMatch(/Type 'string' is not assignable to type '.*number/);
  });
});
