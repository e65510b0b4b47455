"""Run the API process on `api.http_server.ApiRunner` (aiohttp's server with the API's limits)."""
from __future__ import annotations

import asyncio
import contextlib

from aiohttp import web

from service.config import Settings

ACCESS_LOG_FORMAT = '%a "%r" %s %b %Tf'


def serve_api(settings: Settings, host: str, port: int) -> None:
    """Serve until SIGINT or SIGTERM, then shut down gracefully (what `web.run_app` does, on our runner)."""
    from api.access_log import ApiAccessLogger
    from api.app import create_app
    from api.http_server import SERVER_OPTIONS, ApiRunner

    loop = asyncio.new_event_loop()
    asyncio.set_event_loop(loop)
    runner = ApiRunner(create_app(settings), handle_signals=True, access_log_format=ACCESS_LOG_FORMAT,
                       access_log_class=ApiAccessLogger, **SERVER_OPTIONS)
    try:
        loop.run_until_complete(runner.setup())
        loop.run_until_complete(web.TCPSite(runner, host, port).start())
        loop.run_forever()
    except (web.GracefulExit, KeyboardInterrupt):
        pass
    finally:
        with contextlib.suppress(web.GracefulExit, KeyboardInterrupt):
            loop.run_until_complete(runner.cleanup())
        pending = asyncio.all_tasks(loop)
        for task in pending:
            task.cancel()
        loop.run_until_complete(asyncio.gather(*pending, return_exceptions=True))
        loop.run_until_complete(loop.shutdown_asyncgens())
        asyncio.set_event_loop(None)
        loop.close()
