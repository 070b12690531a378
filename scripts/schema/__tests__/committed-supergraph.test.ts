import { readFileSync } from "node:fs";
import { staleSupergraphProblems } from "../checks/stale-supergraph";
import { operationProblems } from "../checks/operations";
import { apiSchemaFromSupergraph, composeSupergraph, renderSupergraphFile } from "../compose-lib";
import { readOperationFiles } from "../operation-files";
import { fromRoot, SUPERGRAPH_FILE } from "../paths";
import { loadSubgraphs } from "../subgraphs";

describe("the real subgraphs", () => {
  const result = composeSupergraph(loadSubgraphs());

  it("should compose without errors", () => {
    expect(result.ok ? [] : result.errors).toEqual([]);
  });

  it("should match the committed gateway/supergraph.graphql", () => {
    if (!result.ok) throw new Error("composition failed");
    const committed = readFileSync(fromRoot(SUPERGRAPH_FILE), "utf8");

    expect(staleSupergraphProblems(committed, renderSupergraphFile(result.supergraphSdl))).toEqual([]);
  });

  it("should accept every client operation under operations/", () => {
    if (!result.ok) throw new Error("composition failed");

    expect(operationProblems(readOperationFiles(), apiSchemaFromSupergraph(result.supergraphSdl))).toEqual(
      [],
    );
  });
});
