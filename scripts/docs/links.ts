import path from "node:path";

/** A relative link found in a markdown file. */
export interface MarkdownLink {
  /** As written, e.g. `gateway.md#protection`. */
  target: string;
  /** 1-based. */
  line: number;
}

/** The text with fenced code blocks and inline code blanked out (line breaks kept), where links are not links. */
const blank = (match: string) => match.replace(/[^\n]/g, " ");

/** The text with fenced code blocks blanked (line numbers kept). */
function withoutFences(text: string): string {
  return text.replace(/^```[\s\S]*?^```/gm, blank);
}

/** The text with fenced blocks and inline code spans blanked (line numbers kept). */
function withoutCode(text: string): string {
  return withoutFences(text).replace(/`[^`\n]*`/g, blank);
}

/** Relative links (`[text](target)`) outside code; absolute URLs are left alone. */
export function relativeLinks(markdown: string): MarkdownLink[] {
  const links: MarkdownLink[] = [];
  withoutCode(markdown)
    .split("\n")
    .forEach((text, index) => {
      for (const match of text.matchAll(/\]\(([^)\s]+)\)/g)) {
        const target = match[1] ?? "";
        if (!/^[a-z][a-z0-9+.-]*:/i.test(target)) links.push({ target, line: index + 1 });
      }
    });
  return links;
}

/** GitHub's anchor for a heading: lower case, punctuation dropped, spaces to hyphens. */
export function headingSlug(heading: string): string {
  return heading
    .trim()
    .toLowerCase()
    .replace(/[^\p{L}\p{N} _-]/gu, "")
    .replace(/ /g, "-");
}

/** Every anchor a markdown file offers; a repeated heading gets `-1`, `-2`… as on GitHub. */
export function headingAnchors(markdown: string): Set<string> {
  const anchors = new Set<string>();
  const seen = new Map<string, number>();
  // A heading's inline code counts (GitHub keeps its text, without the backticks).
  for (const match of withoutFences(markdown).matchAll(/^#{1,6} +(.+?) *#*$/gm)) {
    const slug = headingSlug(match[1] ?? "");
    const count = seen.get(slug) ?? 0;
    seen.set(slug, count + 1);
    anchors.add(count === 0 ? slug : `${slug}-${count}`);
  }
  return anchors;
}

export interface LinkCheckInput {
  /** Repository paths of the files to check, with their text. */
  files: ReadonlyMap<string, string>;
  /** The text of any repository file, or undefined when it does not exist. */
  read: (file: string) => string | undefined;
  /** Pages other work will add: a link to one that does not exist yet is noted, not a problem. */
  expectedLater?: ReadonlySet<string>;
}

/** Broken relative links (a missing file, or an anchor its target lacks), and notes on expected pages. */
export function checkLinks({ files, read, expectedLater = new Set() }: LinkCheckInput): {
  problems: string[];
  notes: string[];
} {
  const problems: string[] = [];
  const awaited = new Map<string, Set<string>>();
  for (const [file, markdown] of files) {
    for (const { target, line } of relativeLinks(markdown)) {
      const [pathPart = "", anchor] = target.split("#", 2);
      const resolved =
        pathPart === "" ? file : path.posix.normalize(path.posix.join(path.posix.dirname(file), pathPart));
      const text = files.get(resolved) ?? read(resolved);
      if (text === undefined) {
        if (expectedLater.has(resolved))
          awaited.set(resolved, (awaited.get(resolved) ?? new Set()).add(file));
        else problems.push(`${file}:${line}: ${target}: ${resolved} does not exist`);
        continue;
      }
      if (anchor !== undefined && resolved.endsWith(".md") && !headingAnchors(text).has(anchor)) {
        problems.push(`${file}:${line}: ${target}: ${resolved} has no heading #${anchor}`);
      }
    }
  }
  const notes = [...awaited].map(
    ([page, from]) => `${page} does not exist yet (linked from ${[...from].join(", ")})`,
  );
  return { problems, notes };
}
