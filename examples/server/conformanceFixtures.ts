import { setTimeout as sleep } from 'node:timers/promises';
import * as z from 'zod';
import { completable } from '@modelcontextprotocol/sdk/server/completable.js';
import { ResourceTemplate, type McpServer } from '@modelcontextprotocol/sdk/server/mcp.js';
import {
  CreateMessageResultSchema,
  ElicitResultSchema,
  type CallToolResult,
  type ElicitRequestFormParams,
  type Tool,
} from '@modelcontextprotocol/sdk/types.js';
import { PNG_BASE64, WAV_BASE64 } from './media.ts';
import { sendProgress, type RequestExtra, type SendLog } from './notifications.ts';
import { errorResult, textResult } from './toolResults.ts';

/** The tools, resources and prompts that the @modelcontextprotocol/conformance server scenarios expect. */
export function registerConformanceFixtures(
  server: McpServer,
  registerTool: McpServer['registerTool'],
  rawInputSchemas: Map<string, Tool['inputSchema']>,
  log: SendLog,
): void {
  registerFixtureTools(server, registerTool, rawInputSchemas, log);
  registerFixtureResources(server);
  registerFixturePrompts(server);
}

const JSON_SCHEMA_2020_12_INPUT = {
  $schema: 'https://json-schema.org/draft/2020-12/schema',
  type: 'object',
  $defs: {
    address: {
      type: 'object',
      properties: {
        street: { type: 'string' },
        city: { type: 'string' },
      },
    },
  },
  properties: {
    name: { type: 'string' },
    address: { $ref: '#/$defs/address' },
  },
  additionalProperties: false,
} as const;

function clientSupports(server: McpServer, capability: 'sampling' | 'elicitation'): boolean {
  return server.server.getClientCapabilities()?.[capability] !== undefined;
}

async function elicit(
  extra: RequestExtra,
  message: string,
  requestedSchema: ElicitRequestFormParams['requestedSchema'],
): Promise<CallToolResult> {
  const result = await extra.sendRequest(
    { method: 'elicitation/create', params: { message, requestedSchema } },
    ElicitResultSchema,
  );
  return textResult(
    `User response: action=${result.action}` +
      (result.content !== undefined ? `, content=${JSON.stringify(result.content)}` : ''),
  );
}

