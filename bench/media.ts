/**
 * Media processing speed and memory, through the real `processMedia` (sharp and the system ffmpeg):
 *
 *   pnpm exec tsx bench/media.ts [--images 20] [--video-seconds 30]
 *
 * - images: a 12-megapixel (4000×3000) camera-like JPEG (ffmpeg testsrc2 with grain, ~4.8 MB
 *   like a phone photo) into all six variants and the blurhash, one after another as one worker
 *   with concurrency 1 does: images per second, CPU seconds per image.
 * - video: a 30-second 1080p30 H.264/AAC clip (testsrc2 with grain, ~12 Mbit/s like a phone)
 *   into the 720p MP4 and the poster: times real time.
 * - memory: each phase runs in a child process of its own (as the worker's sandboxed processor
 *   does), which reports its peak RSS; ffmpeg's peak RSS is read from /proc while it runs.
 */
import { execFile, fork } from "node:child_process";
import { mkdir, mkdtemp, readdir, readFile, rm, stat } from "node:fs/promises";
import os from "node:os";
import { join } from "node:path";
import { performance } from "node:perf_hooks";
import { promisify } from "node:util";
import { processMedia, type MediaLimits } from "@hv/media/src/processing";
import { flag } from "./support/args";

const run = promisify(execFile);
const ffmpegPath = process.env.FFMPEG_PATH || "ffmpeg";
const ffprobePath = process.env.FFPROBE_PATH || "ffprobe";
const limits: MediaLimits = { maxBytes: 500 * 1024 * 1024, maxPixels: 50_000_000, maxVideoSeconds: 600 };

function textFlag(name: string): string | undefined {
  const index = process.argv.indexOf(`--${name}`);
  return index < 0 ? undefined : process.argv[index + 1];
}

/**
 * Peak RSS (VmHWM) and CPU time of this process's ffmpeg/ffprobe children, sampled from /proc
 * every 50 ms while they run (the CPU time of a child's last 50 ms is missed).
 */
function watchChildren(): { stop: () => { peakKb: number; cpuSeconds: number } } {
  let peakKb = 0;
  const cpuTicks = new Map<string, number>();
  const sample = async () => {
    for (const entry of await readdir("/proc").catch(() => [] as string[])) {
      if (!/^\d+$/.test(entry)) continue;
      try {
        const status = await readFile(`/proc/${entry}/status`, "utf8");
        const ppid = /^PPid:\s+(\d+)/m.exec(status)?.[1];
        if (Number(ppid) !== process.pid || !/^Name:\s+ff(mpeg|probe)/m.test(status)) continue;
        peakKb = Math.max(peakKb, Number(/^VmHWM:\s+(\d+)/m.exec(status)?.[1] ?? 0));
        // /proc/<pid>/stat: fields after the ")" of the name; utime and stime are the 14th and 15th.
        const stat = await readFile(`/proc/${entry}/stat`, "utf8");
        const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
        cpuTicks.set(entry, Number(fields[11]) + Number(fields[12]));
      } catch {
        // Gone between readdir and read.
      }
    }
  };
  const timer = setInterval(() => void sample(), 50);
  return {
    stop: () => {
      clearInterval(timer);
      const ticks = [...cpuTicks.values()].reduce((sum, value) => sum + value, 0);
      return { peakKb, cpuSeconds: ticks / CLOCK_TICKS_PER_SECOND };
    },
  };
}

/** USER_HZ: 100 on Linux x86-64 and arm64. */
const CLOCK_TICKS_PER_SECOND = 100;

interface PhaseReport {
  phase: string;
  count: number;
  wallSeconds: number;
  cpuSeconds: number;
  peakRssMb: number;
  ffmpegPeakRssMb: number;
  extra: Record<string, number | string>;
}

async function freshWorkDir(root: string, name: string): Promise<string> {
  const dir = join(root, name);
  await rm(dir, { recursive: true, force: true });
  await mkdir(dir);
  return dir;
}

async function imagePhase(source: string, count: number, root: string): Promise<PhaseReport> {
  const { size } = await stat(source);
  const once = async (index: number) => {
    const result = await processMedia(
      {
        kind: "IMAGE",
        declaredContentType: "image/jpeg",
        declaredByteSize: size,
        sourcePath: source,
        workDir: await freshWorkDir(root, `img${index}`),
        limits,
      },
      { ffmpegPath, ffprobePath },
    );
    if (!result.ok) throw new Error(`image failed: ${result.reason} ${result.detail}`);
    return result;
  };
  await once(-1); // warm-up: loads libvips' codecs
  const cpu = process.cpuUsage();
  const started = performance.now();
  let variants = 0;
  for (let index = 0; index < count; index++) variants = (await once(index)).variants.length;
  const wallSeconds = (performance.now() - started) / 1000;
  const used = process.cpuUsage(cpu);
  return {
    phase: "image",
    count,
    wallSeconds,
    cpuSeconds: (used.user + used.system) / 1e6,
    peakRssMb: process.resourceUsage().maxRSS / 1024,
    ffmpegPeakRssMb: 0,
    extra: { variants, sourceBytes: size },
  };
}

