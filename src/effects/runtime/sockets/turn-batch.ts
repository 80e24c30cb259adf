/**
 * A channel's datagrams of one turn, gathered once for all of its plain UDP outputs. Each output used to take
 * every datagram through its own queue and copy it into a batch of its own (four outputs: four calls and four
 * copies a datagram); here the channel copies each accepted payload once into one batch, and at the end of
 * the turn every output sends that same memory with one system call of its own (segmented.ts cuts it into
 * datagrams in the kernel). The batch ends early where the kernel would need it to: a payload that is not a
 * whole datagram of 7 TS packets goes last, and a full batch leaves at once. A longer payload is cut into
 * datagrams of 7 packets first, as each output did on its own.
 *
 * The sinks are the channel's to set (channel.ts): the outputs that send batches now, on an open send gate.
 * A sink sends the memory by the end of the turn (thread-sender.ts) or copies what it cannot send yet; memory
 * handed out is written again only once that is done.
 */
import { atEndOfTurn, cancelEndOfTurn } from "../timers/end-of-turn.ts";
import { MAX_BATCH_BYTES } from "./segmented.ts";
import { type BatchSink, SEGMENT_BYTES, settleThreadSends } from "./thread-sender.ts";

export interface TurnBatch {
  /** Copies a payload (whole TS packets) in; it leaves with the turn's others at the end of the turn. */
  readonly add: (payload: Uint8Array) => void;
  /** Copies a run of whole 7-packet datagrams in (a packet core's `uniformRun`): one copy per batch it fills. */
  readonly addRun: (run: Uint8Array) => void;
  /** Sends what waits now, to the sinks of now. */
  readonly flush: () => void;
  /** Where a flush sends: set by the channel as its outputs start and stop sending batches. */
  sinks: ReadonlyArray<BatchSink>;
  /** An output starts or stops sending batches: what waits leaves first, then the owner sets the sinks again. */
  readonly changed: () => void;
}

export const makeTurnBatch = (onChange: () => void): TurnBatch => {
  // Made with the first payload: a channel without a plain UDP output never needs it.
  let memory: Buffer | null = null;
  let length = 0;
  /** Sinks were handed the memory: one may send it only at the end of the turn (thread-sender.ts). */
  let handedOut = false;
  const flush = () => {
    cancelEndOfTurn(flush);
    if (length === 0 || memory === null) return;
    const bytes = length;
    length = 0;
    handedOut = true;
    const sinks = batch.sinks;
    for (let i = 0; i < sinks.length; i++) sinks[i]?.(memory, bytes);
  };
  /** The memory, once what the sinks were handed of it has left: only then is it written again. */
  const writable = (): Buffer => {
    memory ??= Buffer.allocUnsafeSlow(MAX_BATCH_BYTES);
    if (length === 0 && handedOut) {
      handedOut = false;
      settleThreadSends();
    }
    return memory;
  };
  /** Whole 7-packet datagrams: as many as fit go in each batch, and a full batch leaves at once. */
  const addRun = (run: Uint8Array) => {
    for (let at = 0; at < run.length; ) {
      const into = writable();
      const room = MAX_BATCH_BYTES - length - ((MAX_BATCH_BYTES - length) % SEGMENT_BYTES);
      const take = Math.min(room, run.length - at);
      const first = length === 0;
      into.set(take === run.length ? run : run.subarray(at, at + take), length);
      length += take;
      at += take;
      if (length + SEGMENT_BYTES > MAX_BATCH_BYTES) flush();
      // The batch's first payload asks for the end of the turn; a flush takes the ask back.
      else if (first) atEndOfTurn(flush);
    }
  };
  /** Fewer than 7 packets: the kernel may cut only the last datagram short, so the batch leaves with it. */
  const addShort = (payload: Uint8Array) => {
    if (length + payload.length > MAX_BATCH_BYTES) flush();
    writable().set(payload, length);
    length += payload.length;
    flush();
  };
  const batch: TurnBatch = {
    add: (payload) => {
      const whole = payload.length - (payload.length % SEGMENT_BYTES);
      if (whole > 0) addRun(whole === payload.length ? payload : payload.subarray(0, whole));
      if (whole < payload.length) addShort(whole === 0 ? payload : payload.subarray(whole));
    },
    addRun,
    flush,
    sinks: [],
    changed: () => {
      flush();
      onChange();
    },
  };
  return batch;
};
