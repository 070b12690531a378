import {
  ERRORS,
  isCompositeType,
  isCustomScalarType,
  isEnumType,
  isListType,
  isNonNullType,
  isObjectType,
  isSubtype,
  isValidLeafValue,
  typenameFieldName,
  Variable,
  type CompositeType,
  type Directive,
  type Field,
  type NamedType,
  type Operation,
  type OperationElement,
  type OutputType,
  type Schema,
  type SelectionSet,
  type Type,
} from "@apollo/federation-internals";
import type { GraphQLError } from "graphql";
import { emptyRecord } from "./record";

type Data = Record<string, unknown>;

/** What `computeResponse` answers: the shaped data (null when a non-null root field is null) and the completion errors. */
export interface Shaped {
  data: Data | null;
  errors: GraphQLError[];
}

/** One shaping: its errors, the response path walked, and the last value shaper's two flags. */
interface Run {
  readonly provided: Readonly<Data> | undefined;
  readonly defaults: Readonly<Data>;
  readonly errors: GraphQLError[];
  readonly path: Array<string | number>;
  /** The last value was null for a non-null type: the parent object becomes null. */
  invalid: boolean;
  /** An error was already reported for the last value (no second one while a null bubbles up). */
  hasErrors: boolean;
}

/** Shapes one value of a field's type; sets `run.invalid` and `run.hasErrors` before it returns. */
type ValueShaper = (run: Run, output: unknown, input: unknown, parent: CompositeType) => unknown;

/** Applies one selection to an object; true when a null must replace the whole object. */
type SelectionShaper = (run: Run, input: Data, output: Data, parent: CompositeType) => boolean;

/** Thrown at compile time: this operation is shaped by Apollo's `computeResponse` (introspection). */
export class NotCompiled extends Error {}

/**
 * Thrown while shaping where `computeResponse` would fail an assertion (a subgraph answer of the
 * wrong shape, a condition variable that is not a boolean): the caller reruns `computeResponse`,
 * which answers it its own way. Shaping never mutates its input, so the rerun sees the same data.
 */
export class Unshaped extends Error {}

function unshaped(): never {
  throw new Unshaped("left to computeResponse");
}

function describe(path: Run["path"], current: Type, parent: CompositeType): string {
  const last = path[path.length - 1];
  return typeof last === "string"
    ? `field ${String(parent)}.${last}`
    : `array element of type ${String(current)} at index ${String(last)}`;
}

function setFlags(run: Run, invalid: boolean, hasErrors: boolean): void {
  run.invalid = invalid;
  run.hasErrors = hasErrors;
}

/**
 * `computeResponse` (@apollo/gateway's result shaping) compiled for one operation: the same walk
 * over the same federation `Operation`'s selections, with the directive lookups, response names,
 * type wrappers and leaf kinds resolved once. Same data, same errors, same key order.
 */
export class ResultShaper {
  private readonly schema: Schema;
  private readonly root: SelectionShaper;
  private readonly rootType: CompositeType;
  private readonly defaults: Data;

  /** Throws NotCompiled for what is left to `computeResponse`. */
  constructor(operation: Operation) {
    this.schema = operation.schema();
    const rootType = this.schema.schemaDefinition.rootType(operation.rootKind);
    if (!rootType) throw new NotCompiled(`no ${operation.rootKind} root type`);
    this.rootType = rootType;
    this.defaults = operation.collectDefaultedVariableValues();
    this.root = this.selectionSet(operation.selectionSet);
  }

  /** Shapes the merged subgraph answers; throws Unshaped where `computeResponse` must answer instead. */
  shape(input: Data, variables: Readonly<Data> | undefined): Shaped {
    const run: Run = {
      provided: variables,
      defaults: this.defaults,
      errors: [],
      path: [],
      invalid: false,
      hasErrors: false,
    };
    const data = emptyRecord();
    const bubbled = this.root(run, input, data, this.rootType);
    return { data: bubbled ? null : data, errors: run.errors };
  }

  private selectionSet(selectionSet: SelectionSet): SelectionShaper {
    const steps: SelectionShaper[] = [];
    for (const selection of selectionSet.selections()) {
      const skipped = this.skipCondition(selection.element);
      if (skipped === true) continue;
      const step =
        selection.kind === "FieldSelection"
          ? this.field(selection.element, selection.selectionSet)
          : this.fragment(selection.element.typeCondition, selection.selectionSet);
      steps.push(
        skipped === false
          ? step
          : (run, input, output, parent) => !skipped(run) && step(run, input, output, parent),
      );
    }
    if (steps.length === 1) return steps[0]!;
    // Indexed: a for-of allocates an iterator per call until the optimiser removes it.
    return (run, input, output, parent) => {
      for (let index = 0; index < steps.length; index += 1)
        if (steps[index]!(run, input, output, parent)) return true;
      return false;
    };
  }

