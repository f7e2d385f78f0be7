"""A stdio MCP server built with the official Python SDK 2.x that speaks only 2026-07-28 and has a
Multi Round-Trip tool.

greet(text): asks the client for a name by elicitation (a resolver returning `Elicit`, which the SDK
turns into `input_required` with its own sealed `requestState`), then answers "<text> <name>".
Served like modern_server.py: the SDK's 2026-07-28 loop from the first message on.
"""

from typing import Annotated

import anyio
from pydantic import BaseModel

from mcp.server.mcpserver import Elicit, MCPServer, Resolve
from modern_only import serve_modern_only

app = MCPServer("python-mrtr", instructions="A Python SDK server with a Multi Round-Trip tool.")


class Name(BaseModel):
    name: str


def ask_name() -> Elicit[Name]:
    return Elicit("Who are you?", Name)


@app.tool()
def greet(who: Annotated[Name, Resolve(ask_name)], text: str = "hello") -> str:
    """Greets whoever the client says it is."""
    return f"{text} {who.name}"


async def main() -> None:
    await serve_modern_only(app)


if __name__ == "__main__":
    anyio.run(main)
