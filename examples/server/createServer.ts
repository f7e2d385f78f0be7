import * as z from 'zod';
import { McpServer, type RegisteredTool } from '@modelcontextprotocol/sdk/server/mcp.js';
import {
  ListToolsRequestSchema,
  SubscribeRequestSchema,
  UnsubscribeRequestSchema,
  type Tool,
} from '@modelcontextprotocol/sdk/types.js';
import { registerConformanceFixtures } from './conformanceFixtures.ts';
import { registerDemoFeatures } from './demoFeatures.ts';
import { enableLogging } from './notifications.ts';
import { SERVER_NAME, SERVER_VERSION } from './serverInfo.ts';

export interface ServerOptions {
  /** Also register the fixtures of the @modelcontextprotocol/conformance server scenarios. */
  conformance: boolean;
}

/** One McpServer per connection: stdio has a single one, Streamable HTTP one per session. */
export function createMcpServer(options: ServerOptions): McpServer {
  const server = new McpServer(
    { name: SERVER_NAME, version: SERVER_VERSION },
    {
      capabilities: { logging: {}, resources: { subscribe: true } },
      instructions:
        'Example upstream server for PayGate for MCP. Tools return fake, deterministic data: ' +
        'echo, search_docs, summarize, weather, fail (always errors) and slow (waits).',
    },
  );

  // Tools are also kept here, so that serveToolsList() can list them.
  const tools = new Map<string, RegisteredTool>();
  const rawInputSchemas = new Map<string, Tool['inputSchema']>();
  const registerTool: McpServer['registerTool'] = (name, config, cb) => {
    const tool = server.registerTool(name, config, cb);
    tools.set(name, tool);
    return tool;
  };

  const log = enableLogging(server);

  // Subscriptions are accepted for any URI. The resources here never change, so no
  // notifications/resources/updated is ever sent and nothing needs to be remembered.
  server.server.setRequestHandler(SubscribeRequestSchema, () => ({}));
  server.server.setRequestHandler(UnsubscribeRequestSchema, () => ({}));

  registerDemoFeatures(server, registerTool);
  if (options.conformance) {
    registerConformanceFixtures(server, registerTool, rawInputSchemas, log);
  }

  // Only after the tools: McpServer installs its own tools/list handler on the first registerTool() call.
  serveToolsList(server, tools, rawInputSchemas);

  return server;
}

/**
 * tools/list is served here rather than by McpServer: McpServer converts every input schema
 * from zod (draft-07 output), while json_schema_2020_12_tool must be listed with its
 * JSON Schema 2020-12 document verbatim. Everything else is converted the way McpServer does it.
 */
function serveToolsList(
  server: McpServer,
  tools: ReadonlyMap<string, RegisteredTool>,
  rawInputSchemas: ReadonlyMap<string, Tool['inputSchema']>,
): void {
  server.server.setRequestHandler(ListToolsRequestSchema, () => ({
    tools: Array.from(tools.entries())
      .filter(([, tool]) => tool.enabled)
      .map(([name, tool]): Tool => {
        const definition: Tool = {
          name,
          title: tool.title,
          description: tool.description,
          inputSchema: rawInputSchemas.get(name) ?? toJsonSchema(tool.inputSchema, 'input'),
          annotations: tool.annotations,
          execution: tool.execution,
          _meta: tool._meta,
        };
        if (tool.outputSchema) {
          definition.outputSchema = toJsonSchema(tool.outputSchema, 'output');
        }
        return definition;
      }),
  }));
}

function toJsonSchema(schema: RegisteredTool['inputSchema'], io: 'input' | 'output'): Tool['inputSchema'] {
  if (!schema) return { type: 'object', properties: {} };
  return z.toJSONSchema(schema as z.core.$ZodType, { target: 'draft-7', io }) as Tool['inputSchema'];
}
