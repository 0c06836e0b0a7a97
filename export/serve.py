"""`pixelplayer-serve`: serve a Triton model repository written by `export-engine --format
triton` with the Triton Inference Server bundled in the nvidia-pytriton wheel.

    pixelplayer-serve --repo out/triton                  # gRPC on 127.0.0.1:8001
    realtime-sep --engine triton://127.0.0.1:8001 --model out --camera 0 --mic default

Only the repository's Python-backend models are loaded (`pixelplayer_*_py`: the graphs
through `engines`; that Triton has no onnxruntime or TensorRT backend). The server binds
to localhost unless --host says otherwise, prints its addresses once the models are
ready, and stops cleanly on SIGTERM / Ctrl-C. nvidia-pytriton is used for its binaries
only: its Python package pins NumPy < 2, so it is installed without dependencies
(`scripts/setup`) and never imported.
"""
from __future__ import annotations

import argparse
import importlib.util
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from engines.artifacts import TRITON_PY_MODELS

PROG = "pixelplayer-serve"
READY_TIMEOUT_S = 120.0


class ServeError(Exception):
    """A user-fixable problem; the message is one line."""


def get_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog=PROG, description=__doc__.splitlines()[0])
    p.add_argument("--repo", type=Path, required=True,
                   help="Triton model repository (export-engine --format triton writes OUT/triton)")
    p.add_argument("--host", default="127.0.0.1",
                   help="address to bind (default 127.0.0.1: this machine only; 0.0.0.0 for all)")
    p.add_argument("--grpc-port", type=int, default=8001, help="gRPC port (default 8001)")
    p.add_argument("--http-port", type=int, default=8000, help="HTTP port (default 8000)")
    p.add_argument("--threads", type=int, default=None, metavar="N",
                   help="CPU threads per model instance's engine (default: library default)")
    p.add_argument("--verbose", action="store_true", help="show the server's own log")
    return p


def triton_dist() -> Path:
    """The tritonserver tree inside the installed nvidia-pytriton wheel."""
    spec = importlib.util.find_spec("pytriton")
    if spec is None or not spec.submodule_search_locations:
        raise ServeError("nvidia-pytriton is not installed: pip install --no-deps nvidia-pytriton "
                         "(scripts/setup does)")
    dist = Path(list(spec.submodule_search_locations)[0]) / "tritonserver"
    if not (dist / "bin" / "tritonserver").is_file():
        raise ServeError(f"{dist} holds no tritonserver binary")
    return dist


def backend_dir(dist: Path, work: Path) -> Path:
    """A backends folder whose Python backend has the stub built for this interpreter."""
    version = f"{sys.version_info[0]}.{sys.version_info[1]}"
    stub = dist / "python_backend_stubs" / version / "triton_python_backend_stub"
    if not stub.is_file():
        raise ServeError(f"nvidia-pytriton has no Python backend for Python {version}")
    python = work / "backends" / "python"
    python.mkdir(parents=True)
    for item in (dist / "backends" / "python").iterdir():
        if item.name != "__pycache__":
            (python / item.name).symlink_to(item)
    shutil.copy(stub, python / "triton_python_backend_stub")
    return work / "backends"


def check_repo(repo: Path) -> None:
    missing = [m for m in TRITON_PY_MODELS.values() if not (repo / m / "config.pbtxt").is_file()]
    if not repo.is_dir():
        raise ServeError(f"no such repository: {repo}")
    if missing:
        raise ServeError(f"{repo} lacks the Python-backend model {missing[0]}: write the repository "
                         "with export-engine --format triton (this release)")


def server_command(args, dist: Path, backends: Path) -> list[str]:
    cmd = [str(dist / "bin" / "tritonserver"), "--model-repository", str(args.repo.resolve()),
           "--model-control-mode", "explicit", "--backend-directory", str(backends),
           "--cache-directory", str(dist / "caches"),
           "--grpc-address", args.host, "--grpc-port", str(args.grpc_port),
           "--http-address", args.host, "--http-port", str(args.http_port),
           "--allow-metrics", "false", "--exit-on-error", "true",
           "--log-verbose", "0", "--log-info", "true" if args.verbose else "false"]
    for model in TRITON_PY_MODELS.values():
        cmd += ["--load-model", model]
    return cmd


