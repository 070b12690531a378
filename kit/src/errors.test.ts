import { GraphQLError } from "graphql";
import { appError, createErrorFormatter, ErrorCode, withoutSuggestions } from "./errors";
import { requestIdFrom } from "./request-id";
import { isUuid, requireUuid } from "./ids";

describe("error catalogue", () => {
  it("should put the code and the field in extensions", () => {
    const error = appError(ErrorCode.BAD_USER_INPUT, "displayName is too long", {
      field: "displayName",
      details: { max: 50 },
    });
    expect(error.extensions).toEqual({ code: "BAD_USER_INPUT", field: "displayName", max: 50 });
  });

  it("should mask internal errors in production and keep client errors", () => {
    const internals: unknown[] = [];
    const format = createErrorFormatter({ maskInternal: true, onInternal: (error) => internals.push(error) });
    const leaked = new GraphQLError('relation "users" does not exist', { path: ["user"] });
    expect(
      format({ message: leaked.message, path: ["user"], extensions: { stacktrace: ["at db.ts:1"] } }, leaked),
    ).toEqual({
      message: "Internal server error",
      path: ["user"],
      extensions: { code: "INTERNAL_SERVER_ERROR" },
    });
    expect(internals).toEqual([leaked]);
    const clientError = { message: "id must be a UUID", extensions: { code: "BAD_USER_INPUT", field: "id" } };
    expect(format(clientError, new GraphQLError(clientError.message))).toEqual(clientError);
  });

  it("should keep only client extensions and drop schema suggestions from a client error in production", () => {
    const format = createErrorFormatter({ maskInternal: true });
    const fromSubgraph = {
      message: 'Value "WOMEN" does not exist in "Gender" enum. Did you mean the enum value "WOMAN"?',
      path: ["updateProfile"],
      extensions: {
        code: "BAD_USER_INPUT",
        field: "input.gender",
        serviceName: "users",
        stacktrace: ["at profile.ts:12"],
        exception: { message: "x" },
      },
    };
    expect(format(fromSubgraph, new GraphQLError(fromSubgraph.message))).toEqual({
      message: 'Value "WOMEN" does not exist in "Gender" enum.',
      path: ["updateProfile"],
      extensions: { code: "BAD_USER_INPUT", field: "input.gender" },
    });
    expect(withoutSuggestions('Cannot query field "nam" on type "User". Did you mean "name" or "age"?')).toBe(
      'Cannot query field "nam" on type "User".',
    );
  });

  it("should keep internal messages outside production", () => {
    const format = createErrorFormatter({ maskInternal: false });
    const formatted = { message: "boom", extensions: { code: "INTERNAL_SERVER_ERROR" } };
    expect(format(formatted, new Error("boom"))).toBe(formatted);
  });
});

describe("request ids", () => {
  it("should keep a well-formed id and replace anything else", () => {
    expect(requestIdFrom("abc12345-req")).toBe("abc12345-req");
    expect(requestIdFrom(["first-id-1234", "second"])).toBe("first-id-1234");
    for (const bad of [undefined, "", "short", "has space inside", "line\nbreak-123", "x".repeat(129)]) {
      const id = requestIdFrom(bad);
      expect(id).not.toBe(bad);
      expect(isUuid(id)).toBe(true);
    }
  });
});

describe("ids", () => {
  it("should accept UUIDs in any case and reject everything else with a typed error", () => {
    expect(requireUuid("A0EEBC99-9C0B-4EF8-BB6D-6BB9BD380A11", "id")).toBe(
      "a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11",
    );
    for (const bad of ["", "1", "' OR 1=1 --", "a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a1", 42, null]) {
      expect(isUuid(bad)).toBe(false);
      expect(() => requireUuid(bad, "id")).toThrow(
        expect.objectContaining({ extensions: { code: "BAD_USER_INPUT", field: "id" } }),
      );
    }
  });
});
