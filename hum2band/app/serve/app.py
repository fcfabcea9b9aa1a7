"""The ``hum2band serve`` web app: record or drop a take in the browser, get a band back.

HTTP API (all JSON errors are ``{"error": "<one line for the user>"}``):

``GET /``                                  the page (``static/index.html``)
``GET /static/...``                        its script and style sheet
``GET /api/config``                        styles, meters, limits
``POST /api/jobs?style=&tempo_bpm=&...``   body: the audio file, as is (any type FFmpeg reads);
                                           202 ``{"id", "status_url"}``; 400 not audio / bad
                                           option, 413 too big or too long, 503 busy (with
                                           ``Retry-After``)
``POST /api/jobs/{id}/again?style=&...``  arrange a done job's kept upload again with these
                                           options (no upload); 202 ``{"id", "status_url"}``,
                                           404 when the take is gone, 503 busy
``GET /api/jobs/{id}``                     state, stage, progress, place in the line
                                           (``queue_position``), ``waited_s``; when done the
                                           chords, the parts and the download URLs
``GET /api/jobs/{id}/files/{name}``        one of :data:`DOWNLOADS` (fixed names only)
``GET /api/jobs/{id}/stems/{name}.wav``    one stem, by a name the job's stems folder lists
``GET /api/health``                        queue counts and the server's memory

Safety rules
------------
* The type of an upload is decided from its content: it is decoded with PyAV
  (:func:`hum2band.files.audio.decode`); its file name is only shown in messages.
* The upload is capped in bytes while it streams (``max_upload_bytes``) and in length
  (``max_duration_s``, from the headers when they state it, else while decoding).
* Downloads come only from the job's own folder, by a fixed allow-list of names (stems: by exact
  membership in the folder's listing); nothing in a request is ever joined onto a path.
* The Host header must name this server (a loopback server answers only to loopback names, which
  stops DNS rebinding), and a cross-origin POST is refused.
"""

from __future__ import annotations

import contextlib
import importlib
import logging
import os
import re
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable
from urllib.parse import urlsplit

import av
from starlette.applications import Starlette
from starlette.concurrency import iterate_in_threadpool, run_in_threadpool
from starlette.requests import ClientDisconnect, Request
from starlette.responses import FileResponse, JSONResponse, Response, StreamingResponse
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles

from ...errors import Hum2BandError, InputError, OptionError, TakeLengthError
from ...files import audio as decode_module
from ...music.meter import OtherTempo, as_meter, move_words
from .jobs import (DONE, FAILED, JobQueue, QueueFull, QueueUnavailable, list_stems, one_line,
                   zip_stream)

log = logging.getLogger(__name__)

STATIC_DIR = Path(__file__).resolve().parent / "static"

#: Downloadable files of a finished job: URL name -> (path inside the job folder, media type).
DOWNLOADS: dict[str, tuple[str, str]] = {
    "mix.wav": ("out/mix.wav", "audio/wav"),
    "stems.zip": ("out/stems", "application/zip"),  # zipped while it is sent
    "arrangement.mid": ("out/arrangement.mid", "audio/midi"),
    "leadsheet.musicxml": ("out/leadsheet.musicxml", "application/vnd.recordare.musicxml+xml"),
    "pianoroll.png": ("out/pianoroll.png", "image/png"),
    "arrangement.json": ("out/arrangement.json", "application/json"),
}

#: Container formats (FFmpeg demuxer names) -> file extension for the stored upload.
_EXTENSIONS = {"wav": ".wav", "mp3": ".mp3", "flac": ".flac", "ogg": ".ogg", "aiff": ".aiff",
               "matroska,webm": ".webm", "mov,mp4,m4a,3gp,3g2,mj2": ".m4a", "amr": ".amr",
               "caf": ".caf", "aac": ".aac", "w64": ".w64"}

LOOPBACK_HOSTS = ("127.0.0.1", "localhost", "::1")

#: Security headers on every response.
_SECURITY_HEADERS = [
    (b"x-content-type-options", b"nosniff"),
    (b"referrer-policy", b"no-referrer"),
    (b"x-frame-options", b"DENY"),
    (b"content-security-policy",
     b"default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' blob: data:; "
     b"media-src 'self' blob:; connect-src 'self'; object-src 'none'; base-uri 'none'; "
     b"frame-ancestors 'none'; form-action 'self'"),
]


