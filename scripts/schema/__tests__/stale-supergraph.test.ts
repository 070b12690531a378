import { staleSupergraphProblems } from "../checks/stale-supergraph";

describe("staleSupergraphProblems", () => {
  const fresh = "# header\ntype Query {\n  a: Int\n  b: Int\n}\n";

  it("should pass when the committed file equals the fresh composition", () => {
    expect(staleSupergraphProblems(fresh, fresh)).toEqual([]);
    expect(staleSupergraphProblems(fresh.replace(/\n/g, "\r\n"), fresh)).toEqual([]);
  });

  it("should detect a stale supergraph and show the differing lines", () => {
    const committed = "# header\ntype Query {\n  a: Int\n}\n";

    const [problem, ...rest] = staleSupergraphProblems(committed, fresh);

    expect(rest).toEqual([]);
    expect(problem).toContain("gateway/supergraph.graphql is stale: run pnpm run compose and commit it");
    expect(problem).toContain("+  b: Int");
    expect(problem).not.toContain("-  a: Int");
  });

  it("should report a missing supergraph file", () => {
    expect(staleSupergraphProblems(undefined, fresh)).toEqual([
      "gateway/supergraph.graphql is missing: run pnpm run compose and commit it",
    ]);
  });
});
