import { appError, ErrorCode, isUuid } from "@hv/kit";

/**
 * Location privacy: the grid every position is snapped to BEFORE it is stored.
 *
 * Rows of constant latitude, `LATITUDE_STEP_DEGREES` (0.0045°, about 500 m) apart; the row's
 * latitude is the input rounded to the nearest multiple of the step. Each row is cut into
 * `n = max(1, floor(360·cos(rowLat) / 0.0045))` equal cells, so a cell is about 500 m wide at any
 * latitude (wider, never narrower, near the poles); the longitude is rounded to the centre of its
 * cell, counted from -180°. The stored point is the cell centre: every phone inside one
 * ~500 m × ~500 m cell is stored at the same point, and every distance the API shows (and nearby's
 * order) is computed from cell centres only. Exact coordinates are never stored or logged.
 */
export const LATITUDE_STEP_DEGREES = 0.0045;

export interface LatLng {
  latitude: number;
  longitude: number;
}

export function snapToGrid({ latitude, longitude }: LatLng): LatLng {
  const row = Math.round(latitude / LATITUDE_STEP_DEGREES);
  const lat = Math.max(-90, Math.min(90, Number((row * LATITUDE_STEP_DEGREES).toFixed(6))));
  const cells = Math.max(1, Math.floor((360 * Math.cos((lat * Math.PI) / 180)) / LATITUDE_STEP_DEGREES));
  const step = 360 / cells;
  const cell = Math.round((longitude + 180) / step) % cells; // the cell whose centre is nearest, wrapping at ±180°
  let lng = -180 + cell * step;
  if (lng >= 180) lng -= 360;
  return { latitude: lat, longitude: Number(lng.toFixed(6)) };
}

/** Checks coordinates from a client: finite and on the globe; reported against the argument. */
export function validateCoordinates(latitude: unknown, longitude: unknown): LatLng {
  if (typeof latitude !== "number" || !Number.isFinite(latitude) || latitude < -90 || latitude > 90)
    throw appError(ErrorCode.BAD_USER_INPUT, "latitude must be a number from -90 to 90", {
      field: "latitude",
    });
  if (typeof longitude !== "number" || !Number.isFinite(longitude) || longitude < -180 || longitude > 180)
    throw appError(ErrorCode.BAD_USER_INPUT, "longitude must be a number from -180 to 180", {
      field: "longitude",
    });
  return { latitude, longitude };
}

export interface Distance {
  kilometres: number;
  lessThanOneKilometre: boolean;
}

/** What a client sees of a distance between two cell centres: whole kilometres, or "less than one". */
export function roundDistance(metres: number): Distance {
  if (metres < 1000) return { kilometres: 0, lessThanOneKilometre: true };
  return { kilometres: Math.round(metres / 1000), lessThanOneKilometre: false };
}

/** Half the Earth's circumference, a bit over: no distance between two points on it is longer. */
const MAX_METRES = 20_100_000;

/**
 * Nearby's cursor: base64url of `{"d": metres, "id": uuid}`, the last edge's distance between the
 * two snapped points (the KNN distance) and its id: keyset (d, id). Opaque to clients; anything
 * that does not decode to exactly that shape is refused. It reveals the distance between two cell
 * centres, which is no finer than the grid (see snapToGrid).
 */
export interface NearbyCursor {
  d: number;
  id: string;
}

export function encodeCursor(cursor: NearbyCursor): string {
  return Buffer.from(JSON.stringify({ d: cursor.d, id: cursor.id }), "utf8").toString("base64url");
}

export function decodeCursor(after: string): NearbyCursor {
  const refuse = () =>
    appError(ErrorCode.BAD_USER_INPUT, "after is not a cursor from this list", { field: "after" });
  if (after.length === 0 || after.length > 200 || !/^[A-Za-z0-9_-]+$/.test(after)) throw refuse();
  const bytes = Buffer.from(after, "base64url");
  if (bytes.toString("base64url") !== after) throw refuse();
  let value: unknown;
  try {
    value = JSON.parse(bytes.toString("utf8"));
  } catch {
    throw refuse();
  }
  if (typeof value !== "object" || value === null || Array.isArray(value)) throw refuse();
  const keys = Object.keys(value).sort();
  if (keys.length !== 2 || keys[0] !== "d" || keys[1] !== "id") throw refuse();
  const { d, id } = value as { d: unknown; id: unknown };
  if (typeof d !== "number" || !Number.isFinite(d) || d < 0 || d > MAX_METRES || !isUuid(id)) throw refuse();
  return { d, id: id.toLowerCase() };
}
