"""A stdio MCP server built with the official Python SDK 2.x that speaks only 2026-07-28.

The SDK's own stdio runner serves both eras (the client's first request decides); this one serves
the SDK's 2026-07-28 loop from the first message on, so `initialize` is refused as a server that
knows nothing older would refuse it. Tools: echo. Resources: test://python.
"""

import anyio
from mcp.server.mcpserver import MCPServer
from modern_only import serve_modern_only

app = MCPServer("python-modern", instructions="A Python SDK server of the 2026-07-28 era.")


@app.tool()
def echo(text: str = "") -> str:
    """Answers with the text it was given."""
    return text


@app.resource("test://python")
def python_resource() -> str:
    """A resource of this server."""
    return "python contents"


async def main() -> None:
    await serve_modern_only(app)


if __name__ == "__main__":
    anyio.run(main)
