// A GraphQL Code Generator plugin: after `typescript-resolvers`, declares `CompleteResolvers`,
// the generated `Resolvers` with a resolver required for each field its parent type lacks.
const { isObjectType } = require("graphql");

module.exports = {
  plugin(schema) {
    const names = Object.values(schema.getTypeMap())
      .filter((type) => isObjectType(type) && !type.name.startsWith("_"))
      .map((type) => type.name)
      .sort();
    return [
      'import type { CompleteResolverMap } from "@hv/kit";',
      "",
      "/** Every object type of this schema, as the `typescript` plugin declares it. */",
      "export type ObjectTypes = {",
      ...names.map((name) => `  ${name}: ${name};`),
      "};",
      "",
      "/** `Resolvers`, with a resolver required for each field its parent (row) type does not carry. */",
      "export type CompleteResolvers = CompleteResolverMap<Resolvers, ObjectTypes, ResolversParentTypes>;",
      "",
    ].join("\n");
  },
};
