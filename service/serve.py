"""Run the API process."""
from __future__ import annotations

from aiohttp import web

from service.config import Settings


def serve_api(settings: Settings, host: str, port: int) -> None:
    from api.app import create_app

    web.run_app(create_app(settings), host=host, port=port, access_log_format='%a "%r" %s %b %Tf',
                print=lambda text: None)
