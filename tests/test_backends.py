"""Choosing backends: names, availability, reasons, the environment variable and the context manager."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import numpy as np
import pytest

import igcore
from igcore import _backend

from .conftest import REQUIRED
from .isolated import assert_ran_cleanly, run_isolated


def run_python(code: str, **env: str) -> subprocess.CompletedProcess:
    environment = {**os.environ, **env}
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=environment)


def run_hiding(modules: tuple[str, ...], code: str, backend: str) -> str:
    """The output of `code` run in a child interpreter where `modules` fail to import, as if they were
    not built, under IGCORE_BACKEND=`backend`; the child must exit cleanly."""
    hide = (
        "import sys\n"
        "class Hide:\n"
        "    def find_spec(self, name, path=None, target=None):\n"
        f"        if name in {modules!r}:\n"
        "            raise ImportError('hidden for the test')\n"
        "sys.meta_path.insert(0, Hide())\n"
    )
    done = run_python(hide + code, IGCORE_BACKEND=backend)
    assert done.returncode == 0, done.stderr
    return done.stdout


def test_the_reference_is_always_available():
    assert "python" in igcore.backends()
    for hot_path in igcore.HOT_PATHS:
        assert "python" in _backend.available(hot_path)


@pytest.mark.parametrize("name", REQUIRED or ["python"])
def test_required_backends_are_built_for_every_hot_path(name):
    # With IGCORE_REQUIRE_BACKENDS set (CI), a backend that failed to build fails here, with its reason.
    missing = {h: _backend._load(name, h)[1] for h in igcore.HOT_PATHS if name not in _backend.available(h)}
    assert not missing, f"backend {name} is required but unavailable: {missing}"


def test_backends_are_listed_fastest_first():
    listed = igcore.backends()
    assert listed == [b for b in igcore.BACKENDS if b in listed]


def test_backend_info_says_what_serves_each_hot_path_and_why_others_do_not():
    info = igcore.backend_info()
    assert info["version"] == igcore.__version__
    assert set(info["hot_paths"]) == set(igcore.HOT_PATHS)
    for state in info["hot_paths"].values():
        assert state["backend"] in state["available"]
        assert set(state["available"]) | set(state["unavailable"]) == set(igcore.BACKENDS)
        for reason in state["unavailable"].values():
            assert reason  # never an unexplained absence
    json.dumps(info)  # plain data, printable and loggable


def test_auto_prefers_the_fastest_available_backend():
    with igcore.use_backend("auto"):
        for hot_path in igcore.HOT_PATHS:
            assert _backend.current(hot_path) == _backend.available(hot_path)[0]


@pytest.mark.parametrize("name", igcore.BACKENDS)
def test_use_backend_switches_and_restores(name):
    if name not in igcore.backends():
        pytest.skip(f"{name} is not built here")
    before = _backend.current("counters")
    with igcore.use_backend(name) as chosen:
        assert chosen == name
        assert _backend.current("counters") == name
    assert _backend.current("counters") == before


def test_an_unknown_backend_name_lists_the_choices_and_the_available_ones():
    with (
        pytest.raises(
            ValueError, match=r"'fortran' is not a backend; choose one of auto, rust, cython, python"
        ),
        igcore.use_backend("fortran"),
    ):
        pass
    with pytest.raises(ValueError, match=r"available here: .*python"), igcore.use_backend("fortran"):
        pass


def test_use_backend_is_per_thread():
    import threading

    seen = {}
    default = _backend.current("counters")

    def other_thread():
        seen["other"] = _backend.current("counters")

    with igcore.use_backend("python"):
        worker = threading.Thread(target=other_thread)
        worker.start()
        worker.join()
        assert _backend.current("counters") == "python"
    # A new thread starts from the process-wide choice, not from this thread's `with` block.
    assert seen["other"] == default


def test_environment_variable_selects_the_backend():
    code = "import igcore, igcore._backend as b; print(b.current('counters'))"
    done = run_python(code, IGCORE_BACKEND="python")
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "python"


def test_environment_variable_with_an_unknown_name_fails_at_import_with_the_choices():
    done = run_python("import igcore", IGCORE_BACKEND="gpu")
    assert done.returncode != 0
    assert "IGCORE_BACKEND='gpu' is not a backend; choose one of auto, rust, cython, python" in done.stderr


def test_an_unavailable_backend_raises_backend_unavailable_naming_the_available_ones():
    # Hide the compiled modules from a fresh interpreter, as on a machine without compilers.
    code = (
        "import igcore, igcore._backend as b, numpy as np\n"
        "print(igcore.backends())\n"
        "print(b.backend_info()['hot_paths']['counters']['unavailable'])\n"
        "print(igcore.counters.aggregate([1, 1, 2]).sums.tolist())\n"
        "try:\n"
        "    with igcore.use_backend('rust'):\n"
        "        pass\n"
        "except igcore.BackendUnavailable as exc:\n"
        "    print('refused:', exc)\n"
    )
    output = run_hiding(("igcore._rust", "igcore._cy_counters"), code, "auto")
    lines = output.splitlines()
    assert lines[0] == "['python']"
    assert "not built" in lines[1] and "hidden for the test" in lines[1]
    assert lines[2] == "[2, 1]"
    assert lines[3].startswith("refused: backend 'rust' is not available")
    assert lines[3].endswith("available: python")


def test_forcing_an_unbuilt_backend_through_the_environment_fails_on_first_use_with_the_reason():
    output = run_hiding(
        ("igcore._cy_counters",),
        "import igcore\ntry:\n    igcore.counters.aggregate([1])\nexcept igcore.BackendUnavailable as exc:\n"
        "    print(exc)\n",
        "cython",
    )
    assert "backend 'cython' cannot serve counters: not built" in output
    assert "available for counters:" in output


def test_the_rust_extension_matches_the_package_version():
    if "rust" not in _backend.available("counters"):
        pytest.skip("rust is not built here")
    from igcore import _rust

    assert _rust.__version__ == igcore.__version__


def test_cargo_and_the_package_agree_on_the_version():
    cargo = os.path.join(os.path.dirname(__file__), os.pardir, "Cargo.toml")
    if not os.path.exists(cargo):
        pytest.skip("not run from a source tree (a checkout or the sdist)")
    with open(cargo, "rb") as manifest:
        text = manifest.read().decode()
    try:
        import tomllib
    except ImportError:  # Python 3.10: the table's own line, then
        table = text.split("[workspace.package]", 1)[1].split("\n[", 1)[0]
        assert f'\nversion = "{igcore.__version__}"' in table
    else:
        assert igcore.__version__ == tomllib.loads(text)["workspace"]["package"]["version"]


def test_the_installed_distribution_has_the_package_version():
    from importlib import metadata

    try:
        installed = metadata.distribution("igcore")
    except metadata.PackageNotFoundError:
        pytest.skip("igcore is imported from a folder, not installed")
    where = installed.locate_file("igcore/__init__.py")
    if not (os.path.exists(where) and os.path.samefile(where, igcore.__file__)):
        pytest.skip("the igcore installed here is not the one imported")
    assert installed.version == igcore.__version__


def test_kernels_receive_int64_arrays_without_a_copy():
    from igcore._arrays import int64_array

    keys = np.arange(10, dtype=np.int64)
    assert int64_array(keys, "keys") is keys


# The kernel modules of each backend, by the prefix of their names (rust's is one extension module).
BACKEND_MODULES = {"rust": "igcore._rust", "cython": "igcore._cy_", "python": "igcore._reference"}
FIRST_CALLS = {
    "counters": "igcore.counters.aggregate(np.array([1, 2, 1]))",
    "timeline": "igcore.timeline.merge_page([(np.array([3, 2]), np.array([1, 2]), np.array([5, 5]))])",
    "codec": "igcore.codec.encode_ids(np.array([1, 2, 3]))",
    "graph": "igcore.graph.FollowGraph.from_edges(np.array([1, 2]), np.array([2, 3]))",
    "msgpack": "igcore.msgpack.packb({'a': 1})",
}
LOADED_BACKENDS = """
import sys
def loaded():
    return sorted(b for b, prefix in {modules!r}.items() if any(m.startswith(prefix) for m in sys.modules))
