/**
 * Fields whose value is the same for every viewer who may see the entity at all: what an anonymous
 * caller gets is exactly what anyone else gets. Only fetches that select nothing but these (plus
 * `__typename`) are shared ACROSS viewers while subscription events are resolved, and such a shared
 * fetch is sent to the subgraph WITHOUT anyone's token, so the subgraph cannot personalise it.
 *
 * Everything else is viewer-dependent until listed here (a new field is private by default):
 * owner-only fields (User.email, birthDate, visibility, role, discoveryPreferences), relations such
 * as User.distance or User.isDiscoverable, signed URLs, anything a subgraph computes from the viewer.
 * Before adding a field, check its resolver ignores `context.viewer` for non-owners.
 */
export const PUBLIC_FIELDS: ReadonlySet<string> = new Set([
  // Users: the public profile. Hidden and banned profiles resolve to null for every non-owner alike.
  "User.id",
  "User.displayName",
  "User.bio",
  "User.age",
  "User.gender",
  "User.gendersOfInterest",
  "User.interests",
  "User.createdAt",
  // Media: a profile's photos and their metadata (not their signed URLs).
  "User.photos",
  "Media.id",
  "Media.kind",
  "Media.status",
  "Media.width",
  "Media.height",
]);

/**
 * The viewer's own entity is always fetched with the viewer's token: its owner sees more of it
 * than anyone else (a hidden profile is visible to its owner only).
 */
export const SELF_TYPENAME = "User";
