import { buildSchema } from "graphql";
import { operationProblems, type OperationFile } from "../checks/operations";

const schema = buildSchema(`
  type Query { user(id: ID!): User }
  type User { id: ID! displayName: String! }
`);

const file = (path: string, source: string): OperationFile => ({ path, source });
const profile = (field: string) =>
  file(
    "operations/profile/UserProfile.graphql",
    `query UserProfile($id: ID!) { user(id: $id) { id ${field} } }`,
  );

describe("operationProblems", () => {
  it("should pass operations that validate against the schema", () => {
    expect(operationProblems([profile("displayName")], schema)).toEqual([]);
  });

  it("should fail an operation that uses a removed field, naming the file, operation and field", () => {
    const problems = operationProblems([profile("nickname")], schema);

    expect(problems).toEqual([
      expect.stringMatching(
        /^operations\/profile\/UserProfile\.graphql: query UserProfile: Cannot query field "nickname" on type "User"\./,
      ),
    ]);
  });

  it("should fail a file with a syntax error, naming the file", () => {
    const problems = operationProblems(
      [file("operations/misc/Broken.graphql", "query Broken { user(id: 1) { id }")],
      schema,
    );

    expect(problems).toEqual([
      expect.stringMatching(/^operations\/misc\/Broken\.graphql: Syntax Error: .*\(line 1, column \d+\)$/),
    ]);
  });

  it("should fail when there are no operation files at all", () => {
    expect(operationProblems([], schema)).toEqual([expect.stringContaining("no client operations found")]);
  });

  it("should require named operations with names unique across files", () => {
    const problems = operationProblems(
      [
        profile("displayName"),
        file("operations/other/UserProfile.graphql", `query UserProfile { user(id: "1") { id } }`),
        file("operations/misc/Anonymous.graphql", `{ user(id: "1") { id } }`),
      ],
      schema,
    );

    expect(problems).toEqual([
      'operations/other/UserProfile.graphql: operation "UserProfile" is also defined in operations/profile/UserProfile.graphql: names must be unique',
      "operations/misc/Anonymous.graphql: must hold exactly one operation, named Anonymous",
      "operations/misc/Anonymous.graphql: anonymous query: every operation needs a name",
    ]);
  });

  it("should require operations/<domain>/<Operation>.graphql with one operation named after the file", () => {
    const two = `query A { user(id: "1") { id } } query B { user(id: "1") { id } }`;
    const problems = operationProblems(
      [
        file("operations/profile.graphql", `query Flat { user(id: "1") { id } }`),
        file("operations/profile/Named.graphql", `query Other { user(id: "1") { id } }`),
        file("operations/profile/A.graphql", two),
      ],
      schema,
    );

    expect(problems).toEqual([
      "operations/profile.graphql: operation files are operations/<domain>/<Operation>.graphql",
      "operations/profile/Named.graphql: must hold exactly one operation, named Named",
      "operations/profile/A.graphql: must hold exactly one operation, named A",
    ]);
  });
});