@dataclass
class ServeSettings:
    """Limits and places of one server.

    Attributes
    ----------
    max_upload_bytes : int
        Largest upload accepted.
    max_duration_s : float
        Longest take accepted, in seconds.
    min_duration_s : float
        Shortest take accepted, in seconds.
    ttl_s : float
        Seconds a finished job's files are kept.
    max_active : int
        Takes uploading, waiting or being arranged at once; more get "busy, try again".
    workers : int
        Takes arranged side by side.
    max_kept : int
        Finished jobs kept at most.
    max_disk_bytes : int or None
        Disk space the finished jobs may take together (the oldest go first; None: no limit).
    job_timeout_s : float
        A take that takes longer to arrange is stopped.
    jobs_dir : str or None
        Folder for job folders (None: a fresh temporary folder, deleted on exit).
    isolation : {"process", "thread"}
        Where the arranger runs (see :mod:`hum2band.app.serve.jobs`).
    allowed_hosts : tuple of str or None
        Host names the server answers to (None: any).
    default_style : str
        Style preselected in the page.
    queue_url : str or None
        ``redis://HOST:PORT/N``: takes are arranged by ``hum2band worker`` processes through
        this Redis job queue (:mod:`hum2band.app.serve.redis_jobs`) instead of the server's own
        worker processes (None, the default).
    """

    max_upload_bytes: int = 50_000_000
    max_duration_s: float = 300.0
    min_duration_s: float = 1.0
    ttl_s: float = 3600.0
    max_active: int = 16
    workers: int = 1
    max_kept: int = 50
    max_disk_bytes: int | None = 2_000_000_000
    job_timeout_s: float = 1200.0
    jobs_dir: str | None = None
    isolation: str = "process"
    allowed_hosts: tuple[str, ...] | None = LOOPBACK_HOSTS
    default_style: str = "pop"
    start_method: str = "forkserver"
    preload: tuple[str, ...] = field(default_factory=tuple)
    queue_url: str | None = None


class UploadRefused(Exception):
    """An upload we will not arrange; ``str()`` is one line for the user."""

    def __init__(self, message: str, status_code: int = 400):
        super().__init__(message)
        self.status_code = status_code


# ---- the arranger and its options -------------------------------------------------------------
def load_arrange() -> Callable[..., Any]:
    """``hum2band.pipeline.arrange_to_folder`` (imported on first use)."""
    return importlib.import_module("hum2band.pipeline").arrange_to_folder


def pipeline_options(**values: Any) -> Any:
    """``hum2band.pipeline.ArrangeOptions(**values)``, checked (raises OptionError)."""
    return importlib.import_module("hum2band.pipeline").ArrangeOptions(**values).checked()


#: Modules a job process needs; the forkserver imports them once (torch included), so a job
#: starts in well under a second instead of importing them again.
PIPELINE_PRELOAD = ("hum2band.pipeline", "hum2band.listen.transcription", "hum2band.compose.harmony.harmonize",
                    "hum2band.compose.parts.accompany", "hum2band.perform.render", "hum2band.perform.export")


def _number(params, name: str, low: float, high: float, what: str, integer: bool = False):
    text = (params.get(name) or "").strip()
    if not text:
        return None
    try:
        value = int(text) if integer else float(text)
    except ValueError:
        raise OptionError(f"{what} '{text[:20]}' is not a {'whole ' if integer else ''}number: "
                          f"give one between {low:g} and {high:g}") from None
    if not (low <= value <= high):
        raise OptionError(f"{what} {value:g} is out of range: give one between {low:g} and {high:g}")
    return value


