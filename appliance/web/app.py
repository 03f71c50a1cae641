"""The Tornado application: every route of the web app on top of the service."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any, Protocol

from tornado.web import Application, HTTPError, StaticFileHandler

from appliance.auth import TokenStore, load_or_make_secret
from appliance.recordings.store import RecordingStore
from appliance.runs.scripts_store import ScriptStore
from appliance.web.access import LoginLimiter, browser_user
from appliance.web.accesslog import log_request
from appliance.web.api_socket import ApiSocket
from appliance.web.base import NotFoundPage
from appliance.web.browser_sessions import BrowserSessions
from appliance.web.handler_files import HandlerFileHandler, HandlerFileListApi
from appliance.web.headers import SECURITY_HEADERS
from appliance.web.help_pages import ApiNamesApi, HelpImage, HelpPage
from appliance.web.limits import UPLOAD, BodyLimit, add_route_limit
from appliance.web.packages_api import PackagesApi, PackagesPage
from appliance.web.pages import LoginPage, LogoutHandler, MainPage, SettingsPage, SetupPage
from appliance.web.projects_api import (
    ProjectActionApi,
    ProjectApi,
    ProjectFileApi,
    ProjectFileListApi,
    ProjectListApi,
    ProjectZipApi,
)
from appliance.web.recordings_api import RecordingActionApi, RecordingApi, RecordingListApi
from appliance.web.runs_api import RunApi, RunConsoleApi, RunFileApi, RunListApi, RunSourceApi
from appliance.web.scripts_api import (
    ExampleApi,
    ExampleListApi,
    ScriptApi,
    ScriptListApi,
    ScriptRenameApi,
)
from appliance.web.stream_api import StandingStreamsPage, StreamSdpApi
from appliance.web.tokens_api import TokenApi, TokenListApi
from appliance.workspace.projects import ProjectStore, load_quota, migrate_flat_scripts
from browserinterface.protocol import WS_PATH

log = logging.getLogger(__name__)

PROJECT_FILES = r"/api/v1/projects/([^/]+)/files/"
"""The route of one project file (uploads stream to disk, up to the file quota)."""

HERE = Path(__file__).resolve().parent
WS_MAX_MESSAGE_BYTES = 8 << 20
"""Largest WebSocket message the server takes (8 MiB)."""
PUBLIC_STATIC = frozenset({"pages.css", "favicon.svg"})
"""Static files the login and first-run pages need; everything else needs a session."""


class ServiceLike(Protocol):
    """What the app needs from ``appliance.service.Service``."""

    data_dir: Path
    tokens: TokenStore


class SessionStaticHandler(StaticFileHandler):
    """Static files; only the login page's own assets are served without a session."""

    def set_default_headers(self) -> None:
        # Static files and their 403/404 answers carry the same headers as pages.
        for name, value in SECURITY_HEADERS.items():
            self.set_header(name, value)

    async def get(self, path: str, include_body: bool = True) -> None:
        """Serve ``path`` when public or when the request carries a session."""
        if path not in PUBLIC_STATIC and browser_user(self) is None:
            raise HTTPError(403, reason="sign in first")
        await super().get(path, include_body)


