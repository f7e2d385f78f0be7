"""Serves an MCPServer over stdio in the 2026-07-28 era only (its stdio runner serves both eras)."""

from mcp.server.mcpserver import MCPServer

# The SDK has no public switch for a modern-only stdio server; its modern stream loop is private.
from mcp.server.runner import _serve_modern_stream  # pyright: ignore[reportPrivateUsage]
from mcp.server.stdio import stdio_server


async def serve_modern_only(app: MCPServer) -> None:
    server = app._lowlevel_server  # pyright: ignore[reportPrivateUsage]
    async with server.lifespan(server) as state:
        async with stdio_server() as (read_stream, write_stream):
            await _serve_modern_stream(server, read_stream, write_stream, lifespan_state=state, raise_exceptions=False)
