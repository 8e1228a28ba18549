"""`digitsum-edge web`: the static app folder, assembled from the app's sources (app/), the model with its
metadata as JSON, the reading defaults, the preprocessing's constants, and onnxruntime-web's browser files.

Everything the page needs sits in the folder (no CDN), and its service worker caches all of it, so the app
works offline after the first load. What the page knows about the model (input names, normalisation, class
counts) and about reading (roi, ink, min_confidence, the preprocessing's settings) is written here, into
digitsum.json, by the modules that own it: the JavaScript spells none of it.
"""

from __future__ import annotations

import dataclasses
import gzip
import hashlib
import json
import logging
import os
import shutil
import subprocess
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

from digitsum_edge import __version__, onnx_contract
from digitsum_edge.errors import DigitsumError
from digitsum_edge.files import _umask, check_folder, sweep_stale, temp_name

log = logging.getLogger(__name__)

HERE = Path(__file__).parent
APP = HERE / "app"  # the page's own sources, copied as they are (sw.js gets its file list and version)
# The browser files of the npm packages (package.json, package-lock.json here): name in the folder -> in node_modules
VENDOR = {
    "ort.wasm.min.js": "onnxruntime-web/dist/ort.wasm.min.js",  # onnxruntime-web, wasm backend only (window.ort)
    "ort-wasm-simd-threaded.mjs": "onnxruntime-web/dist/ort-wasm-simd-threaded.mjs",
    "ort-wasm-simd-threaded.wasm": "onnxruntime-web/dist/ort-wasm-simd-threaded.wasm",
}
CACHE = Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "digitsum-edge"
# What a web server must say of the folder's files (any static host, `serve`, the tests' server)
CONTENT_TYPES = {".html": "text/html; charset=utf-8", ".js": "text/javascript", ".mjs": "text/javascript",
                 ".wasm": "application/wasm", ".webmanifest": "application/manifest+json",
                 ".json": "application/json", ".svg": "image/svg+xml", ".onnx": "application/octet-stream"}
FILE_LIST = "files.json"  # written last: every other file of the folder with its SHA-256; nothing else is served
# Cross-origin isolation: onnxruntime-web may use its fast paths, and performance.now() is fine-grained
ISOLATION = {"Cross-Origin-Opener-Policy": "same-origin", "Cross-Origin-Embedder-Policy": "require-corp"}


@dataclass(frozen=True)
class WebConfig:
    """What `digitsum-edge web` builds."""

    out: str = "runs/web"  # the folder written (replaced as a whole with --force)
    model: str = "runs/model.onnx"  # an exported digitsum-edge ONNX file (fp32 or int8)
    node_modules: str | None = None  # npm packages already installed here; None: `npm ci` into a cache
    force: bool = False  # replace an existing folder


@dataclass
class WebBuild:
    """The folder written: its files and their sizes."""

    out: Path
    files: dict[str, int] = field(default_factory=dict)  # name -> bytes
    gzipped: dict[str, int] = field(default_factory=dict)  # name -> bytes after gzip -9 (what a host sends)

    @property
    def total(self) -> int:
        return sum(self.files.values())

    @property
    def total_gzipped(self) -> int:
        return sum(self.gzipped.values())


def lock_digest() -> str:
    """The first 12 hex digits of package-lock.json's SHA-256: names the npm cache of these exact versions."""
    return hashlib.sha256((HERE / "package-lock.json").read_bytes()).hexdigest()[:12]


def sources_digest() -> str:
    """The first 16 hex digits of a SHA-256 over the app's sources and the npm lockfile: which page a folder holds."""
    digest = hashlib.sha256((HERE / "package-lock.json").read_bytes())
    for source in sorted(APP.iterdir()):
        digest.update(source.name.encode() + b"\0" + source.read_bytes())
    return digest.hexdigest()[:16]


def content_type(name: str) -> str:
    return CONTENT_TYPES.get(Path(name).suffix, "application/octet-stream")


def _has_vendor(folder: Path) -> bool:
    return all((folder / source).is_file() for source in VENDOR.values())


def node_modules(given: str | None = None) -> Path:
    """The node_modules that holds the vendor files: `given`, the one beside package.json (after `npm ci` in a
    checkout: `make web`), or a cache filled once by `npm ci` for this lockfile."""
    if given is not None:
        folder = Path(given)
        if not _has_vendor(folder):
            missing = next(s for s in VENDOR.values() if not (folder / s).is_file())
            raise DigitsumError(f"{folder} lacks {missing} (run `npm ci` beside {HERE / 'package.json'})")
        return folder
    for folder in (HERE / "node_modules", CACHE / f"npm-{lock_digest()}" / "node_modules"):
        if _has_vendor(folder):
            return folder
    return npm_ci(CACHE / f"npm-{lock_digest()}")


