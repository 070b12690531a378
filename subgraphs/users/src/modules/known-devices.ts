import { createHash, randomBytes } from "node:crypto";
import type { UsersDb } from "../db";

const PREFIX = "kd_";
const TOKEN_SHAPE = /^kd_[A-Za-z0-9_-]{43}$/;
/** A device that has not signed in for this long is a stranger again. */
const MAX_IDLE_DAYS = 180;
/** Most remembered devices per account; the least recently used go first. */
const MAX_PER_USER = 20;

const hash = (token: string) => createHash("sha256").update(token).digest("hex");

/**
 * App installs that have signed in to an account. Their token proves "this phone signed in here
 * before", nothing more: it opens no session, it only lets logIn from that phone use a budget of
 * its own (see rate-limits.ts). Stored hashed.
 */
export class KnownDevices {
  constructor(private readonly db: UsersDb) {}

  /** A new token for a phone that just proved itself (logIn, verifyEmail, resetPassword). */
  async remember(userId: string): Promise<string> {
    const token = `${PREFIX}${randomBytes(32).toString("base64url")}`;
    await this.db.knownDevice.create({ data: { userId, tokenHash: hash(token) } });
    const stale = await this.db.knownDevice.findMany({
      where: { userId },
      orderBy: { lastUsedAt: "desc" },
      skip: MAX_PER_USER,
      select: { id: true },
    });
    if (stale.length > 0)
      await this.db.knownDevice.deleteMany({ where: { id: { in: stale.map((device) => device.id) } } });
    return token;
  }

  /** The device's id when `token` is a live token of this user's, else null (unknown, stale, someone else's). */
  async recognise(userId: string, token: string | null | undefined): Promise<string | null> {
    if (!token || !TOKEN_SHAPE.test(token)) return null;
    const device = await this.db.knownDevice.findUnique({
      where: { tokenHash: hash(token) },
      select: { id: true, userId: true, lastUsedAt: true },
    });
    if (!device || device.userId !== userId) return null;
    if (device.lastUsedAt.getTime() < Date.now() - MAX_IDLE_DAYS * 86_400_000) return null;
    return device.id;
  }

  async touch(deviceId: string): Promise<void> {
    await this.db.knownDevice.updateMany({ where: { id: deviceId }, data: { lastUsedAt: new Date() } });
  }

  /** Forgets every device of the user but `keepDeviceId` (after a password reset). */
  async forgetAll(userId: string, keepDeviceId?: string): Promise<void> {
    await this.db.knownDevice.deleteMany({
      where: { userId, ...(keepDeviceId ? { id: { not: keepDeviceId } } : {}) },
    });
  }
}
