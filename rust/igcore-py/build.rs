//! Makes PyO3's `Py_3_x` cfgs available, so version-specific fast paths can be chosen at build time.

fn main() {
    pyo3_build_config::use_pyo3_cfgs();
}
