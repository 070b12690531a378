import { spawn, type ChildProcess } from "node:child_process";
import { existsSync } from "node:fs";

/** Why running ffmpeg/ffprobe failed for reasons other than the file (retrying may help). */
export class MediaToolError extends Error {
  constructor(
    readonly tool: string,
    /** `resources`: the machine ran short (disk full, out of memory); a retry elsewhere may work. */
    readonly kind: "missing" | "timeout" | "aborted" | "output-too-large" | "resources",
    message: string,
    options?: { cause?: unknown },
  ) {
    super(message, options);
    this.name = "MediaToolError";
  }
}

export interface ToolRun {
  exitCode: number | null;
  stdout: string;
  /** The last few kilobytes of stderr (ffmpeg explains failures there). */
  stderrTail: string;
}

const STDERR_TAIL_BYTES = 4096;

/**
 * The environment ffmpeg and ffprobe run with: enough to find libraries and write in C locale,
 * nothing of ours (no database URLs, no secrets).
 */
export function toolEnvironment(from: NodeJS.ProcessEnv = process.env): NodeJS.ProcessEnv {
  return { PATH: from.PATH ?? "/usr/local/bin:/usr/bin:/bin", LANG: "C", LC_ALL: "C" };
}

/**
 * Linux: util-linux's `setpriv --pdeathsig KILL` (in every Debian image) makes the kernel kill a
 * tool the moment the process that started it dies, however it dies (SIGKILL, the OOM killer).
 */
const SETPRIV = "/usr/bin/setpriv";
const withDeathSignal = process.platform === "linux" && existsSync(SETPRIV);

/** Tools this process is running: killed when it exits (the portable half of the above). */
const running = new Set<ChildProcess>();
let killOnExit = false;

function track(child: ChildProcess): void {
  running.add(child);
  child.once("close", () => running.delete(child));
  if (killOnExit) return;
  killOnExit = true;
  process.once("exit", () => {
    for (const tool of running) tool.kill("SIGKILL");
  });
}

/**
 * Runs a program with an argument array (never a shell), with a time limit and an abort
 * signal; either kills it with SIGKILL. Resolves with its exit code whatever it is; rejects
 * only when it could not run, timed out, was aborted, or wrote more than `maxStdoutBytes`.
 */
export function runTool(
  file: string,
  args: readonly string[],
  options: { timeoutMs: number; signal?: AbortSignal | undefined; maxStdoutBytes?: number },
): Promise<ToolRun> {
  const maxStdout = options.maxStdoutBytes ?? 4 * 1024 * 1024;
  return new Promise<ToolRun>((resolve, reject) => {
    if (options.signal?.aborted) {
      reject(
        new MediaToolError(file, "aborted", `${file} not started: aborted`, { cause: options.signal.reason }),
      );
      return;
    }
    // The tool dies with this process: by the kernel's parent-death signal where setpriv exists,
    // and by the exit hook below when this process exits on its own (the worker went away).
    const [command, commandArgs] = withDeathSignal
      ? [SETPRIV, ["--pdeathsig", "KILL", "--", file, ...args]]
      : [file, args];
    const child = spawn(command, commandArgs, {
      stdio: ["ignore", "pipe", "pipe"],
      shell: false,
      windowsHide: true,
      env: toolEnvironment(),
    });
    track(child);
    const stdout: Buffer[] = [];
    let stdoutBytes = 0;
    let stderrTail = Buffer.alloc(0);
    let failure: MediaToolError | null = null;
    let settled = false;

    const kill = (error: MediaToolError) => {
      failure ??= error;
      if (child.exitCode === null && child.signalCode === null) child.kill("SIGKILL");
    };
    const timer = setTimeout(
      () =>
        kill(
          new MediaToolError(
            file,
            "timeout",
            `${file} ran longer than ${options.timeoutMs} ms and was killed`,
          ),
        ),
      options.timeoutMs,
    );
    const onAbort = () =>
      kill(new MediaToolError(file, "aborted", `${file} aborted`, { cause: options.signal?.reason }));
    options.signal?.addEventListener("abort", onAbort, { once: true });

    const finish = (outcome: () => void) => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      options.signal?.removeEventListener("abort", onAbort);
      outcome();
    };

    child.stdout.on("data", (chunk: Buffer) => {
      stdoutBytes += chunk.length;
      if (stdoutBytes > maxStdout) {
        kill(new MediaToolError(file, "output-too-large", `${file} wrote more than ${maxStdout} bytes`));
        return;
      }
      stdout.push(chunk);
    });
    child.stderr.on("data", (chunk: Buffer) => {
      const joined = Buffer.concat([stderrTail, chunk]);
      stderrTail = joined.subarray(Math.max(0, joined.length - STDERR_TAIL_BYTES));
    });
    child.on("error", (error: NodeJS.ErrnoException) => {
      finish(() =>
        reject(
          error.code === "ENOENT"
            ? new MediaToolError(
                file,
                "missing",
                `${file} not found (install ffmpeg, or set FFMPEG_PATH / FFPROBE_PATH)`,
                { cause: error },
              )
            : error,
        ),
      );
    });
    child.on("close", (exitCode) => {
      finish(() => {
        if (failure) reject(failure);
        else if (
          withDeathSignal &&
          exitCode === 127 &&
          stderrTail.toString("utf8").startsWith("setpriv: failed to execute")
        )
          reject(
            new MediaToolError(
              file,
              "missing",
              `${file} not found (install ffmpeg, or set FFMPEG_PATH / FFPROBE_PATH)`,
            ),
          );
        else
          resolve({
            exitCode,
            stdout: Buffer.concat(stdout).toString("utf8"),
            stderrTail: stderrTail.toString("utf8"),
          });
      });
    });
  });
}