def npm_ci(folder: Path) -> Path:
    """Install the locked versions with `npm ci` into `folder` (no install scripts); its node_modules."""
    npm = shutil.which("npm")
    if npm is None:
        raise DigitsumError("web needs npm to fetch onnxruntime-web once (install Node.js and npm, "
                            "e.g. apt-get install npm), or --node-modules DIR")
    check_folder(folder)
    for name in ("package.json", "package-lock.json"):
        shutil.copyfile(HERE / name, folder / name)
    log.info("npm ci: onnxruntime-web as locked in package-lock.json, into %s", folder)
    done = subprocess.run([npm, "ci", "--ignore-scripts", "--no-audit", "--no-fund"], cwd=folder,
                          capture_output=True, text=True)
    if done.returncode != 0 or not _has_vendor(folder / "node_modules"):
        last = (done.stderr.strip().splitlines() or ["no output"])[-1]
        raise DigitsumError(f"npm ci failed in {folder}: {last}")
    return folder / "node_modules"


def settings(info: onnx_contract.ModelInfo, model_name: str, model_sha256: str) -> dict:
    """digitsum.json: the model's contract from its metadata, the reading defaults, the preprocessing's settings."""
    from digitsum_edge.vision import preprocess, stills
    from digitsum_edge.vision.settings import CAMERA

    tuning = {k: v for k, v in dataclasses.asdict(preprocess.DEFAULT).items() if k != "reading"}  # reading: below
    constants = {name: getattr(preprocess, name) for name in ("MNIST_SIZE", "BOX", "CENTRE", "STROKE", "FINE")}
    return {
        "version": __version__,
        "sources": sources_digest(),
        "model": {"file": model_name, "sha256": model_sha256, "inputs": list(onnx_contract.INPUTS),
                  "outputs": list(onnx_contract.OUTPUTS), "mean": info.mean, "std": info.std,
                  "input_size": info.input_size, "num_digits": info.num_digits, "num_rand": info.num_rand,
                  "num_sums": info.num_sums, "precision": info.precision, "test_metrics": info.test_metrics},
        "reading": CAMERA.as_json(),
        "preprocess": {"config": tuning, "constants": constants,
                       "stills": stills.constants()},
    }


def run(cfg: WebConfig) -> WebBuild:
    """Write the app folder: check the model, find the npm files, assemble beside `out`, then rename into place."""
    from digitsum_edge.engine.factory import open_model

    out = Path(cfg.out)
    if out.exists() and not (out.is_dir() and cfg.force):
        raise DigitsumError(f"output {out} exists (use --force to replace it)" if out.is_dir()
                            else f"output {out} is a file, not a folder")
    check_folder(out.parent)
    if Path(cfg.model).suffix != ".onnx":
        raise DigitsumError(f"the browser runs .onnx files, not {cfg.model}")
    backend = open_model(cfg.model, "cpu", 1)  # refuses a file that is not a digitsum-edge model
    modules = node_modules(cfg.node_modules)
    sweep_stale(out.parent)
    staging = Path(tempfile.mkdtemp(prefix=temp_name(out).name, dir=out.parent))
    os.chmod(staging, 0o777 & ~_umask())  # mkdtemp makes 0700; a web server's user must read the folder
    try:
        build = _assemble(staging, cfg, backend.info, modules)
        if out.exists():
            old = temp_name(out, "old")
            out.rename(old)
            staging.rename(out)
            shutil.rmtree(old)
        else:
            staging.rename(out)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    build.out = out
    return build


def _sha256(path: Path) -> str | None:
    return hashlib.sha256(path.read_bytes()).hexdigest() if path.is_file() else None


def stale(folder: Path, model_sha256: str) -> str | None:
    """Why `folder` is not the app for the model with this SHA-256 and for these sources; None when it is."""
    try:
        built = json.loads((folder / "digitsum.json").read_text())
        model = built["model"]
        if model["sha256"] != model_sha256 or _sha256(folder / model["file"]) != model_sha256:
            return "it was built for another model"
        if (built["version"], built.get("sources")) != (__version__, sources_digest()):
            return "it was built from other app sources"
    except FileNotFoundError:
        return "it was not built yet"
    except (OSError, ValueError, KeyError, TypeError) as e:
        return f"its digitsum.json is unreadable ({e})"
    needed = ("index.html", "sw.js", *(f"vendor/{name}" for name in VENDOR))
    missing = [name for name in needed if not (folder / name).is_file()]
    if missing:
        return f"it lacks {missing[0]}"
    try:
        built_files(folder)
    except DigitsumError as e:
        return str(e)
    return None


