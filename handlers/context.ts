/** Where the handler types used to live; kept for the files that still import them from here. */
export type { Handler, HandlerContext } from '../lib/tool.js';
export type { ControlMessage, ProgressMessage } from './protocol.js';
