/**
 * OpenAI's built-in tools of the Responses API as POST /openai/tool_call takes them: the output item as the model
 * produced it (`apply_patch_call`, `shell_call`), and the output item that answers it (`apply_patch_call_output`,
 * `shell_call_output`), ready to append to the next request's input. The interfaces are our own (the SDK is a dev
 * dependency); test/providers.openai.test.ts holds them assignable to the SDK's ResponseInputItem types.
 */
import { z } from 'zod';
import { projectId } from '../schemas.js';
import { sessionKey } from './session-key.js';

/** The item types the route runs. */
export const OPENAI_ITEM_TYPES = ['apply_patch_call', 'shell_call'] as const;

const callId = z.string().min(1).max(256).describe("The call's call_id; the answer carries it.");

/** One file operation of an apply_patch_call (create_file and update_file carry a V4A diff). */
const patchOperation = z.discriminatedUnion('type', [
  z.looseObject({ type: z.literal('create_file'), path: z.string(), diff: z.string() }),
  z.looseObject({ type: z.literal('update_file'), path: z.string(), diff: z.string() }),
  z.looseObject({ type: z.literal('delete_file'), path: z.string() }),
]);

/** An apply_patch_call item (ResponseApplyPatchToolCall); id, status and caller may come along and are ignored. */
export const applyPatchCallItem = z.looseObject({
  type: z.literal('apply_patch_call'),
  call_id: callId,
  operation: patchOperation,
});
export type ApplyPatchCallItem = z.infer<typeof applyPatchCallItem>;

/** A shell_call item (ResponseFunctionShellToolCall); id, status, environment and caller are ignored. */
export const shellCallItem = z.looseObject({
  type: z.literal('shell_call'),
  call_id: callId,
  action: z.looseObject({
    commands: z.array(z.string().min(1)).min(1).max(100).describe('The commands, run in order on the session.'),
    timeout_ms: z.number().int().positive().nullish().describe("Each command's timeout, in milliseconds."),
    max_output_length: z.number().int().positive().nullish().describe("Characters of each command's stdout and stderr together."),
  }),
});
export type ShellCallItem = z.infer<typeof shellCallItem>;

/** The body of POST /openai/tool_call; `item` is checked by its type once the route knows it. */
export const openAIToolCallRequest = z.strictObject({
  project_id: projectId,
  session: sessionKey.optional(),
  item: z.looseObject({ type: z.string() }).describe(`An output item of a Responses API response, as the API returned it: ${OPENAI_ITEM_TYPES.join(' or ')}.`),
});
/** An apply_patch_call as a client sends it (the SDK's ResponseApplyPatchToolCall, or its input item form). */
export interface ApplyPatchCallIn {
  type: 'apply_patch_call';
  call_id: string;
  operation: { type: 'create_file' | 'update_file'; path: string; diff: string } | { type: 'delete_file'; path: string };
}

/** A shell_call as a client sends it (the SDK's ResponseFunctionShellToolCall, or its input item form). */
export interface ShellCallIn {
  type: 'shell_call';
  call_id: string;
  action: { commands: string[]; timeout_ms?: number | null | undefined; max_output_length?: number | null | undefined };
}

/** The body of POST /openai/tool_call, as a client writes it. */
export interface OpenAIToolCallRequest {
  project_id: string;
  session?: string | undefined;
  item: ApplyPatchCallIn | ShellCallIn;
}

/** The answer to an apply_patch_call (ResponseInputItem.ApplyPatchCallOutput). */
export const applyPatchCallOutput = z.strictObject({
  type: z.literal('apply_patch_call_output'),
  call_id: z.string(),
  status: z.enum(['completed', 'failed']).describe('"failed" when the patch did not apply: nothing was changed.'),
  output: z.string().describe('What was done, or why the patch did not apply and what to do.'),
});
export type ApplyPatchCallOutput = z.infer<typeof applyPatchCallOutput>;

/** The answer to a shell_call (ResponseInputItem.ShellCallOutput). */
export const shellCallOutput = z.strictObject({
  type: z.literal('shell_call_output'),
  call_id: z.string(),
  max_output_length: z.number().int().nullable().describe("The call's max_output_length, passed back as the API asks."),
  output: z
    .array(
      z.strictObject({
        stdout: z.string(),
        stderr: z.string(),
        outcome: z.union([z.strictObject({ type: z.literal('exit'), exit_code: z.number().int() }), z.strictObject({ type: z.literal('timeout') })]),
      }),
    )
    .describe('One entry per command that ran, in order (a non-zero exit does not stop the rest; a timeout, or a command toolhost could not run, does).'),
});
export type ShellCallOutput = z.infer<typeof shellCallOutput>;