def built_files(folder: Path) -> dict[str, bytes]:
    """The files the build wrote, as its file list names them, and the list itself (name -> bytes), each checked: a
    regular file, no symlink on its way, no dotfile, its SHA-256 as written. Files added later are not in it."""
    try:
        listed = json.loads((folder / FILE_LIST).read_text())["files"]
        names = {str(name): str(entry["sha256"]) for name, entry in listed.items()}
    except FileNotFoundError:
        raise DigitsumError(f"it has no {FILE_LIST} (built by an older version)") from None
    except (OSError, ValueError, KeyError, TypeError, AttributeError) as e:
        raise DigitsumError(f"its {FILE_LIST} is unreadable ({e})") from None
    files = {}
    for name, sha256 in names.items():
        parts = Path(name).parts
        if not parts or Path(name).is_absolute() or any(p in ("..", ".") or p.startswith(".") for p in parts):
            raise DigitsumError(f"its {FILE_LIST} names {name!r}, not a file of the app")
        path = folder
        for part in parts:
            path = path / part
            if path.is_symlink():
                raise DigitsumError(f"{name} is a symbolic link since it was built")
        data = path.read_bytes() if path.is_file() else None
        if data is None or hashlib.sha256(data).hexdigest() != sha256:
            raise DigitsumError(f"{name} was {'changed' if data is not None else 'removed'} since it was built")
        files[name] = data
    if (folder / FILE_LIST).is_symlink():
        raise DigitsumError(f"{FILE_LIST} is a symbolic link since it was built")
    files[FILE_LIST] = (folder / FILE_LIST).read_bytes()  # the service worker caches it too
    return files


def ensure(cfg: WebConfig) -> bool:
    """The app for cfg.model in cfg.out: kept when it is current (same model file, same sources), else built anew,
    replacing only an app folder or an empty one. Whether it was built."""
    out = Path(cfg.out)
    model_sha256 = _sha256(Path(cfg.model))
    if model_sha256 is None:
        raise DigitsumError(f"{cfg.model} is not a file")
    reason = stale(out, model_sha256)
    if reason is None:
        return False
    if out.is_dir() and any(out.iterdir()) and not (out / "digitsum.json").is_file():
        raise DigitsumError(f"{out} is not a web app folder (no digitsum.json): it is not replaced")
    log.info("building the web app in %s: %s", out, reason)
    run(dataclasses.replace(cfg, force=True))
    return True


def _assemble(folder: Path, cfg: WebConfig, info: onnx_contract.ModelInfo, modules: Path) -> WebBuild:
    model_bytes = Path(cfg.model).read_bytes()
    (folder / "vendor").mkdir()
    for name, source in VENDOR.items():
        shutil.copyfile(modules / source, folder / "vendor" / name)
    (folder / "model.onnx").write_bytes(model_bytes)
    config = settings(info, "model.onnx", hashlib.sha256(model_bytes).hexdigest())
    (folder / "digitsum.json").write_text(json.dumps(config, indent=2) + "\n")
    for page_file in APP.iterdir():
        if page_file.is_file() and page_file.name != "sw.js":
            shutil.copyfile(page_file, folder / page_file.name)
    names = sorted(str(p.relative_to(folder)) for p in folder.rglob("*") if p.is_file())
    digest = hashlib.sha256()
    for name in names:
        digest.update(name.encode() + b"\0" + (folder / name).read_bytes())
    # The service worker caches every file under a name that changes with any of them (a new model, a new page).
    worker = (APP / "sw.js").read_text().replace("__VERSION__", digest.hexdigest()[:16])
    (folder / "sw.js").write_text(worker.replace("__FILES__", json.dumps(["./", *sorted([*names, FILE_LIST])])))
    written = sorted(p for p in folder.rglob("*") if p.is_file())
    listed = {str(p.relative_to(folder)): {"sha256": hashlib.sha256(p.read_bytes()).hexdigest(),
                                           "bytes": p.stat().st_size} for p in written}
    (folder / FILE_LIST).write_text(json.dumps({"files": listed}, indent=1) + "\n")
    build = WebBuild(folder)
    for path in sorted(p for p in folder.rglob("*") if p.is_file()):
        data = path.read_bytes()
        name = str(path.relative_to(folder))
        build.files[name] = len(data)
        build.gzipped[name] = len(gzip.compress(data, 9))
    return build
