"""Time from `make run` to the first `/search` answer on a fresh data folder (issue 13: ≤ 60 s).

    python bench/demo_start.py [--repo PATH] [--without-vectors]

Runs `make run` in the repository (installed beforehand: the install is not timed) with an empty
data folder and a free port, polls `/health`, `/ready`, `/search` and
`/users/ml-1/recommendations`, and records when each first answered 200, plus the progress lines the
server logged. `--without-vectors` is the peer: the same start with the shipped embeddings hidden,
so the model embeds the whole catalog (minutes). Writes bench/results/demo-start-<time>.json.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parent))
from machine import describe_machine  # noqa: E402
from paths import REPO, repo_relative  # noqa: E402

PROBES = {
    "health": "/health",
    "ready": "/ready",
    "search": "/search?q=space%20adventure%20with%20aliens",
    "collaborative": "/users/ml-1/recommendations?algorithm=itemknn",
}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def measure(repo: Path, without_vectors: bool, timeout: float) -> dict[str, object]:
    vectors = repo / "data" / "demo-catalog.vectors.npz"
    hidden = vectors.with_name(vectors.name + ".hidden")
    if without_vectors and vectors.exists():
        vectors.rename(hidden)
    port = free_port()
    with tempfile.TemporaryDirectory(prefix="demo-start-") as tmp:
        log_path = Path(tmp) / "server.log"
        env = {**os.environ, "METAMEDIA_DATA_DIR": str(Path(tmp) / "var"), "METAMEDIA_PORT": str(port)}
        env["METAMEDIA_LOG_JSON"] = "0"
        started = time.monotonic()
        with log_path.open("wb") as sink:
            proc = subprocess.Popen(
                ["make", "run"],
                cwd=repo,
                env=env,
                stdout=sink,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        first: dict[str, float] = {}
        try:
            with httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=30) as client:
                while len(first) < len(PROBES) and time.monotonic() - started < timeout:
                    if proc.poll() is not None:
                        raise SystemExit(
                            f"make run exited {proc.returncode}:\n{log_path.read_text()[-2000:]}"
                        )
                    for name, path in PROBES.items():
                        if name in first:
                            continue
                        try:
                            if client.get(path).status_code == 200:
                                first[name] = round(time.monotonic() - started, 1)
                        except httpx.HTTPError:
                            pass
                    time.sleep(0.25)
        finally:
            os.killpg(proc.pid, signal.SIGTERM)
            proc.wait(120)
            if without_vectors and hidden.exists():
                hidden.rename(vectors)
        log = log_path.read_text(encoding="utf-8", errors="replace").splitlines()
    progress = [line for line in log if "ETA" in line or " done in " in line or "ready after" in line]
    return {
        "seconds_to_first_200": first,
        "shipped_vectors": not without_vectors,
        "progress_lines": progress[:40],
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repo", type=Path, default=REPO, help="an installed checkout (default: this one)")
    parser.add_argument(
        "--without-vectors", action="store_true", help="the peer: hide the shipped embeddings"
    )
    parser.add_argument("--timeout", type=float, default=1800)
    parser.add_argument("--out", type=Path, default=REPO / "bench" / "results")
    parser.add_argument("--note", default="", help="recorded as is, e.g. how the checkout was made")
    args = parser.parse_args()
    if shutil.which("make") is None:
        raise SystemExit("needs make")
    result = {
        "machine": describe_machine(),
        "command": "make run",
        "note": args.note,
        **measure(args.repo.resolve(), args.without_vectors, args.timeout),
    }
    out = args.out / f"demo-start-{time.strftime('%Y%m%dT%H%M%S')}.json"
    out.write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")
    print(json.dumps(result["seconds_to_first_200"]), "->", repo_relative(out))


if __name__ == "__main__":
    main()
