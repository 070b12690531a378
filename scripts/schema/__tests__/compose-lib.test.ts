import { printSchema } from "graphql";
import {
  apiSchemaFromSupergraph,
  composeSupergraph,
  renderSupergraphFile,
  SUPERGRAPH_HEADER,
} from "../compose-lib";
import { compositionProblems } from "../checks/composition";
import { mediaSdl, subgraph, usersSdl } from "./fixtures";

describe("composeSupergraph", () => {
  it("should compose valid subgraphs into a supergraph whose API schema has their fields", () => {
    const result = composeSupergraph([subgraph("users", usersSdl()), subgraph("media", mediaSdl)]);

    expect(result.ok).toBe(true);
    if (!result.ok) return;
    const api = printSchema(apiSchemaFromSupergraph(result.supergraphSdl));
    expect(api).toContain("photos: [Media!]!");
    expect(api).toContain("displayName: String!");
    expect(api).not.toContain("join__");
    expect(compositionProblems(result)).toEqual([]);
  });

  it("should report a composition error with its code", () => {
    const result = composeSupergraph([
      subgraph("users", usersSdl("nickname: String")),
      subgraph("profiles", `type User @key(fields: "id") { id: ID! nickname: Int }`),
    ]);

    expect(result.ok).toBe(false);
    const problems = compositionProblems(result);
    expect(problems).toEqual(
      expect.arrayContaining([
        expect.stringMatching(/^\[INVALID_FIELD_SHARING\] .*"User\.nickname"/),
        expect.stringMatching(/^\[FIELD_TYPE_MISMATCH\] .*"User\.nickname"/),
      ]),
    );
  });

  it("should keep the generated-file header readable by the supergraph parser", () => {
    const result = composeSupergraph([subgraph("users", usersSdl())]);
    if (!result.ok) throw new Error(result.errors.join("\n"));

    const file = renderSupergraphFile(result.supergraphSdl);

    expect(file.startsWith(`${SUPERGRAPH_HEADER}\n`)).toBe(true);
    expect(file.endsWith("}\n")).toBe(true);
    expect(() => apiSchemaFromSupergraph(file)).not.toThrow();
  });

  it("should name the problem when the supergraph SDL is not a supergraph", () => {
    expect(() => apiSchemaFromSupergraph("type Query { a: Int }")).toThrow(/^not a valid supergraph: /);
  });
});
