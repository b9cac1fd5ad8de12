"""One module per page group; each exports `routes`, a web.RouteTableDef. webui/site.py lists them."""
