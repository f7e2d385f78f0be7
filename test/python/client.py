"""Drives the gate with the official MCP Python SDK 2.x client, as a user of it would.

Usage: client.py URL API_KEY MODE TOOL [TEXT]
MODE is the SDK's connect mode: "2026-07-28" (pinned), "auto" (server/discover, else initialize) or "legacy".
Lists the tools, calls TOOL with {"text": TEXT}, lists and reads the resources, and prints what it
saw as one JSON object. Any error the SDK raises (a result it rejects, an HTTP error) fails the script.
"""

import asyncio
import json
import sys

import httpx2
from mcp.client.client import Client
from mcp.client.streamable_http import streamable_http_client


async def main(url: str, key: str, mode: str, tool: str, text: str) -> None:
    async with httpx2.AsyncClient(headers={"x-api-key": key}) as http:
        async with Client(streamable_http_client(url, http_client=http), mode=mode) as client:
            tools = await client.list_tools()
            called = await client.call_tool(tool, {"text": text})
            resources = await client.list_resources()
            contents = [await client.read_resource(resource.uri) for resource in resources.resources]
            print(
                json.dumps(
                    {
                        "protocolVersion": client.protocol_version,
                        "tools": [t.name for t in tools.tools],
                        "call": [c.text for c in called.content if getattr(c, "type", None) == "text"],
                        "isError": called.is_error,
                        "read": [c.text for r in contents for c in r.contents if hasattr(c, "text")],
                    }
                )
            )


if __name__ == "__main__":
    asyncio.run(main(*sys.argv[1:5], sys.argv[5] if len(sys.argv) > 5 else "hello"))
