import { setTimeout as sleep } from 'node:timers/promises';
import * as z from 'zod';
import { completable } from '@modelcontextprotocol/sdk/server/completable.js';
import type { McpServer } from '@modelcontextprotocol/sdk/server/mcp.js';
import { forecast, PRICING_GUIDE, searchDocs, summarize } from './demoData.ts';
import { sendProgress } from './notifications.ts';
import { errorResult, textResult } from './toolResults.ts';

const MAX_SLOW_MS = 60_000;
const SUMMARY_STYLES = ['one-sentence', 'bullet-points', 'executive-summary'];

/** The demo surface of the example server: its tools, the pricing guide resource and the summarize prompt. */
export function registerDemoFeatures(server: McpServer, registerTool: McpServer['registerTool']): void {
  registerDemoTools(registerTool);
  registerPricingGuide(server);
  registerSummarizePrompt(server);
}

function registerDemoTools(registerTool: McpServer['registerTool']): void {
  registerTool(
    'echo',
    {
      title: 'Echo',
      description: 'Returns the given text unchanged. Useful to check that a connection and an API key work.',
      inputSchema: { text: z.string().describe('Text to send back') },
      annotations: { readOnlyHint: true, openWorldHint: false },
    },
    ({ text }) => textResult(text),
  );

  registerTool(
    'search_docs',
    {
      title: 'Search documentation',
      description:
        'Searches the (fake) PayGate documentation and returns the best matching pages with a short snippet each.',
      inputSchema: {
        query: z.string().min(1).describe('Search terms, e.g. "rotate api key"'),
        limit: z.number().int().min(1).max(10).optional().describe('Maximum number of hits (1-10, default 3)'),
      },
      outputSchema: {
        query: z.string(),
        total: z.number().describe('Number of matching pages before the limit'),
        results: z.array(
          z.object({
            id: z.string(),
            title: z.string(),
            url: z.string(),
            snippet: z.string(),
            score: z.number(),
          }),
        ),
      },
      annotations: { readOnlyHint: true, openWorldHint: false },
    },
    ({ query, limit }) => {
      const found = searchDocs(query, limit ?? 3);
      const lines =
        found.results.length === 0
          ? [`No pages match "${query}".`]
          : [
              `${found.total} page(s) match "${query}"; showing ${found.results.length}:`,
              ...found.results.map((r, i) => `${i + 1}. ${r.title} (${r.url})\n   ${r.snippet}`),
            ];
      return {
        content: [{ type: 'text', text: lines.join('\n') }],
        structuredContent: { query, ...found },
      };
    },
  );

  registerTool(
    'summarize',
    {
      title: 'Summarize text',
      description: 'Returns a short extractive summary of a text: its first sentence plus word and sentence counts.',
      inputSchema: { text: z.string().describe('Text to summarize') },
      annotations: { readOnlyHint: true, openWorldHint: false },
    },
    ({ text }) => textResult(summarize(text)),
  );

  registerTool(
    'weather',
    {
      title: 'Weather forecast',
      description: 'Returns a 3-day weather forecast for a city. Demo data: deterministic and not real.',
      inputSchema: { city: z.string().min(1).describe('City name, e.g. "Lisbon"') },
      annotations: { readOnlyHint: true, openWorldHint: false },
    },
    ({ city }) => {
      const result = forecast(city);
      const lines = result.days.map(
        (d) =>
          `${d.day}: ${d.condition}, low ${d.lowC} °C, high ${d.highC} °C, ${d.precipitationChance}% chance of precipitation, wind ${d.windKph} km/h`,
      );
      return {
        content: [{ type: 'text', text: `Forecast for ${result.city} (demo data):\n${lines.join('\n')}` }],
        structuredContent: result,
      };
    },
  );

  registerTool(
    'fail',
    {
      title: 'Always fail',
      description:
        'Always returns a tool error (isError: true). Use it to see how failed calls are reported and billed.',
      annotations: { readOnlyHint: true, openWorldHint: false },
    },
    () => errorResult('The fail tool failed on purpose: this is a simulated error for testing.'),
  );

  registerTool(
    'slow',
    {
      title: 'Slow operation',
      description: `Waits the given number of milliseconds (at most ${MAX_SLOW_MS}), then echoes the text. Sends progress notifications when the caller asks for them, and stops early when the call is cancelled.`,
      inputSchema: {
        ms: z.number().int().min(0).describe(`How long to wait, in milliseconds (capped at ${MAX_SLOW_MS})`),
        text: z.string().optional().describe('Text to return after the wait'),
      },
      annotations: { readOnlyHint: true, openWorldHint: false },
    },
    async ({ ms, text }, extra) => {
      const total = Math.min(ms, MAX_SLOW_MS);
      const step = 1000;
      let waited = 0;
      await sendProgress(extra, 0, total);
      while (waited < total) {
        const chunk = Math.min(step, total - waited);
        try {
          await sleep(chunk, undefined, { signal: extra.signal });
        } catch {
          return errorResult(`Cancelled after ${waited} ms.`);
        }
        waited += chunk;
        await sendProgress(extra, waited, total);
      }
      return textResult(text === undefined ? `Waited ${total} ms.` : text);
    },
  );
}

function registerPricingGuide(server: McpServer): void {
  server.registerResource(
    'pricing-guide',
    'example://pricing-guide',
    {
      title: 'Pricing guide',
      description: 'Suggested prices for the tools of this example server (Markdown).',
      mimeType: 'text/markdown',
    },
    (uri) => ({ contents: [{ uri: uri.href, mimeType: 'text/markdown', text: PRICING_GUIDE }] }),
  );
}

function registerSummarizePrompt(server: McpServer): void {
  server.registerPrompt(
    'summarize_text',
    {
      title: 'Summarize text',
      description: 'Asks the model to summarize a text, optionally in a given style.',
      argsSchema: {
        text: z.string().describe('The text to summarize'),
        style: optionalCompletable(`Summary style: ${SUMMARY_STYLES.join(', ')}`, SUMMARY_STYLES),
      },
    },
    ({ text, style }) => ({
      description: 'Summarize a text',
      messages: [
        {
          role: 'user',
          content: {
            type: 'text',
            text: `Please summarize the following text${style ? ` (style: ${style})` : ' in one or two sentences'}:\n\n${text}`,
          },
        },
      ],
    }),
  );
}

/**
 * An optional prompt argument with completions. McpServer (SDK 1.32.2) looks for the completer on the
 * unwrapped schema when it decides whether to advertise `completions`, but on the argument's own schema
 * when it answers completion/complete, so both carry it.
 */
function optionalCompletable(description: string, values: readonly string[]) {
  const complete = (value: string | undefined): string[] => values.filter((v) => v.startsWith(value ?? ''));
  return completable(completable(z.string(), complete).optional().describe(description), complete);
}