def server_env(dist: Path) -> dict:
    """The bundled libraries on the loader path, this interpreter's folder first on PATH
    (the stub runs the Python it finds there) and this project importable."""
    env = os.environ.copy()
    libs = dist.parents[1] / "nvidia_pytriton.libs"
    env["LD_LIBRARY_PATH"] = os.pathsep.join(filter(None, [str(libs), env.get("LD_LIBRARY_PATH")]))
    env["PATH"] = os.pathsep.join([str(Path(sys.executable).parent), env.get("PATH", "")])
    root = str(Path(__file__).resolve().parents[1])
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [root, env.get("PYTHONPATH")]))
    return env


def wait_ready(url: str, proc: subprocess.Popen, timeout_s: float = READY_TIMEOUT_S) -> None:
    import tritonclient.grpc as grpcclient

    client = grpcclient.InferenceServerClient(url)
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise ServeError(f"tritonserver exited with status {proc.returncode} while loading "
                             "(run with --verbose for its log)")
        try:
            if all(client.is_model_ready(m) for m in TRITON_PY_MODELS.values()):
                return
        except Exception:  # not listening yet
            pass
        time.sleep(0.2)
    raise ServeError(f"the models were not ready after {timeout_s:.0f} s")


def _die_with_parent() -> None:
    """In the server's process: SIGTERM it when pixelplayer-serve dies, even by SIGKILL
    (Linux prctl PR_SET_PDEATHSIG), so no orphaned server keeps the ports."""
    import ctypes

    try:
        ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGTERM)
    except OSError:
        pass


def _last_error(path: Path) -> str:
    """The server log's last line that reports an error (for the one-line message)."""
    try:
        lines = path.read_text(errors="replace").splitlines()
    except OSError:
        return "no log"
    errors = [ln.strip() for ln in lines if ln.startswith("E") or "error" in ln.lower()]
    return (errors or lines or ["no log"])[-1][:300]


def _port_free(host: str, port: int) -> bool:
    import socket

    with socket.socket() as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind((host, port))
        except OSError:
            return False
    return True


def main(argv=None) -> int:
    args = get_parser().parse_args(argv)
    stop = {"signal": None}

    def on_signal(signum, _frame):
        stop["signal"] = signum

    previous = {s: signal.signal(s, on_signal) for s in (signal.SIGTERM, signal.SIGINT)}
    proc = None
    work = Path(tempfile.mkdtemp(prefix="pixelplayer-serve-"))
    try:
        if args.threads is not None and args.threads < 1:
            raise ServeError(f"--threads must be >= 1 (got {args.threads})")
        for flag, port in (("--grpc-port", args.grpc_port), ("--http-port", args.http_port)):
            if not 0 < port < 65536 or not _port_free(args.host, port):
                raise ServeError(f"{flag} {port}: not a free port on {args.host}")
        check_repo(args.repo)
        dist = triton_dist()
        env = server_env(dist)
        if args.threads:
            env["PIXELPLAYER_SERVE_THREADS"] = str(args.threads)
        log = open(work / "tritonserver.log", "wb")
        proc = subprocess.Popen(server_command(args, dist, backend_dir(dist, work)), env=env,
                                stdout=None if args.verbose else log,
                                stderr=None if args.verbose else subprocess.STDOUT,
                                start_new_session=True, preexec_fn=_die_with_parent)
        url = f"{args.host}:{args.grpc_port}"
        try:
            wait_ready(url, proc)
        except ServeError as exc:
            raise ServeError(f"{exc}: {_last_error(work / 'tritonserver.log')}") from None
        print(f"{PROG}: serving {args.repo} at grpc://{url} (http://{args.host}:{args.http_port}); "
              f"clients: realtime-sep --engine triton://{url}", flush=True)
        while stop["signal"] is None and proc.poll() is None:
            time.sleep(0.2)
        if proc.poll() is not None:
            raise ServeError(f"tritonserver exited with status {proc.returncode}")
        return 0
    except ServeError as exc:
        print(f"{PROG}: error: {exc}", file=sys.stderr)
        return 2
    finally:
        if proc is not None and proc.poll() is None:
            proc.terminate()  # Triton finishes in-flight requests, then exits
            try:
                proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                proc.kill()
        shutil.rmtree(work, ignore_errors=True)
        for s, handler in previous.items():
            signal.signal(s, handler)


if __name__ == "__main__":
    sys.exit(main())