def parse_options(params, styles: list[str], max_duration_s: float) -> dict[str, Any]:
    """Arrangement options from the query string, checked; keyword arguments for
    ``ArrangeOptions``.

    Raises
    ------
    OptionError
        A value is unusable (the message says which and what to give).
    """
    from ...music.key import Key
    from ...music.styles import canonical_style
    from ..common import TEMPO_RANGE_BPM, parse_meter

    values: dict[str, Any] = {}
    style = (params.get("style") or "").strip()
    if style:
        values["style"] = canonical_style(style)
    tempo_bpm = _number(params, "tempo_bpm", *TEMPO_RANGE_BPM, "tempo")
    if tempo_bpm is not None:
        values["tempo_bpm"] = tempo_bpm
    meter = (params.get("meter") or "").strip()
    if meter:
        values["meter"] = parse_meter(meter)
    key = (params.get("key") or "").strip()
    if key:
        parsed = Key.parse(key[:20])
        values["key"] = f"{parsed.tonic} {parsed.mode}"
    seed = _number(params, "seed", 0, 2**31 - 1, "seed", integer=True)
    if seed is not None:
        values["seed"] = seed
    intro_bars = _number(params, "intro_bars", 0, 8, "intro bars", integer=True)
    if intro_bars is not None:
        values["intro_bars"] = intro_bars
    vocal_db = _number(params, "vocal_level_db", -40, 20, "vocal level (dB)")
    if vocal_db is not None:
        values["vocal_level_db"] = vocal_db
    if (params.get("no_vocal") or "").strip().lower() in ("1", "true", "yes", "on"):
        values["no_vocal"] = True
    downbeat_s = _number(params, "first_downbeat_s", 0, max_duration_s, "first downbeat (s)")
    if downbeat_s is not None:
        values["first_downbeat_s"] = downbeat_s
    # A bar starts here (the page's "move bar 1"): the beats still follow the singer.
    bar_s = _number(params, "downbeat_s", 0, max_duration_s, "bar 1 (s)")
    if bar_s is not None:
        values["downbeat_s"] = bar_s
    return values


# ---- uploads --------------------------------------------------------------------------------
_NAME_BAD = re.compile(r"[^\w .,()+-]", re.UNICODE)


def display_name(raw: str | None) -> str:
    """The uploaded file's name, safe to show: last path part, no control characters, short."""
    name = (raw or "").replace("\\", "/").rsplit("/", 1)[-1]
    name = _NAME_BAD.sub("_", name).strip(" .")[:80]
    return name or "your recording"


def _download_stem(name: str) -> str:
    """ASCII stem for download file names: ``"My take (2).m4a"`` -> ``"My_take_2"``."""
    stem = name.rsplit(".", 1)[0] if "." in name else name
    stem = re.sub(r"[^A-Za-z0-9_-]+", "_", stem).strip("_")[:40]
    return stem or "hum2band"


_check_slots = threading.BoundedSemaphore(2)


def check_audio(path: Path, name: str, settings: ServeSettings) -> Path:
    """Decide from its content whether an upload is a take we can arrange.

    The file is decoded with PyAV (its name and the type the browser claimed are ignored). It is
    renamed to ``STEM.EXT``: an ASCII-only stem of the user's file name (the lead sheet's title)
    and the extension of its real container format.

    Returns
    -------
    Path
        The renamed upload.

    Raises
    ------
    UploadRefused
        Not audio, damaged, too long or too short; the message names ``name``, not ``path``.
    """
    limit_min = f"{settings.max_duration_s / 60:.3g}"
    with _check_slots:
        try:
            stated_s = decode_module.probe_duration_s(path)
            if stated_s is not None and stated_s > 1.1 * settings.max_duration_s + 1.0:
                raise UploadRefused(f"{name} is {stated_s / 60:.3g} minutes long, over this "
                                    f"server's {limit_min}-minute limit: trim the take and "
                                    "upload it again", 413)
            audio = decode_module.decode(path, sample_rate_hz=8000,
                                         max_duration_s=settings.max_duration_s)
        except TakeLengthError as error:
            if "is 0 seconds long" in str(error):
                raise UploadRefused(f"{name} holds no sound (0 seconds): record the take "
                                    "again") from None
            raise UploadRefused(f"{name} is longer than this server's {limit_min}-minute "
                                "limit: trim the take and upload it again", 413) from None
        except InputError as error:
            raise UploadRefused(one_line(str(error)).replace(str(path), name)) from None
        if audio.duration_s < settings.min_duration_s:
            raise UploadRefused(f"{name} is only {audio.duration_s:.1f} seconds long: sing or hum "
                                f"for at least {settings.min_duration_s:g} seconds")
        try:
            with av.open(str(path)) as container:
                fmt = container.format.name
        except Exception:  # noqa: BLE001 - it decoded above; the extension is cosmetic
            fmt = ""
    final = path.with_name(_download_stem(name) + _EXTENSIONS.get(fmt, ".audio"))
    os.replace(path, final)
    return final


