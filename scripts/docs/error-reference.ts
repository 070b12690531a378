import ts from "typescript";

/** One documented error code, as its comment in kit/src/errors.ts states it. */
export interface ErrorCodeEntry {
  code: string;
  /** When it happens (the comment's text). */
  description: string;
  /** What the client does (the comment's `@retry` tag). */
  retry: string;
}

/** One `export const <name> = { … } as const` catalogue of codes. */
export interface ErrorCatalogue {
  name: string;
  entries: ErrorCodeEntry[];
}

/** The catalogues docs/errors.md documents, in the order it shows them. */
export const ERROR_CATALOGUE_NAMES = ["ErrorCode", "ApolloErrorCode"] as const;

const oneLine = (text: string) => text.replace(/\s+/g, " ").trim();

function commentText(comment: string | ts.NodeArray<ts.JSDocComment> | undefined): string {
  if (comment === undefined) return "";
  if (typeof comment === "string") return comment;
  return comment.map((part) => part.text).join("");
}

function objectLiteralOf(declaration: ts.VariableDeclaration): ts.ObjectLiteralExpression | undefined {
  let node: ts.Expression | undefined = declaration.initializer;
  while (
    node &&
    (ts.isAsExpression(node) || ts.isSatisfiesExpression(node) || ts.isParenthesizedExpression(node))
  ) {
    node = node.expression;
  }
  return node && ts.isObjectLiteralExpression(node) ? node : undefined;
}

function entryOf(
  catalogue: string,
  property: ts.ObjectLiteralElementLike,
  problems: string[],
): ErrorCodeEntry | undefined {
  if (!ts.isPropertyAssignment(property) || !ts.isIdentifier(property.name)) {
    problems.push(`${catalogue}: every member must be \`NAME: "NAME"\` (found ${property.getText()})`);
    return undefined;
  }
  const code = property.name.text;
  if (!ts.isStringLiteral(property.initializer) || property.initializer.text !== code) {
    problems.push(`${catalogue}.${code}: its value must be the string "${code}"`);
    return undefined;
  }
  const docs = ts.getJSDocCommentsAndTags(property).filter(ts.isJSDoc);
  const description = oneLine(docs.map((doc) => commentText(doc.comment)).join(" "));
  const retryTags = docs.flatMap((doc) => doc.tags ?? []).filter((tag) => tag.tagName.text === "retry");
  const retry = oneLine(retryTags.map((tag) => commentText(tag.comment)).join(" "));
  if (description === "")
    problems.push(
      `${catalogue}.${code} has no description: write a /** … */ comment above it saying when it happens`,
    );
  if (retry === "")
    problems.push(
      `${catalogue}.${code} has no @retry line: say in its comment whether and when a client retries`,
    );
  return { code, description, retry };
}

/**
 * Reads the named code catalogues, with their comments, from the source of kit/src/errors.ts.
 * Throws one error listing every problem (a code without a description or `@retry`, a missing
 * catalogue), so the author sees them all at once.
 */
export function readErrorCatalogues(
  source: string,
  fileName: string,
  names: readonly string[] = ERROR_CATALOGUE_NAMES,
): ErrorCatalogue[] {
  const file = ts.createSourceFile(fileName, source, ts.ScriptTarget.Latest, true, ts.ScriptKind.TS);
  const problems: string[] = [];
  const found = new Map<string, ErrorCatalogue>();
  for (const statement of file.statements) {
    if (!ts.isVariableStatement(statement)) continue;
    for (const declaration of statement.declarationList.declarations) {
      if (!ts.isIdentifier(declaration.name) || !names.includes(declaration.name.text)) continue;
      const name = declaration.name.text;
      const literal = objectLiteralOf(declaration);
      if (!literal) {
        problems.push(`${name} must be an object literal (\`{ NAME: "NAME", … } as const\`)`);
        continue;
      }
      const entries = literal.properties.map((property) => entryOf(name, property, problems));
      found.set(name, {
        name,
        entries: entries.filter((entry): entry is ErrorCodeEntry => entry !== undefined),
      });
    }
  }
  for (const name of names) if (!found.has(name)) problems.push(`${name} was not found`);
  if (problems.length > 0)
    throw new Error(`${fileName}:\n${problems.map((problem) => `  - ${problem}`).join("\n")}`);
  return names.map((name) => found.get(name) as ErrorCatalogue);
}

/** A table cell: one line, pipes escaped. */
export function cell(text: string): string {
  return oneLine(text).replace(/\|/g, "\\|");
}

const CATALOGUE_HEADINGS: Record<string, { title: string; intro: string }> = {
  ErrorCode: {
    title: "Our codes",
    intro:
      "Raised by the gateway and the subgraphs (`ErrorCode`). A subgraph's catalogued error reaches the phone through the gateway with its code, message and client-facing `extensions`.",
  },
  ApolloErrorCode: {
    title: "Apollo Server's codes",
    intro:
      "Raised by Apollo Server (or by the gateway in its place) before any resolver runs (`ApolloErrorCode`).",
  },
};

/** docs/errors.md. */
export function renderErrorReference(catalogues: readonly ErrorCatalogue[], source: string): string {
  const lines = [
    "<!-- Generated by `pnpm run docs:generate` from kit/src/errors.ts. Do not edit: change the comments there. -->",
    "",
    "# Error reference",
    "",
    "Every error a client receives carries a code in `extensions.code`; clients switch on the code, never on",
    "the message. Codes are never renamed, only added. Anything else that reaches a client in production is",
    'masked as `INTERNAL_SERVER_ERROR` with the message "Internal server error".',
    "",
    "Other `extensions` a client may rely on: `field` (the input that is wrong, always a path into the arguments: `input.displayName`, `latitude`, `input.memberIds[2]`),",
    "`reason` (`UNAUTHENTICATED`, `FORBIDDEN`), `retryAfterSeconds` and `limit` (`RATE_LIMITED`, query",
    "limits), and the named limits of `QUOTA_EXCEEDED`. How tokens, sessions and sockets behave around",
    "these codes is in [client-contract.md](client-contract.md).",
    "",
    `Source: \`${source}\`.`,
  ];
  for (const catalogue of catalogues) {
    const heading = CATALOGUE_HEADINGS[catalogue.name] ?? {
      title: catalogue.name,
      intro: `\`${catalogue.name}\`.`,
    };
    lines.push("", `## ${heading.title}`, "", heading.intro, "", "| code | when | retry? |", "|---|---|---|");
    for (const entry of catalogue.entries) {
      lines.push(`| \`${entry.code}\` | ${cell(entry.description)} | ${cell(entry.retry)} |`);
    }
  }
  return `${lines.join("\n")}\n`;
}
