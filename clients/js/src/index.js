/**
 * @tokenwire/client — a browser and Node client for the tokenwire LLM streaming gateway.
 * @module
 */

export { TokenwireClient, gatewayEndpoints, STREAM_ID_PATTERN } from './client.js';
export { TokenwireStream } from './stream.js';
export { ToolLoopStream, DEFAULT_MAX_STEPS } from './tool-loop.js';
export { TokenwireError } from './errors.js';
export { SseParser } from './sse-parser.js';
export { backoffDelay, DEFAULT_RECONNECT } from './backoff.js';
export { countChars, estimateTokens, formatStats } from './stats.js';
export { parsePartialJson } from './partial-json.js';
export { imagePart, IMAGE_TYPES, MAX_IMAGE_BYTES } from './images.js';
