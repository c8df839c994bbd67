"""Builds igcore's two compiled backends into one package.

- Cython: each ``cython/_cy_<hot path>.pyx`` becomes the extension ``igcore._cy_<hot path>``.
- Rust: ``rust/igcore-py`` is built by ``maturin build --release`` and its extension module is placed as
  ``igcore/_rust*.so`` (maturin cannot build one extension inside a package that another build backend
  owns, so setuptools drives it here).

The version is Cargo.toml's (see ``src/igcore/_version.py``); the built package holds it as a literal.

Without a Rust toolchain or a C compiler the install still succeeds, with a warning, and the missing
backend reports why at run time; ``IGCORE_REQUIRE_NATIVE=1`` turns a missing backend into a failure.
"""

import glob
import json
import os
import runpy
import shutil
import subprocess
import sys
import sysconfig
import tempfile
import zipfile

from Cython.Build import cythonize
from setuptools import Extension, setup
from setuptools.command.build_ext import build_ext
from setuptools.command.build_py import build_py

ROOT = os.path.dirname(os.path.abspath(__file__))
RUST_CRATE = os.path.join("rust", "igcore-py", "Cargo.toml")
VERSION = runpy.run_path(os.path.join(ROOT, "src", "igcore", "_version.py"))["__version__"]


class BuildPy(build_py):
    """build_py that writes the version into the built package, which has no Cargo.toml to read."""

    def run(self):
        super().run()
        if not self.editable_mode:  # an editable install runs from the checkout, which has Cargo.toml
            target = os.path.join(self.build_lib, "igcore", "_version.py")
            with open(target, "w", encoding="utf-8") as module:
                module.write('"""igcore\'s version, from Cargo.toml when this package was built."""\n\n')
                module.write(f"__version__ = {VERSION!r}\n")


def require_native() -> bool:
    return os.environ.get("IGCORE_REQUIRE_NATIVE", "") not in ("", "0")


class RustExtension(Extension):
    """The extension ``igcore._rust``, built by maturin from a Cargo crate rather than by setuptools."""

    def __init__(self, name: str, manifest: str):
        super().__init__(name, sources=[])
        self.manifest = manifest


class BuildNative(build_ext):
    """build_ext that also runs maturin, and that warns instead of failing when a toolchain is missing."""

    def run(self):
        self.skipped = {}
        super().run()
        self.write_build_report()
        if self.skipped:
            names = ", ".join(sorted(self.skipped))
            self.warn(f"igcore: built WITHOUT {names}; `igcore info` will say why")

    def write_build_report(self):
        # What was left out and why, for `igcore info` and backend_info() to tell at run time (pip shows
        # no build output when an install succeeds).
        report = os.path.join(os.path.dirname(self.get_ext_fullpath("igcore._rust")), "_build.json")
        with open(report, "w") as out:
            json.dump({"skipped": self.skipped}, out, indent=1)

    def build_extension(self, ext):
        try:
            if isinstance(ext, RustExtension):
                self.build_rust(ext)
            else:
                super().build_extension(ext)
        except Exception as exc:  # a compiler or toolchain failure of any kind
            if require_native():
                raise
            self.skip(ext, f"{type(exc).__name__}: {exc}")

    def skip(self, ext, reason: str):
        self.skipped[ext.name] = reason
        self.warn(
            f"igcore: skipping {ext.name}: {reason} (set IGCORE_REQUIRE_NATIVE=1 to make this an error)"
        )

    def build_rust(self, ext: RustExtension):
        destination = self.get_ext_fullpath(ext.name)
        folder = os.path.dirname(destination)
        os.makedirs(folder, exist_ok=True)
        # A stale module from an earlier build (another Python, another version) must not shadow this one.
        for stale in glob.glob(os.path.join(folder, "_rust*.so")) + glob.glob(
            os.path.join(folder, "_rust*.pyd")
        ):
            os.remove(stale)
        if shutil.which("cargo") is None:
            raise RuntimeError("no Rust toolchain found (cargo is not on PATH); see https://rustup.rs")
        with tempfile.TemporaryDirectory() as wheel_dir:
            # The `maturin` script of the build environment (pip puts it on PATH); `python -m maturin`
            # only works where the script sits beside this interpreter.
            maturin = shutil.which("maturin")
            command = [
                *([maturin] if maturin else [sys.executable, "-m", "maturin"]),
                "build", "--release", "--locked",
                "--manifest-path", os.path.join(ROOT, ext.manifest),
                "--interpreter", sys.executable,
                "--out", wheel_dir,
            ]  # fmt: skip
            self.announce(" ".join(command), level=2)
            subprocess.run(command, check=True, cwd=ROOT)
            (wheel,) = glob.glob(os.path.join(wheel_dir, "*.whl"))
            with zipfile.ZipFile(wheel) as archive:
                members = [
                    m
                    for m in archive.namelist()
                    if os.path.basename(m).startswith("_rust.") and m.endswith((".so", ".pyd"))
                ]
                if len(members) != 1:
                    raise RuntimeError(f"expected one _rust extension in {wheel}, found {members}")
                with archive.open(members[0]) as source, open(destination, "wb") as target:
                    shutil.copyfileobj(source, target)

    # Editable installs copy built extensions into the source tree; leave out the ones that were skipped.
    def copy_extensions_to_source(self):
        self._without_skipped(super().copy_extensions_to_source)

    def get_outputs(self):
        return self._without_skipped(super().get_outputs)

    def get_output_mapping(self):
        return self._without_skipped(super().get_output_mapping)

    def _without_skipped(self, method):
        skipped = getattr(self, "skipped", {})
        saved = self.extensions
        self.extensions = [e for e in saved if e.name not in skipped]
        try:
            return method()
        finally:
            self.extensions = saved


