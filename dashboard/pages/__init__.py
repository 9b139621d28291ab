"""The dashboard's HTML pages: server-rendered Jinja2 templates with a little JavaScript, plotly
figures built in Python (dashboard/figures/) and drawn by the plotly.js of the installed plotly
package, served from here: nothing is fetched from the internet (map tiles only if configured).

    /login, /logout, /            the session, and each role's home page
    /overview, /overview/live     flood risk: map and table by risk (highways, admin)
    /gullies/{device_id}          one gully's level chart, CSV export, cleanse priority
    /inbox, /inbox/live           open alerts and the people's actions; time to acknowledge
    /care, /care/flats/{group}    care flats: activity heatmaps and timeline (care, admin)
    /network[/gateways/{id}]      device health by gateway; /network/dead-letters (admin)
"""

from __future__ import annotations

from pathlib import Path

import plotly
from fastapi import FastAPI
from fastapi.responses import FileResponse
from fastapi.staticfiles import StaticFiles

from dashboard.pages import care, gullies, inbox, network, overview, session, web

STATIC = Path(__file__).resolve().parent.parent / "static"
PLOTLY_JS = Path(plotly.__file__).resolve().parent / "package_data" / "plotly.min.js"
_CACHE = {"Cache-Control": "public, max-age=86400"}


def install(app: FastAPI) -> None:
    """Mount the pages, their static files and plotly.js on the app."""
    app.add_exception_handler(web.LoginRequired, web.login_required)
    app.add_exception_handler(web.PageError, web.page_error)

    @app.get("/static/plotly.min.js", include_in_schema=False)
    def plotly_js() -> FileResponse:
        return FileResponse(PLOTLY_JS, media_type="text/javascript", headers=_CACHE)

    app.mount("/static", StaticFiles(directory=STATIC), name="static")
    for module in (session, overview, gullies, inbox, care, network):
        app.include_router(module.router)