  /** @skip/@include of a selection: always (true), never (false), or per request's variables. */
  private skipCondition(element: OperationElement): boolean | ((run: Run) => boolean) {
    const skip = this.ifArgument(element.appliedDirectivesOf(this.schema.skipDirective())[0]);
    const include = this.ifArgument(element.appliedDirectivesOf(this.schema.includeDirective())[0]);
    if (skip === undefined && include === undefined) return false;
    // Apollo's order: @skip first, @include only when not skipped.
    return (run) =>
      (skip !== undefined && (typeof skip === "boolean" ? skip : conditionValue(run, skip))) ||
      (include !== undefined && !(typeof include === "boolean" ? include : conditionValue(run, include)));
  }

  private ifArgument(directive: Directive<OperationElement> | undefined): boolean | string | undefined {
    if (!directive) return undefined;
    const value = (directive.arguments() as { if: boolean | Variable }).if;
    return value instanceof Variable ? value.name : value;
  }

  private field(field: Field, selectionSet: SelectionSet | undefined): SelectionShaper {
    const definition = field.definition;
    if (definition.isSchemaIntrospectionField()) throw new NotCompiled("introspection");
    const responseName = field.responseName();
    if (field.name === typenameFieldName) return this.typename(responseName);
    const type = definition.type;
    if (!type) throw new NotCompiled(`no type for ${field.name}`);
    const value = this.value(type, selectionSet);
    return (run, input, output, parent) => {
      run.path.push(responseName);
      output[responseName] = value(
        run,
        output[responseName],
        (Object.hasOwn(input, responseName) ? input[responseName] : undefined) ?? null,
        parent,
      );
      run.path.pop();
      return run.invalid;
    };
  }

  /** `__typename`: the input's own when it names a type of the API schema, else the parent's; not an object type nulls the parent. */
  private typename(responseName: string): SelectionShaper {
    const schema = this.schema;
    return (_run, input, output, parent) => {
      if (output[responseName] !== undefined) return false;
      let value = (Object.hasOwn(input, responseName) ? input[responseName] : undefined) ?? null;
      if (value === null && responseName !== typenameFieldName) value = input[typenameFieldName] ?? null;
      const type = typeof value === "string" ? (schema.type(value) ?? parent) : parent;
      if (!isObjectType(type)) return true;
      output[responseName] = type.name;
      return false;
    };
  }

  private fragment(condition: CompositeType | undefined, selectionSet: SelectionSet): SelectionShaper {
    const nested = this.selectionSet(selectionSet);
    if (!condition) return nested;
    const schema = this.schema;
    const byTypename = new Map<string, boolean>();
    const byParent = new Map<CompositeType, boolean>();
    return (run, input, output, parent) => {
      const typename = input[typenameFieldName];
      if (typename && typeof typename !== "string") unshaped();
      let applies: boolean | undefined;
      if (typeof typename === "string" && typename !== "") {
        applies = byTypename.get(typename);
        if (applies === undefined) {
          const type = schema.type(typename);
          applies = !!type && isSubtype(condition, type);
          byTypename.set(typename, applies);
        }
      } else {
        applies = byParent.get(parent);
        if (applies === undefined) {
          applies = isSubtype(condition, parent);
          byParent.set(parent, applies);
        }
      }
      return applies && nested(run, input, output, condition);
    };
  }

