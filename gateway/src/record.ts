type Data = Record<string, unknown>;

/** Constructs objects whose prototype is an empty, frozen null-prototype object. */
const Record = function Record() {} as unknown as { new (): Data; prototype: object };
Record.prototype = Object.freeze(Object.create(null) as object);

/**
 * An empty object that inherits no property (reads of `constructor`, `toString` or `__proto__`
 * find nothing, a write makes an own property) as `Object.create(null)`, but in V8's fast mode.
 */
export function emptyRecord(): Data {
  return new Record();
}
