/**
 * Generated regions of hand-written files: the lines between `# >>> generated: <name>` and
 * `# <<< generated: <name>` belong to scripts/infra/generate.ts; the rest of the file to people.
 */

/** A region's lines, without its indentation (the opening marker's is applied). */
export type Region = () => string[];

const MARKER = /^(\s*)# (>>>|<<<) generated: (.+)$/;

/** `text` with each region's lines replaced by what `regions` renders; every region must be marked once. */
export function fillRegions(file: string, text: string, regions: Record<string, Region>): string {
  const lines = text.split("\n");
  const out: string[] = [];
  const seen = new Set<string>();
  for (let i = 0; i < lines.length; i++) {
    const line = lines[i]!;
    const open = MARKER.exec(line);
    if (!open || open[2] !== ">>>") {
      out.push(line);
      continue;
    }
    const [, indent = "", , name = ""] = open;
    const render = regions[name];
    if (!render) throw new Error(`${file}: region "${name}" is not one scripts/infra/generate.ts renders`);
    const end = lines.findIndex((candidate, j) => j > i && MARKER.exec(candidate)?.[3] === name);
    if (end < 0) throw new Error(`${file}: region "${name}" has no closing "# <<< generated: ${name}"`);
    out.push(line, ...render().map((content) => (content === "" ? "" : indent + content)), lines[end]!);
    seen.add(name);
    i = end;
  }
  for (const name of Object.keys(regions))
    if (!seen.has(name)) throw new Error(`${file}: no "# >>> generated: ${name}" marker`);
  return out.join("\n");
}
