type RootTypeName = "Query" | "Mutation" | "Subscription";

/** Fields of a GraphQL object type that its parent value does not carry (every field of a root type). */
type FieldsToResolve<TObject, TParent, TName> = Exclude<
  keyof TObject,
  "__typename" | (TName extends RootTypeName ? never : keyof TParent)
>;

/**
 * A generated `Resolvers` map in which each field that the parent (row) type lacks must have a
 * resolver, so a field added to the SDL but not resolved fails the type check (docs/schema-workflow.md).
 */
export type CompleteResolverMap<TResolvers, TObjects, TParents> = TResolvers & {
  [
    K in keyof TObjects & keyof TParents & keyof TResolvers as [
      FieldsToResolve<TObjects[K], TParents[K], K>,
    ] extends [never]
      ? never
      : K
  ]-?: {
    [F in FieldsToResolve<TObjects[K], TParents[K], K> & keyof NonNullable<TResolvers[K]>]-?: NonNullable<
      NonNullable<TResolvers[K]>[F]
    >;
  };
};
