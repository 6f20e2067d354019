"""Watch a run from a browser: the overlay as MJPEG, the class legend, live statistics
(Server-Sent Events) and controls that change the running pipeline.

``fcn-edge run SRC -o http://0.0.0.0:8080/ --view-token T`` serves the page as the run's
output; ``--view :8080`` serves it beside any other output. In Python::

    from fcn_edge.video.web import ViewConfig, ViewServer, attach_pipeline, parse_view_address

    with ViewServer(ViewConfig(parse_view_address(":8080"))) as page:
        attach_pipeline(page, pipeline)          # a VideoPipeline, before it runs
        print(page.url)
        pipeline.run()

Only the standard library's HTTP server, OpenCV's JPEG encoder and the page's own three
files (package data: no CDN, no build step).
"""

from typing import Mapping

from fcn_edge.video.web.config import (
    TOKEN_ENV, ViewAddress, ViewConfig, page_config, parse_view_address, token_from_environment,
)
from fcn_edge.video.web.server import ViewServer
from fcn_edge.video.web.streams import ViewStream, attach_pipeline, pipeline_stats


def open_page(config: ViewConfig, pipelines: Mapping[str, object], title: str = "fcn-edge") -> ViewServer:
    """A started page showing each of ``pipelines`` (VideoPipelines, not yet running) as the
    stream of its name, in order."""
    server = ViewServer(config, title)
    try:
        for name, pipeline in pipelines.items():
            attach_pipeline(server, pipeline, name)
        return server.start()
    except BaseException:
        server.close()
        raise


__all__ = [
    "TOKEN_ENV", "ViewAddress", "ViewConfig", "ViewServer", "ViewStream", "attach_pipeline", "open_page",
    "page_config", "parse_view_address", "pipeline_stats", "token_from_environment",
]