async function videoPhase(source: string, seconds: number, root: string): Promise<PhaseReport> {
  const { size } = await stat(source);
  const watcher = watchChildren();
  const cpu = process.cpuUsage();
  const started = performance.now();
  const result = await processMedia(
    {
      kind: "VIDEO",
      declaredContentType: "video/mp4",
      declaredByteSize: size,
      sourcePath: source,
      workDir: await freshWorkDir(root, "video"),
      limits,
    },
    { ffmpegPath, ffprobePath },
  );
  const wallSeconds = (performance.now() - started) / 1000;
  const used = process.cpuUsage(cpu);
  const children = watcher.stop();
  if (!result.ok) throw new Error(`video failed: ${result.reason} ${result.detail}`);
  const mp4 = result.variants.find((variant) => variant.name === "video.mp4");
  return {
    phase: "video",
    count: 1,
    wallSeconds,
    cpuSeconds: (used.user + used.system) / 1e6, // this process only; ffmpeg's own CPU is not included
    peakRssMb: process.resourceUsage().maxRSS / 1024,
    ffmpegPeakRssMb: children.peakKb / 1024,
    extra: {
      clipSeconds: seconds,
      sourceBytes: size,
      output: `${mp4?.width}x${mp4?.height}`,
      outputBytes: mp4?.byteSize ?? 0,
      durationMs: result.durationMs ?? 0,
      ffmpegCpuSeconds: children.cpuSeconds,
    },
  };
}

/** Runs one phase in a child process of its own, so its peak RSS is that phase's alone. */
function inChild(args: string[]): Promise<PhaseReport> {
  return new Promise((resolve, reject) => {
    const child = fork(__filename, args, { stdio: ["ignore", "inherit", "inherit", "ipc"] });
    let report: PhaseReport | undefined;
    child.on("message", (message) => {
      report = message as PhaseReport;
    });
    child.on("error", reject);
    child.on("exit", (code) =>
      report && code === 0
        ? resolve(report)
        : reject(new Error(`phase ${args.join(" ")} exited with ${code}`)),
    );
  });
}

async function ffmpeg(args: string[]): Promise<void> {
  await run(ffmpegPath, ["-nostdin", "-hide_banner", "-loglevel", "error", "-y", ...args], {
    maxBuffer: 1024 * 1024,
  });
}

async function main(): Promise<void> {
  const phase = textFlag("phase");
  if (phase) {
    const root = textFlag("root")!;
    const source = textFlag("source")!;
    const report =
      phase === "image"
        ? await imagePhase(source, flag("images", 20), root)
        : await videoPhase(source, flag("video-seconds", 30), root);
    process.send?.(report);
    return;
  }

  const images = flag("images", 20);
  const videoSeconds = flag("video-seconds", 30);
  const root = await mkdtemp(join(os.tmpdir(), "hv-bench-media-"));
  try {
    console.log("making the inputs with ffmpeg …");
    const photo = join(root, "photo-12mp.jpg");
    await ffmpeg([
      "-f",
      "lavfi",
      "-i",
      "testsrc2=size=4000x3000,noise=alls=20:allf=u",
      "-frames:v",
      "1",
      "-q:v",
      "2",
      photo,
    ]);
    const clip = join(root, "clip-1080p.mp4");
    await ffmpeg([
      "-f",
      "lavfi",
      "-i",
      `testsrc2=size=1920x1080:rate=30:duration=${videoSeconds},noise=alls=8:allf=t+u`,
      "-f",
      "lavfi",
      "-i",
      `sine=frequency=440:duration=${videoSeconds}`,
      "-c:v",
      "libx264",
      "-preset",
      "ultrafast",
      "-b:v",
      "12M",
      "-pix_fmt",
      "yuv420p",
      "-c:a",
      "aac",
      "-b:a",
      "128k",
      clip,
    ]);

    const loadBefore = os
      .loadavg()
      .map((value) => value.toFixed(1))
      .join(" ");
    const image = await inChild([
      "--phase",
      "image",
      "--root",
      root,
      "--source",
      photo,
      "--images",
      String(images),
    ]);
    const video = await inChild([
      "--phase",
      "video",
      "--root",
      root,
      "--source",
      clip,
      "--video-seconds",
      String(videoSeconds),
    ]);

    const { stdout: ffmpegVersion } = await run(ffmpegPath, ["-version"]);
    const cpus = os.cpus();
    console.log(
      `\nload average before: ${loadBefore}, after: ${os
        .loadavg()
        .map((value) => value.toFixed(1))
        .join(" ")}`,
    );
    console.log(
      `machine: ${cpus[0]?.model ?? "?"} (${cpus.length} cores), ${Math.round(os.totalmem() / 2 ** 30)} GiB, Node ${process.version}, ${ffmpegVersion.split("\n")[0]}`,
    );
    console.log(`\n| measure | value |\n|---|---|`);
    console.log(
      `| 12 MP JPEG (${(Number(image.extra.sourceBytes) / 1e6).toFixed(1)} MB) → ${image.extra.variants} variants + blurhash, ${image.count} in a row | ${(image.count / image.wallSeconds).toFixed(2)} images/s per worker (${((image.wallSeconds / image.count) * 1000).toFixed(0)} ms each, ${(image.cpuSeconds / image.count).toFixed(2)} CPU-s each) |`,
    );
    console.log(
      `| ${videoSeconds} s 1080p30 H.264/AAC (${(Number(video.extra.sourceBytes) / 1e6).toFixed(1)} MB) → ${video.extra.output} MP4 (${(Number(video.extra.outputBytes) / 1e6).toFixed(1)} MB) + poster | ${(videoSeconds / video.wallSeconds).toFixed(2)}× real time (${video.wallSeconds.toFixed(1)} s; ffmpeg used ${Number(video.extra.ffmpegCpuSeconds).toFixed(1)} CPU-s) |`,
    );
    console.log(`| peak RSS, image worker process | ${image.peakRssMb.toFixed(0)} MB |`);
    console.log(`| peak RSS, video worker process (Node) | ${video.peakRssMb.toFixed(0)} MB |`);
    console.log(`| peak RSS, ffmpeg | ${video.ffmpegPeakRssMb.toFixed(0)} MB |`);
  } finally {
    await rm(root, { recursive: true, force: true });
  }
}

main().catch((error: unknown) => {
  console.error(error);
  process.exitCode = 1;
});
