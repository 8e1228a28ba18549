"""`digitsum-edge web`: options (named like WebConfig's fields) -> web.build.run; nothing heavy loads before."""

from __future__ import annotations

import click

from digitsum_edge import layout


@click.command()
@click.argument("out", type=click.Path(), default=f"{layout.RUNS}/web")
@click.option("--model", type=click.Path(), default=None,
              help=f"The exported .onnx file the page runs [default: {layout.DEFAULT_MODEL} if it exists, else the "
                   "model built into the package].")
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
    from digitsum_edge.engine import builtin
    from digitsum_edge.web.build import WebConfig, run
    from digitsum_edge.web.host import DEFAULT_PORT, command

    model, chosen = builtin.resolve(options.pop("model"))  # type: ignore[arg-type]  # click checked it
    if chosen:
        click.echo(f"note: {chosen}", err=True)
    build = run(WebConfig(model=str(model), **options))  # type: ignore[arg-type]  # click checked them
    click.echo(f"wrote {build.out}/: {len(build.files)} files, {build.total / 1e6:.1f} MB, "
               f"{build.total_gzipped / 1e6:.2f} MB gzipped\n"
               f"try it: {command(build.out)}  then open http://127.0.0.1:{DEFAULT_PORT}/ (COOP/COEP headers, which "
               "the page needs to be cross-origin isolated; a phone: add --bind 0.0.0.0, the camera needs https, "
               "the photo button works without)")
