"""/verwerkingsregister: the processing register entry (AVG art. 30) and the DPIA's fact sheet, each as PDF
and Markdown, made from the box's own settings at the moment of the download (appliance/register.py) and on
record in the audit log. For the privacy officer."""

from __future__ import annotations

from aiohttp import web

from appliance import register_render, roles

from ..app import BOX, SESSION, client_of, needs, render

routes = web.RouteTableDef()
MEDIA_TYPES = {"pdf": "application/pdf", "md": "text/markdown"}
PATHS = {"register": "/verwerkingsregister", "dpia": "/verwerkingsregister/dpia"}


@routes.get("/verwerkingsregister")
@needs(roles.REGISTER_READ)
async def register_page(request: web.Request) -> web.StreamResponse:
    return render(request, "verwerkingsregister.html", paths=PATHS)


def _download(document: str, fmt: str):
    @needs(roles.REGISTER_READ)
    async def download(request: web.Request) -> web.StreamResponse:
        name, data = register_render.export(request.app[BOX], document, fmt, request[SESSION].name,
                                            client=client_of(request))
        return web.Response(body=data, content_type=MEDIA_TYPES[fmt], charset="utf-8" if fmt == "md" else None,
                            headers={"Content-Disposition": f'attachment; filename="{name}"',
                                     "Cache-Control": "no-store"})
    return download


for _document, _path in PATHS.items():
    for _fmt in MEDIA_TYPES:
        routes.get(f"{_path}.{_fmt}")(_download(_document, _fmt))
