/**
 * The fleet on the pages: the Nodes page (each node's state in words, its drain — channels left or drained —,
 * version, channels held, load, heartbeat age, its upgrade on its box — under way, the last one's outcome — and
 * for an admin a Drain button that asks first), and the line a channel's tile and page show about
 * where it runs — its holder, term and standbys, and in words when the holder does not answer.
 */
import { html } from "hono/html";
import type { NodeDrain, UpgradeState } from "../src/domain/channel/handover.ts";
import type { ChannelFleetView } from "../src/domain/views/views.ts";
import { actionButton, can, stateBadge, type Viewer } from "./layout.ts";

/** A node as the page lists it (the API's node view). */
export interface NodeRow {
  readonly id: string;
  readonly url: string;
  readonly version: string;
  readonly state: "up" | "unreachable" | "down" | "draining" | "drained";
  readonly self: boolean;
  readonly heartbeat_age_ms: number | null;
  readonly channels_held: number;
  readonly load: { readonly channels_running: number; readonly cpu_percent: number };
  readonly drain: NodeDrain | null;
  readonly upgrade: UpgradeState | null;
}

const age = (ms: number | null) =>
  ms === null ? "never" : ms < 10_000 ? `${(ms / 1000).toFixed(1)} s ago` : `${Math.round(ms / 1000)} s ago`;

/** "3 min ago" from an ISO time, by this node's clock. */
const since = (iso: string, now: number) => {
  const ms = now - Date.parse(iso);
  if (!Number.isFinite(ms)) return "at an unknown time";
  const s = Math.max(0, Math.round(ms / 1000));
  return s < 90 ? `${s} s ago` : s < 5400 ? `${Math.round(s / 60)} min ago` : `${Math.round(s / 3600)} h ago`;
};

const plural = (n: number, word: string) => `${n} ${word}${n === 1 ? "" : "s"}`;

/** A node's drain in words: "draining: 3 channels left", "drained: no channel left"; null when not draining. */
export const drainWords = (drain: NodeDrain | null): string | null =>
  drain === null
    ? null
    : drain.state === "drained"
      ? "drained: no channel left"
      : `draining: ${plural(drain.channels_left, "channel")} left`;

/** A node's upgrade in words: one under way, then the last one's outcome. */
export const upgradeWords = (upgrade: UpgradeState | null, now = Date.now()): ReadonlyArray<string> => {
  if (upgrade === null) return ["not reported (a node of an older release)"];
  const lines: string[] = [];
  if (upgrade.upgrading !== null) {
    const { from_version, to_version } = upgrade.upgrading;
    lines.push(
      `upgrading from version ${from_version} to ${to_version ?? "the installed code"}, started ${since(upgrade.upgrading.since, now)}`,
    );
  }
  const last = upgrade.last;
  if (last === null) {
    if (upgrade.upgrading === null) lines.push("no upgrade since it started");
  } else
    lines.push(
      last.outcome === "done"
        ? `last upgrade ${since(last.at, now)}: done, from version ${last.from_version} to ${last.to_version ?? "?"}, ${plural(last.channels, "channel")} handed over in ${Math.round(last.duration_ms)} ms`
        : `last upgrade ${since(last.at, now)}: failed, version ${last.from_version} kept every channel: ${last.reason ?? "no reason given"}`,
    );
  return lines;
};

/** Where a channel runs, in one line: "on node a · term 4 · standby b". */
export const fleetLine = (fleet: ChannelFleetView | undefined) => {
  if (fleet === undefined) return "";
  const standbys =
    fleet.standbys.length === 0
      ? "no standby"
      : `standby${fleet.standbys.length === 1 ? "" : "s"} ${fleet.standbys.join(", ")}`;
  return html`<p class="fleet-line">
    ${fleet.holder === null ? html`<span class="badge state-down">no holder</span>` : html`on node <strong>${fleet.holder}</strong>`}
    · term ${fleet.term} · ${standbys}
    ${fleet.holder !== null && !fleet.holder_reachable ? html`<span class="badge state-unreachable">holder unreachable</span>` : ""}
  </p>`;
};

/** The table the page shows and the live socket replaces whole. */
export const nodesTable = (
  nodes: ReadonlyArray<NodeRow>,
  viewer: Viewer,
) => html`<div id="nodes" class="scroll">
  <table>
    <thead>
      <tr>
        <th scope="col">Node</th><th scope="col">State</th><th scope="col">Version</th>
        <th scope="col">Channels held</th><th scope="col">Load</th><th scope="col">Heartbeat</th>
        <th scope="col">Upgrade</th>
        ${can(viewer, "admin") ? html`<th scope="col">Drain</th>` : ""}
      </tr>
    </thead>
    <tbody>
      ${nodes.map(
        (node) => html`<tr id="node-${node.id}">
          <th scope="row">${node.id}${node.self ? html` <span class="muted">(this node)</span>` : ""}
            <br /><span class="muted">${node.url}</span></th>
          <td>${stateBadge(node.state)}${
            drainWords(node.drain) === null
              ? ""
              : html`<br /><span class="node-drain">${drainWords(node.drain)}</span>`
          }</td>
          <td>${node.version}</td>
          <td>${node.channels_held}</td>
          <td>${node.load.channels_running} channel${node.load.channels_running === 1 ? "" : "s"} running · ${node.load.cpu_percent.toFixed(0)} % CPU</td>
          <td>${age(node.heartbeat_age_ms)}</td>
          <td class="node-upgrade${node.upgrade?.upgrading ? " upgrading" : node.upgrade?.last?.outcome === "failed" ? " upgrade-failed" : ""}">${upgradeWords(
            node.upgrade,
          ).map((line, i) => html`${i > 0 ? html`<br />` : ""}${line}`)}</td>
          ${
            can(viewer, "admin")
              ? html`<td>${
                  node.state === "up" && node.channels_held > 0
                    ? actionButton({
                        action: `/nodes/${node.id}/drain`,
                        label: "Drain",
                        kind: "danger",
                        confirm: `Drain node ${node.id}? Its ${node.channels_held} channel${node.channels_held === 1 ? "" : "s"} move to their standbys, each with a short gap on air.`,
                      })
                    : html`<span class="muted">—</span>`
                }</td>`
              : ""
          }
        </tr>`,
      )}
    </tbody>
  </table>
</div>`;

export const nodesPage = (
  nodes: ReadonlyArray<NodeRow>,
  viewer: Viewer,
  message?: string,
) => html`<section aria-labelledby="nodes-title">
  <div class="toolbar"><h1 id="nodes-title">Nodes</h1></div>
  ${message === undefined ? "" : html`<p class="notice" role="status">${message}</p>`}
  ${nodesTable(nodes, viewer)}
  <p class="muted">
    A channel runs its outputs on one node, the holder of its lease; the other nodes its input reaches stand by
    and take over when the holder stops. Draining a node hands its channels to their standbys; nothing moves
    back by itself.
  </p>
</section>`;
