"""Calls a Multi Round-Trip tool through the gate with the official MCP Python SDK 2.x client, as a
user of it would: pinned to 2026-07-28, with an elicitation callback that answers NAME.

Usage: mrtr_client.py URL API_KEY TOOL TEXT NAME
The SDK retries the call with the answer and the echoed requestState by itself. Prints, as one JSON
object, what the tool answered and how many times the callback was asked. Any error the SDK raises
fails the script.
"""

import asyncio
import json
import sys

import httpx2
from mcp.client.client import Client
from mcp.client.streamable_http import streamable_http_client
from mcp_types import ElicitResult


async def main(url: str, key: str, tool: str, text: str, name: str) -> None:
    asked: list[str] = []

    async def elicit(_context, params) -> ElicitResult:  # type: ignore[no-untyped-def]
        asked.append(params.message)
        return ElicitResult(action="accept", content={"name": name})

    async with httpx2.AsyncClient(headers={"x-api-key": key}) as http:
        async with Client(streamable_http_client(url, http_client=http), mode="2026-07-28", elicitation_callback=elicit) as client:
            called = await client.call_tool(tool, {"text": text})
            print(
                json.dumps(
                    {
                        "protocolVersion": client.protocol_version,
                        "call": [c.text for c in called.content if getattr(c, "type", None) == "text"],
                        "isError": called.is_error,
                        "asked": asked,
                    }
                )
            )


if __name__ == "__main__":
    asyncio.run(main(*sys.argv[1:6]))