def cython_extensions():
    optimize = [] if sys.platform == "win32" else ["-O3"]
    link = []
    # IGCORE_SANITIZE=address builds them with AddressSanitizer, for `make memcheck` (.ci/memcheck): it
    # goes on after a report, so that one run finds every error of the suite.
    sanitizer = os.environ.get("IGCORE_SANITIZE", "").strip().lower()
    if sanitizer not in ("", "address"):
        sys.exit(f"igcore: IGCORE_SANITIZE={sanitizer!r} is not 'address'")
    if sanitizer:
        optimize = ["-fsanitize=address", "-fsanitize-recover=address", "-fno-omit-frame-pointer"]
        optimize += ["-O1", "-g"]
        link = ["-fsanitize=address"]
    # Each cython/_cy_<hot path>.pyx includes the .pxi files of cython/<hot path>/ and cimports the shared
    # cython/_cy_*.pxd (some of which name a cython/_cy_*.h): a change to any of them rebuilds it.
    shared = sorted(glob.glob(os.path.join("cython", "_cy_*.pxd")))
    shared += sorted(glob.glob(os.path.join("cython", "_cy_*.h")))
    extensions = []
    for path in sorted(glob.glob(os.path.join("cython", "_cy_*.pyx"))):
        module = os.path.splitext(os.path.basename(path))[0]
        parts = sorted(glob.glob(os.path.join("cython", module[len("_cy_") :], "*.pxi")))
        extensions.append(
            Extension(
                "igcore." + module,
                [path],
                depends=shared + parts,
                include_dirs=["cython"],
                extra_compile_args=optimize,
                extra_link_args=link,
            )
        )
    return cythonize(
        extensions,
        include_path=["cython"],
        compiler_directives={
            "language_level": "3",
            "boundscheck": False,
            "wraparound": False,
            # Declared, not yet tested: a free-threaded Python turns the GIL back on for these modules.
            "freethreading_compatible": False,
        },
        quiet=True,
    )


if sysconfig.get_config_var("EXT_SUFFIX") is None:
    sys.exit("igcore: this Python does not report EXT_SUFFIX; cannot name extension modules")


def extensions():
    # IGCORE_BUILD=cython (or rust) builds only that backend, e.g. for `make cython`; unset builds both.
    only = os.environ.get("IGCORE_BUILD", "").strip().lower()
    if only not in ("", "cython", "rust"):
        sys.exit(f"igcore: IGCORE_BUILD={only!r} is not one of cython, rust")
    return [
        *(cython_extensions() if only in ("", "cython") else []),
        *([RustExtension("igcore._rust", RUST_CRATE)] if only in ("", "rust") else []),
    ]


setup(
    version=VERSION,
    ext_modules=extensions(),
    cmdclass={"build_ext": BuildNative, "build_py": BuildPy},
)
