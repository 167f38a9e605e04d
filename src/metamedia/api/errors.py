"""Map errors to JSON bodies {"error": ..., "detail": ...} with the right status code, once."""

from __future__ import annotations

import logging

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from ..errors import MetamediaError, public_detail, without_paths

log = logging.getLogger("metamedia.api")


def _jsonable_errors(exc: RequestValidationError) -> list[dict[str, object]]:
    out = []
    for err in exc.errors():
        out.append(
            {
                "loc": [str(p) for p in err.get("loc", ())],
                "msg": str(err.get("msg", "")),
                "type": err.get("type", ""),
            }
        )
    return out


def install_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(MetamediaError)
    async def _metamedia(_req: Request, exc: MetamediaError) -> JSONResponse:
        body = {"error": without_paths(exc.message), "detail": public_detail(exc.detail)}
        return JSONResponse(body, status_code=exc.status_code)

    @app.exception_handler(RequestValidationError)
    async def _validation(_req: Request, exc: RequestValidationError) -> JSONResponse:
        errors = _jsonable_errors(exc)
        first = errors[0] if errors else {"loc": [], "msg": "invalid request"}
        where = ".".join(str(p) for p in first["loc"] if p not in ("query", "body", "path"))  # type: ignore[attr-defined]
        return JSONResponse(
            {"error": f"invalid {where or 'request'}: {first['msg']}", "detail": errors}, status_code=422
        )

    @app.exception_handler(StarletteHTTPException)
    async def _http(_req: Request, exc: StarletteHTTPException) -> JSONResponse:
        return JSONResponse(
            {"error": without_paths(str(exc.detail)), "detail": None},
            status_code=exc.status_code,
            headers=exc.headers,
        )

    @app.exception_handler(Exception)
    async def _unexpected(req: Request, exc: Exception) -> JSONResponse:
        log.exception("unhandled error on %s %s", req.method, req.url.path)
        return JSONResponse({"error": "internal server error", "detail": None}, status_code=500)