  /** `updateOutputValue` for one type, unwrapped once. */
  private value(type: OutputType, selectionSet: SelectionSet | undefined): ValueShaper {
    const hasSelections = selectionSet !== undefined;
    if (isNonNullType(type)) {
      const inner = this.value(type.ofType, selectionSet);
      const innerType = type.ofType;
      return (run, output, input, parent) => {
        if (output === null || (output !== undefined && !hasSelections)) {
          setFlags(run, false, false);
          return output;
        }
        const updated = inner(run, output, input, parent);
        if (updated === null) {
          if (!run.hasErrors) {
            run.errors.push(
              ERRORS.INVALID_GRAPHQL.err(
                `Cannot return null for non-nullable ${describe(run.path, innerType, parent)}.`,
                { path: Array.from(run.path) },
              ),
            );
          }
          setFlags(run, true, true);
          return null;
        }
        setFlags(run, false, false);
        return updated;
      };
    }
    if (isListType(type)) {
      const element = this.value(type.ofType, selectionSet);
      return (run, output, input, parent) => {
        if (output === null || (output !== undefined && !hasSelections)) {
          setFlags(run, false, false);
          return output;
        }
        if (input === null) {
          setFlags(run, false, false);
          return null;
        }
        if (!Array.isArray(input) || (output !== undefined && !Array.isArray(output))) unshaped();
        const previous = output as unknown[] | undefined;
        if (previous && previous.length !== input.length) unshaped();
        const updated = new Array<unknown>(input.length);
        let nullify = false;
        let hasErrors = false;
        for (let index = 0; index < input.length; index += 1) {
          const item: unknown = input[index];
          if (item === undefined) unshaped();
          run.path.push(index);
          updated[index] = element(run, previous?.[index], item, parent);
          run.path.pop();
          nullify ||= run.invalid;
          hasErrors ||= run.hasErrors;
        }
        setFlags(run, false, hasErrors);
        return nullify ? null : updated;
      };
    }
    if (isCompositeType(type)) {
      if (!selectionSet) throw new NotCompiled(`no selections on ${type.name}`);
      return this.object(type, this.selectionSet(selectionSet));
    }
    return this.leaf(type as NamedType);
  }

  private object(type: CompositeType, selections: SelectionShaper): ValueShaper {
    const schema = this.schema;
    return (run, output, input, parent) => {
      if (output === null || input === null) {
        setFlags(run, false, false);
        return null;
      }
      if (typeof input !== "object" || (output !== undefined && typeof output !== "object")) unshaped();
      const typename = (input as Data)[typenameFieldName];
      if (typename !== undefined && typeof typename !== "string") unshaped();
      let objectType = type;
      if (typename) {
        const named = schema.type(typename);
        if (!named || !isCompositeType(named)) {
          // As Apollo: the input's type name is not in the message (it may be @inaccessible).
          run.errors.push(
            ERRORS.INVALID_GRAPHQL.err(
              `Invalid __typename found for object at ${describe(run.path, type, parent)}.`,
              {
                path: Array.from(run.path),
              },
            ),
          );
          setFlags(run, false, true);
          return null;
        }
        objectType = named;
      }
      const shaped = (output ?? emptyRecord()) as Data;
      const bubbled = selections(run, input as Data, shaped, objectType);
      setFlags(run, false, bubbled);
      return bubbled ? null : shaped;
    };
  }

  /** Scalars and enums: the subgraph's value when valid for the type, else null and an error. */
  private leaf(type: NamedType): ValueShaper {
    const isValid = leafValidity(this.schema, type);
    return (run, output, input, parent) => {
      if (output !== undefined || input === null) {
        setFlags(run, false, false);
        return output === undefined ? null : output;
      }
      const valid = isValid(input);
      if (!valid) {
        run.errors.push(
          ERRORS.INVALID_GRAPHQL.err(`Invalid value found for ${describe(run.path, type, parent)}.`, {
            path: Array.from(run.path),
          }),
        );
      }
      setFlags(run, false, !valid);
      return valid ? input : null;
    };
  }
}

/** What `isValidLeafValue` writes an integer as (Int, and a number for ID). */
const INTEGER_TEXT = /^-?(?:0|[1-9][0-9]*)$/;

/**
 * `isValidLeafValue(schema, value, type)` for one type, decided per type once: built-in scalars
 * and enums by the value's kind (the same answers), any other type through `isValidLeafValue`.
 */
export function leafValidity(schema: Schema, type: NamedType): (value: unknown) => boolean {
  if (isCustomScalarType(type)) return () => true;
  const integer = (value: unknown) =>
    typeof value === "number" && Number.isFinite(value) && INTEGER_TEXT.test(String(value));
  if (type === schema.stringType()) return (value) => typeof value === "string";
  if (type === schema.idType()) return (value) => typeof value === "string" || integer(value);
  if (type === schema.intType()) return integer;
  if (type === schema.floatType()) return (value) => typeof value === "number" && Number.isFinite(value);
  if (type === schema.booleanType()) return (value) => typeof value === "boolean";
  if (isEnumType(type)) return (value) => typeof value === "string" && type.value(value) !== undefined;
  return (value) => isValidLeafValue(schema, value, type as Parameters<typeof isValidLeafValue>[2]);
}

/** A condition variable's value as `computeResponse` sees it: provided over defaults, a boolean. */
function conditionValue(run: Run, name: string): boolean {
  const value = run.provided && Object.hasOwn(run.provided, name) ? run.provided[name] : run.defaults[name];
  if (typeof value !== "boolean") unshaped();
  return value;
}
