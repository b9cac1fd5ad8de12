"""The redaction pages run on the web UI's test set-up: its box, HTTPS client, recordings and browser page.
Imported here, once, so that the test modules name them as fixture arguments only."""

from tests.webui.conftest import box_template, rec_ids, template_copy, web, web_box  # noqa: F401  (fixtures)
from tests.webui.test_browser import browser_page  # noqa: F401  (the fixture; its screenshots go to SHOTS)
