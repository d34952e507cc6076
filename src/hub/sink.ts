/**
 * What the hub needs from a transport to stream to one subscriber. The HTTP
 * layer adapts a response (a socket, an HTTP/2 stream, a `ReadableStream`)
 * to it; the hub never touches `req` or `res`.
 */
export interface StreamSink {
  /** Queues bytes for the client; `false` asks the writer to wait for {@link onDrain}. */
  write(chunk: Buffer | string): boolean;
  /** Queues several chunks at once, ideally in one system call; same answer as {@link write}. */
  writeMany(chunks: readonly Buffer[]): boolean;
  /** Bytes accepted by `write` that the client has not taken yet (our queue plus the transport's). */
  readonly pendingBytes: number;
  /** Calls `callback` once the transport can take more bytes. */
  onDrain(callback: () => void): void;
  /** Ends the stream cleanly after what is queued; the client reconnects. */
  end(): void;
  /** Drops the connection at once and frees what is queued. */
  destroy(): void;
  /**
   * Calls `callback` once when the transport closes, whoever closed it (the
   * client left, or {@link end} / {@link destroy} finished). The hub forgets
   * the subscriber then, so no transport has to remember to.
   */
  onClose(callback: () => void): void;
}

/** Why a subscriber's stream ended. */
export type CloseReason =
  /** The client went away. */
  | 'client-closed'
  /** It did not read fast enough: its queue went past `maxBuffer`. */
  | 'slow-consumer'
  /** The hub is shutting down. */
  | 'shutdown'
  /** This node may have missed events from a shared log; the client resumes from its last id. */
  | 'log-gap'
  /** The subscriber's token expired; the client reconnects with a fresh one. */
  | 'token-expired'
  /** The log could not serve the history the client asked for; the client reconnects and asks again. */
  | 'replay-failed';