def make_app(service: ServiceLike, *, debug: bool = False, **extra: Any) -> Application:
    """Build the application: pages, HTTP APIs, the WebSocket, static files."""
    data_dir = Path(service.data_dir)
    # Project files stream to disk: the front door lets a body through up to the file
    # quota, and the projects API refuses beyond it in its own words.
    add_route_limit("^" + PROJECT_FILES, BodyLimit(load_quota(data_dir).file_bytes, UPLOAD.timeout_s))
    routes: list[Any] = [
        (r"/", MainPage),
        (r"/setup", SetupPage),
        (r"/login", LoginPage),
        (r"/logout", LogoutHandler),
        (r"/settings", SettingsPage),
        (r"/settings/streams", StandingStreamsPage),
        (r"/settings/(token|revoke|password|end-session)", SettingsPage),
        (r"/help/?", HelpPage),
        (r"/help/([a-z0-9_-]+)\.png", HelpImage),
        (r"/help/([a-z_-]+)", HelpPage),
        (r"/api/v1/help/names", ApiNamesApi),
        (r"/settings/packages", PackagesPage),
        (r"/api/v1/packages", PackagesApi),
        (r"/api/v1/scripts", ScriptListApi),
        (r"/api/v1/scripts/([^/]+)/rename", ScriptRenameApi),
        (r"/api/v1/scripts/([^/]+)", ScriptApi),
        (r"/api/v1/examples", ExampleListApi),
        (r"/api/v1/examples/([^/]+)", ExampleApi),
        (r"/api/v1/projects", ProjectListApi),
        (r"/api/v1/projects/([^/]+)", ProjectApi),
        (r"/api/v1/projects/([^/]+)/files", ProjectFileListApi),
        (PROJECT_FILES + r"(.+)", ProjectFileApi),
        (r"/api/v1/projects/([^/]+)/zip", ProjectZipApi),
        (r"/api/v1/projects/([^/]+)/(check|rename|mkdir)", ProjectActionApi),
        (r"/api/v1/runs", RunListApi),
        (r"/api/v1/runs/([0-9a-f]{12})", RunApi),
        (r"/api/v1/runs/([0-9a-f]{12})/console.log", RunConsoleApi),
        (r"/api/v1/runs/([0-9a-f]{12})/files/(.+)", RunFileApi),
        (r"/api/v1/tokens", TokenListApi),
        (r"/api/v1/tokens/([^/]+)", TokenApi),
        (r"/api/v1/runs/([0-9a-f]{1,32})/source", RunSourceApi),
        (r"/api/v1/recordings", RecordingListApi),
        (r"/api/v1/recordings/([^/]+)/(stop|rename)", RecordingActionApi),
        (r"/api/v1/recordings/([^/]+)", RecordingApi),
        (r"/api/v1/handler-files", HandlerFileListApi),
        (r"/handlers/([^/]+)", HandlerFileHandler),
        (r"/api/v1/stream\.sdp", StreamSdpApi, {"service": service}),
        (WS_PATH, ApiSocket, {"service": service}),
    ]
    projects = ProjectStore(data_dir, load_quota(data_dir))
    migrate_flat_scripts(data_dir, projects)
    browser_sessions = BrowserSessions(data_dir)
    # An ended browser session (sign-out, Settings, a new password, expiry) closes
    # its open WebSockets at once, a copied cookie's too: the one registry of live
    # connections by credential (ApiSocket registers ``browser:SESSION``).
    browser_sessions.add_end_listener(service.tokens.end_browser_session)
    settings: dict[str, Any] = {
        "cookie_secret": load_or_make_secret(data_dir),
        "xsrf_cookies": True,
        "xsrf_cookie_kwargs": {"samesite": "Strict", "path": "/"},
        "login_url": "/login",
        "default_handler_class": NotFoundPage,
        "template_path": str(HERE / "templates"),
        "static_path": str(HERE / "static"),
        "static_handler_class": SessionStaticHandler,
        "websocket_max_message_size": WS_MAX_MESSAGE_BYTES,
        # Pings find clients that vanished without closing (Wi-Fi dropped, laptop asleep).
        "websocket_ping_interval": 10,
        "websocket_ping_timeout": 10,
        # The front end bundle is about 1 MB; gzip makes the first load on Wi-Fi three times faster.
        "compress_response": True,
        "debug": debug,
        "log_function": log_request,
        "service": service,
        "data_dir": str(data_dir),
        "tokens": service.tokens,
        "scripts": ScriptStore(data_dir),
        "projects": projects,
        "recordings": RecordingStore(data_dir),
        "login_limiter": LoginLimiter(),
        "browser_sessions": browser_sessions,
    }
    settings.update(extra)
    return Application(routes, **settings)
