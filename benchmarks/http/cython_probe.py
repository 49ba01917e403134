"""What Cython would do for covet's request path: the measurement behind leaving it out.

Issue 17 asks for a compiled build of the hot modules, kept only where it wins
by a measured margin. mypyc was measured in docs/benchmarks.md ("Compiled
build"); this script measures Cython, in two probes, both counted with
valgrind's callgrind (exact, whatever else the machine runs):

``--dispatch``
    Exports this checkout's ``HEAD`` to a temporary directory, compiles
    ``covet/routing/router.py`` (the dispatch, ``Router.__call__``) and
    ``covet/responses/base.py`` (``Response.__init__``) there with Cython in
    pure-Python mode, the source unchanged, and runs ``inprocess.py
    --instructions --only bare,covet`` in the copy and in this checkout
    (with ``--worker``, ``instructions.py`` too: the same in a uvicorn worker).

``--response``
    The object a handler builds, ``PlainTextResponse("Hello, World!")``,
    measured alone: covet's class against a prototype in which ``Response``
    and ``PlainTextResponse`` are Cython extension types (``cdef`` classes
    with typed attributes) running the same fast path in ``__init__``.
    Each statement runs in a loop, 1,000 and 101,000 times, the two totals
    differenced, less the same for an empty loop.

``--floor``
    How far compiling could take any framework with request and response
    objects: ``minimal_app.py``'s floor (a Host lookup, a route table, a
    request object, a handler's response object, no error handling) with
    ``Request``, ``Response`` and the dispatch as Cython extension types and
    the handlers left in Python, as users write them, counted in a uvicorn
    worker beside bare ASGI and the pure-Python floor (``instructions.py``).

Needs Cython (``pip install cython``; not a covet dependency), valgrind and
a C compiler. Run from the repository root::

    .venv/bin/python benchmarks/http/cython_probe.py              # both, about 4 minutes
    .venv/bin/python benchmarks/http/cython_probe.py --response   # about 30 seconds
    .venv/bin/python benchmarks/http/cython_probe.py --dispatch --worker
    .venv/bin/python benchmarks/http/cython_probe.py --floor      # about 6 minutes
"""

from __future__ import annotations

import argparse
import importlib.util
import io
import os
import subprocess
import sys
import tarfile
import tempfile
import textwrap
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

from benchmarks.http.instructions import collected, have_valgrind  # noqa: E402

#: The modules the dispatch probe compiles: everything covet runs per request on
#: /plaintext and /json outside the handler, except the JSON encoder (orjson is C).
DISPATCH_MODULES = ("covet/routing/router.py", "covet/responses/base.py")

#: The prototype: covet's Response fast path, on extension types.
PROTOTYPE = textwrap.dedent(
    """
    import cython

    _LENGTHS = [None] * 4096


    def _length_header(size):
        header = (b"content-length", b"%d" % size)
        if size < 4096:
            _LENGTHS[size] = header
        return header


    @cython.cclass
    class Response:
        status_code = cython.declare(object, visibility="public")
        background = cython.declare(object, visibility="public")
        body = cython.declare(object, visibility="public")
        _raw = cython.declare(object, visibility="public")
        _raw_checked = cython.declare(cython.bint, visibility="public")
        __dict__ = cython.declare(dict)  # attributes users add, as on covet's class
        media_type = None
        _fast = None

        def __init__(
            self, content=None, status_code=200, headers=None, media_type=None, background=None
        ):
            self.status_code = status_code
            self.background = background
            if media_type is None and headers is None and status_code == 200:
                fast = self._fast
                if fast is not None:
                    body = self.body = (
                        content.encode()
                        if fast[1] and type(content) is str
                        else self.render(content)
                    )
                    try:
                        length = _LENGTHS[len(body)]
                    except IndexError:
                        length = None
                    self._raw = [length or _length_header(len(body)), fast[0]]
                    self._raw_checked = True
                    return
            raise NotImplementedError("the probe has only the fast path")

        def render(self, content):
            return content.encode()


    @cython.cclass
    class PlainTextResponse(Response):
        media_type = "text/plain"
        _fast = ((b"content-type", b"text/plain; charset=utf-8"), True)
    """
)

