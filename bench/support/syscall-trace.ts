/**
 * Socket reads and writes of a running process, by peer: `strace -f` attached to every thread for
 * a while, each system call's fd mapped to its TCP connection (/proc/<pid>/fd, /proc/net/tcp*) and
 * the connection named by its ports (`roles`: port → process), each write by its first bytes.
 * strace slows the traced process (every system call stops it), so a turn holds
 * more work than untraced: read the counts as an upper bound on what a turn merges.
 */
import { spawn } from "node:child_process";
import { readFileSync, readdirSync, readlinkSync, rmSync } from "node:fs";
import { sleep } from "./service";

const CALLS = ["read", "readv", "recvfrom", "recvmsg", "write", "writev", "sendto", "sendmsg"];
const WRITES = new Set(["write", "writev", "sendto", "sendmsg"]);

export interface PeerCounts {
  reads: number;
  writes: number;
  /** Reads that found nothing (EAGAIN). */
  emptyReads: number;
  /** Connections (fds) seen. */
  fds: number;
}

/** The TCP connections of /proc/net/tcp and tcp6 by socket inode: local and remote port. */
function tcpByInode(): Map<string, { local: number; remote: number }> {
  const byInode = new Map<string, { local: number; remote: number }>();
  for (const file of ["/proc/net/tcp", "/proc/net/tcp6"]) {
    let text = "";
    try {
      text = readFileSync(file, "utf8");
    } catch {
      continue;
    }
    for (const line of text.split("\n").slice(1)) {
      const fields = line.trim().split(/\s+/);
      if (fields.length < 10) continue;
      const port = (address: string) => parseInt(address.split(":")[1]!, 16);
      byInode.set(fields[9]!, { local: port(fields[1]!), remote: port(fields[2]!) });
    }
  }
  return byInode;
}

/** Each fd of `pid` now: a TCP socket's ports, or what the fd is (`anon_inode:[eventfd]`, `pipe:[…]`, a file). */
function fdsOf(pid: number): Map<number, { local: number; remote: number } | string> {
  const tcp = tcpByInode();
  const fds = new Map<number, { local: number; remote: number } | string>();
  for (const name of readdirSync(`/proc/${pid}/fd`)) {
    let target = "";
    try {
      target = readlinkSync(`/proc/${pid}/fd/${name}`);
    } catch {
      continue;
    }
    const inode = /^socket:\[(\d+)\]$/.exec(target)?.[1];
    const ports = inode === undefined ? undefined : tcp.get(inode);
    fds.set(Number(name), ports ?? target.replace(/\[\d+\]$/, ""));
  }
  return fds;
}

/** What a write's first bytes (as strace prints them) say it carries. */
function kindOf(payload: string): string {
  const resp = /^\*\d+\\r\\n\$\d+\\r\\n([A-Za-z]+)(?:\\r\\n\$40\\r\\n([0-9a-f]{8}))?/.exec(payload);
  if (resp) return resp[1]!.toUpperCase() + (resp[2] === undefined ? "" : ` ${resp[2]}`);
  if (/^(POST|GET) /.test(payload)) return "HTTP request";
  if (payload.startsWith("HTTP/1.1")) return "HTTP answer";
  if (payload.startsWith("\\211")) return "ws ping";
  if (payload.startsWith("\\212")) return "ws pong";
  if (/^\\2[0-7][0-7]/.test(payload)) return "ws frames";
  const pg = /^([A-Za-z])/.exec(payload);
  if (pg) return `pg ${pg[1]}`;
  return "other";
}

/**
 * Traces `pid` for `seconds` and answers its reads and writes per peer label: `in <role>` for
 * connections to this process's own listening port, `out <role>` for connections it opened (each
 * Redis connection by its fd), what the fd is for the rest (eventfd, pipe, file); writes also by
 * what they carry (first Redis command and script, HTTP, WebSocket frame or ping), but PostgreSQL's.
 */
export async function traceSocketCalls(
  pid: number,
  seconds: number,
  roles: Record<number, string>,
  file: string,
): Promise<Map<string, PeerCounts>> {
  const before = fdsOf(pid);
  const tracer = spawn(
    "strace",
    [
      "-f",
      "-qq",
      "-s",
      "64",
      "-e",
      `trace=${CALLS.join(",")}`,
      "-e",
      "signal=none",
      "-o",
      file,
      "-p",
      String(pid),
    ],
    { stdio: ["ignore", "ignore", "inherit"] },
  );
  const exited = new Promise((resolve) => tracer.once("exit", resolve));
  await sleep(seconds * 1000);
  const after = fdsOf(pid);
  tracer.kill("SIGINT");
  await exited;
  const text = readFileSync(file, "utf8");
  rmSync(file, { force: true });
  const peerOf = (fd: number): { label: string; byKind: boolean } => {
    const target = after.get(fd) ?? before.get(fd);
    if (target === undefined) return { label: "closed fd", byKind: false };
    if (typeof target === "string") return { label: target, byKind: false };
    if (roles[target.local] !== undefined) return { label: `in ${roles[target.local]}`, byKind: true };
    const role = roles[target.remote] ?? `port ${target.remote}`;
    if (role === "redis") return { label: `out redis fd ${fd}`, byKind: true };
    return { label: `out ${role}`, byKind: role !== "postgres" };
  };
  const peers = new Map<string, PeerCounts>();
  const fdsByLabel = new Map<string, Set<number>>();
  const count = (label: string, fd: number, field: "reads" | "writes" | "emptyReads") => {
    const peer = peers.get(label) ?? { reads: 0, writes: 0, emptyReads: 0, fds: 0 };
    peers.set(label, peer);
    peer[field] += 1;
    const fds = fdsByLabel.get(label) ?? new Set();
    fdsByLabel.set(label, fds);
    if (!fds.has(fd)) {
      fds.add(fd);
      peer.fds += 1;
    }
  };
  const line = new RegExp(`^\\d+\\s+(${CALLS.join("|")})\\((\\d+), (.*)$`);
  for (const entry of text.split("\n")) {
    const match = line.exec(entry);
    if (!match) continue;
    const [, call, fdText, rest] = match;
    const fd = Number(fdText);
    const { label, byKind } = peerOf(fd);
    if (WRITES.has(call!)) {
      const payload = /"((?:[^"\\]|\\.)*)/.exec(rest!)?.[1];
      count(byKind && payload !== undefined ? `${label}: ${kindOf(payload)}` : label, fd, "writes");
    } else {
      count(label, fd, /= -1 EAGAIN/.test(rest!) ? "emptyReads" : "reads");
    }
  }
  return peers;
}

/** One line per peer: reads and writes per message (`messages` in the traced window). */
export function describePeerCounts(
  process: string,
  peers: Map<string, PeerCounts>,
  messages: number,
): string {
  const per = (n: number) => (n / Math.max(1, messages)).toFixed(2);
  const rows = [...peers].sort((a, b) => b[1].writes + b[1].reads - (a[1].writes + a[1].reads));
  let writes = 0;
  let reads = 0;
  for (const [, c] of rows) {
    writes += c.writes;
    reads += c.reads + c.emptyReads;
  }
  return [
    `${process}: ${messages} messages traced; per message writes ${per(writes)}, reads ${per(reads)}`,
    ...rows.map(
      ([label, c]) =>
        `  ${label}: writes ${per(c.writes)}, reads ${per(c.reads)}${c.emptyReads ? ` (+${per(c.emptyReads)} empty)` : ""}, ${c.fds} fd(s)`,
    ),
  ].join("\n");
}
