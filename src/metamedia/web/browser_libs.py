"""The browser's embedding libraries: transformers.js and the exact onnxruntime-web build it pins.

They are fetched at `make install` (`python -m metamedia.web.browser_libs`) with `npm pack` (the
package tarball only: no install scripts, no native onnxruntime-node or sharp), and only the files
the offline web app needs are kept, each checked against the sha256 pinned below. A file that does
not match is refused, so the server can never hand the browser other code than the pinned build.

    models/web-libs/                     (next to the ONNX export, gitignored)
        transformers-4.3.2/transformers.min.js   (ES module; bundles onnxruntime-web's JS)
        onnxruntime-web-1.31.0-dev.../ort-wasm-simd-threaded.asyncify.{mjs,wasm}
        sqlite-wasm-3.41.2/sqlite3.{mjs,wasm}  (FTS5 + porter: the lexical stage, the server's own SQL)
        licence files, NOTICE.txt, manifest.json

The server serves them under /vendor/<package>-<version>/ with an immutable cache rule.
"""

from __future__ import annotations

import argparse
import json
import logging
import shutil
import subprocess
import sys
import tarfile
import tempfile
from dataclasses import dataclass
from pathlib import Path

from ..embed.onnx_export import onnx_model_dir, sha256_file
from ..errors import MetamediaError

log = logging.getLogger("metamedia.web")

TRANSFORMERS_VERSION = "4.3.2"
ORT_WEB_VERSION = "1.31.0-dev.20260914-8d85527a0"  # the exact build transformers.js 4.3.2 pins
SQLITE_WASM_VERSION = "3.41.2"  # SQLite + FTS5 (porter) in WebAssembly: the server's lexical stage, same SQL
LIBS_DIR_NAME = "web-libs"


@dataclass(frozen=True)
class PinnedFile:
    """One file taken from an npm package tarball, with its pinned checksum."""

    package: str
    version: str
    member: str  # path inside the tarball
    sha256: str

    @property
    def folder(self) -> str:
        return f"{self.package.rsplit('/', 1)[-1]}-{self.version}"

    @property
    def served_as(self) -> str:
        """Path under /vendor/ (and under the libs folder)."""
        return f"{self.folder}/{self.member.rsplit('/', 1)[-1]}"


PINNED: tuple[PinnedFile, ...] = (
    PinnedFile(
        "@huggingface/transformers",
        TRANSFORMERS_VERSION,
        "package/dist/transformers.min.js",
        "8b5a3171f8876bab2b1820a7d65eb87628e3d30bb5ea85b9dd398e76eb34decb",
    ),
    PinnedFile(
        "@huggingface/transformers",
        TRANSFORMERS_VERSION,
        "package/LICENSE",
        "cfc7749b96f63bd31c3c42b5c471bf756814053e847c10f3eb003417bc523d30",
    ),
    PinnedFile(
        "onnxruntime-web",
        ORT_WEB_VERSION,
        "package/dist/ort-wasm-simd-threaded.asyncify.mjs",
        "0966b6105cd936744498aa60df7a22cbd47af3374dbc64a9ab561c08a71e3611",
    ),
    PinnedFile(
        "onnxruntime-web",
        ORT_WEB_VERSION,
        "package/dist/ort-wasm-simd-threaded.asyncify.wasm",
        "49871f5a4409519797e127440868a6d1923339d9185907f301a5b2a1d90af082",
    ),
    PinnedFile(
        "@sqlite.org/sqlite-wasm",
        SQLITE_WASM_VERSION,
        "package/sqlite-wasm/jswasm/sqlite3.mjs",
        "892d83d1dab0b76d8c82d67051d450d54ad1eb93697c6499f90bbbf37073518d",
    ),
    PinnedFile(
        "@sqlite.org/sqlite-wasm",
        SQLITE_WASM_VERSION,
        "package/sqlite-wasm/jswasm/sqlite3.wasm",
        "2d34bf9279985db154f98bfab9ffa289b014821873ed188b67e3a4c5d1b7faec",
    ),
)
NOTICE = f"""Third-party code served to the browser by metamedia's offline web app.

@huggingface/transformers {TRANSFORMERS_VERSION} (transformers.min.js)
  Copyright Hugging Face. Apache License 2.0: see transformers-{TRANSFORMERS_VERSION}/LICENSE.
onnxruntime-web {ORT_WEB_VERSION} (ort-wasm-simd-threaded.asyncify.mjs/.wasm)
  Copyright (c) Microsoft Corporation. MIT License (the package ships no LICENSE file; its
  package.json declares "MIT"): https://github.com/microsoft/onnxruntime/blob/main/LICENSE
@sqlite.org/sqlite-wasm {SQLITE_WASM_VERSION} (sqlite3.mjs, sqlite3.wasm)
  SQLite is in the public domain (https://sqlite.org/copyright.html); the package's JavaScript is
  declared "Apache-2.0" in its package.json (it ships no LICENSE file).

Both are fetched by `make install` with `npm pack` and checked against the sha256 pinned in
src/metamedia/web/browser_libs.py.
"""