#: Runs ``PlainTextResponse("Hello, World!")`` (or nothing) COUNT times.
LOOP = textwrap.dedent(
    """
    import sys
    if sys.argv[1] == "covet":
        from covet import PlainTextResponse
    else:
        from prototype import PlainTextResponse
    def loop(count):
        for _ in range(count):
            PlainTextResponse("Hello, World!")
    def empty(count):
        for _ in range(count):
            pass
    (loop if sys.argv[3] == "loop" else empty)(int(sys.argv[2]))
    """
)


#: minimal_app.py's floor, compiled: extension types and a compiled ``App.__call__``.
FLOOR_CORE = textwrap.dedent(
    """
    # cython: language_level=3


    cdef class Request:
        cdef public object scope
        cdef public object receive

        def __init__(self, scope, receive):
            self.scope = scope
            self.receive = receive


    cdef class Response:
        cdef public bytes body
        cdef public list headers
        cdef public object status

        def __init__(self, bytes body, bytes media_type, status=200):
            self.body = body
            self.status = status
            self.headers = [
                (b"content-length", b"%d" % len(body)), (b"content-type", media_type)
            ]


    cdef class App:
        cdef dict routes
        cdef set hosts
        cdef object lifespan

        def __init__(self, dict routes, set hosts, lifespan):
            self.routes = routes
            self.hosts = hosts
            self.lifespan = lifespan

        async def __call__(self, dict scope, receive, send):
            cdef bytes host = b""
            cdef Response response
            if scope["type"] == "lifespan":
                await self.lifespan(receive, send)
                return
            for name, value in scope["headers"]:
                if name == b"host":
                    host = value
            methods = (
                self.routes.get(scope["path"]) if host.partition(b":")[0] in self.hosts else None
            )
            endpoint = None if methods is None else methods.get(scope["method"])
            if endpoint is None:
                await send({"type": "http.response.start", "status": 404, "headers": []})
                await send({"type": "http.response.body", "body": b""})
                return
            response = await endpoint(Request(scope, receive))
            await send(
                {"type": "http.response.start", "status": response.status,
                 "headers": response.headers}
            )
            await send({"type": "http.response.body", "body": response.body})
    """
)

#: The floor's handlers, in Python as a user writes them, over the compiled core.
FLOOR_APP = textwrap.dedent(
    """
    from floor_core import App, Request, Response

    from benchmarks.http.bare_app import dumps, serve_lifespan


    async def plaintext(request: Request) -> Response:
        return Response(b"Hello, World!", b"text/plain; charset=utf-8")


    async def json_endpoint(request: Request) -> Response:
        return Response(dumps({"message": "Hello, World!"}), b"application/json")


    ROUTES = {"/plaintext": {"GET": plaintext}, "/json": {"GET": json_endpoint}}
    app = App(ROUTES, {b"127.0.0.1", b"localhost"}, serve_lifespan)
    """
)


def have_cython() -> bool:
    """Say whether Cython is importable, telling how to install it if not."""
    if importlib.util.find_spec("Cython") is None:
        print("Cython is not installed: .venv/bin/pip install cython", file=sys.stderr)
        return False
    return True


def cythonize(directory: Path, modules: list[str]) -> None:
    """Compile ``modules`` (paths relative to ``directory``) in place with Cython."""
    command = [sys.executable, "-m", "Cython.Build.Cythonize", "-i", "-3", "-q", *modules]
    done = subprocess.run(command, cwd=directory, capture_output=True, check=False)
    if done.returncode != 0:
        raise SystemExit(f"cythonize failed:\n{done.stderr.decode()[-3000:]}")


def export_head(directory: Path) -> None:
    """Write this checkout's HEAD into ``directory``, without its pyproject.toml.

    setuptools, which cythonize drives, would read covet's hatchling
    ``pyproject.toml`` and refuse its ``project.license``; the copy does not need it.
    """
    archive = subprocess.run(
        ["git", "archive", "--format=tar", "HEAD"], cwd=ROOT, capture_output=True, check=True
    ).stdout
    with tarfile.open(fileobj=io.BytesIO(archive)) as tar:
        tar.extractall(directory, filter="data")
    (directory / "pyproject.toml").unlink()