# ---- the app --------------------------------------------------------------------------------
def _error(message: str, status_code: int, headers: dict | None = None) -> JSONResponse:
    return JSONResponse({"error": one_line(message)}, status_code=status_code, headers=headers)


def _host_name(host_header: str) -> str:
    """``"[::1]:8000"`` -> ``"::1"``, ``"Localhost:8000"`` -> ``"localhost"``."""
    h = host_header.strip().lower()
    if h.startswith("["):
        return h[1:h.find("]")] if "]" in h else h[1:]
    return h.rsplit(":", 1)[0] if h.count(":") == 1 else h


class GuardMiddleware:
    """Refuses requests for other host names and adds the security headers to every response."""

    def __init__(self, app, allowed_hosts: tuple[str, ...] | None):
        self.app = app
        self.allowed = None if allowed_hosts is None else {h.lower() for h in allowed_hosts}

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        if self.allowed is not None:
            host = dict(scope.get("headers") or []).get(b"host", b"").decode("latin-1")
            if _host_name(host) not in self.allowed:
                response = _error("this server answers only to "
                                  + " / ".join(sorted(self.allowed)) + ": open it by that name",
                                  400)
                await response(scope, receive, send)
                return

        async def send_with_headers(message):
            if message["type"] == "http.response.start":
                message.setdefault("headers", [])
                message["headers"] = list(message["headers"]) + _SECURITY_HEADERS
            await send(message)

        await self.app(scope, receive, send_with_headers)


def _same_origin(request: Request) -> bool:
    origin = request.headers.get("origin")
    if origin is None:  # not a browser's cross-origin request (curl, the page's own GET)
        return True
    # Compare host:port only, so a TLS proxy in front (https origin, http here) still works.
    return urlsplit(origin).netloc.lower() == request.headers.get("host", "").lower()


