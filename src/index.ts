/**
 * The `herald` package: `createHub()` and what a user needs to configure,
 * observe or extend a hub. Loads no optional engine: SQLite and Redis are
 * loaded when the options ask for them, or imported from `herald/sqlite` and
 * `herald/redis` to pass a log of one's own.
 */

export { createHub, Herald, exposureWarning, type HeraldParts, type Listening } from './herald.js';
export {
  resolveOptions,
  OPTION_SPECS,
  OPTION_TABLE,
  ROUTES,
  type HeraldOptions,
  type ResolvedOptions,
  type OptionKey,
  type OptionSpec,
  type Route,
  type Duration,
  type Size,
  type LogLevel,
} from './config/options.js';
export { HeraldError, isHeraldError, ERROR_CATALOGUE, type ErrorCode, type ErrorBody, type ErrorDetails } from './errors.js';
export { Hub, RESYNC_EVENT, type Published, type HubCounters, type HubObserver, type SubscribeRequest } from './hub/hub.js';
export type { Subscriber, SubscriberState } from './hub/subscriber.js';
export type { PublishMessage, TextMessageMeta } from './hub/messages.js';
export type { StreamSink, CloseReason } from './hub/sink.js';
export type {
  EventLog,
  EventDraft,
  StoredEvent,
  ReadRequest,
  ReadStart,
  ReadPage,
  TopicFilter,
  EventLogStats,
  LogHealth,
  TailListener,
} from './log/event-log.js';
export { MemoryEventLog, type MemoryLogOptions } from './log/memory-log.js';
export { createEventLog, engineOf, type Engine, type EngineName, type LogOptions } from './log/create.js';
export { frameEvent, frameComment, frameRetry } from './protocol/framing.js';
export { mintToken, MAX_TOKEN_TTL_SECONDS, type MintOptions } from './auth/mint.js';
export type { RequestHandler, NextFunction } from './http/handler.js';
export type { FetchInfo } from './http/fetch.js';
export type { Logger } from './observe/logger.js';
