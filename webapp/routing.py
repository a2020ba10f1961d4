"""Websocket routes of every app, gathered in one place."""

websocket_urlpatterns: list = []

try:
    from webapp.runs.routing import websocket_urlpatterns as _runs
except ImportError:  # the runs app adds its consumers later
    _runs = []
websocket_urlpatterns += _runs
