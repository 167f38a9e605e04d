"""MCP server over the engine: tools, resources, stdio and streamable HTTP transports."""

from .server import ITEM_URI, PROFILE_URI, build_server, write_tool_names

__all__ = ["ITEM_URI", "PROFILE_URI", "build_server", "write_tool_names"]
