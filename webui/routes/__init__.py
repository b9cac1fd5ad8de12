"""One module per page group; each exports `routes`, a web.RouteTableDef."""

from . import account, auth, cameras, instellingen, logboek, opnames, overview, statistieken, users

ROUTE_TABLES = [m.routes for m in (auth, account, overview, opnames, cameras, users, logboek, statistieken, instellingen)]

from . import verzoeken  # noqa: E402  requests of people who were filmed (issue 8)

ROUTE_TABLES.append(verzoeken.routes)

from . import redactie  # noqa: E402  redacted derivatives and their jobs (issue 8)

ROUTE_TABLES.append(redactie.routes)

from . import overdracht  # noqa: E402  handovers to police and prosecutor (issue 7)

ROUTE_TABLES.append(overdracht.routes)

from . import onderhoud  # noqa: E402  backups and signed updates, the keeper (issue 9)

ROUTE_TABLES.append(onderhoud.routes)
