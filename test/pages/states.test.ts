/**
 * The pages put an output's state and a channel's input health in words, from the API's own fields: what a
 * person reads on the channel page and the overview tile.
 */
import { describe, expect, it } from "vitest";
import type { ChannelView, OutputView } from "../../src/domain/views/views.ts";
import { channelHead, outputsSection } from "../../views/channel.ts";
import { channelTile } from "../../views/overview.ts";

const output = (id: string, state: OutputView["state"], status: OutputView["status"]): OutputView => ({
  id,
  name: id,
  protocol: "srt",
  url: `srt://127.0.0.1:9000?mode=caller`,
  enabled: state !== "disabled",
  status,
  state,
  uptime: 0,
  error_count: state === "reconnecting" ? 1 : 0,
  last_error: state === "reconnecting" ? "no SRT listener answered at 127.0.0.1:9000" : null,
  bytes_sent: 0,
  packets_sent: 0,
  bitrate_bps: 0,
  reconnects: 0,
  queue_drops: 0,
  srt: null,
});

const channel: ChannelView = {
  id: "words",
  name: "Words",
  rtp_ip: "127.0.0.1",
  rtp_port: 5000,
  backup_rtp_ip: null,
  backup_rtp_port: null,
  rtp_allowed_sources: null,
  backup_rtp_allowed_sources: null,
  input_url: null,
  backup_input_url: null,
  redundancy: null,
  status: "running",
  desired: "running",
  uptime: 12,
  error: null,
  worker: 0,
  input_bitrate_bps: 0,
  active_input: "primary",
  input: "lost",
  failovers: 0,
  last_switch: null,
  failovers_by_reason: { silence: 0, rule: 0, operator: 0, primary_restored: 0 },
  inputs: [],
  cues: { total: 0, last_at: null, last: null, by_command: {}, by_segmentation_type: {} },
  expect_cues_within_s: null,
  slate: null,
  created_at: "2026-01-01T00:00:00.000Z",
  outputs: [
    output("fresh", "starting", "running"),
    output("waiting", "connecting", "running"),
    output("failing", "reconnecting", "error"),
    output("off", "disabled", "stopped"),
  ],
};

const viewer = { name: "ops", role: "viewer" } as const;
const text = async (rendered: unknown) =>
  String(await rendered)
    .replace(/<[^>]+>/g, " ")
    .replace(/\s+/g, " ");

describe("states in words on the pages", () => {
  it("the channel page shows each output's state, and an input lost beside a running status", async () => {
    const head = await text(channelHead(channel, viewer));
    expect(head).toContain("running");
    expect(head).toContain("input lost");
    const rows = await text(outputsSection(channel, viewer, () => []));
    expect(rows).toMatch(/fresh .* starting/);
    expect(rows).toMatch(/waiting .* connecting/);
    expect(rows).toMatch(/failing .* reconnecting no SRT listener answered/);
    expect(rows).toMatch(/off .* disabled/);
    expect(await text(channelHead({ ...channel, input: "ok" }, viewer))).not.toContain("input lost");
  });

  it("the overview tile counts outputs by state", async () => {
    const tile = await text(channelTile(channel, viewer, null));
    for (const words of ["1 starting", "1 connecting", "1 reconnecting", "1 disabled"])
      expect(tile).toContain(words);
    expect(tile).toContain("lost");
  });

  it("a tile shows the buttons of the role on its channel where the viewer's grants differ by channel", async () => {
    const roles = {
      ...viewer,
      role: "operator" as const,
      roleOn: (seen: { readonly tags?: ReadonlyArray<string> }) =>
        seen.tags?.includes("eu") === true ? ("operator" as const) : ("viewer" as const),
    };
    const eu = String(await channelTile({ ...channel, tags: ["eu"] }, roles, null));
    const us = String(await channelTile({ ...channel, tags: ["us"] }, roles, null));
    expect(eu).toContain('<span class="badge tag" title="tag">eu</span>');
    // An operator's tile has its checkbox for the bulk actions and its Start or Stop button; a viewer's has neither.
    for (const [tile, shown] of [
      [eu, true],
      [us, false],
    ] as const) {
      expect(tile.includes('aria-label="Select '), tile.slice(0, 80)).toBe(shown);
      expect(/>\s*(Start|Stop)\s*</.test(tile)).toBe(shown);
    }
  });
});
