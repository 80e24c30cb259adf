/**
 * RTMP inputs on the channel page: under the inputs, each RTMP input's listener, the publisher sending now and
 * the publishers refused (a wrong key, a second publisher), the latest in the words it was sent (API: `rtmp`).
 */
import { html } from "hono/html";
import type { ChannelView } from "../src/domain/views/views.ts";

/** The channel's RTMP inputs; nothing without any. */
export const rtmpPanel = (channel: ChannelView) => {
  const inputs = channel.inputs.flatMap((input) =>
    input.rtmp == null ? [] : [{ role: input.role, rtmp: input.rtmp }],
  );
  if (inputs.length === 0) return "";
  return html`<div class="rtmp-panel">
    ${inputs.map(({ role, rtmp }) =>
      rtmp.last_refusal === null
        ? ""
        : html`<p class="error-text rtmp-refusal">${role}: refused ${rtmp.last_refusal.publisher} at ${rtmp.last_refusal.at}: ${rtmp.last_refusal.message}</p>`,
    )}
    <div class="scroll"><table>
      <caption>RTMP inputs</caption>
      <thead><tr>
        <th scope="col">Input</th><th scope="col">Publisher</th><th scope="col">Publishes</th>
        <th scope="col">Wrong key</th><th scope="col">Second publisher</th><th scope="col">Dropped tags</th>
      </tr></thead>
      <tbody>${inputs.map(
        ({ role, rtmp }) => html`<tr>
          <th scope="row">${role} <span class="muted">${rtmp.listen}/${rtmp.app}</span></th>
          <td>${rtmp.publisher ?? "none"}</td><td>${rtmp.publishes}</td><td>${rtmp.refusals.wrong_key}</td>
          <td>${rtmp.refusals.busy}</td><td>${rtmp.dropped_tags}${rtmp.drop_reason === null ? "" : html` <span class="muted">(${rtmp.drop_reason})</span>`}</td>
        </tr>`,
      )}</tbody>
    </table></div>
  </div>`;
};
