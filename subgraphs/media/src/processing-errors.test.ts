import { classifyDecodeError } from "./processing/image";
import { MediaToolError, runTool, toolEnvironment } from "./processing/run-tool";

describe("what a processing failure is blamed on", () => {
  it("should blame the machine, not the file, for sharp's timeout, a full disk or memory running out", () => {
    for (const [message, kind] of [
      ["timeout: 37% complete", "timeout"],
      ["VipsForeignSaveJpeg: No space left on device", "resources"],
      ["write error: ENOSPC", "resources"],
      ["vips__file_open_write: unable to open file: Disk quota exceeded", "resources"],
      ["VipsJpeg: Insufficient memory (case 4)", "resources"],
      ["out of memory", "resources"],
    ] as const) {
      let thrown: unknown;
      try {
        classifyDecodeError(new Error(message));
      } catch (error) {
        thrown = error;
      }
      expect({ message, thrown: thrown instanceof MediaToolError ? thrown.kind : thrown }).toEqual({
        message,
        thrown: kind,
      });
    }
  });

  it("should still blame the file for what is wrong with it", () => {
    expect(classifyDecodeError(new Error("VipsJpeg: Premature end of JPEG file")).reason).toBe("TRUNCATED");
    expect(classifyDecodeError(new Error("Input file has corrupt header")).reason).toBe("CORRUPT");
    expect(classifyDecodeError(new Error("Input image exceeds pixel limit")).reason).toBe("TOO_MANY_PIXELS");
  });

  it("should run ffmpeg and ffprobe with PATH and a C locale only, none of the worker's secrets", async () => {
    const env = toolEnvironment({
      PATH: "/usr/bin:/bin",
      MEDIA_GRANT_SECRET: "s".repeat(40),
      MEDIA_DATABASE_URL: "postgresql://secret@db/x",
      HOME: "/root",
    });
    expect(env).toEqual({ PATH: "/usr/bin:/bin", LANG: "C", LC_ALL: "C" });
    // And a spawned tool really sees only that.
    process.env.HV_TEST_SECRET_SHOULD_NOT_LEAK = "leak";
    try {
      const run = await runTool("env", [], { timeoutMs: 10_000 });
      expect(run.stdout.split("\n").filter(Boolean).sort()).toEqual([
        "LANG=C",
        "LC_ALL=C",
        `PATH=${process.env.PATH}`,
      ]);
    } finally {
      delete process.env.HV_TEST_SECRET_SHOULD_NOT_LEAK;
    }
  });
});