def dispatch(worker: bool) -> int:
    """Print instructions per request, pure and Cython-compiled (in a worker too if asked)."""
    commands = [[
        sys.executable, "benchmarks/http/inprocess.py", "--instructions",
        "--only", "bare,covet", "--paths", "/plaintext,/json", "--extra", "1000",
    ]]  # fmt: skip
    if worker:
        commands.append([
            sys.executable, "benchmarks/http/instructions.py",
            "--only", "bare,covet", "--paths", "/plaintext,/json",
        ])  # fmt: skip
    with tempfile.TemporaryDirectory(prefix="covet-cython-") as tmp:
        copy = Path(tmp)
        export_head(copy)
        cythonize(copy, list(DISPATCH_MODULES))
        # The copy's covet first on the path: the compiled modules, not this checkout's.
        env = {**os.environ, "PYTHONPATH": str(copy)}
        print(f"Cython {_cython_version()}, compiled: {', '.join(DISPATCH_MODULES)}", flush=True)
        for command in commands:
            subprocess.run(command, cwd=copy, env=env, check=True)
    print("Pure Python (this checkout):", flush=True)
    for command in commands:
        subprocess.run(command, cwd=ROOT, check=True)
    return 0


def response() -> int:
    """Print the instructions of one ``PlainTextResponse("Hello, World!")``, pure and cdef."""
    with tempfile.TemporaryDirectory(prefix="covet-cython-") as tmp:
        work = Path(tmp)
        (work / "prototype.py").write_text(PROTOTYPE)
        (work / "loop.py").write_text(LOOP)
        cythonize(work, ["prototype.py"])
        env = {**os.environ, "PYTHONHASHSEED": "0", "PYTHONPATH": f"{work}{os.pathsep}{ROOT}"}

        def count(which: str, runs: int, body: str) -> int:
            out = work / "callgrind.out"
            command = [
                "valgrind", "--tool=callgrind", f"--callgrind-out-file={out}",
                sys.executable, str(work / "loop.py"), which, str(runs), body,
            ]  # fmt: skip
            done = subprocess.run(command, cwd=work, env=env, capture_output=True, check=False)
            total = collected(done.stderr)
            if done.returncode != 0 or total is None:
                raise SystemExit(f"callgrind failed:\n{done.stderr.decode()[-2000:]}")
            return total

        print('Instructions per PlainTextResponse("Hello, World!") (callgrind)', flush=True)
        for which, label in (("covet", "covet (pure Python)"), ("cdef", "cdef-class prototype")):
            statement = count(which, 101_000, "loop") - count(which, 1_000, "loop")
            empty = count(which, 101_000, "empty") - count(which, 1_000, "empty")
            print(f"{label:<24}{(statement - empty) / 100_000:>10,.0f}")
    return 0


def floor() -> int:
    """Count bare ASGI, the pure-Python floor and the compiled floor in a uvicorn worker."""
    with tempfile.TemporaryDirectory(prefix="covet-cython-") as tmp:
        work = Path(tmp)
        (work / "floor_core.pyx").write_text(FLOOR_CORE)
        (work / "floor_app.py").write_text(FLOOR_APP)
        cythonize(work, ["floor_core.pyx"])
        # uvicorn tells ASGI 3 from ASGI 2 by inspecting __call__, which it cannot do on an
        # extension type's slot: say it (uvicorn reads UVICORN_* for its options).
        env = {**os.environ, "PYTHONPATH": str(work), "UVICORN_INTERFACE": "asgi3"}
        print(f"Cython {_cython_version()}: minimal_app.py's floor compiled", flush=True)
        command = [
            sys.executable, "benchmarks/http/instructions.py",
            "--only", "bare,minimal,compiled-floor", "--paths", "/plaintext,/json",
            "--also", "compiled-floor=floor_app:app",
        ]  # fmt: skip
        subprocess.run(command, cwd=ROOT, env=env, check=True)
    return 0


def _cython_version() -> str:
    import Cython

    return str(Cython.__version__)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--dispatch", action="store_true", help="only the compiled dispatch")
    parser.add_argument("--response", action="store_true", help="only the response prototype")
    parser.add_argument("--floor", action="store_true", help="only the compiled floor, in a worker")
    parser.add_argument(
        "--worker",
        action="store_true",
        help="--dispatch in a uvicorn worker too (instructions.py; about 8 more minutes)",
    )
    args = parser.parse_args(argv)
    if not (have_cython() and have_valgrind()):
        return 2
    if args.floor:
        return floor()
    both = not (args.dispatch or args.response)
    if args.response or both:
        response()
    if args.dispatch or both:
        dispatch(args.worker)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
