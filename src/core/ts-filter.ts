/**
 * The one contract of a TS filter: what stands between a channel's stream and outputs and may change it — the
 * operator's cue inserter (cue-insert/inserter.ts), an output policy's rewriter (ts-policy/rewriter.ts), the
 * start gate an ffmpeg output is fed through (ts-start.ts), the slate's way back to live
 * (slate/live-return.ts).
 *
 *   const out = filter.push(packets)
 *   if (out !== null) send(out)
 *
 * `packets` are whole 188-byte TS packets. `push` answers what goes on now, whole packets too: `packets`
 * itself, or a view into the filter's own memory; null when nothing goes on now. One ownership rule, both
 * ways: what a filter answers is valid until its next push (a caller that keeps it copies it), and a filter
 * keeps nothing of what it is given past the push (it copies what it holds back). A filter never throws on
 * malformed input.
 *
 * A channel's filters are listed, in order, in one place: src/effects/channel/filters.ts.
 *
 * Not filters: the analysers, which read the stream and answer something else — the slate's format probe
 * (slate/probe.ts), the remux's elementary-stream demuxer (flv/es.ts), the TS → FLV remux (flv/remux.ts), the
 * HLS segmenter (hls.ts) — and the slate's source (slate/splicer.ts), which makes a stream of its own.
 */
export interface TsFilter {
  push(packets: Uint8Array): Uint8Array | null;
}
