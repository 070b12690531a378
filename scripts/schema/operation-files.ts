import { existsSync, readdirSync, readFileSync } from "node:fs";
import path from "node:path";
import type { OperationFile } from "./checks/operations";
import { fromRoot, OPERATIONS_DIR } from "./paths";

/** Every `*.graphql` file under operations/, recursively, sorted by path. */
export function readOperationFiles(dir: string = OPERATIONS_DIR): OperationFile[] {
  const absolute = fromRoot(dir);
  if (!existsSync(absolute)) return [];
  return readdirSync(absolute, { recursive: true, encoding: "utf8" })
    .filter((name) => name.endsWith(".graphql"))
    .map((name) => `${dir}/${name.split(path.sep).join("/")}`)
    .sort()
    .map((file) => ({ path: file, source: readFileSync(fromRoot(file), "utf8") }));
}
