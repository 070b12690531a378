import {
  GraphQLError,
  Kind,
  parse,
  validate,
  type DocumentNode,
  type ExecutableDefinitionNode,
  type GraphQLSchema,
} from "graphql";
import { OPERATIONS_DIR } from "../paths";

export interface OperationFile {
  /** Repository-relative path, e.g. `operations/profile/UserProfile.graphql`. */
  path: string;
  source: string;
}

/**
 * Every operation file must parse and validate against the API schema, each file on its own
 * (it defines the fragments it uses). Operations must be named, and names unique across files,
 * because the persisted-query safelist is keyed by them. Each file is
 * `operations/<domain>/<Operation>.graphql`: one operation, named after the file.
 */
export function operationProblems(files: readonly OperationFile[], schema: GraphQLSchema): string[] {
  if (files.length === 0) {
    return [`no client operations found: ${OPERATIONS_DIR}/ must contain the app's *.graphql operations`];
  }
  const problems: string[] = [];
  const firstFileByName = new Map<string, string>();
  for (const file of files) {
    let document: DocumentNode;
    try {
      document = parse(file.source);
    } catch (error) {
      problems.push(`${file.path}: ${describe(error)}`);
      continue;
    }
    problems.push(...namingProblems(file.path, document));
    for (const error of validate(schema, document)) {
      problems.push(`${file.path}: ${definitionLabel(document, error)}${describe(error)}`);
    }
    for (const definition of document.definitions) {
      if (definition.kind !== Kind.OPERATION_DEFINITION) continue;
      const name = definition.name?.value;
      if (name === undefined) {
        problems.push(`${file.path}: anonymous ${definition.operation}: every operation needs a name`);
        continue;
      }
      const first = firstFileByName.get(name);
      if (first === undefined) firstFileByName.set(name, file.path);
      else
        problems.push(`${file.path}: operation "${name}" is also defined in ${first}: names must be unique`);
    }
  }
  return problems;
}

const OPERATION_PATH = new RegExp(`^${OPERATIONS_DIR}/[a-z][a-z0-9-]*/([A-Za-z_][A-Za-z0-9_]*)\\.graphql$`);

/** A file off the `operations/<domain>/<Operation>.graphql` scheme, or not holding exactly that one operation. */
function namingProblems(path: string, document: DocumentNode): string[] {
  const name = OPERATION_PATH.exec(path)?.[1];
  if (name === undefined)
    return [`${path}: operation files are ${OPERATIONS_DIR}/<domain>/<Operation>.graphql`];
  const operations = document.definitions.filter((d) => d.kind === Kind.OPERATION_DEFINITION);
  if (operations.length !== 1 || operations[0]?.name?.value !== name) {
    return [`${path}: must hold exactly one operation, named ${name}`];
  }
  return [];
}

function describe(error: unknown): string {
  if (!(error instanceof GraphQLError)) return String(error);
  const where = error.locations?.[0];
  return where ? `${error.message} (line ${where.line}, column ${where.column})` : error.message;
}

/** `query UserProfile: ` for the definition that contains the error, or nothing if none does. */
function definitionLabel(document: DocumentNode, error: GraphQLError): string {
  const offset = error.nodes?.[0]?.loc?.start;
  if (offset === undefined) return "";
  const definition = document.definitions.find(
    (d): d is ExecutableDefinitionNode =>
      (d.kind === Kind.OPERATION_DEFINITION || d.kind === Kind.FRAGMENT_DEFINITION) &&
      d.loc !== undefined &&
      d.loc.start <= offset &&
      offset < d.loc.end,
  );
  if (definition === undefined) return "";
  if (definition.kind === Kind.FRAGMENT_DEFINITION) return `fragment ${definition.name.value}: `;
  return `${definition.operation} ${definition.name?.value ?? "(anonymous)"}: `;
}