class BrowserLibsInvalid(MetamediaError):
    """The browser libraries are missing or do not match their pinned checksums."""


def libs_dir() -> Path:
    """Folder of the vendored browser libraries (beside the ONNX export)."""
    return onnx_model_dir().parent / LIBS_DIR_NAME


def verify_libs(folder: Path | None = None) -> dict[str, Path]:
    """Every pinned file, checked; returns served path -> file. Raises BrowserLibsInvalid otherwise."""
    folder = folder or libs_dir()
    out: dict[str, Path] = {}
    for pin in PINNED:
        path = folder / pin.served_as
        if not path.is_file():
            raise BrowserLibsInvalid(f"browser library missing: {pin.served_as} (run `make install`)")
        if sha256_file(path) != pin.sha256:
            raise BrowserLibsInvalid(f"browser library {pin.served_as} does not match its pinned sha256")
        out[pin.served_as] = path
    return out


def _npm_pack(spec: str, work: Path) -> Path:
    npm = shutil.which("npm")
    if npm is None:
        raise BrowserLibsInvalid("npm is needed to fetch the browser libraries (apt-get install npm)")
    done = subprocess.run(
        [npm, "pack", spec, "--json", "--pack-destination", str(work)],
        cwd=work, capture_output=True, text=True, timeout=600,
    )  # fmt: skip
    if done.returncode != 0:
        raise BrowserLibsInvalid(f"npm pack {spec} failed: {done.stderr.strip()[-500:]}")
    return work / json.loads(done.stdout)[0]["filename"]


def install_libs(folder: Path | None = None) -> dict[str, Path]:
    """Fetch and check the pinned files unless they are already there and valid."""
    folder = folder or libs_dir()
    try:
        return verify_libs(folder)
    except BrowserLibsInvalid as why:
        log.info("fetching browser libraries: %s", why)
    folder.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix=".web-libs-", dir=folder.parent) as tmp:
        work = Path(tmp)
        for spec in sorted({f"{p.package}@{p.version}" for p in PINNED}):
            tarball = _npm_pack(spec, work)
            with tarfile.open(tarball) as tar:
                for pin in PINNED:
                    if f"{pin.package}@{pin.version}" != spec:
                        continue
                    member = tar.extractfile(pin.member)
                    if member is None:
                        raise BrowserLibsInvalid(f"{spec} has no {pin.member}")
                    staged = work / "staged" / pin.served_as
                    staged.parent.mkdir(parents=True, exist_ok=True)
                    staged.write_bytes(member.read())
                    if sha256_file(staged) != pin.sha256:
                        raise BrowserLibsInvalid(f"{spec}: {pin.member} does not match its pinned sha256")
        for pin in PINNED:
            dest = folder / pin.served_as
            dest.parent.mkdir(parents=True, exist_ok=True)
            shutil.move(str(work / "staged" / pin.served_as), dest)
    (folder / "NOTICE.txt").write_text(NOTICE)
    manifest = {p.served_as: {"package": p.package, "version": p.version, "sha256": p.sha256} for p in PINNED}
    (folder / "manifest.json").write_text(json.dumps(manifest, indent=2) + "\n")
    return verify_libs(folder)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Fetch and verify the offline web app's browser libraries")
    parser.add_argument("--dir", type=Path, default=None, help="target folder (default: models/web-libs)")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    try:
        files = install_libs(args.dir)
    except BrowserLibsInvalid as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    print(f"browser libraries verified: {len(files)} files in {args.dir or libs_dir()}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
