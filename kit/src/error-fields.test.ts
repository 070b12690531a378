import { readdirSync, readFileSync } from "node:fs";
import path from "node:path";
import { Kind, parse, type TypeNode } from "graphql";
import { SUBGRAPH_NAMES } from "./subgraphs";

/**
 * `extensions.field` is always a path into the arguments of a field of the subgraph's schema
 * (`input.birthDate`, `latitude`, `input.memberIds[2]`): every field name a subgraph's source
 * gives (`field: "…"`, and the field argument of `requireUuid` and the validators) must resolve.
 */
const ROOT = path.resolve(__dirname, "../..");
const PATH = /^[A-Za-z_]\w*(?:\.[A-Za-z_]\w*|\[\d+\])*$/;

function namedType(type: TypeNode): string {
  return type.kind === Kind.NAMED_TYPE ? type.name.value : namedType(type.type);
}

/** Argument name → the input types it has anywhere in the schema; input type → field → type. */
function schemaPaths(sdl: string) {
  const args = new Map<string, Set<string>>();
  const inputs = new Map<string, Map<string, string>>();
  for (const definition of parse(sdl).definitions) {
    if (
      definition.kind === Kind.INPUT_OBJECT_TYPE_DEFINITION ||
      definition.kind === Kind.INPUT_OBJECT_TYPE_EXTENSION
    ) {
      const fields = inputs.get(definition.name.value) ?? new Map<string, string>();
      for (const field of definition.fields ?? []) fields.set(field.name.value, namedType(field.type));
      inputs.set(definition.name.value, fields);
    } else if ("fields" in definition && definition.fields) {
      for (const field of definition.fields) {
        for (const argument of "arguments" in field ? (field.arguments ?? []) : []) {
          const types = args.get(argument.name.value) ?? new Set<string>();
          types.add(namedType(argument.type));
          args.set(argument.name.value, types);
        }
      }
    }
  }
  return {
    resolves(fieldPath: string): boolean {
      if (!PATH.test(fieldPath)) return false;
      const [first = "", ...rest] = fieldPath.replace(/\[\d+\]/g, "").split(".");
      let types = [...(args.get(first) ?? [])];
      if (types.length === 0) return false;
      for (const key of rest) {
        types = types.flatMap((type) => {
          const next = inputs.get(type)?.get(key);
          return next === undefined ? [] : [next];
        });
        if (types.length === 0) return false;
      }
      return true;
    },
  };
}

function sources(dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((entry) => {
    const full = path.join(dir, entry.name);
    if (entry.isDirectory()) return entry.name === "generated" ? [] : sources(full);
    return entry.name.endsWith(".ts") ? [full] : [];
  });
}

/** The field names a source file hands to errors: literals, with `${…}` read as an index. */
function fieldNames(text: string): string[] {
  const names: string[] = [];
  const patterns = [
    /field: "([^"]+)"/g,
    /field: `([^`]+)`/g,
    /requireUuid\([^,()]+(?:\([^()]*\))?,\s*"([^"]+)"/g,
    /"(input\.[\w.[\]]+)"/g,
    /validate\.\w+\([^,()]+(?:\([^()]*\))?,\s*[`"]([^`"]+)[`"]/g,
  ];
  for (const pattern of patterns) {
    for (const match of text.matchAll(pattern)) names.push(match[1]!.replace(/\$\{[^}]*\}/g, "0"));
  }
  return names;
}

describe("extensions.field in every subgraph", () => {
  it.each(SUBGRAPH_NAMES)("%s: every field name is a path into the schema's arguments", (subgraph) => {
    const dir = path.join(ROOT, "subgraphs", subgraph, "src");
    const schema = schemaPaths(readFileSync(path.join(dir, "schema.graphql"), "utf8"));
    const found: string[] = [];
    const wrong: string[] = [];
    for (const file of sources(dir)) {
      for (const name of fieldNames(readFileSync(file, "utf8"))) {
        found.push(name);
        if (!schema.resolves(name)) wrong.push(`${path.relative(ROOT, file)}: ${name}`);
      }
    }
    expect(found.length).toBeGreaterThan(3);
    expect(wrong).toEqual([]);
  });

  it("should tell a path that resolves from one that does not", () => {
    const schema = schemaPaths(`
      input Inner { title: String, ids: [ID!] }
      type Mutation { make(input: Inner!, latitude: Float): Boolean }`);
    expect(["input.title", "input.ids[3]", "latitude", "input"].map((name) => schema.resolves(name))).toEqual(
      [true, true, true, true],
    );
    expect(
      ["title", "input.name", "input..title", "lat", "input.title.x", "0"].map((name) =>
        schema.resolves(name),
      ),
    ).toEqual([false, false, false, false, false, false]);
  });
});