import igcore, numpy as np
print(loaded())
import igcore.{hot_path}
print(loaded())
{call}
print(loaded())
print(igcore.backend_info()["hot_paths"]["{hot_path}"]["backend"])
"""


@pytest.mark.parametrize("requested", ["auto", *igcore.BACKENDS])
@pytest.mark.parametrize("hot_path", igcore.HOT_PATHS)
def test_the_first_call_of_a_hot_path_imports_the_backend_that_serves_it_and_no_other(hot_path, requested):
    if requested != "auto" and requested not in _backend.available(hot_path):
        pytest.skip(f"{requested} is not built here")
    code = LOADED_BACKENDS.format(modules=BACKEND_MODULES, hot_path=hot_path, call=FIRST_CALLS[hot_path])
    lines = assert_ran_cleanly(run_isolated(code, requested)).splitlines()
    after_import, after_public_module, after_call, serving = lines
    assert after_import == after_public_module == "[]"  # no backend before the first call
    assert after_call == repr([serving])
    if requested != "auto":
        assert serving == requested


def test_hot_paths_load_on_first_use():
    # A web process that only wants the msgpack codec does not pay for numpy or the other hot paths.
    code = (
        "import sys, igcore.msgpack as m\n"
        "assert m.unpackb(m.packb([1])) == [1]\n"
        "print(sorted(n for n in ('numpy', 'igcore.graph', 'igcore.counters') if n in sys.modules))\n"
        "import igcore\n"
        "print(igcore.counters.aggregate([4, 4]).sums.tolist(), 'numpy' in sys.modules)\n"
    )
    done = run_python(code)
    assert done.returncode == 0, done.stderr
    assert done.stdout.splitlines() == ["[]", "[2] True"]
