import { copyJson, withoutOperationName } from "./shared-fetches";

describe("withoutOperationName", () => {
  it("should give fetches that differ only by their generated name the same text", () => {
    const body = `($representations:[_Any!]!){_entities(representations:$representations){...on User{displayName}}}`;
    expect(withoutOperationName(`query ChatMyEvents__users__1${body}`)).toBe(`query${body}`);
    expect(withoutOperationName(`query ChatMyEvents__users__2${body}`)).toBe(`query${body}`);
    expect(withoutOperationName(`query${body}`)).toBe(`query${body}`);
  });

  it("should leave the selection itself alone", () => {
    expect(withoutOperationName(`query A{_entities{...on User{displayName}}}`)).not.toBe(
      withoutOperationName(`query A{_entities{...on User{bio}}}`),
    );
  });
});

describe("copyJson", () => {
  it("should copy every plain object and array, so that merging into the copy leaves the original as it was", () => {
    const original = {
      data: { _entities: [{ __typename: "User", displayName: "Ada", photos: [{ id: "m1" }] }, null] },
    };
    const copy = copyJson(original);
    expect(copy).toEqual(original);
    const entity = copy.data._entities[0]!;
    entity.displayName = "changed";
    entity.photos[0]!.id = "changed";
    entity.photos.push({ id: "m2" });
    (copy.data._entities as unknown[]).push({});
    expect(original).toEqual({
      data: { _entities: [{ __typename: "User", displayName: "Ada", photos: [{ id: "m1" }] }, null] },
    });
  });

  it("should keep an own __proto__ key a key, never the copy's prototype", () => {
    const original = JSON.parse('{"__proto__": {"polluted": true}, "a": 1}') as Record<string, unknown>;
    const copy = copyJson(original);
    expect(Object.getPrototypeOf(copy)).toBe(Object.prototype);
    expect((copy as { polluted?: boolean }).polluted).toBeUndefined();
    expect(Object.hasOwn(copy, "__proto__")).toBe(true);
    expect(copy).toEqual(original);
  });

  it("should share what is not plain data (an error instance) rather than turn it into an object", () => {
    const error = new Error("boom");
    const copy = copyJson({ errors: [error] });
    expect(copy.errors[0]).toBe(error);
  });
});