def create_app(settings: ServeSettings | None = None, arrange: Callable[..., Any] | None = None,
               make_options: Callable[..., Any] | None = None) -> Starlette:
    """The web app, with its own :class:`~hum2band.app.serve.jobs.JobQueue` (``app.state.queue``).

    Parameters
    ----------
    settings : ServeSettings, optional
    arrange : callable, optional
        The arranger (default ``hum2band.pipeline.arrange_to_folder``, imported by the workers).
    make_options : callable, optional
        ``make_options(**values) -> options`` for the arranger (default
        ``hum2band.pipeline.ArrangeOptions``).
    """
    settings = settings or ServeSettings()
    make_options = make_options or pipeline_options
    if arrange is None:
        arrange = load_arrange()
    from ...perform.soundfonts import styles as list_styles

    styles = list_styles()
    # The arranger's stages in order (hum2band.pipeline.STAGES), to turn its per-stage progress
    # into one fraction for the whole take; an arranger without them reports the whole itself.
    stages = tuple(getattr(importlib.import_module(arrange.__module__), "STAGES", ()) or ())
    default_style = settings.default_style if settings.default_style in styles else styles[0]
    style_info = _style_info(styles)
    if settings.queue_url:
        from .redis_jobs import RedisJobQueue

        jobs = RedisJobQueue(settings.queue_url, settings.jobs_dir,
                             max_active=settings.max_active, ttl_s=settings.ttl_s,
                             max_kept=settings.max_kept, max_disk_bytes=settings.max_disk_bytes,
                             job_timeout_s=settings.job_timeout_s)
    else:
        jobs = JobQueue(arrange, settings.jobs_dir, max_active=settings.max_active,
                        workers=settings.workers, ttl_s=settings.ttl_s, max_kept=settings.max_kept,
                        max_disk_bytes=settings.max_disk_bytes,
                        job_timeout_s=settings.job_timeout_s, isolation=settings.isolation,
                        start_method=settings.start_method, preload=settings.preload)

    async def index(request: Request) -> Response:
        return FileResponse(STATIC_DIR / "index.html", media_type="text/html",
                            headers={"cache-control": "no-cache"})

    async def config(request: Request) -> Response:
        from ...music.meter import SUPPORTED_METERS
        from ..common import TEMPO_RANGE_BPM

        return JSONResponse({
            "styles": styles, "default_style": default_style, "style_info": style_info,
            "meters": [m for m in (f"{n}/{d}" for n, d in SUPPORTED_METERS)
                       if not style_info or any(m in i["meters"] for i in style_info.values())],
            "tempo_range_bpm": list(TEMPO_RANGE_BPM),
            "max_upload_bytes": settings.max_upload_bytes,
            "max_duration_s": settings.max_duration_s,
            "min_duration_s": settings.min_duration_s,
            "ttl_s": settings.ttl_s,
        })

    def request_options(request: Request):
        """The arrange options of a request's query string (raises Hum2BandError)."""
        values = parse_options(request.query_params, styles, settings.max_duration_s)
        values.setdefault("style", default_style)
        values["max_minutes"] = settings.max_duration_s / 60.0
        return make_options(**values)

    def _busy(busy: QueueFull) -> Response:
        return _error(f"busy, try again: {busy}", 503, {"retry-after": str(busy.retry_after_s)})

    async def create_job(request: Request) -> Response:
        if not _same_origin(request):
            return _error("uploads are accepted only from this server's own page", 403)
        try:
            options = request_options(request)
        except Hum2BandError as error:
            return _error(str(error), 400)
        name = display_name(request.query_params.get("filename"))
        limit_mb = f"{settings.max_upload_bytes / 1e6:.3g} MB"
        too_big = (f"{name} is larger than this server's {limit_mb} limit: trim the take or "
                   "export it compressed (m4a, mp3, ogg) and upload it again")
        declared = request.headers.get("content-length")
        if declared is not None and declared.isdigit() and int(declared) > settings.max_upload_bytes:
            return _error(too_big, 413, {"connection": "close"})
        try:
            job = jobs.reserve(name)
        except QueueFull as busy:
            return _busy(busy)
        try:
            path = job.upload_dir / "take.upload"
            n_bytes = 0
            with open(path, "wb") as out:
                async for chunk in request.stream():
                    n_bytes += len(chunk)
                    if n_bytes > settings.max_upload_bytes:
                        raise UploadRefused(too_big, 413)
                    out.write(chunk)
            if n_bytes == 0:
                raise UploadRefused("the upload is empty (0 bytes): record or choose a take first")
            final = await run_in_threadpool(check_audio, path, name, settings)
            await run_in_threadpool(jobs.start, job, final, options)
        except UploadRefused as refused:
            jobs.discard(job)
            headers = {"connection": "close"} if refused.status_code == 413 else None
            return _error(str(refused), refused.status_code, headers)
        except ClientDisconnect:
            jobs.discard(job)
            return _error("the upload was cut off: try again", 400)
        except QueueUnavailable as error:
            jobs.discard(job)
            return _error(str(error), 503, {"retry-after": "30"})
        except Exception as error:  # noqa: BLE001 - one bad upload never stops the server
            jobs.discard(job)
            log.exception("upload failed")
            return _error(f"internal error while reading the upload ({type(error).__name__}): "
                          "try again", 500)
        return JSONResponse({"id": job.id, "status_url": f"/api/jobs/{job.id}"}, status_code=202)

    async def again(request: Request) -> Response:
        if not _same_origin(request):
            return _error("uploads are accepted only from this server's own page", 403)
        job = _job_or_404(request)
        if job is None or job.state != DONE:
            return _error(_gone, 404)
        try:
            options = request_options(request)
        except Hum2BandError as error:
            return _error(str(error), 400)
        try:
            new = await run_in_threadpool(jobs.again, job, options)
        except QueueFull as busy:
            return _busy(busy)
        except ValueError:
            return _error(_gone, 404)
        except QueueUnavailable as error:
            return _error(str(error), 503, {"retry-after": "30"})
        return JSONResponse({"id": new.id, "status_url": f"/api/jobs/{new.id}"}, status_code=202)

    def _job_or_404(request: Request):
        return jobs.get(request.path_params["job_id"])

    _gone = ("no such take: it has expired (finished takes are kept for "
             f"{settings.ttl_s / 60:.3g} minutes) or never existed; arrange it again")

    async def job_status(request: Request) -> Response:
        job = _job_or_404(request)
        if job is None:
            return _error(_gone, 404)
        body: dict[str, Any] = {
            "id": job.id, "name": job.display_name, "state": job.state, "stage": job.stage,
            "fraction": round(_overall(stages, job.stage, job.fraction), 4),
            "stage_fraction": round(job.fraction, 4), "queue_position": jobs.position(job),
            "waited_s": round(job.waited_s, 2),
        }
        if job.state == FAILED:
            body["error"] = job.message
            body["internal"] = job.internal
        if job.state == DONE:
            body["elapsed_s"] = round(job.finished_s - job.started_s, 2)
            body["expires_in_s"] = round(max(job.finished_s + settings.ttl_s - _now(), 0.0), 1)
            body.update(await run_in_threadpool(_result_summary, job))
        return JSONResponse(body, headers={"cache-control": "no-store"})

    async def download(request: Request) -> Response:
        job = _job_or_404(request)
        entry = DOWNLOADS.get(request.path_params["name"])
        if job is None or entry is None or job.state != DONE:
            return _error("no such file", 404)
        relative, media_type = entry
        path = job.folder / relative
        filename = f"{_download_stem(job.display_name)}-{request.path_params['name']}"
        if request.path_params["name"] == "stems.zip":
            stems = list_stems(job.out_dir)
            if not stems:
                return _error("no such file", 404)
            folder = _download_stem(job.display_name) + "-stems"
            return StreamingResponse(
                iterate_in_threadpool(zip_stream([(path / n, f"{folder}/{n}") for n in stems])),
                media_type=media_type,
                headers={"content-disposition": f'attachment; filename="{filename}"',
                         "cache-control": "private, max-age=3600"})
        if not path.is_file() or path.is_symlink():
            return _error("no such file", 404)
        return FileResponse(path, media_type=media_type, filename=filename,
                            headers={"cache-control": "private, max-age=3600"})

    async def download_stem(request: Request) -> Response:
        job = _job_or_404(request)
        name = request.path_params["name"]
        if job is None or job.state != DONE or name not in list_stems(job.out_dir):
            return _error("no such stem", 404)
        return FileResponse(job.out_dir / "stems" / name, media_type="audio/wav",
                            filename=f"{_download_stem(job.display_name)}-{name}",
                            headers={"cache-control": "private, max-age=3600"})

    async def health(request: Request) -> Response:
        return JSONResponse({"ok": True, "active": jobs.active_count(),
                             "max_active": settings.max_active, "counts": dict(jobs.counts),
                             "disk_mb": round(jobs.disk_bytes() / 1e6, 1),
                             **_memory_mb()}, headers={"cache-control": "no-store"})

    @contextlib.asynccontextmanager
    async def lifespan(app):
        try:
            yield
        finally:
            jobs.close()

    app = Starlette(routes=[
        Route("/", index),
        Route("/api/config", config),
        Route("/api/health", health),
        Route("/api/jobs", create_job, methods=["POST"]),
        Route("/api/jobs/{job_id}", job_status),
        Route("/api/jobs/{job_id}/again", again, methods=["POST"]),
        Route("/api/jobs/{job_id}/files/{name}", download),
        Route("/api/jobs/{job_id}/stems/{name}", download_stem),
        Mount("/static", app=StaticFiles(directory=STATIC_DIR), name="static"),
    ], lifespan=lifespan)
    app.state.queue = jobs
    app.state.settings = settings
    app.add_middleware(GuardMiddleware, allowed_hosts=settings.allowed_hosts)
    return app


