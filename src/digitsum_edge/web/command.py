"""`digitsum-edge web`: options (named like WebConfig's fields) -> web.build.run; nothing heavy loads before."""

from __future__ import annotations

import click

from digitsum_edge import layout


@click.command()
@click.argument("out", type=click.Path(), default=f"{layout.RUNS}/web")
@click.option("--model", type=click.Path(), default=layout.DEFAULT_MODEL, show_default=True,
              help="The exported .onnx file the page runs.")
@click.option("--node-modules", type=click.Path(), default=None,
              help="Take onnxruntime-web from this node_modules [default: `npm ci` once, cached].")
@click.option("--force", is_flag=True, help="Replace an existing OUT folder.")
def web(**options: object) -> None:
    """Write a static web app that reads digits on the device (phone or laptop browser), offline once loaded.

    \b
    OUT holds index.html, the app's JavaScript (the preprocessing too), the model and onnxruntime-web: put it on any
    static host (https, or http://localhost: browsers give the camera to nothing else). The first run
    fetches the locked npm packages once with `npm ci`.
    """
    from digitsum_edge.web.build import WebConfig, run

    build = run(WebConfig(**options))  # type: ignore[arg-type]  # click checked them
    click.echo(f"wrote {build.out}/: {len(build.files)} files, {build.total / 1e6:.1f} MB, "
               f"{build.total_gzipped / 1e6:.2f} MB gzipped (open {build.out}/index.html through a web server)")
