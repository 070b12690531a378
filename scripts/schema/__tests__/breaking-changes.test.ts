import {
  classifyApiSchemaChanges,
  unacknowledgedBreakingChangeProblems,
  type SchemaChange,
} from "../checks/breaking-changes";
import { apiSchemaFromSupergraph, composeSupergraph } from "../compose-lib";
import type { LoadedSubgraph } from "../subgraphs";
import { mediaSdl, subgraph, usersSdl } from "./fixtures";

const ACK = "gateway/schema-changes.acknowledged.md";

function apiSchema(subgraphs: LoadedSubgraph[]) {
  const result = composeSupergraph(subgraphs);
  if (!result.ok) throw new Error(result.errors.join("\n"));
  return apiSchemaFromSupergraph(result.supergraphSdl);
}

describe("classifyApiSchemaChanges", () => {
  it("should detect a breaking change when a field is removed", async () => {
    const before = apiSchema([subgraph("users", usersSdl("displayName: String!\n bio: String"))]);
    const after = apiSchema([subgraph("users", usersSdl("bio: String"))]);

    const { breaking } = await classifyApiSchemaChanges(before, after);

    expect(breaking).toEqual([expect.objectContaining({ path: "User.displayName" })]);
    expect(breaking[0]?.message).toMatch(/displayName/);
  });

  it("should not count join/federation machinery or added fields as breaking", async () => {
    const before = apiSchema([subgraph("users", usersSdl())]);
    const after = apiSchema([subgraph("users", usersSdl()), subgraph("media", mediaSdl)]);

    expect((await classifyApiSchemaChanges(before, after)).breaking).toEqual([]);
  });
});

describe("unacknowledgedBreakingChangeProblems", () => {
  const removed: SchemaChange = {
    message: "Field 'displayName' was removed from object type 'User'",
    path: "User.displayName",
  };
  const ackNaming = (path: string) => `# Acknowledged\n\n- ${path}: no app version reads it\n`;

  it("should report an unacknowledged breaking change with its message, path and how to acknowledge it", () => {
    const [problem] = unacknowledgedBreakingChangeProblems(
      [removed],
      { changedFiles: [], ackContents: undefined },
      "HEAD~1",
    );

    expect(problem).toContain(removed.message);
    expect(problem).toContain("path: User.displayName");
    expect(problem).toContain(ACK);
  });

  it("should pass an acknowledged breaking change when the ack file changed and names the path", () => {
    const problems = unacknowledgedBreakingChangeProblems(
      [removed],
      {
        changedFiles: ["subgraphs/users/src/schema.graphql", ACK],
        ackContents: ackNaming("User.displayName"),
      },
      "HEAD~1",
    );

    expect(problems).toEqual([]);
  });

  it("should not accept an acknowledgement when the ack file did not change since the base", () => {
    const problems = unacknowledgedBreakingChangeProblems(
      [removed],
      { changedFiles: ["subgraphs/users/src/schema.graphql"], ackContents: ackNaming("User.displayName") },
      "HEAD~1",
    );

    expect(problems).toHaveLength(1);
  });

  it("should not accept an ack file that names a different or longer path", () => {
    for (const other of ["User.displayNameV2", "User.displayName.arg", "User.bio"]) {
      const problems = unacknowledgedBreakingChangeProblems(
        [removed],
        { changedFiles: [ACK], ackContents: ackNaming(other) },
        "HEAD~1",
      );
      expect(problems).toHaveLength(1);
    }
  });
});
