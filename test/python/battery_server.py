"""A stdio MCP server built with the official Python SDK 2.x, for the SDK battery through the gate.

Usage: battery_server.py --era legacy|modern
  legacy: the SDK's own stdio runner, which the gate opens with `initialize` (a 2025-era server).
  modern: the SDK's 2026-07-28 loop from the first message on, refusing `initialize` as a server
          that knows nothing older would.

It offers every feature the battery checks: tools (echo, fail with an isError result, count with
progress, ask_model with sampling, ask_user with elicitation), a resource, a resource template,
a prompt, and completion of the prompt's and the template's arguments. On 2026-07-28 requests,
sampling and elicitation are asked the 2026-07-28 way: an `input_required` result, answered by the
client's retry.
"""

import argparse

import anyio
import mcp_types as types
from mcp.server.mcpserver import Context, MCPServer
from mcp.server.mcpserver.exceptions import ToolError
from mcp_types.version import MODERN_PROTOCOL_VERSIONS
from modern_only import serve_modern_only

app = MCPServer("python-battery", instructions="The Python SDK battery's server.")

COLOURS = ["red", "green", "blue"]
SAMPLING_KEY = "model"
ELICITATION_KEY = "user"


def _asked_the_modern_way(ctx: Context) -> bool:
    return ctx.protocol_version in MODERN_PROTOCOL_VERSIONS


@app.tool()
def echo(text: str = "") -> str:
    """Answers with the text it was given."""
    return text


@app.tool()
def fail(reason: str = "") -> str:
    """Always fails, as a tool result the client sees as an error."""
    raise ToolError(f"failed on purpose: {reason}")


@app.tool()
async def count(steps: int, ctx: Context) -> str:
    """Counts to `steps`, reporting progress at each step."""
    for step in range(1, steps + 1):
        await ctx.report_progress(step, steps, f"step {step}")
    return f"counted to {steps}"


@app.tool()
async def ask_model(question: str, ctx: Context) -> str | types.InputRequiredResult:
    """Asks the client's model (sampling) and answers with what it said."""
    params = types.CreateMessageRequestParams(
        messages=[types.SamplingMessage(role="user", content=types.TextContent(type="text", text=question))],
        max_tokens=20,
    )
    if _asked_the_modern_way(ctx):
        answer = (ctx.input_responses or {}).get(SAMPLING_KEY)
        if not isinstance(answer, types.CreateMessageResult):
            return types.InputRequiredResult(input_requests={SAMPLING_KEY: types.CreateMessageRequest(params=params)})
    else:
        answer = await ctx.session.create_message(params.messages, max_tokens=params.max_tokens, related_request_id=ctx.request_id)
    content = answer.content
    return f"the model said: {content.text if isinstance(content, types.TextContent) else content}"


@app.tool()
async def ask_user(ctx: Context) -> str | types.InputRequiredResult:
    """Asks the user for a colour (elicitation) and answers with it."""
    message = "Pick a colour"
    schema: types.ElicitRequestedSchema = {"type": "object", "properties": {"colour": {"type": "string"}}, "required": ["colour"]}
    if _asked_the_modern_way(ctx):
        answer = (ctx.input_responses or {}).get(ELICITATION_KEY)
        if not isinstance(answer, types.ElicitResult):
            request = types.ElicitRequest(params=types.ElicitRequestFormParams(message=message, requested_schema=schema))
            return types.InputRequiredResult(input_requests={ELICITATION_KEY: request})
    else:
        answer = await ctx.session.elicit_form(message, schema, related_request_id=ctx.request_id)
    return f"the user {answer.action}ed: {(answer.content or {}).get('colour')}"


@app.resource("test://battery/readme")
def readme() -> str:
    """A plain resource."""
    return "battery readme"


@app.resource("test://battery/colours/{colour}")
def colour_resource(colour: str) -> str:
    """A resource template: one resource per colour."""
    return f"the colour {colour}"


@app.prompt()
def greet(name: str) -> str:
    """A prompt with an argument the server completes."""
    return f"Say hello to {name}"


@app.completion()
async def complete(ref: types.PromptReference | types.ResourceTemplateReference, argument: types.CompletionArgument, _context: object) -> types.Completion:
    values = ["alice", "albert", "bob"] if argument.name == "name" else COLOURS
    return types.Completion(values=[value for value in values if value.startswith(argument.value)])


async def serve_modern() -> None:
    await serve_modern_only(app)


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("--era", choices=["legacy", "modern"], required=True)
    if parser.parse_args().era == "modern":
        anyio.run(serve_modern)
    else:
        app.run("stdio")