function registerFixtureTools(
  server: McpServer,
  registerTool: McpServer['registerTool'],
  rawInputSchemas: Map<string, Tool['inputSchema']>,
  log: SendLog,
): void {
  registerTool('test_simple_text', { description: 'Returns a simple text response' }, () =>
    textResult('This is a simple text response for testing.'),
  );

  registerTool('test_image_content', { description: 'Returns a small PNG image' }, () => ({
    content: [{ type: 'image', data: PNG_BASE64, mimeType: 'image/png' }],
  }));

  registerTool('test_audio_content', { description: 'Returns a short WAV audio clip' }, () => ({
    content: [{ type: 'audio', data: WAV_BASE64, mimeType: 'audio/wav' }],
  }));

  registerTool('test_embedded_resource', { description: 'Returns an embedded text resource' }, () => ({
    content: [
      {
        type: 'resource',
        resource: {
          uri: 'test://embedded-resource',
          mimeType: 'text/plain',
          text: 'This is an embedded resource content.',
        },
      },
    ],
  }));

  registerTool(
    'test_multiple_content_types',
    { description: 'Returns text, image and embedded resource content together' },
    () => ({
      content: [
        { type: 'text', text: 'Multiple content types test:' },
        { type: 'image', data: PNG_BASE64, mimeType: 'image/png' },
        {
          type: 'resource',
          resource: {
            uri: 'test://mixed-content-resource',
            mimeType: 'application/json',
            text: JSON.stringify({ test: 'data', value: 123 }),
          },
        },
      ],
    }),
  );

  registerTool(
    'test_tool_with_logging',
    { description: 'Sends three log notifications while it runs' },
    async (extra) => {
      await log(extra, 'info', 'Tool execution started');
      await sleep(50);
      await log(extra, 'info', 'Tool processing data');
      await sleep(50);
      await log(extra, 'info', 'Tool execution completed');
      return textResult('Tool with logging executed successfully');
    },
  );

  registerTool('test_error_handling', { description: 'Always returns a tool error (isError: true)' }, () =>
    errorResult('This tool intentionally returns an error for testing'),
  );

  registerTool(
    'test_tool_with_progress',
    { description: 'Reports progress 0, 50 and 100 out of 100 before returning' },
    async (extra) => {
      await sendProgress(extra, 0, 100, 'Started');
      await sleep(50);
      await sendProgress(extra, 50, 100, 'Halfway');
      await sleep(50);
      await sendProgress(extra, 100, 100, 'Done');
      return textResult(`Progress test completed (token: ${String(extra._meta?.progressToken ?? 'none')})`);
    },
  );

  registerTool(
    'test_sampling',
    {
      description: 'Asks the client to sample an LLM completion for the prompt, and returns it',
      inputSchema: { prompt: z.string().describe('Prompt to send to the client LLM') },
    },
    async ({ prompt }, extra) => {
      if (!clientSupports(server, 'sampling')) return errorResult('The client does not support sampling.');
      const result = await extra.sendRequest(
        {
          method: 'sampling/createMessage',
          params: { messages: [{ role: 'user', content: { type: 'text', text: prompt } }], maxTokens: 100 },
        },
        CreateMessageResultSchema,
      );
      const text = result.content.type === 'text' ? result.content.text : JSON.stringify(result.content);
      return textResult(`LLM response: ${text}`);
    },
  );

  registerTool(
    'test_elicitation',
    {
      description: 'Asks the user for a username and an email address through elicitation',
      inputSchema: { message: z.string().describe('Message to show to the user') },
    },
    async ({ message }, extra) => {
      if (!clientSupports(server, 'elicitation')) return errorResult('The client does not support elicitation.');
      return elicit(extra, message, {
        type: 'object',
        properties: {
          username: { type: 'string', description: "User's response" },
          email: { type: 'string', description: "User's email address" },
        },
        required: ['username', 'email'],
      });
    },
  );

  registerTool(
    'test_elicitation_sep1034_defaults',
    { description: 'Elicitation with default values for every primitive type (SEP-1034)' },
    async (extra) => {
      if (!clientSupports(server, 'elicitation')) return errorResult('The client does not support elicitation.');
      return elicit(extra, 'Please review and update the form fields with defaults', {
        type: 'object',
        properties: {
          name: { type: 'string', description: 'User name', default: 'John Doe' },
          age: { type: 'integer', description: 'User age', default: 30 },
          score: { type: 'number', description: 'User score', default: 95.5 },
          status: {
            type: 'string',
            description: 'User status',
            enum: ['active', 'inactive', 'pending'],
            default: 'active',
          },
          verified: { type: 'boolean', description: 'Verification status', default: true },
        },
        required: [],
      });
    },
  );

  registerTool(
    'test_elicitation_sep1330_enums',
    { description: 'Elicitation with every enum schema variant (SEP-1330)' },
    async (extra) => {
      if (!clientSupports(server, 'elicitation')) return errorResult('The client does not support elicitation.');
      return elicit(extra, 'Please select options from the enum fields', {
        type: 'object',
        properties: {
          untitledSingle: {
            type: 'string',
            description: 'Select one option',
            enum: ['option1', 'option2', 'option3'],
          },
          titledSingle: {
            type: 'string',
            description: 'Select one option with titles',
            oneOf: [
              { const: 'value1', title: 'First Option' },
              { const: 'value2', title: 'Second Option' },
              { const: 'value3', title: 'Third Option' },
            ],
          },
          legacyEnum: {
            type: 'string',
            description: 'Select one option (legacy enumNames)',
            enum: ['opt1', 'opt2', 'opt3'],
            enumNames: ['Option One', 'Option Two', 'Option Three'],
          },
          untitledMulti: {
            type: 'array',
            description: 'Select several options',
            items: { type: 'string', enum: ['option1', 'option2', 'option3'] },
          },
          titledMulti: {
            type: 'array',
            description: 'Select several options with titles',
            items: {
              anyOf: [
                { const: 'value1', title: 'First Choice' },
                { const: 'value2', title: 'Second Choice' },
                { const: 'value3', title: 'Third Choice' },
              ],
            },
          },
        },
        required: [],
      });
    },
  );

  registerTool(
    'json_schema_2020_12_tool',
    {
      description: 'Tool whose input schema is a JSON Schema 2020-12 document ($schema, $defs, additionalProperties)',
      inputSchema: z
        .object({
          name: z.string().optional(),
          address: z.object({ street: z.string().optional(), city: z.string().optional() }).optional(),
        })
        .strict(),
    },
    (args) => textResult(`Received: ${JSON.stringify(args)}`),
  );
  rawInputSchemas.set('json_schema_2020_12_tool', JSON_SCHEMA_2020_12_INPUT);

  registerTool(
    'test_reconnection',
    {
      description:
        'Closes its SSE stream before answering (when the transport supports resumption), so the client must reconnect to get the result',
    },
    async (extra) => {
      await sleep(100);
      extra.closeSSEStream?.();
      await sleep(200);
      return textResult('Reconnection test completed');
    },
  );
}

