"""The official MCP Python SDK 2.x client's battery through the gate.

Usage: battery.py URL API_KEY MODE
MODE is the SDK's connect mode: "legacy" (pinned to 2025-11-25 by initialize), "2026-07-28" (pinned)
or "auto" (server/discover, else initialize).

Runs each check of CHECKS in turn on one connection, with the client's sampling and elicitation
callbacks answering whatever the server asks (the 2025 way, as server-to-client requests, or the
2026-07-28 way, inside an `input_required` result). For each check it records what the client saw
(or the error the SDK raised) and how many credits the key lost during it (GET /balance), and prints
one JSON object: {"protocolVersion": ..., "checks": {name: {...}}}. A failing check does not stop the
others; the caller asserts on each.
"""

import asyncio
import json
import sys
from collections.abc import Awaitable, Callable
from typing import Any

import anyio
import httpx2
import mcp_types as types
from mcp.client.client import Client
from mcp.client.session import ClientRequestContext
from mcp.client.streamable_http import streamable_http_client

CHECK_TIMEOUT_SECONDS = 15
MODEL_ANSWER = "a blue sky"
USER_COLOUR = "green"

Seen = dict[str, Any]


class Callbacks:
    """The client's answers to what the server asks, and a record of what it asked."""

    def __init__(self) -> None:
        self.sampled: list[str] = []
        self.elicited: list[str] = []

    async def sampling(self, _context: ClientRequestContext, params: types.CreateMessageRequestParams) -> types.CreateMessageResult:
        content = params.messages[0].content
        self.sampled.append(content.text if isinstance(content, types.TextContent) else repr(content))
        return types.CreateMessageResult(role="assistant", content=types.TextContent(type="text", text=MODEL_ANSWER), model="battery-model")

    async def elicitation(self, _context: ClientRequestContext, params: types.ElicitRequestParams) -> types.ElicitResult:
        self.elicited.append(params.message)
        return types.ElicitResult(action="accept", content={"colour": USER_COLOUR})


def texts(blocks: list[Any]) -> list[str]:
    return [block.text for block in blocks if isinstance(block, types.TextContent)]


def called(result: types.CallToolResult) -> Seen:
    return {"text": texts(result.content), "isError": result.is_error}


async def list_tools(client: Client, _callbacks: Callbacks) -> Seen:
    listed = await client.list_tools()
    return {"prices": {tool.name: ((tool.meta or {}).get("paygate/pricing") or {}).get("creditsPerCall") for tool in listed.tools}}


async def call_tool(client: Client, _callbacks: Callbacks) -> Seen:
    return called(await client.call_tool("echo", {"text": "hello battery"}))


async def call_failing_tool(client: Client, _callbacks: Callbacks) -> Seen:
    return called(await client.call_tool("fail", {"reason": "battery"}))


async def resources(client: Client, _callbacks: Callbacks) -> Seen:
    listed = await client.list_resources()
    read = await client.read_resource("test://battery/readme")
    return {"uris": [str(resource.uri) for resource in listed.resources], "read": [c.text for c in read.contents if isinstance(c, types.TextResourceContents)]}


async def resource_templates(client: Client, _callbacks: Callbacks) -> Seen:
    listed = await client.list_resource_templates()
    read = await client.read_resource("test://battery/colours/red")
    return {"templates": [t.uri_template for t in listed.resource_templates], "read": [c.text for c in read.contents if isinstance(c, types.TextResourceContents)]}


async def prompts(client: Client, _callbacks: Callbacks) -> Seen:
    listed = await client.list_prompts()
    got = await client.get_prompt("greet", {"name": "alice"})
    return {"names": [prompt.name for prompt in listed.prompts], "messages": texts([message.content for message in got.messages])}


async def completion(client: Client, _callbacks: Callbacks) -> Seen:
    prompt = await client.complete(types.PromptReference(type="ref/prompt", name="greet"), {"name": "name", "value": "al"})
    template = await client.complete(types.ResourceTemplateReference(type="ref/resource", uri="test://battery/colours/{colour}"), {"name": "colour", "value": "g"})
    return {"prompt": prompt.completion.values, "template": template.completion.values}


async def progress(client: Client, _callbacks: Callbacks) -> Seen:
    reports: list[list[Any]] = []

    async def on_progress(value: float, total: float | None, message: str | None) -> None:
        reports.append([value, total, message])

    return {**called(await client.call_tool("count", {"steps": 3}, progress_callback=on_progress)), "progress": reports}


async def sampling(client: Client, callbacks: Callbacks) -> Seen:
    result = await client.call_tool("ask_model", {"question": "what colour is the sky?"})
    return {**called(result), "asked": callbacks.sampled}


async def elicitation(client: Client, callbacks: Callbacks) -> Seen:
    result = await client.call_tool("ask_user", {})
    return {**called(result), "asked": callbacks.elicited}


CHECKS: dict[str, Callable[[Client, Callbacks], Awaitable[Seen]]] = {
    "tools/list": list_tools,
    "tools/call": call_tool,
    "tools/call isError": call_failing_tool,
    "resources": resources,
    "resource templates": resource_templates,
    "prompts": prompts,
    "completion": completion,
    "progress": progress,
    "sampling": sampling,
    "elicitation": elicitation,
}


def describe(error: BaseException) -> str:
    """An error as a reader needs it: the leaves of an exception group, with their types."""
    inner = getattr(error, "exceptions", None)  # an exception group (a builtin from Python 3.11 on)
    if isinstance(inner, tuple):
        return "; ".join(describe(exception) for exception in inner)
    return f"{type(error).__name__}: {error}"


async def main(url: str, key: str, mode: str) -> None:
    base = url.rsplit("/mcp", 1)[0]
    callbacks = Callbacks()
    report: Seen = {"checks": {}}
    async with httpx2.AsyncClient(headers={"x-api-key": key}) as http:

        async def balance() -> int:
            reply = await http.get(f"{base}/balance")
            return int(reply.json()["credits"])

        client = Client(
            streamable_http_client(url, http_client=http),
            mode=mode,
            sampling_callback=callbacks.sampling,
            elicitation_callback=callbacks.elicitation,
            cache=None,
        )
        async with client:
            report["protocolVersion"] = client.protocol_version
            for name, check in CHECKS.items():
                before = await balance()
                try:
                    with anyio.fail_after(CHECK_TIMEOUT_SECONDS):
                        seen = await check(client, callbacks)
                except Exception as error:  # a check's failure is its result; the next check still runs
                    seen = {"error": describe(error)}
                seen["charged"] = before - await balance()
                report["checks"][name] = seen
    print(json.dumps(report))


if __name__ == "__main__":
    asyncio.run(main(*sys.argv[1:4]))
