/**
 * What the rest of the service knows of libsrt: the constants of srt.h it uses, the socket interface
 * (`LibSrt`) and its error. Nothing here depends on koffi, so another runtime's FFI (Bun, Deno) replaces
 * libsrt.ts alone and every caller stays as it is.
 */
export const SRTO = {
  SNDSYN: 1,
  RCVSYN: 2,
  MAXBW: 16,
  LATENCY: 23,
  OHEADBW: 25,
  PASSPHRASE: 26,
  PBKEYLEN: 27,
  CONNTIMEO: 36,
  STREAMID: 46,
  PAYLOADSIZE: 49,
  TRANSTYPE: 50,
  ENFORCEDENCRYPTION: 53,
  /** 0: a socket bound to `::` takes IPv4 callers too (dual stack); libsrt refuses `::` while it is unset. */
  IPV6ONLY: 54,
} as const;

export const SRTS = { CONNECTING: 4, CONNECTED: 5, BROKEN: 6, CLOSING: 7, CLOSED: 8, NONEXIST: 9 } as const;

export const SRT_EPOLL = { IN: 0x1, OUT: 0x4, ERR: 0x8 } as const;

/** SRT_ERRNO values the callers tell apart. */
export const SRT_ERR = { EASYNCSND: 6001, EASYNCRCV: 6002, ECONNLOST: 2001, ENOCONN: 2002 } as const;

/** SRT_REJECT_REASON values the callers tell apart. */
export const SRT_REJ = { PEER: 2, TIMEOUT: 16, BADSECRET: 10, UNSECURE: 11, CLOSE: 7 } as const;

/**
 * The reject reasons a listener's callback gives (srt.h's SRT_REJC_PREDEFINED + an HTTP status, as SRT's
 * AccessControl.md defines them): the caller's libsrt reports the code as its connection's reject reason.
 */
export const SRT_REJX = {
  BAD_REQUEST: 1400,
  UNAUTHORIZED: 1401,
  NOTFOUND: 1404,
  BAD_MODE: 1405,
  CONFLICT: 1409,
} as const;

/** The figures of SRT_TRACEBSTATS that status and metrics use (totals since the connection began). */
export interface SrtSocketStats {
  readonly rttMs: number;
  readonly sendRateMbps: number;
  readonly receiveRateMbps: number;
  readonly bandwidthMbps: number;
  readonly packetsSent: number;
  readonly packetsReceived: number;
  readonly retransmits: number;
  readonly sendLoss: number;
  readonly receiveLoss: number;
  readonly sendDrops: number;
  readonly receiveDrops: number;
  readonly flightSize: number;
  readonly sendBufferPackets: number;
  readonly sendBufferMs: number;
  readonly receiveBufferPackets: number;
  readonly receiveBufferMs: number;
}

interface SrtOptionValues {
  readonly latencyMs?: number | null;
  readonly passphrase?: string | null;
  readonly pbkeylen?: number | null;
  readonly streamId?: string | null;
  readonly maxbw?: number | null;
  readonly oheadbw?: number | null;
  readonly payloadSize?: number | null;
}

export interface LibSrt {
  readonly library: string;
  readonly version: string;
  /** A live-mode, non-blocking socket with the given options; throws a LibSrtError when libsrt refuses one. */
  readonly createSocket: (options: SrtOptionValues) => number;
  readonly bind: (socket: number, host: string, port: number) => void;
  /** The local UDP port a bound socket uses. */
  readonly localPort: (socket: number) => number;
  readonly listen: (socket: number, backlog: number) => void;
  /**
   * Lets `decide` accept or reject each caller of listener `socket` before its handshake completes
   * (srt_listen_callback): it gets the new socket, the stream id the caller sent and its address, and returns
   * true to go on (it may set the new socket's passphrase first, `configureCaller`) or false to refuse (after
   * `setRejectReason`). libsrt calls it on its receive thread, which waits while koffi runs it on this thread.
   * A listener with a callback is closed with `closeListener`.
   */
  readonly onCaller: (
    socket: number,
    decide: (caller: number, streamId: string, peer: string) => boolean,
  ) => void;
  /** Sets a caller's own options in a listener callback: its passphrase (and key length), its latency. */
  readonly configureCaller: (socket: number, options: SrtOptionValues) => void;
  /** The reason a listener callback refuses a caller with (SRT_REJX, 1000 and above). */
  readonly setRejectReason: (socket: number, reason: number) => void;
  /**
   * Closes a listener off this thread (an asynchronous call): srt_close waits for the port's receive thread,
   * which may itself be waiting for this thread to run the listener's callback. Its callback goes after.
   */
  readonly closeListener: (socket: number) => Promise<void>;
  /** Starts a connection; readiness (OUT) or failure (ERR) arrives through `watch`. */
  readonly connect: (socket: number, host: string, port: number) => void;
  /** The next pending connection, or null when none is waiting. */
  readonly accept: (socket: number) => number | null;
  readonly close: (socket: number) => void;
  readonly state: (socket: number) => number;
  readonly rejectReason: (socket: number) => number;
  readonly rejectReasonText: (reason: number) => string;
  readonly streamId: (socket: number) => string;
  readonly peerAddress: (socket: number) => string;
  /**
   * Sends one message; returns the bytes taken, or the SRT error code (negative) when it could not.
   * `sourceTimeUs` (on libsrt's clock, see `now`) is when the data arrived: the receiver then delivers it
   * paced as it came, however it was sent; 0 stamps it now.
   */
  readonly send: (socket: number, message: Uint8Array, sourceTimeUs: number) => number;
  /** libsrt's clock (srt_time_now), in microseconds. */
  readonly now: () => number;
  /** Receives one message into `into`; returns its length, 0 when nothing is waiting, or -code on an error. */
  readonly receive: (socket: number, into: Uint8Array) => number;
  readonly stats: (socket: number) => SrtSocketStats | null;
  /**
   * Calls `onEvents` with SRT_EPOLL flags whenever `socket` has any of `events`, until `unwatch`. Readiness
   * is level-triggered: change the flags with `watch` again once an event is handled.
   */
  readonly watch: (socket: number, events: number, onEvents: (events: number) => void) => void;
  readonly unwatch: (socket: number) => void;
  /**
   * Ends this thread's use of libsrt, once its sockets are closed: the readiness wait returns (within
   * POLL_TIMEOUT_MS), its epoll set is released, and srt_cleanup is called, the last call in the process
   * stopping libsrt's own threads. Without it, libsrt's threads and a wait still under way could meet its
   * static destructors at exit: a CI run once ended a service that way ("double free or corruption", SIGABRT).
   */
  readonly release: () => Promise<void>;
}

export class LibSrtError extends Error {
  readonly operation: string;
  /** SRT_ERRNO, 0 when the failure is ours (a bad address). */
  readonly code: number;
  constructor(operation: string, code: number, detail: string) {
    super(`${operation}: ${detail}`);
    this.operation = operation;
    this.code = code;
  }
}
