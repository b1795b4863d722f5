"""Build hook for the analyzer's compiled fast paths; everything else is declared in pyproject.toml."""

from setuptools import Extension, setup

setup(
    ext_modules=[
        Extension(
            "safepickle_bench.analysis._native",
            ["safepickle_bench/analysis/_native.c"],
            extra_compile_args=["-O2", "-Wall", "-Wno-missing-field-initializers"],
            # Optional: without a C compiler the package installs and runs on the pure-Python reader (slower);
            # tests/test_native_reader.py fails then, unless SAFEPICKLE_PURE_PYTHON=1 says it is intended.
            optional=True,
        )
    ]
)