function registerFixtureResources(server: McpServer): void {
  server.registerResource(
    'static-text',
    'test://static-text',
    { description: 'A static text resource', mimeType: 'text/plain' },
    (uri) => ({
      contents: [{ uri: uri.href, mimeType: 'text/plain', text: 'This is the content of the static text resource.' }],
    }),
  );

  server.registerResource(
    'static-binary',
    'test://static-binary',
    { description: 'A static binary resource (PNG image)', mimeType: 'image/png' },
    (uri) => ({ contents: [{ uri: uri.href, mimeType: 'image/png', blob: PNG_BASE64 }] }),
  );

  server.registerResource(
    'template-data',
    new ResourceTemplate('test://template/{id}/data', { list: undefined }),
    { description: 'JSON data for any id', mimeType: 'application/json' },
    (uri, variables) => {
      const id = String(variables.id);
      return {
        contents: [
          {
            uri: uri.href,
            mimeType: 'application/json',
            text: JSON.stringify({ id, templateTest: true, data: `Data for ID: ${id}` }),
          },
        ],
      };
    },
  );

  server.registerResource(
    'watched-resource',
    'test://watched-resource',
    { description: 'A resource that can be subscribed to', mimeType: 'text/plain' },
    (uri) => ({ contents: [{ uri: uri.href, mimeType: 'text/plain', text: 'Watched resource content' }] }),
  );
}

function registerFixturePrompts(server: McpServer): void {
  server.registerPrompt('test_simple_prompt', { description: 'A simple prompt without arguments' }, () => ({
    messages: [{ role: 'user', content: { type: 'text', text: 'This is a simple prompt for testing.' } }],
  }));

  server.registerPrompt(
    'test_prompt_with_arguments',
    {
      description: 'A prompt with two required arguments',
      argsSchema: {
        arg1: completable(z.string().describe('First test argument'), (value) =>
          ['test', 'testing', 'tested', 'value1'].filter((v) => v.startsWith(value)),
        ),
        arg2: z.string().describe('Second test argument'),
      },
    },
    ({ arg1, arg2 }) => ({
      messages: [
        {
          role: 'user',
          content: { type: 'text', text: `Prompt with arguments: arg1='${arg1}', arg2='${arg2}'` },
        },
      ],
    }),
  );

  server.registerPrompt(
    'test_prompt_with_embedded_resource',
    {
      description: 'A prompt that embeds a resource',
      argsSchema: { resourceUri: z.string().describe('URI of the resource to embed') },
    },
    ({ resourceUri }) => ({
      messages: [
        {
          role: 'user',
          content: {
            type: 'resource',
            resource: {
              uri: resourceUri,
              mimeType: 'text/plain',
              text: 'Embedded resource content for testing.',
            },
          },
        },
        { role: 'user', content: { type: 'text', text: 'Please process the embedded resource above.' } },
      ],
    }),
  );

  server.registerPrompt('test_prompt_with_image', { description: 'A prompt that includes an image' }, () => ({
    messages: [
      { role: 'user', content: { type: 'image', data: PNG_BASE64, mimeType: 'image/png' } },
      { role: 'user', content: { type: 'text', text: 'Please analyze the image above.' } },
    ],
  }));
}
