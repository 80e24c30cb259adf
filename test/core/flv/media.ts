/**
 * What the FLV tests share: a temp directory for the media they make, ffmpeg to make it, and ffprobe's
 * reading of a file's packets (the real parser the tags are checked against).
 */
import { execFileSync } from "node:child_process";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll } from "vitest";

/** A temp directory removed after the file's tests. */
export const mediaDir = (prefix: string): string => {
  const dir = mkdtempSync(join(tmpdir(), prefix));
  afterAll(() => rmSync(dir, { recursive: true, force: true }));
  return dir;
};

export const ffmpeg = (...args: string[]) =>
  execFileSync("ffmpeg", ["-hide_banner", "-loglevel", "error", "-y", ...args], { encoding: "utf8" });

export interface Packet {
  readonly codec_type: string;
  readonly pts: number;
  readonly dts: number;
  readonly size: string;
  readonly flags: string;
}

/** Every packet of `file` as ffprobe reads it (none for a file it finds no packet in). */
export const packets = (file: string): Packet[] =>
  (
    JSON.parse(
      execFileSync("ffprobe", ["-v", "error", "-show_packets", "-of", "json", file], { encoding: "utf8" }),
    ) as { packets?: Packet[] }
  ).packets ?? [];
