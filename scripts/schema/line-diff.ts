interface Op {
  kind: " " | "-" | "+";
  text: string;
  /** 1-based line numbers in the old and new text at this point. */
  oldLine: number;
  newLine: number;
}

/**
 * A short unified-style diff from `before` to `after`: changed lines with `context` lines around
 * them, at most `maxLines` lines. Good enough to show what is stale; not a general diff tool.
 */
export function shortLineDiff(before: string, after: string, context = 2, maxLines = 40): string[] {
  const ops = diffOps(before.split("\n"), after.split("\n"));
  const keep = ops.map(() => false);
  ops.forEach((op, i) => {
    if (op.kind === " ") return;
    for (let k = Math.max(0, i - context); k <= Math.min(ops.length - 1, i + context); k++) keep[k] = true;
  });
  const out: string[] = [];
  ops.forEach((op, i) => {
    if (!keep[i]) return;
    if (i === 0 || !keep[i - 1]) out.push(`@@ -${op.oldLine} +${op.newLine} @@`);
    out.push(`${op.kind}${op.text}`);
  });
  if (out.length <= maxLines) return out;
  return [...out.slice(0, maxLines), `… ${out.length - maxLines} more diff lines`];
}

function diffOps(a: readonly string[], b: readonly string[]): Op[] {
  // Lines shared at both ends need no LCS; what is left in the middle is usually small.
  let start = 0;
  while (start < a.length && start < b.length && a[start] === b[start]) start++;
  let endA = a.length;
  let endB = b.length;
  while (endA > start && endB > start && a[endA - 1] === b[endB - 1]) {
    endA--;
    endB--;
  }
  const ops: Op[] = [];
  const push = (kind: Op["kind"], text: string, i: number, j: number) =>
    ops.push({ kind, text, oldLine: i + 1, newLine: j + 1 });

  for (let i = 0; i < start; i++) push(" ", a[i] ?? "", i, i);
  middleOps(a, b, start, endA, endB, push);
  for (let i = endA, j = endB; i < a.length; i++, j++) push(" ", a[i] ?? "", i, j);
  return ops;
}

function middleOps(
  a: readonly string[],
  b: readonly string[],
  start: number,
  endA: number,
  endB: number,
  push: (kind: Op["kind"], text: string, i: number, j: number) => void,
): void {
  const n = endA - start;
  const m = endB - start;
  if (n * m > 4_000_000) {
    // Too large for a table: show the whole middle as removed, then added.
    for (let i = start; i < endA; i++) push("-", a[i] ?? "", i, start);
    for (let j = start; j < endB; j++) push("+", b[j] ?? "", endA, j);
    return;
  }
  // lcs[i * (m + 1) + j] = length of the longest common subsequence of a[start+i..] and b[start+j..].
  const lcs = new Uint32Array((n + 1) * (m + 1));
  const at = (i: number, j: number) => lcs[i * (m + 1) + j] ?? 0;
  for (let i = n - 1; i >= 0; i--) {
    for (let j = m - 1; j >= 0; j--) {
      lcs[i * (m + 1) + j] =
        a[start + i] === b[start + j] ? at(i + 1, j + 1) + 1 : Math.max(at(i + 1, j), at(i, j + 1));
    }
  }
  let i = 0;
  let j = 0;
  while (i < n || j < m) {
    const lineA = a[start + i] ?? "";
    const lineB = b[start + j] ?? "";
    if (i < n && j < m && lineA === lineB) {
      push(" ", lineA, start + i++, start + j++);
    } else if (i < n && (j === m || at(i + 1, j) >= at(i, j + 1))) {
      push("-", lineA, start + i++, start + j);
    } else {
      push("+", lineB, start + i, start + j++);
    }
  }
}
