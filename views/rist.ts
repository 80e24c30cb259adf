/**
 * RIST link figures on the channel page: under the inputs, each RIST input's link (quality, received,
 * recovered, lost, late drops, retries, RTT, bitrate, authenticated) with what is wrong in words, and in an
 * output's link cell its peers' figures. The figures are librist's readings added up (API: `rist`).
 */
import { html } from "hono/html";
import type { ChannelView, OutputView } from "../src/domain/views/views.ts";
import type { RistPeerView } from "../src/domain/views/views-rist.ts";
import { bitrate } from "./layout.ts";

const authenticated = (peer: RistPeerView) =>
  peer.authenticated === null ? "—" : peer.authenticated ? "yes" : "not yet";

const row = (name: string, peer: RistPeerView) => html`<tr>
  <th scope="row">${name} <span class="muted">${peer.peer}</span></th>
  <td>${peer.quality.toFixed(0)} %</td><td>${peer.received}</td><td>${peer.recovered}</td><td>${peer.lost}</td>
  <td>${peer.late_drops}</td><td>${peer.retries}</td><td>${peer.rtt_ms} ms</td><td>${bitrate(peer.bitrate_bps)}</td>
  <td>${authenticated(peer)}</td>
</tr>`;

/** The channel's RIST inputs' links, with the words when a peer sends nothing; nothing without RIST inputs. */
export const ristPanel = (channel: ChannelView) => {
  const links = channel.inputs.flatMap((input) =>
    input.rist == null ? [] : [{ role: input.role, rist: input.rist }],
  );
  if (links.length === 0) return "";
  return html`<div class="rist-panel">
    ${links.map(({ role, rist }) =>
      rist.problem === null ? "" : html`<p class="error-text rist-problem">${role}: ${rist.problem}</p>`,
    )}
    <div class="scroll"><table>
      <caption>RIST links</caption>
      <thead><tr>
        <th scope="col">Input</th><th scope="col">Quality</th><th scope="col">Received</th><th scope="col">Recovered</th>
        <th scope="col">Lost</th><th scope="col">Late drops</th><th scope="col">Retries</th><th scope="col">RTT</th>
        <th scope="col">Bitrate</th><th scope="col">Authenticated</th>
      </tr></thead>
      <tbody>${links.map(({ role, rist }) => row(role, rist))}</tbody>
    </table></div>
  </div>`;
};

/** An output's RIST peers in its link cell. */
export const ristCell = (output: OutputView) =>
  output.rist == null
    ? null
    : output.rist.peers.length === 0
      ? html`no peer heard yet`
      : output.rist.peers.map(
          (peer) =>
            html`<span class="nowrap">${peer.peer}: quality ${peer.quality.toFixed(0)} %, RTT ${peer.rtt_ms} ms, retries ${peer.retries}, authenticated ${authenticated(peer)}</span><br />`,
        );