def _style_info(names: list[str]) -> dict[str, dict]:
    """Per style: a one-line description and the meters it plays (from :mod:`hum2band.music.styles`;
    empty where a style is not described there)."""
    out: dict[str, dict] = {}
    try:
        from ...music.styles import get_style
    except ImportError:
        return out
    for name in names:
        try:
            style = get_style(name)
        except Hum2BandError:
            continue
        out[name] = {"description": style.description,
                     "meters": [f"{n}/{d}" for n, d in style.meters]}
    return out


def _overall(stages: tuple[str, ...], stage: str, fraction: float) -> float:
    """Progress of the whole take from the arranger's stage and that stage's fraction."""
    if stage in stages:
        return (stages.index(stage) + fraction) / len(stages)
    return fraction


def _now() -> float:
    import time

    return time.time()


def _memory_mb() -> dict[str, float]:
    """The server process's resident memory now and at its peak (Linux), in MB."""
    out: dict[str, float] = {}
    try:
        with open("/proc/self/status") as status:
            for line in status:
                key, _, value = line.partition(":")
                if key in ("VmRSS", "VmHWM"):
                    out["rss_mb" if key == "VmRSS" else "peak_rss_mb"] = int(value.split()[0]) / 1024
    except OSError:
        pass
    return out


def _result_summary(job) -> dict[str, Any]:
    """What the page shows of a finished job: chords, parts, tempo, meter, key and the URLs."""
    import json

    base = f"/api/jobs/{job.id}"
    names = list_stems(job.out_dir)
    files = {name: f"{base}/files/{name}" for name, (rel, _) in DOWNLOADS.items()
             if (job.folder / rel).is_file() or (name == "stems.zip" and names)}
    stems = [{"name": n[:-4], "file": n, "url": f"{base}/stems/{n}"} for n in names]
    summary: dict[str, Any] = {"files": files, "stems": stems, "chords": [], "parts": []}
    try:
        data = json.loads((job.out_dir / "arrangement.json").read_text())
    except (OSError, ValueError):
        return summary
    for key in ("tempo_bpm", "meter", "key", "style", "duration_s"):
        if key in data:
            summary[key] = data[key]
    # Bar 1 in the take's own seconds (arrangement.json's downbeats are on the mix's time line,
    # which starts offset_s earlier when there is an intro): the page moves it and arranges again.
    try:
        offset_s = float(data.get("offset_s") or 0.0)
        takes = [float(d) - offset_s for d in data.get("downbeats", [])]
        summary["first_downbeat_s"] = round(min((d for d in takes if d >= 0.0), default=0.0), 4)
    except (TypeError, ValueError):
        pass
    # The grid's other readings (bar lines in the take's own seconds) and the other tempi and
    # meters to count it in, likeliest first: the page offers each as one click ("half a beat
    # later", "a beat earlier", ...; "at half the tempo, 62 bpm", "in 3/4 at 125 bpm").
    try:
        m = as_meter(data.get("meter", (4, 4)))
        summary["other_readings"] = [
            {"kind": str(r["kind"]), "downbeat_s": round(float(r["downbeat_s"]), 3),
             "words": move_words(float(r["beats_later"]), m)}
            for r in data.get("other_readings", []) if float(r.get("beats_later", 0.0))]
        heard_bpm = float(data.get("tempo_bpm") or 0.0)
        summary["other_tempi"] = [
            {"meter": f"{o.meter[0]}/{o.meter[1]}", "tempo_bpm": round(float(o.tempo_bpm), 1),
             "words": o.words(m, heard_bpm)}
            for o in (OtherTempo.from_json(r) for r in data.get("other_tempi", []))]
    except (TypeError, ValueError, KeyError, AttributeError):
        summary["other_readings"], summary["other_tempi"] = [], []
    meter, key = summary.get("meter"), summary.get("key")
    if isinstance(meter, (list, tuple)) and len(meter) == 2:
        summary["meter"] = f"{meter[0]}/{meter[1]}"
    if isinstance(key, dict) and "tonic" in key:
        summary["key"] = f"{key['tonic']} {key.get('mode', '')}".strip()
    summary["chords"] = [{"start": c.get("start"), "end": c.get("end"), "label": c.get("label")}
                         for c in data.get("chords", []) if isinstance(c, dict)]
    summary["parts"] = [{"name": p.get("name"), "stem": p.get("stem")}
                        for p in data.get("parts", []) if isinstance(p, dict)]
    # Stems in the arrangement's part order (the vocal, not a part, last).
    order = {Path(str(p.get("stem") or "")).name: i for i, p in enumerate(summary["parts"])}
    stems.sort(key=lambda s: (order.get(s["file"], len(order)), s["file"]))
    return summary
