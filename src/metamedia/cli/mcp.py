"""`metamedia mcp`: serve the MCP tools and resources over stdio, for a local MCP client to spawn."""

from __future__ import annotations

from .common import errors_to_exit, settings


def mcp_command() -> None:
    """Serve MCP over stdin/stdout (configure your MCP client to run `metamedia --data-dir DIR mcp`).

    stdout carries the protocol, so nothing else may print there; logs go to stderr.
    """
    # deferred: keeps `metamedia --help` and light commands from loading torch, the engine and the mcp extra
    from ..engine import Engine
    from ..mcp.server import build_server

    with errors_to_exit():
        engine = Engine(settings())
    try:
        build_server(engine).run("stdio")
    finally:
        engine.close()
