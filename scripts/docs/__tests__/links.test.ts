import { checkLinks, headingAnchors, headingSlug, relativeLinks } from "../links";

describe("docs links: reading markdown", () => {
  it("should find relative links with their line, and leave URLs and code alone", () => {
    const markdown = [
      "See [chat](chat.md#sending) and [Apollo](https://www.apollographql.com).",
      "`[not a link](nowhere.md)`",
      "```sh",
      "echo [nor this](gone.md)",
      "```",
      "[up](../README.md)",
    ].join("\n");
    expect(relativeLinks(markdown)).toEqual([
      { target: "chat.md#sending", line: 1 },
      { target: "../README.md", line: 6 },
    ]);
  });

  it("should make GitHub's anchors, numbering repeated headings", () => {
    expect(headingSlug("Users, media subgraph and push worker")).toBe("users-media-subgraph-and-push-worker");
    expect(headingSlug("Receiving: subscribe, then catch up")).toBe("receiving-subscribe-then-catch-up");
    expect(headingSlug("Nearby (discovery)")).toBe("nearby-discovery");
    expect([...headingAnchors("# Title\n## Images\ntext\n## Images\n```\n## not a heading\n```\n")]).toEqual([
      "title",
      "images",
      "images-1",
    ]);
  });

  it("should keep a heading's inline code in its anchor, as GitHub does", () => {
    expect([...headingAnchors("### Round 6: pipeline (branch `sg-pipe`)\n")]).toEqual([
      "round-6-pipeline-branch-sg-pipe",
    ]);
  });
});

describe("docs links: checking", () => {
  const files = new Map([
    ["README.md", "[docs](docs/README.md) [gw](docs/gateway.md#protection) [later](docs/runtime.md)"],
    [
      "docs/README.md",
      "# Docs\n[back](../README.md) [self](#docs) [typo](gateway.md#protections) [gone](deploy.md) [prisma](../prisma/README.md)",
    ],
    ["docs/gateway.md", "# Gateway\n## Protection\n"],
  ]);
  const elsewhere = new Map([["prisma/README.md", "# Prisma"]]);
  const read = (file: string) => elsewhere.get(file);

  it("should report a missing file and a missing heading with where the link is", () => {
    const { problems } = checkLinks({ files, read, expectedLater: new Set(["docs/runtime.md"]) });
    expect(problems).toEqual([
      "docs/README.md:2: gateway.md#protections: docs/gateway.md has no heading #protections",
      "docs/README.md:2: deploy.md: docs/deploy.md does not exist",
    ]);
  });

  it("should note, not fail, a page expected later, and fail it when it is not expected", () => {
    expect(checkLinks({ files, read, expectedLater: new Set(["docs/runtime.md"]) }).notes).toEqual([
      "docs/runtime.md does not exist yet (linked from README.md)",
    ]);
    expect(checkLinks({ files, read }).problems).toContain(
      "README.md:1: docs/runtime.md: docs/runtime.md does not exist",
    );
  });
});
