/**
 * The kernel's TCP counters (what `nstat` prints, from /proc/net/snmp and /proc/net/netstat) and a
 * look at the bench's own sockets (`ss -tnmi`). The counters are the whole network namespace's:
 * other programs on the machine add to them; the socket look is filtered to the bench's ports.
 */
import { execFile } from "node:child_process";
import { promisify } from "node:util";
import { readFileSync } from "node:fs";

/** The counters that show loss, delayed ACKs, receive buffers that filled and zero windows. */
const WATCHED = [
  "TcpRetransSegs",
  "TcpExtTCPLossProbes",
  "TcpExtTCPTimeouts",
  "TcpExtDelayedACKLost",
  "TcpExtTCPDSACKRecv",
  "TcpExtPruneCalled",
  "TcpExtRcvPruned",
  "TcpExtTCPWantZeroWindowAdv",
  "TcpExtTCPToZeroWindowAdv",
  "TcpExtTCPFromZeroWindowAdv",
  "TcpExtListenOverflows",
  "TcpExtTCPMemoryPressures",
  "TcpActiveOpens",
  "TcpPassiveOpens",
] as const;

/** Every counter of /proc/net/snmp (Tcp) and /proc/net/netstat (TcpExt), named as nstat names them. */
export function tcpCounters(): Map<string, number> {
  const counters = new Map<string, number>();
  for (const file of ["/proc/net/snmp", "/proc/net/netstat"]) {
    const lines = readFileSync(file, "utf8").trim().split("\n");
    for (let i = 0; i + 1 < lines.length; i += 2) {
      const names = lines[i]!.split(/\s+/);
      const values = lines[i + 1]!.split(/\s+/);
      const prefix = names[0]!.replace(/:$/, "");
      for (let j = 1; j < names.length; j += 1) counters.set(`${prefix}${names[j]}`, Number(values[j]));
    }
  }
  return counters;
}

/** The watched counters that moved between two readings, `name delta` each. */
export function describeTcpDelta(before: Map<string, number>, after: Map<string, number>): string {
  const moved = WATCHED.map((name) => [name, (after.get(name) ?? 0) - (before.get(name) ?? 0)] as const)
    .filter(([, delta]) => delta !== 0)
    .map(([name, delta]) => `${name.replace(/^TcpExt/, "")} ${delta}`);
  return moved.length ? moved.join(", ") : "none moved";
}

export interface SocketGroup {
  n: number;
  /** Sockets holding unread data, and the most any held (bytes). */
  recvQ: number;
  maxRecvQ: number;
  sendQ: number;
  /** Sockets that retransmitted at least once in their life. */
  retrans: number;
  zeroWindow: number;
}

/**
 * The bench's sockets right now, grouped by (local role → peer role) with the ports named in
 * `roles`: how many, how many hold unread data (Recv-Q) or unsent/unacknowledged data (Send-Q),
 * retransmitted, or see a zero window from the peer (snd_wnd 0).
 */
export async function socketGroups(roles: Record<number, string>): Promise<Map<string, SocketGroup>> {
  const { stdout: text } = await promisify(execFile)("ss", ["-tnmiH", "state", "established"], {
    encoding: "utf8",
    maxBuffer: 256 << 20,
  });
  const groups = new Map<string, SocketGroup>();
  // With -i each socket's details follow on the next line(s), indented.
  const lines = text.split("\n");
  for (let i = 0; i < lines.length; i += 1) {
    const head = /^\s*(\d+)\s+(\d+)\s+\S+:(\d+)\s+\S+:(\d+)/.exec(lines[i]!);
    if (!head) continue;
    let details = "";
    while (i + 1 < lines.length && !/^\s*\d+\s+\d+\s+\S+:\d+\s/.test(lines[i + 1]!)) details += lines[++i];
    const local = roles[Number(head[3])];
    const peer = roles[Number(head[4])];
    if (!local && !peer) continue;
    const key = `${local ?? "client"} → ${peer ?? "client"}`;
    const group = groups.get(key) ?? { n: 0, recvQ: 0, sendQ: 0, retrans: 0, zeroWindow: 0, maxRecvQ: 0 };
    const recvQ = Number(head[1]);
    group.n += 1;
    if (recvQ > 0) group.recvQ += 1;
    group.maxRecvQ = Math.max(group.maxRecvQ, recvQ);
    if (Number(head[2]) > 0) group.sendQ += 1;
    if (/ retrans:\d+\/[1-9]/.test(details)) group.retrans += 1;
    if (/ snd_wnd:0\b/.test(details)) group.zeroWindow += 1;
    groups.set(key, group);
  }
  return groups;
}

/** Several looks at the sockets merged: each figure is its largest over the looks. */
export function mergeSocketGroups(looks: Array<Map<string, SocketGroup>>): Map<string, SocketGroup> {
  const merged = new Map<string, SocketGroup>();
  for (const look of looks)
    for (const [key, g] of look) {
      const m = merged.get(key);
      merged.set(
        key,
        m
          ? {
              n: Math.max(m.n, g.n),
              recvQ: Math.max(m.recvQ, g.recvQ),
              sendQ: Math.max(m.sendQ, g.sendQ),
              retrans: Math.max(m.retrans, g.retrans),
              zeroWindow: Math.max(m.zeroWindow, g.zeroWindow),
              maxRecvQ: Math.max(m.maxRecvQ, g.maxRecvQ),
            }
          : { ...g },
      );
    }
  return merged;
}

export function describeSocketGroups(groups: Map<string, SocketGroup>): string {
  return [...groups.entries()]
    .sort((a, b) => b[1].n - a[1].n)
    .map(
      ([key, g]) =>
        `${key}: ${g.n} sockets, ${g.recvQ} with unread data (max ${g.maxRecvQ} B), ${g.sendQ} with unsent or unacknowledged data, ${g.retrans} retransmitting, ${g.zeroWindow} seeing a zero window`,
    )
    .join("\n    ");
}
