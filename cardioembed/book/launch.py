"""Sphinx extension: launch buttons open the source notebook in `notebooks/`, since the
rendered `book/executed/` is git-ignored (the download button still serves it)."""

from __future__ import annotations

import re

EXECUTED_PATH = re.compile(r"(?:\./)?book/executed/(?=[^/?#&]+\.ipynb)")


def source_notebook_url(url: str) -> str:
    return EXECUTED_PATH.sub("notebooks/", url)


def _point_launch_buttons_at_sources(app, pagename, templatename, context, doctree) -> None:
    for group in context.get("header_buttons", []):
        for button in group.get("buttons", []) if group.get("label") == "launch-buttons" else []:
            if "url" in button:
                button["url"] = source_notebook_url(button["url"])


def _no_repository_no_buttons(app, config) -> None:
    # Without `repository.url` they have nothing to open (and sphinx-book-theme fails).
    options = config.html_theme_options
    if not options.get("repository_url"):
        options.pop("launch_buttons", None)
        options["use_repository_button"] = False


def setup(app):
    app.connect("config-inited", _no_repository_no_buttons)
    # sphinx-book-theme adds the launch buttons at priority 501; run after it.
    app.connect("html-page-context", _point_launch_buttons_at_sources, priority=502)
    return {"parallel_read_safe": True, "parallel_write_safe": True}
